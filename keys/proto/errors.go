package proto

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error this package returns wraps at most a few of
// them, so callers decide with errors.Is and never by reading text.
var (
	// ErrTimeout: no (complete) answer before the exchange's deadline, or a
	// transport read that timed out.
	ErrTimeout = errors.New("timed out waiting for the key")
	// ErrUnplugged: the key went away (USB disconnect, simulated unplug).
	ErrUnplugged = errors.New("key unplugged")
	// ErrClosed: the transport or device was closed by this side.
	ErrClosed = errors.New("key connection closed")
	// ErrProtocol: the key (or host) broke the framing or message rules.
	ErrProtocol = errors.New("key protocol violation")
	// ErrAuth: an authentication failed: a wrong master secret, a key that
	// could not prove it holds the secret, or a message that fails its MAC.
	ErrAuth = errors.New("key authentication failed")
	// ErrReplay: a replayed, stale or reordered message was refused.
	ErrReplay = errors.New("replayed or stale key message refused")
	// ErrLocked: the key is locked (by LOCK or by too many wrong PINs).
	ErrLocked = errors.New("key is locked")
	// ErrBusy: the key stayed busy with another channel until the deadline.
	ErrBusy = errors.New("key is busy")
)

// ErrorCode is the one byte of a CTAPHID ERROR response.
type ErrorCode byte

// CTAPHID error codes (0x01..0x7F) and KeyDesk's vendor codes (0x40..0x4F).
const (
	CodeInvalidCmd     ErrorCode = 0x01 // unknown command, or not on this channel
	CodeInvalidPar     ErrorCode = 0x02 // a malformed or out-of-range parameter
	CodeInvalidLen     ErrorCode = 0x03 // BCNT wrong for the command or above 7609
	CodeInvalidSeq     ErrorCode = 0x04 // continuation packet out of order
	CodeMsgTimeout     ErrorCode = 0x05 // a message's packets stopped coming
	CodeChannelBusy    ErrorCode = 0x06 // the key is serving another transaction
	CodeLockRequired   ErrorCode = 0x0A // (CTAPHID; unused by KeyDesk keys)
	CodeInvalidChannel ErrorCode = 0x0B // unknown channel id
	CodeWrongState     ErrorCode = 0x40 // not allowed in the key's state (e.g. LINK on a linked key)
	CodeAuthFailed     ErrorCode = 0x41 // wrong AUTH proof, or a message that fails authentication
	CodeReplay         ErrorCode = 0x42 // stale counter, used-up challenge or key agreement
	CodeNoSession      ErrorCode = 0x43 // session command without AUTH on this channel
	CodeLocked         ErrorCode = 0x44 // the key is locked
	CodeBadSlot        ErrorCode = 0x45 // slot number out of range
	CodeNotFound       ErrorCode = 0x46 // the slot has no such (current or pending) value
	CodePINInvalid     ErrorCode = 0x47 // wrong PIN; retries left: see INFO
	CodePINBlocked     ErrorCode = 0x48 // wrong PIN and no retries left: the key is now locked
	CodePINRequired    ErrorCode = 0x49 // READ needs VERIFY_PIN first in this session
	CodePINNotSet      ErrorCode = 0x4A // VERIFY_PIN but no PIN is set
	CodeOther          ErrorCode = 0x7F // anything else (e.g. the key could not store its state)
)

func (c ErrorCode) String() string {
	if n := c.name(); n != "" {
		return fmt.Sprintf("%s (0x%02X)", n, byte(c))
	}
	return fmt.Sprintf("error 0x%02X", byte(c))
}

func (c ErrorCode) name() string {
	switch c {
	case CodeInvalidCmd:
		return "invalid command"
	case CodeInvalidPar:
		return "invalid parameter"
	case CodeInvalidLen:
		return "invalid length"
	case CodeInvalidSeq:
		return "invalid sequence"
	case CodeMsgTimeout:
		return "message timeout"
	case CodeChannelBusy:
		return "channel busy"
	case CodeLockRequired:
		return "lock required"
	case CodeInvalidChannel:
		return "invalid channel"
	case CodeWrongState:
		return "not allowed in the key's state"
	case CodeAuthFailed:
		return "authentication failed"
	case CodeReplay:
		return "replayed or stale message"
	case CodeNoSession:
		return "no authenticated session"
	case CodeLocked:
		return "key locked"
	case CodeBadSlot:
		return "no such slot"
	case CodeNotFound:
		return "slot value not found"
	case CodePINInvalid:
		return "wrong PIN"
	case CodePINBlocked:
		return "wrong PIN, no retries left: key locked"
	case CodePINRequired:
		return "PIN verification required"
	case CodePINNotSet:
		return "no PIN set"
	case CodeOther:
		return "other error"
	}
	return ""
}

// KeyError is an ERROR response from the key to a command.
type KeyError struct {
	Cmd  Command   // the command that was refused
	Code ErrorCode // the key's error code
}

func (e *KeyError) Error() string {
	return fmt.Sprintf("key refused %s: %s", e.Cmd, e.Code)
}

// Is lets errors.Is match the sentinel that a code stands for:
// CodeAuthFailed is ErrAuth, CodeReplay ErrReplay, CodeLocked and
// CodePINBlocked ErrLocked, CodeChannelBusy ErrBusy. A *KeyError target
// matches by Code (and by Cmd when the target's Cmd is not zero), so
// errors.Is(err, &KeyError{Code: CodeNotFound}) works.
func (e *KeyError) Is(target error) bool {
	if t, ok := target.(*KeyError); ok {
		return t.Code == e.Code && (t.Cmd == 0 || t.Cmd == e.Cmd)
	}
	switch target {
	case ErrAuth:
		return e.Code == CodeAuthFailed
	case ErrReplay:
		return e.Code == CodeReplay
	case ErrLocked:
		return e.Code == CodeLocked || e.Code == CodePINBlocked
	case ErrBusy:
		return e.Code == CodeChannelBusy
	}
	return false
}

// FrameError is a framing violation found while parsing or assembling
// packets. It is an ErrProtocol; Code is the CTAPHID error a key answers it
// with.
type FrameError struct {
	Code   ErrorCode
	Reason string
}

func (e *FrameError) Error() string { return "framing: " + e.Reason }

// Is makes every FrameError an ErrProtocol.
func (e *FrameError) Is(target error) bool { return target == ErrProtocol }

func frameErr(code ErrorCode, format string, args ...any) error {
	return &FrameError{Code: code, Reason: fmt.Sprintf(format, args...)}
}
