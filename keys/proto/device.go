package proto

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Client timing defaults.
const (
	DefaultTimeout   = 5 * time.Second        // deadline of one exchange when ctx has an earlier one or none
	DefaultBusyRetry = 100 * time.Millisecond // wait before resending after CHANNEL_BUSY
	pollInterval     = 50 * time.Millisecond  // longest single ReadReport, so ctx is checked often
	drainLimit       = 2 * (MaxSeq + 2)       // reports read at most when resynchronising
)

// Version is what the key told in its INIT response.
type Version struct {
	Protocol            byte // CTAPHID protocol version (2)
	Major, Minor, Build byte // firmware version
	Caps                byte // capability flags: CapWink, CapCBOR, CapNMSG
}

// Option changes a Device's defaults.
type Option func(*Device)

// WithTimeout sets the deadline of each exchange (default DefaultTimeout);
// a ctx with an earlier deadline wins.
func WithTimeout(d time.Duration) Option { return func(dev *Device) { dev.timeout = d } }

// WithBusyRetry sets the wait before resending a command the key answered
// with CHANNEL_BUSY (default DefaultBusyRetry).
func WithBusyRetry(d time.Duration) Option { return func(dev *Device) { dev.busyRetry = d } }

// Device is an open channel to one key. It is safe for concurrent use: one
// exchange runs at a time.
type Device struct {
	t         Transport
	timeout   time.Duration
	busyRetry time.Duration

	mu      sync.Mutex // guards the fields below and serialises exchanges
	cid     uint32
	version Version
	resync  bool // a reply may still be in flight: drain before the next exchange
	closed  bool
}

// Open allocates a channel: INIT on the broadcast channel with a random
// 8-byte nonce; the reply must echo the nonce (replies to other hosts' INITs
// are ignored) and give a valid channel id. On success the Device owns t;
// on failure t is left to the caller.
func Open(ctx context.Context, t Transport, opts ...Option) (*Device, error) {
	d := &Device{t: t, timeout: DefaultTimeout, busyRetry: DefaultBusyRetry}
	for _, o := range opts {
		o(d)
	}
	nonce := make([]byte, InitNonceSize)
	rand.Read(nonce)
	match := func(p []byte) bool { return len(p) >= InitNonceSize && bytes.Equal(p[:InitNonceSize], nonce) }
	d.mu.Lock()
	defer d.mu.Unlock()
	resp, err := d.exchangeLocked(ctx, BroadcastCID, CmdInit, nonce, match)
	if err != nil {
		return nil, fmt.Errorf("opening a key channel: %w", err)
	}
	if len(resp) < 17 {
		return nil, fmt.Errorf("opening a key channel: INIT reply of %d bytes, want 17: %w", len(resp), ErrProtocol)
	}
	d.cid = binary.BigEndian.Uint32(resp[8:12])
	if d.cid == 0 || d.cid == BroadcastCID {
		return nil, fmt.Errorf("opening a key channel: key gave channel %08X: %w", d.cid, ErrProtocol)
	}
	d.version = Version{Protocol: resp[12], Major: resp[13], Minor: resp[14], Build: resp[15], Caps: resp[16]}
	return d, nil
}

// Version is the key's INIT information.
func (d *Device) Version() Version { return d.version }

// Close closes the transport. Sessions of the device stop working.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	if err := d.t.Close(); err != nil {
		return fmt.Errorf("closing the key connection: %w", err)
	}
	return nil
}

// Info reads the key's identity and state (no authentication needed).
func (d *Device) Info(ctx context.Context) (Info, error) {
	var info Info
	if err := d.call(ctx, CmdInfo, nil, &info); err != nil {
		return Info{}, fmt.Errorf("reading key info: %w", err)
	}
	if err := info.check(); err != nil {
		return Info{}, fmt.Errorf("reading key info: %w", err)
	}
	return info, nil
}

// Wink asks the key to blink so a person can tell which key it is.
func (d *Device) Wink(ctx context.Context) error {
	if err := d.call(ctx, CmdWink, nil, nil); err != nil {
		return fmt.Errorf("winking the key: %w", err)
	}
	return nil
}

// Lock locks a linked key: from then on it refuses every command but INFO,
// PING, WINK, LOCK, CHALLENGE/AUTH and an authenticated WIPE, so the only way
// back to service is WIPE by the holder of the master secret, then LINK. It
// needs no authentication since it only takes abilities away. A blank key
// refuses it (CodeWrongState); locking a locked key succeeds.
func (d *Device) Lock(ctx context.Context) error {
	if err := d.call(ctx, CmdLock, nil, nil); err != nil {
		return fmt.Errorf("locking the key: %w", err)
	}
	return nil
}

// Link gives a blank key its 32-byte master secret. The host sends a fresh
// nonce; the key answers with a fresh one-use P-256 public key
// (KEY_AGREEMENT), signed with its attestation key over the nonce, and
// check must accept that evidence before anything is sealed to the key; the
// host answers with its own ephemeral public key and the secret sealed with
// AES-256-GCM under HKDF-SHA256 of the ECDH shared secret; the key proves
// receipt with an HMAC under the secret and signs the whole exchange, which
// check must accept too. A recorded LINK replayed later fails: the key's
// agreement key is used once and changes every time. A nil check accepts
// any key (protocol tests only).
func (d *Device) Link(ctx context.Context, masterSecret []byte, check Check) error {
	if len(masterSecret) != MasterSecretSize {
		return fmt.Errorf("linking the key: master secret is %d bytes, want %d", len(masterSecret), MasterSecretSize)
	}
	if check == nil {
		check = func(Evidence) error { return nil }
	}
	nonce := make([]byte, NonceSize)
	rand.Read(nonce)
	var ka KeyAgreementResponse
	if err := d.call(ctx, CmdKeyAgreement, KeyAgreementRequest{Nonce: nonce}, &ka); err != nil {
		return fmt.Errorf("linking the key: %w", err)
	}
	keyPub, err := ecdh.P256().NewPublicKey(ka.KeyPub)
	if err != nil {
		return fmt.Errorf("linking the key: key agreement public key: %w: %w", ErrProtocol, err)
	}
	cid := d.CID()
	if err := check(Evidence{Chain: ka.Chain, Message: AgreementMessage(cid, nonce, ka.KeyPub), Signature: ka.Sig}); err != nil {
		return fmt.Errorf("linking the key: its key agreement: %w", err)
	}
	eph, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("linking the key: ephemeral key: %w", err)
	}
	shared, err := eph.ECDH(keyPub)
	if err != nil {
		return fmt.Errorf("linking the key: ECDH: %w: %w", ErrProtocol, err)
	}
	hostPub := eph.PublicKey().Bytes()
	lk, err := LinkKey(shared, ka.KeyPub, hostPub)
	if err != nil {
		return fmt.Errorf("linking the key: %w", err)
	}
	sealNonce, ct, err := SealLink(lk, ka.KeyPub, hostPub, masterSecret)
	if err != nil {
		return fmt.Errorf("linking the key: %w", err)
	}
	var resp LinkResponse
	req := LinkRequest{HostPub: hostPub, KeyPub: ka.KeyPub, Nonce: sealNonce, Ciphertext: ct}
	if err := d.call(ctx, CmdLink, req, &resp); err != nil {
		return fmt.Errorf("linking the key: %w", err)
	}
	if !hmac.Equal(resp.Confirm, LinkConfirm(masterSecret, ka.KeyPub, hostPub)) {
		return fmt.Errorf("linking the key: the key's confirmation does not match: %w", ErrAuth)
	}
	if err := check(Evidence{Chain: ka.Chain, Message: LinkedMessage(cid, nonce, ka.KeyPub, hostPub, resp.Confirm), Signature: resp.Sig}); err != nil {
		return fmt.Errorf("linking the key: its signature of the link: %w", err)
	}
	return nil
}

// Auth opens an encrypted session with the master secret: both sides send a
// 32-byte nonce (CHALLENGE), the host proves the secret with
// HMAC(master, label || CID || nonces) (AUTH), the key proves it back, and
// both derive the session keys. A wrong secret fails with an error that is
// ErrAuth. A new AUTH on the channel replaces its previous session.
func (d *Device) Auth(ctx context.Context, masterSecret []byte) (*Session, error) {
	if len(masterSecret) != MasterSecretSize {
		return nil, fmt.Errorf("authenticating to the key: master secret is %d bytes, want %d", len(masterSecret), MasterSecretSize)
	}
	hostNonce := make([]byte, NonceSize)
	rand.Read(hostNonce)
	var ch ChallengeResponse
	if err := d.call(ctx, CmdChallenge, ChallengeRequest{HostNonce: hostNonce}, &ch); err != nil {
		return nil, fmt.Errorf("authenticating to the key: %w", err)
	}
	if len(ch.KeyNonce) != NonceSize {
		return nil, fmt.Errorf("authenticating to the key: key nonce of %d bytes: %w", len(ch.KeyNonce), ErrProtocol)
	}
	cid := d.CID()
	var resp AuthResponse
	req := AuthRequest{Proof: HostProof(masterSecret, cid, hostNonce, ch.KeyNonce)}
	if err := d.call(ctx, CmdAuth, req, &resp); err != nil {
		return nil, fmt.Errorf("authenticating to the key: %w", err)
	}
	if !hmac.Equal(resp.Proof, KeyProof(masterSecret, cid, hostNonce, ch.KeyNonce)) {
		return nil, fmt.Errorf("authenticating to the key: the key's proof does not match: %w", ErrAuth)
	}
	c, err := NewSessionCipher(masterSecret, cid, hostNonce, ch.KeyNonce, HostSide)
	if err != nil {
		return nil, fmt.Errorf("authenticating to the key: %w", err)
	}
	return &Session{d: d, c: c}, nil
}

// CID is the channel the key allocated to this Device.
func (d *Device) CID() uint32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cid
}

// call runs one exchange on the device's channel with CBOR request and
// response (nil: empty payload).
func (d *Device) call(ctx context.Context, cmd Command, req, resp any) error {
	var payload []byte
	if req != nil {
		b, err := Marshal(req)
		if err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
		payload = b
	}
	raw, err := d.exchange(ctx, cmd, payload)
	if err != nil {
		return err
	}
	if resp == nil {
		if len(raw) != 0 {
			return fmt.Errorf("%s: reply of %d bytes, want none: %w", cmd, len(raw), ErrProtocol)
		}
		return nil
	}
	if err := Unmarshal(raw, resp); err != nil {
		return fmt.Errorf("%s reply: %w", cmd, err)
	}
	return nil
}

// exchange sends one message on the device's channel and returns the reply.
func (d *Device) exchange(ctx context.Context, cmd Command, payload []byte) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, fmt.Errorf("%s: %w", cmd, ErrClosed)
	}
	return d.exchangeLocked(ctx, d.cid, cmd, payload, nil)
}

// exchangeLocked sends a message and waits for the reply that echoes cid and
// cmd (and satisfies match, if given; other replies are skipped), retrying
// CHANNEL_BUSY, until the exchange's deadline.
func (d *Device) exchangeLocked(ctx context.Context, cid uint32, cmd Command, payload []byte, match func([]byte) bool) ([]byte, error) {
	deadline := time.Now().Add(d.timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	reports, err := Encode(cid, cmd, payload)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cmd, err)
	}
	if d.resync {
		if err := d.drain(); err != nil {
			return nil, fmt.Errorf("%s: resynchronising: %w", cmd, err)
		}
		d.resync = false
	}
	var busy error // the last CHANNEL_BUSY, reported with a timeout
	for {
		resp, err := d.roundTrip(ctx, deadline, cid, cmd, reports, match)
		if err == nil {
			return resp, nil
		}
		var ke *KeyError
		if !errors.As(err, &ke) {
			if errors.Is(err, ErrProtocol) || errors.Is(err, ErrTimeout) || errors.Is(err, context.Canceled) {
				d.resync = true // (the rest of) a reply may still arrive
			}
			if busy != nil && errors.Is(err, ErrTimeout) {
				return nil, fmt.Errorf("%s: %w (after %w)", cmd, err, busy)
			}
			return nil, fmt.Errorf("%s: %w", cmd, err)
		}
		if ke.Code != CodeChannelBusy {
			return nil, err
		}
		busy = err
		if time.Until(deadline) < d.busyRetry {
			return nil, fmt.Errorf("%s: %w: %w", cmd, ErrTimeout, err)
		}
		if err := wait(ctx, d.busyRetry); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("%w: %w", ErrTimeout, err)
			}
			return nil, fmt.Errorf("%s: waiting to retry a busy key: %w (after %w)", cmd, err, busy)
		}
	}
}

// roundTrip writes the reports and reads until the reply is complete.
func (d *Device) roundTrip(ctx context.Context, deadline time.Time, cid uint32, cmd Command, reports [][]byte, match func([]byte) bool) ([]byte, error) {
	for i, r := range reports {
		if err := checkDeadline(ctx, deadline); err != nil {
			return nil, fmt.Errorf("writing report %d of %d: %w", i+1, len(reports), err)
		}
		if err := d.t.WriteReport(r); err != nil {
			return nil, fmt.Errorf("writing report %d of %d: %w", i+1, len(reports), err)
		}
	}
	dec := NewDecoder(cid, cmd)
	for {
		if err := checkDeadline(ctx, deadline); err != nil {
			return nil, fmt.Errorf("waiting for the reply: %w", err)
		}
		r, err := d.t.ReadReport(min(time.Until(deadline), pollInterval))
		if errors.Is(err, ErrTimeout) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading the reply: %w", err)
		}
		resp, done, err := dec.Feed(r)
		if err != nil {
			return nil, err
		}
		if done {
			if match == nil || match(resp) {
				return resp, nil
			}
			dec = NewDecoder(cid, cmd) // someone else's reply on the same channel (INIT)
		}
	}
}

// drain reads and drops what a failed exchange may have left in flight.
func (d *Device) drain() error {
	for range drainLimit {
		_, err := d.t.ReadReport(time.Millisecond)
		if errors.Is(err, ErrTimeout) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func checkDeadline(ctx context.Context, deadline time.Time) error {
	if err := ctx.Err(); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w: %w", ErrTimeout, err)
		}
		return err
	}
	if !time.Now().Before(deadline) {
		return ErrTimeout
	}
	return nil
}

func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
