package proto

import (
	"encoding/binary"
	"fmt"
)

// Framing sizes (CTAPHID).
const (
	ReportSize     = 64                                     // every report, zero-padded
	InitDataSize   = ReportSize - 7                         // 57: CID(4) CMD(1) BCNT(2) DATA
	ContDataSize   = ReportSize - 5                         // 59: CID(4) SEQ(1) DATA
	MaxSeq         = 0x7F                                   // continuation SEQ runs 0..127
	MaxMessageSize = InitDataSize + (MaxSeq+1)*ContDataSize // 7609

	// BroadcastCID is the channel for INIT only; CID 0 is reserved.
	BroadcastCID uint32 = 0xFFFFFFFF
)

// Command is a CTAPHID command without the init-packet bit (0x80).
type Command byte

// Standard CTAPHID commands used here.
const (
	CmdPing      Command = 0x01 // echo
	CmdInit      Command = 0x06 // allocate or resynchronise a channel
	CmdHIDWink   Command = 0x08 // CTAPHID_WINK: as WINK (0x4F), for standard hosts
	CmdCancel    Command = 0x11 // CTAPHID_CANCEL: never answered
	CmdKeepalive Command = 0x3B // key -> host while processing; 1 byte status
	CmdError     Command = 0x3F // key -> host; 1 byte ErrorCode
)

// KeyDesk vendor commands (0x40..0x7F); see docs/KEY-PROTOCOL.md.
const (
	CmdInfo         Command = 0x40 // key identity and state
	CmdKeyAgreement Command = 0x41 // blank key: a fresh one-use P-256 public key
	CmdLink         Command = 0x42 // blank key: send the master secret (ECDH-protected)
	CmdChallenge    Command = 0x43 // nonces for AUTH
	CmdAuth         Command = 0x44 // prove the master secret; opens a session
	CmdWrite        Command = 0x45 // session: store a PENDING credential in a slot
	CmdCommit       Command = 0x46 // session: pending becomes current
	CmdDiscard      Command = 0x47 // session: drop the pending value
	CmdRead         Command = 0x48 // session: read the current (or pending) value
	CmdDelete       Command = 0x49 // session: empty a slot
	CmdList         Command = 0x4A // session: which slots are used (no passwords)
	CmdWipe         Command = 0x4B // session: back to blank
	CmdSetPIN       Command = 0x4C // session: set the user PIN
	CmdVerifyPIN    Command = 0x4D // session: verify the user PIN
	CmdLock         Command = 0x4E // lock the key
	CmdWink         Command = 0x4F // blink so a person can tell which key it is
	CmdAttest       Command = 0x50 // sign the key's serial and state with its attestation key
)

// KeepaliveProcessing and KeepaliveUserPresence are KEEPALIVE statuses.
const (
	KeepaliveProcessing   byte = 1
	KeepaliveUserPresence byte = 2
)

func (c Command) String() string {
	switch c {
	case CmdPing:
		return "PING"
	case CmdInit:
		return "INIT"
	case CmdHIDWink:
		return "CTAPHID_WINK"
	case CmdCancel:
		return "CANCEL"
	case CmdKeepalive:
		return "KEEPALIVE"
	case CmdError:
		return "ERROR"
	case CmdInfo:
		return "INFO"
	case CmdKeyAgreement:
		return "KEY_AGREEMENT"
	case CmdLink:
		return "LINK"
	case CmdChallenge:
		return "CHALLENGE"
	case CmdAuth:
		return "AUTH"
	case CmdWrite:
		return "WRITE"
	case CmdCommit:
		return "COMMIT"
	case CmdDiscard:
		return "DISCARD"
	case CmdRead:
		return "READ"
	case CmdDelete:
		return "DELETE"
	case CmdList:
		return "LIST"
	case CmdWipe:
		return "WIPE"
	case CmdSetPIN:
		return "SET_PIN"
	case CmdVerifyPIN:
		return "VERIFY_PIN"
	case CmdLock:
		return "LOCK"
	case CmdWink:
		return "WINK"
	case CmdAttest:
		return "ATTEST"
	}
	return fmt.Sprintf("CMD_0x%02X", byte(c))
}

// Packet is one parsed report. An init packet has Init set, Cmd and Len
// (BCNT); a continuation packet has Seq. Data is the report's data area
// (57 or 59 bytes, padding included); it aliases the report.
type Packet struct {
	CID  uint32
	Init bool
	Cmd  Command
	Len  int
	Seq  byte
	Data []byte
}

// ParsePacket splits a 64-byte report into its fields.
func ParsePacket(report []byte) (Packet, error) {
	if len(report) != ReportSize {
		return Packet{}, frameErr(CodeInvalidLen, "report is %d bytes, want %d", len(report), ReportSize)
	}
	p := Packet{CID: binary.BigEndian.Uint32(report[0:4])}
	if b := report[4]; b&0x80 != 0 {
		p.Init = true
		p.Cmd = Command(b & 0x7F)
		p.Len = int(binary.BigEndian.Uint16(report[5:7]))
		p.Data = report[7:]
	} else {
		p.Seq = b
		p.Data = report[5:]
	}
	return p, nil
}

// Encode frames a message into 64-byte reports: one init packet and as many
// continuation packets as needed, zero-padded.
func Encode(cid uint32, cmd Command, payload []byte) ([][]byte, error) {
	if cmd > 0x7F {
		return nil, frameErr(CodeInvalidCmd, "command 0x%02X has bit 7 set", byte(cmd))
	}
	if len(payload) > MaxMessageSize {
		return nil, frameErr(CodeInvalidLen, "message of %d bytes exceeds %d", len(payload), MaxMessageSize)
	}
	n := 1
	if len(payload) > InitDataSize {
		n += (len(payload) - InitDataSize + ContDataSize - 1) / ContDataSize
	}
	reports := make([][]byte, 0, n)
	r := make([]byte, ReportSize)
	binary.BigEndian.PutUint32(r[0:4], cid)
	r[4] = 0x80 | byte(cmd)
	binary.BigEndian.PutUint16(r[5:7], uint16(len(payload)))
	rest := payload[copy(r[7:], payload):]
	reports = append(reports, r)
	for seq := byte(0); len(rest) > 0; seq++ {
		r := make([]byte, ReportSize)
		binary.BigEndian.PutUint32(r[0:4], cid)
		r[4] = seq
		rest = rest[copy(r[5:], rest):]
		reports = append(reports, r)
	}
	return reports, nil
}

// Assembler collects one message from its init packet and continuation
// packets, checking the BCNT limit and the SEQ order. It does not look at
// channels or commands beyond its own message: the host's Decoder and the
// key's receive loop decide which packets to give it. The zero value is
// ready to use.
type Assembler struct {
	active bool
	cid    uint32
	cmd    Command
	total  int
	seq    byte
	buf    []byte
}

// Active reports whether a message is partly assembled.
func (a *Assembler) Active() bool { return a.active }

// CID is the channel of the message being assembled.
func (a *Assembler) CID() uint32 { return a.cid }

// Cmd is the command of the message being assembled.
func (a *Assembler) Cmd() Command { return a.cmd }

// Reset drops a partial message.
func (a *Assembler) Reset() { *a = Assembler{} }

// Start begins a message with its init packet. It returns the payload when
// the message is complete.
func (a *Assembler) Start(p Packet) (payload []byte, done bool, err error) {
	a.Reset()
	if !p.Init {
		return nil, false, frameErr(CodeInvalidSeq, "continuation packet where an init packet was expected")
	}
	if p.Len > MaxMessageSize {
		return nil, false, frameErr(CodeInvalidLen, "BCNT %d exceeds %d", p.Len, MaxMessageSize)
	}
	a.active, a.cid, a.cmd, a.total = true, p.CID, p.Cmd, p.Len
	a.buf = make([]byte, 0, p.Len)
	return a.add(p.Data)
}

// Continue adds a continuation packet of the same channel.
func (a *Assembler) Continue(p Packet) (payload []byte, done bool, err error) {
	switch {
	case !a.active:
		return nil, false, frameErr(CodeInvalidSeq, "continuation packet without an init packet")
	case p.Init:
		a.Reset()
		return nil, false, frameErr(CodeInvalidSeq, "init packet while continuation %d was expected", a.seq)
	case p.CID != a.cid:
		a.Reset()
		return nil, false, frameErr(CodeInvalidChannel, "continuation on channel %08X, message is on %08X", p.CID, a.cid)
	case p.Seq != a.seq:
		want := a.seq
		a.Reset()
		return nil, false, frameErr(CodeInvalidSeq, "continuation SEQ %d, want %d", p.Seq, want)
	}
	a.seq++
	return a.add(p.Data)
}

func (a *Assembler) add(data []byte) ([]byte, bool, error) {
	need := a.total - len(a.buf)
	a.buf = append(a.buf, data[:min(need, len(data))]...)
	if len(a.buf) < a.total {
		return nil, false, nil
	}
	payload := a.buf
	a.Reset()
	return payload, true, nil
}

// Decoder is the host's side of one reply: it assembles the message that
// answers cmd on channel cid from the reports the key sends. It ignores
// reports for other channels, skips KEEPALIVE on its channel, turns an
// ERROR packet into a *KeyError, and refuses (ErrProtocol) a reply to another
// command, an out-of-order SEQ, a BCNT above 7609, a report of the wrong
// size, or a continuation without an init packet. After an error or a
// complete message it only returns errors.
type Decoder struct {
	cid        uint32
	cmd        Command
	asm        Assembler
	err        error
	done       bool
	keepalives int
	status     byte
}

// NewDecoder returns a decoder for the reply to cmd on channel cid.
func NewDecoder(cid uint32, cmd Command) *Decoder {
	return &Decoder{cid: cid, cmd: cmd}
}

// Keepalives is how many KEEPALIVE packets were skipped; Status the last
// keepalive status (KeepaliveProcessing or KeepaliveUserPresence).
func (d *Decoder) Keepalives() (n int, status byte) { return d.keepalives, d.status }

// Feed takes one report. It returns the payload and done=true once the reply
// is complete, done=false while more reports are needed.
func (d *Decoder) Feed(report []byte) (payload []byte, done bool, err error) {
	if d.err != nil {
		return nil, false, d.err
	}
	if d.done {
		return nil, false, d.fail(frameErr(CodeInvalidCmd, "report after the complete reply"))
	}
	p, err := ParsePacket(report)
	if err != nil {
		return nil, false, d.fail(err)
	}
	if p.CID != d.cid {
		return nil, false, nil // another host's channel, or the broadcast channel
	}
	if !p.Init {
		payload, done, err = d.asm.Continue(p)
	} else {
		switch {
		case p.Cmd == CmdKeepalive:
			if d.asm.Active() {
				return nil, false, d.fail(frameErr(CodeInvalidSeq, "KEEPALIVE in the middle of a reply"))
			}
			d.keepalives++
			if p.Len > 0 {
				d.status = p.Data[0]
			}
			return nil, false, nil
		case p.Cmd == CmdError:
			if d.asm.Active() {
				return nil, false, d.fail(frameErr(CodeInvalidSeq, "ERROR in the middle of a reply"))
			}
			if p.Len != 1 {
				return nil, false, d.fail(frameErr(CodeInvalidLen, "ERROR with BCNT %d, want 1", p.Len))
			}
			return nil, false, d.fail(&KeyError{Cmd: d.cmd, Code: ErrorCode(p.Data[0])})
		case d.asm.Active():
			return nil, false, d.fail(frameErr(CodeInvalidSeq, "init packet %s while continuation was expected", p.Cmd))
		case p.Cmd != d.cmd:
			return nil, false, d.fail(frameErr(CodeInvalidCmd, "reply is %s, want %s", p.Cmd, d.cmd))
		}
		payload, done, err = d.asm.Start(p)
	}
	if err != nil {
		return nil, false, d.fail(err)
	}
	d.done = done
	return payload, done, nil
}

func (d *Decoder) fail(err error) error {
	d.err = err
	return err
}
