package proto

import (
	"context"
	"fmt"
	"sync"
)

// Session is an authenticated, encrypted session with a key (see
// Device.Auth). Every request carries a counter one higher than the last
// (1, 2, ...); the key refuses a counter that is not above the last one it
// accepted (a replayed, stale or reordered message) and the host refuses a
// reply whose counter is not its request's. A Session is safe for concurrent
// use; it lives until Close, the key's next AUTH or WIPE on the channel, or
// an unplug.
type Session struct {
	d *Device

	mu  sync.Mutex
	c   *SessionCipher // nil after Close
	ctr uint64
}

// WriteCredential stores c as the slot's PENDING value (replacing an earlier
// pending value); the current value stays until Commit.
func (s *Session) WriteCredential(ctx context.Context, slot int, c Credential) error {
	if err := c.check(); err != nil {
		return fmt.Errorf("writing slot %d: %w", slot, err)
	}
	req := WriteRequest{Slot: slot, Login: c.Login, Password: c.Password}
	if err := s.call(ctx, CmdWrite, req, nil); err != nil {
		return fmt.Errorf("writing slot %d: %w", slot, err)
	}
	return nil
}

// Commit makes the slot's pending value current; the previous current value
// is gone. A slot without a pending value gives CodeNotFound.
func (s *Session) Commit(ctx context.Context, slot int) error {
	if err := s.call(ctx, CmdCommit, SlotRequest{Slot: slot}, nil); err != nil {
		return fmt.Errorf("committing slot %d: %w", slot, err)
	}
	return nil
}

// Discard drops the slot's pending value (the abort of a rotation). It
// succeeds when there is none.
func (s *Session) Discard(ctx context.Context, slot int) error {
	if err := s.call(ctx, CmdDiscard, SlotRequest{Slot: slot}, nil); err != nil {
		return fmt.Errorf("discarding slot %d's pending value: %w", slot, err)
	}
	return nil
}

// ReadCredential reads the slot's current value. A key with a PIN set needs
// VerifyPIN first in this session (CodePINRequired); an empty slot gives
// CodeNotFound.
func (s *Session) ReadCredential(ctx context.Context, slot int) (Credential, error) {
	c, err := s.read(ctx, slot, false)
	if err != nil {
		return Credential{}, fmt.Errorf("reading slot %d: %w", slot, err)
	}
	return c, nil
}

// ReadPending reads the slot's pending value (as ReadCredential).
func (s *Session) ReadPending(ctx context.Context, slot int) (Credential, error) {
	c, err := s.read(ctx, slot, true)
	if err != nil {
		return Credential{}, fmt.Errorf("reading slot %d's pending value: %w", slot, err)
	}
	return c, nil
}

func (s *Session) read(ctx context.Context, slot int, pending bool) (Credential, error) {
	var resp ReadResponse
	if err := s.call(ctx, CmdRead, ReadRequest{Slot: slot, Pending: pending}, &resp); err != nil {
		return Credential{}, err
	}
	return Credential(resp), nil
}

// DeleteCredential empties the slot, current and pending value. It succeeds
// on an empty slot.
func (s *Session) DeleteCredential(ctx context.Context, slot int) error {
	if err := s.call(ctx, CmdDelete, SlotRequest{Slot: slot}, nil); err != nil {
		return fmt.Errorf("deleting slot %d: %w", slot, err)
	}
	return nil
}

// List tells which slots hold a current or pending value (no passwords).
func (s *Session) List(ctx context.Context) ([]SlotInfo, error) {
	var resp ListResponse
	if err := s.call(ctx, CmdList, Empty{}, &resp); err != nil {
		return nil, fmt.Errorf("listing slots: %w", err)
	}
	return resp.Slots, nil
}

// Wipe returns the key to blank: master secret, PIN and slots are gone, and
// the session ends. It is the one session command a locked key accepts.
func (s *Session) Wipe(ctx context.Context) error {
	if err := s.call(ctx, CmdWipe, Empty{}, nil); err != nil {
		return fmt.Errorf("wiping the key: %w", err)
	}
	s.Close()
	return nil
}

// SetPIN sets (or replaces) the user PIN and resets its retry counter; the
// session counts as PIN-verified afterwards.
func (s *Session) SetPIN(ctx context.Context, pin string) error {
	if len(pin) < MinPINLen || len(pin) > MaxPINLen {
		return fmt.Errorf("setting the PIN: PIN of %d bytes, want %d..%d", len(pin), MinPINLen, MaxPINLen)
	}
	if err := s.call(ctx, CmdSetPIN, PINRequest{PIN: pin}, nil); err != nil {
		return fmt.Errorf("setting the PIN: %w", err)
	}
	return nil
}

// VerifyPIN checks the user PIN, which READ needs once per session when a
// PIN is set. A wrong PIN gives CodePINInvalid and uses up a retry; the last
// retry gives CodePINBlocked (also ErrLocked) and locks the key.
func (s *Session) VerifyPIN(ctx context.Context, pin string) error {
	if err := s.call(ctx, CmdVerifyPIN, PINRequest{PIN: pin}, nil); err != nil {
		return fmt.Errorf("verifying the PIN: %w", err)
	}
	return nil
}

// Close forgets the session keys; later calls fail with ErrClosed. It does
// not talk to the key.
func (s *Session) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.c = nil
}

// call seals req in an envelope with the next counter, exchanges it, checks
// the reply's counter and opens it into resp (nil: an empty map is expected).
func (s *Session) call(ctx context.Context, cmd Command, req, resp any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.c == nil {
		return fmt.Errorf("%s: session: %w", cmd, ErrClosed)
	}
	pt, err := Marshal(req)
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	s.ctr++
	ctr := s.ctr
	env, err := Marshal(Envelope{Ctr: ctr, Ciphertext: s.c.Seal(cmd, ctr, pt)})
	if err != nil {
		return fmt.Errorf("%s: %w", cmd, err)
	}
	raw, err := s.d.exchange(ctx, cmd, env)
	if err != nil {
		return err
	}
	var renv Envelope
	if err := Unmarshal(raw, &renv); err != nil {
		return fmt.Errorf("%s reply: %w", cmd, err)
	}
	if renv.Ctr != ctr {
		return fmt.Errorf("%s reply has counter %d, want %d: %w", cmd, renv.Ctr, ctr, ErrReplay)
	}
	out, err := s.c.Open(cmd, ctr, renv.Ciphertext)
	if err != nil {
		return fmt.Errorf("%s reply: %w", cmd, err)
	}
	if resp == nil {
		resp = &Empty{}
	}
	if err := Unmarshal(out, resp); err != nil {
		return fmt.Errorf("%s reply: %w", cmd, err)
	}
	return nil
}
