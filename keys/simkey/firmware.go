package simkey

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"time"

	"keydesk/keys/proto"
)

// receive is the key's USB endpoint: one report from a host connection.
func (k *Key) receive(p *pipe, report []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.pipes[p]; !ok {
		return p.err()
	}
	pk, err := proto.ParsePacket(report)
	if err != nil {
		return err
	}
	k.packet(pk)
	return nil
}

func (k *Key) detach(p *pipe) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.pipes, p)
}

// packet runs the CTAPHID channel rules for one packet.
func (k *Key) packet(pk proto.Packet) {
	switch {
	case pk.CID == 0:
		return // reserved: never answered
	case pk.Init && pk.Cmd == proto.CmdCancel:
		return // CTAPHID_CANCEL is never answered, and KeyDesk's commands cannot be cancelled
	case pk.Init && pk.Cmd == proto.CmdInit:
		k.init(pk) // answered even while busy
		return
	case k.channels[pk.CID] == nil:
		if pk.Init {
			k.sendError(pk.CID, proto.CodeInvalidChannel)
		}
		return
	case k.job != nil:
		if pk.Init {
			k.sendError(pk.CID, proto.CodeChannelBusy)
		}
		return
	}
	now := time.Now()
	if k.asm.Active() {
		if pk.CID != k.asm.CID() {
			if now.Sub(k.asmAt) < msgTimeout {
				if pk.Init {
					k.sendError(pk.CID, proto.CodeChannelBusy)
				}
				return
			}
			k.sendError(k.asm.CID(), proto.CodeMsgTimeout) // the stalled message is dropped
			k.asm.Reset()
		} else {
			cmd := k.asm.Cmd()
			k.asmAt = now
			payload, done, err := k.asm.Continue(pk)
			if err != nil {
				k.sendError(pk.CID, codeOf(err))
			} else if done {
				k.dispatch(pk.CID, cmd, payload)
			}
			return
		}
	}
	if !pk.Init {
		return // a stray continuation packet is ignored
	}
	k.asmAt = now
	payload, done, err := k.asm.Start(pk)
	if err != nil {
		k.sendError(pk.CID, codeOf(err))
	} else if done {
		k.dispatch(pk.CID, pk.Cmd, payload)
	}
}

func codeOf(err error) proto.ErrorCode {
	var fe *proto.FrameError
	if errors.As(err, &fe) {
		return fe.Code
	}
	return proto.CodeOther
}

// init answers INIT: on the broadcast channel it allocates a channel, on an
// allocated channel it aborts that channel's transaction (resync).
func (k *Key) init(pk proto.Packet) {
	if pk.Len != proto.InitNonceSize {
		k.sendError(pk.CID, proto.CodeInvalidLen)
		return
	}
	cid := pk.CID
	if cid == proto.BroadcastCID {
		cid = k.allocate()
	} else {
		if k.channels[cid] == nil {
			k.sendError(pk.CID, proto.CodeInvalidChannel)
			return
		}
		if k.job != nil && k.job.cid == cid {
			k.job = nil
		}
	}
	if k.asm.Active() && k.asm.CID() == pk.CID {
		k.asm.Reset()
	}
	resp := append([]byte{}, pk.Data[:proto.InitNonceSize]...)
	resp = binary.BigEndian.AppendUint32(resp, cid)
	resp = append(resp, proto.ProtocolVersion, 1, 0, 0, capabilities)
	k.emit(pk.CID, proto.CmdInit, resp)
}

func (k *Key) allocate() uint32 {
	if len(k.order) >= maxChannels {
		delete(k.channels, k.order[0])
		k.order = k.order[1:]
	}
	var b [4]byte
	for {
		rand.Read(b[:])
		cid := binary.BigEndian.Uint32(b[:])
		if cid != 0 && cid != proto.BroadcastCID && k.channels[cid] == nil {
			k.channels[cid] = &channel{}
			k.order = append(k.order, cid)
			return cid
		}
	}
}

// dispatch executes a complete request now, or, when the key is slow
// (SetDelay) or held (Hold), later in a goroutine that sends KEEPALIVE until
// then. Meanwhile the key answers other requests with CHANNEL_BUSY.
func (k *Key) dispatch(cid uint32, cmd proto.Command, payload []byte) {
	if k.delay <= 0 && k.hold == nil {
		k.execute(cid, cmd, payload)
		return
	}
	j := &job{cid: cid}
	k.job = j
	k.emit(cid, proto.CmdKeepalive, []byte{proto.KeepaliveProcessing})
	go k.run(j, cmd, payload, k.delay, k.hold, k.unplugged)
}

func (k *Key) run(j *job, cmd proto.Command, payload []byte, delay time.Duration, hold, unplugged <-chan struct{}) {
	tick := time.NewTicker(KeepaliveInterval)
	defer tick.Stop()
	var slow <-chan time.Time
	if delay > 0 {
		t := time.NewTimer(delay)
		defer t.Stop()
		slow = t.C
	}
	for slow != nil || hold != nil {
		select {
		case <-unplugged:
			return // power lost: the command never runs
		case <-slow:
			slow = nil
		case <-hold:
			hold = nil
		case <-tick.C:
			k.mu.Lock()
			if k.job == j {
				k.emit(j.cid, proto.CmdKeepalive, []byte{proto.KeepaliveProcessing})
			}
			k.mu.Unlock()
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.job != j {
		return // unplugged or resynchronised meanwhile
	}
	k.job = nil
	k.execute(j.cid, cmd, payload)
}

// execute runs one command and sends its reply or ERROR.
func (k *Key) execute(cid uint32, cmd proto.Command, payload []byte) {
	ch := k.channels[cid]
	if ch == nil {
		k.sendError(cid, proto.CodeInvalidChannel)
		return
	}
	resp, code := k.handle(ch, cid, cmd, payload)
	if code != 0 {
		k.sendError(cid, code)
		return
	}
	k.emit(cid, cmd, resp)
}

func (k *Key) handle(ch *channel, cid uint32, cmd proto.Command, payload []byte) ([]byte, proto.ErrorCode) {
	switch cmd {
	case proto.CmdPing:
		return payload, 0
	case proto.CmdInfo, proto.CmdWink, proto.CmdHIDWink, proto.CmdLock:
		if len(payload) != 0 {
			return nil, proto.CodeInvalidLen
		}
	}
	switch cmd {
	case proto.CmdInfo:
		return reply(k.info())
	case proto.CmdWink, proto.CmdHIDWink:
		k.winks++
		return nil, 0
	case proto.CmdLock:
		return nil, k.lock()
	case proto.CmdKeyAgreement:
		return k.keyAgreement(ch, cid, payload)
	case proto.CmdAttest:
		return k.attestCmd(cid, payload)
	case proto.CmdLink:
		return k.link(ch, cid, payload)
	case proto.CmdChallenge:
		return k.challenge(ch, payload)
	case proto.CmdAuth:
		return k.auth(ch, cid, payload)
	case proto.CmdWrite, proto.CmdCommit, proto.CmdDiscard, proto.CmdRead, proto.CmdDelete,
		proto.CmdList, proto.CmdWipe, proto.CmdSetPIN, proto.CmdVerifyPIN:
		return k.sessionCmd(ch, cmd, payload)
	}
	return nil, proto.CodeInvalidCmd
}

func (k *Key) info() proto.Info {
	return proto.Info{
		Serial:     k.st.Serial,
		Model:      k.st.Model,
		Firmware:   k.st.Firmware,
		State:      k.st.State,
		Slots:      len(k.st.Slots),
		FreeSlots:  k.st.freeSlots(),
		PINSet:     k.st.PINHash != nil,
		PINRetries: k.st.PINRetries,
		LockedBy:   k.st.LockedBy,
	}
}

func (k *Key) lock() proto.ErrorCode {
	switch k.st.State {
	case proto.StateBlank:
		return proto.CodeWrongState
	case proto.StateLocked:
		return 0
	}
	return k.mutate(func(s *state) proto.ErrorCode {
		s.State, s.LockedBy = proto.StateLocked, proto.LockCommand
		return 0
	})
}

// sign signs msg with the attestation key (nil without one).
func (k *Key) sign(msg []byte) ([]byte, proto.ErrorCode) {
	if k.attest == nil {
		return nil, 0
	}
	h := sha256.Sum256(msg)
	sig, err := ecdsa.SignASN1(rand.Reader, k.attest, h[:])
	if err != nil {
		return nil, proto.CodeOther
	}
	return sig, 0
}

// attestCmd signs the key's serial and state over the host's nonce. A key
// without attestation does not know the command.
func (k *Key) attestCmd(cid uint32, payload []byte) ([]byte, proto.ErrorCode) {
	if k.attest == nil {
		return nil, proto.CodeInvalidCmd
	}
	var req proto.AttestRequest
	if proto.Unmarshal(payload, &req) != nil || len(req.Nonce) != proto.NonceSize {
		return nil, proto.CodeInvalidPar
	}
	st := proto.Statement{Serial: k.st.Serial, State: k.st.State, LockedBy: k.st.LockedBy}
	sig, code := k.sign(proto.AttestMessage(cid, req.Nonce, st))
	if code != 0 {
		return nil, code
	}
	return reply(proto.AttestResponse{Chain: k.st.AttestChain, Sig: sig, Serial: st.Serial, State: st.State, LockedBy: st.LockedBy})
}

// keyAgreement makes the channel's one-use agreement key and, with
// attestation, signs it over the host's nonce (a request without a nonce
// gets no signature).
func (k *Key) keyAgreement(ch *channel, cid uint32, payload []byte) ([]byte, proto.ErrorCode) {
	if k.st.State != proto.StateBlank {
		return nil, proto.CodeWrongState
	}
	var req proto.KeyAgreementRequest
	if len(payload) > 0 && (proto.Unmarshal(payload, &req) != nil || len(req.Nonce) != proto.NonceSize) {
		return nil, proto.CodeInvalidPar
	}
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, proto.CodeOther
	}
	ch.agreement, ch.nonce = priv, req.Nonce
	resp := proto.KeyAgreementResponse{KeyPub: priv.PublicKey().Bytes()}
	if req.Nonce != nil && k.attest != nil {
		sig, code := k.sign(proto.AgreementMessage(cid, req.Nonce, resp.KeyPub))
		if code != 0 {
			return nil, code
		}
		resp.Chain, resp.Sig = k.st.AttestChain, sig
	}
	return reply(resp)
}

// link takes the master secret: only on a blank key, only with the one-use
// agreement key of this channel (anything else is a replay).
func (k *Key) link(ch *channel, cid uint32, payload []byte) ([]byte, proto.ErrorCode) {
	if k.st.State != proto.StateBlank {
		return nil, proto.CodeWrongState
	}
	var req proto.LinkRequest
	if proto.Unmarshal(payload, &req) != nil {
		return nil, proto.CodeInvalidPar
	}
	agreement, nonce := ch.agreement, ch.nonce
	ch.agreement, ch.nonce = nil, nil // used once, whatever happens
	if agreement == nil || !bytes.Equal(req.KeyPub, agreement.PublicKey().Bytes()) {
		return nil, proto.CodeReplay
	}
	hostPub, err := ecdh.P256().NewPublicKey(req.HostPub)
	if err != nil {
		return nil, proto.CodeInvalidPar
	}
	shared, err := agreement.ECDH(hostPub)
	if err != nil {
		return nil, proto.CodeInvalidPar
	}
	lk, err := proto.LinkKey(shared, req.KeyPub, req.HostPub)
	if err != nil {
		return nil, proto.CodeOther
	}
	master, err := proto.OpenLink(lk, req.KeyPub, req.HostPub, req.Nonce, req.Ciphertext)
	if err != nil {
		return nil, proto.CodeAuthFailed
	}
	if len(master) != proto.MasterSecretSize {
		return nil, proto.CodeInvalidPar
	}
	if code := k.mutate(func(s *state) proto.ErrorCode {
		*s = s.blanked()
		s.State, s.Master = proto.StateLinked, master
		return 0
	}); code != 0 {
		return nil, code
	}
	resp := proto.LinkResponse{Confirm: proto.LinkConfirm(master, req.KeyPub, req.HostPub)}
	if nonce != nil && k.attest != nil {
		var code proto.ErrorCode
		if resp.Sig, code = k.sign(proto.LinkedMessage(cid, nonce, req.KeyPub, req.HostPub, resp.Confirm)); code != 0 {
			return nil, code
		}
	}
	return reply(resp)
}

func (k *Key) challenge(ch *channel, payload []byte) ([]byte, proto.ErrorCode) {
	if k.st.State == proto.StateBlank {
		return nil, proto.CodeWrongState
	}
	var req proto.ChallengeRequest
	if proto.Unmarshal(payload, &req) != nil || len(req.HostNonce) != proto.NonceSize {
		return nil, proto.CodeInvalidPar
	}
	keyNonce := make([]byte, proto.NonceSize)
	rand.Read(keyNonce)
	ch.challenge = &challenge{hostNonce: req.HostNonce, keyNonce: keyNonce}
	return reply(proto.ChallengeResponse{KeyNonce: keyNonce})
}

func (k *Key) auth(ch *channel, cid uint32, payload []byte) ([]byte, proto.ErrorCode) {
	if k.st.State == proto.StateBlank {
		return nil, proto.CodeWrongState
	}
	var req proto.AuthRequest
	if proto.Unmarshal(payload, &req) != nil {
		return nil, proto.CodeInvalidPar
	}
	c := ch.challenge
	ch.challenge = nil // one proof per challenge
	if c == nil {
		return nil, proto.CodeReplay
	}
	master := k.st.Master
	if !hmac.Equal(req.Proof, proto.HostProof(master, cid, c.hostNonce, c.keyNonce)) {
		return nil, proto.CodeAuthFailed
	}
	sc, err := proto.NewSessionCipher(master, cid, c.hostNonce, c.keyNonce, proto.KeySide)
	if err != nil {
		return nil, proto.CodeOther
	}
	ch.session = &session{cipher: sc}
	return reply(proto.AuthResponse{Proof: proto.KeyProof(master, cid, c.hostNonce, c.keyNonce)})
}

// sessionCmd opens a session envelope, enforcing the counter, runs the
// command and seals the answer under the same counter.
func (k *Key) sessionCmd(ch *channel, cmd proto.Command, payload []byte) ([]byte, proto.ErrorCode) {
	s := ch.session
	if s == nil {
		return nil, proto.CodeNoSession
	}
	var env proto.Envelope
	if proto.Unmarshal(payload, &env) != nil {
		return nil, proto.CodeInvalidPar
	}
	if env.Ctr <= s.lastCtr {
		return nil, proto.CodeReplay
	}
	pt, err := s.cipher.Open(cmd, env.Ctr, env.Ciphertext)
	if err != nil {
		return nil, proto.CodeAuthFailed
	}
	s.lastCtr = env.Ctr
	if k.st.State == proto.StateLocked && cmd != proto.CmdWipe {
		return nil, proto.CodeLocked
	}
	out, code := k.sessionOp(s, cmd, pt)
	if code != 0 {
		return nil, code
	}
	return reply(proto.Envelope{Ctr: env.Ctr, Ciphertext: s.cipher.Seal(cmd, env.Ctr, out)})
}

func (k *Key) sessionOp(s *session, cmd proto.Command, pt []byte) ([]byte, proto.ErrorCode) {
	switch cmd {
	case proto.CmdList:
		var resp proto.ListResponse
		for i, sl := range k.st.Slots {
			if sl.Current == nil && sl.Pending == nil {
				continue
			}
			si := proto.SlotInfo{Slot: i, Current: sl.Current != nil, Pending: sl.Pending != nil}
			if sl.Current != nil {
				si.Login = sl.Current.Login
			} else {
				si.Login = sl.Pending.Login
			}
			resp.Slots = append(resp.Slots, si)
		}
		return reply(resp)
	case proto.CmdWipe:
		if code := k.mutate(func(s *state) proto.ErrorCode {
			*s = s.blanked()
			return 0
		}); code != 0 {
			return nil, code
		}
		for _, ch := range k.channels {
			*ch = channel{}
		}
		return reply(proto.Empty{})
	case proto.CmdSetPIN, proto.CmdVerifyPIN:
		var req proto.PINRequest
		if proto.Unmarshal(pt, &req) != nil {
			return nil, proto.CodeInvalidPar
		}
		if cmd == proto.CmdSetPIN {
			return k.setPIN(s, req.PIN)
		}
		return k.verifyPIN(s, req.PIN)
	case proto.CmdWrite:
		var req proto.WriteRequest
		if proto.Unmarshal(pt, &req) != nil || req.Login == "" || len(req.Login) > proto.MaxLoginLen || len(req.Password) > proto.MaxPasswordLen {
			return nil, proto.CodeInvalidPar
		}
		return k.slotOp(req.Slot, func(sl *slot) proto.ErrorCode {
			sl.Pending = &cred{Login: req.Login, Password: req.Password}
			return 0
		})
	case proto.CmdRead:
		var req proto.ReadRequest
		if proto.Unmarshal(pt, &req) != nil {
			return nil, proto.CodeInvalidPar
		}
		if req.Slot < 0 || req.Slot >= len(k.st.Slots) {
			return nil, proto.CodeBadSlot
		}
		if k.st.PINHash != nil && !s.pinOK {
			return nil, proto.CodePINRequired
		}
		c := k.st.Slots[req.Slot].Current
		if req.Pending {
			c = k.st.Slots[req.Slot].Pending
		}
		if c == nil {
			return nil, proto.CodeNotFound
		}
		return reply(proto.ReadResponse{Login: c.Login, Password: c.Password})
	}
	var req proto.SlotRequest
	if proto.Unmarshal(pt, &req) != nil {
		return nil, proto.CodeInvalidPar
	}
	switch cmd {
	case proto.CmdCommit:
		return k.slotOp(req.Slot, func(sl *slot) proto.ErrorCode {
			if sl.Pending == nil {
				return proto.CodeNotFound
			}
			sl.Current, sl.Pending = sl.Pending, nil
			return 0
		})
	case proto.CmdDiscard:
		return k.slotOp(req.Slot, func(sl *slot) proto.ErrorCode {
			sl.Pending = nil
			return 0
		})
	case proto.CmdDelete:
		return k.slotOp(req.Slot, func(sl *slot) proto.ErrorCode {
			*sl = slot{}
			return 0
		})
	}
	return nil, proto.CodeInvalidCmd
}

func (k *Key) slotOp(i int, fn func(*slot) proto.ErrorCode) ([]byte, proto.ErrorCode) {
	if i < 0 || i >= len(k.st.Slots) {
		return nil, proto.CodeBadSlot
	}
	if code := k.mutate(func(s *state) proto.ErrorCode { return fn(&s.Slots[i]) }); code != 0 {
		return nil, code
	}
	return reply(proto.Empty{})
}

func (k *Key) setPIN(s *session, pin string) ([]byte, proto.ErrorCode) {
	if len(pin) < proto.MinPINLen || len(pin) > proto.MaxPINLen {
		return nil, proto.CodeInvalidPar
	}
	if code := k.mutate(func(st *state) proto.ErrorCode {
		st.PINHash, st.PINRetries = pinHash(st.Master, pin), proto.MaxPINRetries
		return 0
	}); code != 0 {
		return nil, code
	}
	s.pinOK = true
	return reply(proto.Empty{})
}

func (k *Key) verifyPIN(s *session, pin string) ([]byte, proto.ErrorCode) {
	if k.st.PINHash == nil {
		return nil, proto.CodePINNotSet
	}
	if hmac.Equal(k.st.PINHash, pinHash(k.st.Master, pin)) {
		if code := k.mutate(func(st *state) proto.ErrorCode {
			st.PINRetries = proto.MaxPINRetries
			return 0
		}); code != 0 {
			return nil, code
		}
		s.pinOK = true
		return reply(proto.Empty{})
	}
	result := proto.CodePINInvalid
	if code := k.mutate(func(st *state) proto.ErrorCode {
		st.PINRetries--
		if st.PINRetries <= 0 {
			st.PINRetries = 0
			st.State, st.LockedBy = proto.StateLocked, proto.LockPIN
			result = proto.CodePINBlocked
		}
		return 0
	}); code != 0 {
		return nil, code
	}
	s.pinOK = false
	return nil, result
}

func pinHash(master []byte, pin string) []byte {
	h := hmac.New(sha256.New, master)
	h.Write([]byte("keydesk sim pin v1"))
	h.Write([]byte(pin))
	return h.Sum(nil)
}

// mutate changes the persistent state all or nothing: fn works on a copy,
// which replaces the state only if fn succeeds and autosave (if on) wrote it.
func (k *Key) mutate(fn func(*state) proto.ErrorCode) proto.ErrorCode {
	next := k.st.clone()
	if code := fn(&next); code != 0 {
		return code
	}
	if k.autosave != "" {
		if err := next.save(k.autosave); err != nil {
			return proto.CodeOther
		}
	}
	k.st = next
	return 0
}

func reply(v any) ([]byte, proto.ErrorCode) {
	b, err := proto.Marshal(v)
	if err != nil {
		return nil, proto.CodeOther
	}
	return b, 0
}

// emit sends a message to every open connection.
func (k *Key) emit(cid uint32, cmd proto.Command, payload []byte) {
	reports, err := proto.Encode(cid, cmd, payload)
	if err != nil {
		reports, _ = proto.Encode(cid, proto.CmdError, []byte{byte(proto.CodeOther)})
	}
	for p := range k.pipes {
		p.push(reports)
	}
}

func (k *Key) sendError(cid uint32, code proto.ErrorCode) {
	k.emit(cid, proto.CmdError, []byte{byte(code)})
}
