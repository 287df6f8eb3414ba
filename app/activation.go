package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"keydesk/keys"
	"keydesk/keys/proto"
	"keydesk/store"
)

// ActivationResult says how an activation attempt ended.
type ActivationResult struct {
	Activated bool
	Left      int // wrong codes still allowed
	Locked    bool
	// Passwords are the first domain passwords the activated key received
	// (one per account in a password group), or why not yet.
	Passwords []ChangeResult
}

// maxActivationRounds bounds the decisions of one activation attempt (each
// round either ends it or records progress; see keys.NextActivation).
const maxActivationRounds = 8

// ActivateKey activates a plugged-in Reserved key with its activation code,
// as the steps of keys.NextActivation: the code is checked (every attempt is
// audited; the third wrong one locks the key), the key gets its master
// secret over the protocol's key agreement, and the key is recorded Active.
// The step reached is recorded after each one, so that an activation cut off
// by a crash or an unplugged key resumes when the key is plugged in again
// (within keys.ResumeWindow of the accepted code). Two consoles activating
// one key at once cannot both succeed: the last step re-checks the key in
// its transaction.
func (s *Service) ActivateKey(ctx context.Context, a Actor, serial, codeText string) (ActivationResult, error) {
	if err := s.authorize(ctx, a, PermKeyActivate, keyTarget(serial)); err != nil {
		return ActivationResult{}, err
	}
	if s.master == nil {
		return ActivationResult{}, ErrNoMasterKey
	}
	// A code is only ever tried with the key at hand: nobody can guess codes
	// from afar.
	if !s.devices.plugged(serial) {
		return ActivationResult{}, fmt.Errorf("key %s: %w: plug it in first", serial, ErrNotPluggedIn)
	}
	if err := s.atTheKiosk(ctx, a, serial); err != nil {
		return ActivationResult{}, err
	}
	code, err := keys.ParseCode(codeText)
	if err != nil {
		return ActivationResult{}, err
	}
	return s.activate(ctx, a, serial, &code)
}

// activate carries out what keys.NextActivation decides, round by round,
// until the key is Active or the attempt has to stop. Without a code it only
// resumes recorded progress (a == systemActor, when a key is plugged in).
func (s *Service) activate(ctx context.Context, a Actor, serial string, code *keys.Code) (ActivationResult, error) {
	var res ActivationResult
	checked := false // the code was checked and accepted in this attempt
	fail := func(err error) (ActivationResult, error) { return res, fmt.Errorf("activate key %s: %w", serial, err) }
	for range maxActivationRounds {
		var (
			next keys.Next
			why  string
			k    *store.Key
			prog *store.Activation
			now  time.Time
		)
		err := s.st.Update(ctx, func(tx *store.Tx) error {
			var err error
			if k, err = tx.KeyBySerial(ctx, serial); errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("%w %q", ErrUnknownSerial, serial)
			} else if err != nil {
				return err
			}
			if prog, err = tx.Activation(ctx, k.ID); err != nil {
				return err
			}
			now = tx.Now()
			f := activationFacts(k, prog, code != nil, checked, now)
			if f.OwnerGone, err = ownerGone(ctx, tx, k); err != nil {
				return err
			}
			next, why = keys.NextActivation(f)
			switch next {
			case keys.NextCheckCode:
				// The attempt is counted, and committed, before the code
				// is compared: a database that cannot record it refuses
				// the attempt instead of checking codes without counting.
				k.CodeAttempts++
				return tx.UpdateKey(ctx, k)
			case keys.NextDiscard, keys.NextStop:
				if prog != nil {
					if err := tx.DeleteActivation(ctx, k.ID); err != nil {
						return err
					}
					return s.audit(ctx, tx, a, "key.activation-discarded", keyTarget(serial), store.OutcomeSuccess,
						map[string]any{"step": prog.Step, "why": why})
				}
			case keys.NextRecordActive:
				return s.recordActive(ctx, tx, a, k, prog)
			}
			return nil
		})
		if err != nil {
			if next == keys.NextCheckCode {
				return fail(fmt.Errorf("the attempt could not be recorded, so the code was not checked: %w", err))
			}
			return fail(err)
		}
		switch next {
		case keys.NextCheckCode:
			refused, err := s.checkCode(ctx, a, serial, *code, &res)
			s.publish(DataChanged{What: keysChanged})
			if err != nil {
				return fail(err)
			}
			if refused != nil {
				return fail(refused)
			}
			code, checked = nil, true
		case keys.NextDiscard:
		case keys.NextStop:
			return fail(errors.New(why))
		case keys.NextAskCode:
			if code == nil {
				return res, nil // nothing to resume
			}
			return fail(errors.New("no code was checked"))
		case keys.NextRecordActive:
			res.Activated = true
			s.publish(DataChanged{What: keysChanged})
			// The last step: the key at hand gets the employee's first
			// domain passwords (AD's old ones stay until then).
			res.Passwords = s.firstPasswords(ctx, a, serial)
			return res, nil
		case keys.NextWaitForKey:
			if !s.devices.plugged(serial) {
				return fail(fmt.Errorf("the code is accepted but %w: plug it in and enter the code again", ErrNotPluggedIn))
			}
			err := s.giveSecret(ctx, a, k, prog, checked, now)
			switch {
			case errors.Is(err, errNeedCode) && !checked:
				return res, nil // a resumption that needs the person at the key
			case err != nil:
				return fail(fmt.Errorf("%w; the key stays reserved and the code stays valid", err))
			}
		default:
			return fail(fmt.Errorf("unexpected decision %s", next))
		}
	}
	return fail(fmt.Errorf("no end after %d steps", maxActivationRounds))
}

// ownerGone says, for a key whose employee is no longer active, who and
// since when ("" otherwise).
func ownerGone(ctx context.Context, tx *store.Tx, k *store.Key) (string, error) {
	if k.EmployeeID == nil {
		return "", nil
	}
	e, err := tx.Employee(ctx, *k.EmployeeID)
	if err != nil {
		return "", fmt.Errorf("read the employee of key %s: %w", k.Serial, err)
	}
	if e.Status == store.StatusActive {
		return "", nil
	}
	since := ""
	if e.RemovedAt != nil {
		since = " on " + e.RemovedAt.Format("2006-01-02 15:04 MST")
	}
	return fmt.Sprintf("its employee %s (%s) was %s%s: withdraw the key", e.DisplayName, e.Email, e.Status, since), nil
}

// activationFacts are the facts of the key's row and recorded progress
// (the device is asked separately, when a step needs it).
func activationFacts(k *store.Key, prog *store.Activation, typed, checked bool, now time.Time) keys.ActivationFacts {
	f := keys.ActivationFacts{Status: keys.Status(k.Status), KeyVersion: k.Version, CodeTyped: typed, CodeChecked: checked, Now: now}
	if prog != nil {
		f.Progress = &keys.Progress{Done: keys.Step(prog.Step), At: prog.AcceptedAt, KeyVersion: prog.KeyVersion}
	}
	return f
}

// checkCode is StepCheckCode, once the attempt is counted: it compares the
// code in a transaction of its own. A right code takes back the count (it
// was not a wrong attempt) and records the step; a wrong one keeps it, and
// the last allowed one locks the key; an expired code takes it back (there
// is nothing to guess). Every attempt is audited. refused is the outcome
// for the person (a wrong or expired code): the transaction still commits.
func (s *Service) checkCode(ctx context.Context, a Actor, serial string, code keys.Code, res *ActivationResult) (refused error, err error) {
	err = s.st.Update(ctx, func(tx *store.Tx) error {
		k, err := tx.KeyBySerial(ctx, serial)
		if err != nil {
			return err
		}
		if keys.Status(k.Status) != keys.StatusReserved || k.CodeAttempts < 1 {
			return fmt.Errorf("key %s changed while its code was being checked (now %s)", serial, k.Status)
		}
		st := keys.CodeState{Hash: keys.CodeHash(k.CodeHash), Attempts: k.CodeAttempts - 1, Binding: keys.SecretBinding(k.ID, k.Serial)}
		if k.CodeExpiresAt != nil {
			st.ExpiresAt = *k.CodeExpiresAt
		}
		pepper, err := s.codePepper(ctx, tx)
		if err != nil {
			return err
		}
		att := keys.CheckCode(st, code, pepper, tx.Now())
		res.Left = att.Left
		fail := func(reason string, e error) error {
			refused = e
			return s.audit(ctx, tx, a, "key.activate", keyTarget(k.Serial), store.OutcomeFailure,
				map[string]any{"result": reason, "attempts": att.Attempts, "left": att.Left})
		}
		if att.Verdict == keys.CodeWrongLocked {
			if err := fail("wrong code, locked", fmt.Errorf("%w: three wrong codes locked the key; an operator (key.unlock) can unlock it with a new code", ErrKeyLocked)); err != nil {
				return err
			}
			res.Locked = true
			_, err := s.transition(ctx, tx, a, k, keyChange{action: keys.ActionFailCodeLock})
			return err
		}
		if k.CodeAttempts != att.Attempts {
			k.CodeAttempts = att.Attempts
			if err := tx.UpdateKey(ctx, k); err != nil {
				return err
			}
		}
		switch att.Verdict {
		case keys.CodeAccepted:
			p := &store.Activation{KeyID: k.ID, Step: string(keys.StepCheckCode), KeyVersion: k.Version, Actor: a.Name, AcceptedAt: tx.Now()}
			if err := tx.PutActivation(ctx, p); err != nil {
				return err
			}
			return s.audit(ctx, tx, a, "key.code-accepted", keyTarget(k.Serial), store.OutcomeSuccess, map[string]any{"attempts": att.Attempts})
		case keys.CodeWrong:
			return fail("wrong code", fmt.Errorf("%w: %d attempts left before the key locks", ErrWrongCode, att.Left))
		case keys.CodeExpired:
			return fail("code expired", fmt.Errorf("%w: ask an operator for a new one", ErrCodeExpired))
		default:
			return fail("no code", fmt.Errorf("key %s has no valid activation code: ask an operator for a new one", k.Serial))
		}
	})
	return refused, err
}

// giveSecret is StepGiveSecret: in one conversation the plugged-in key
// proves it is the key (a fresh attestation) and what it holds (AUTH with
// the key's secret, or the one from before an unlock); keys.NextActivation
// decides (LINK a blank key, its key agreement signed by the pinned
// attestation key; a key that already holds its secret has proved it; a key
// holding the secret from before an unlock, or locked by its PIN, is wiped
// and linked), and the step is recorded.
func (s *Service) giveSecret(ctx context.Context, a Actor, k *store.Key, prog *store.Activation, checked bool, now time.Time) error {
	if k.SecretSealed == nil {
		return fmt.Errorf("key %s has no secret to give: withdraw it and assign it again", k.Serial)
	}
	var how string // how the key got (or proved) its secret
	err := s.withProvenKey(ctx, k, func(ctx context.Context, d *proto.Device, pr proof, cur, prev []byte) error {
		state, sess, err := probeDevice(ctx, d, pr.state, cur, prev)
		if err != nil {
			return err
		}
		if sess != nil {
			defer sess.Close()
		}
		f := activationFacts(k, prog, false, checked, now)
		f.Device = state
		next, why := keys.NextActivation(f)
		how = string(next)
		switch next {
		case keys.NextLink:
			return d.Link(ctx, cur, s.linkCheck(k))
		case keys.NextWipeAndLink:
			if err := sess.Wipe(ctx); err != nil {
				return fmt.Errorf("wipe the key: %w", err)
			}
			return d.Link(ctx, cur, s.linkCheck(k))
		case keys.NextConfirmSecret:
			return nil
		case keys.NextAskCode:
			return errNeedCode
		case keys.NextStop:
			return fmt.Errorf("%w: %s", ErrKeyNotLinked, why)
		}
		return fmt.Errorf("unexpected decision %s with the key %s", next, state)
	})
	if err != nil {
		return err
	}
	return s.st.Update(ctx, func(tx *store.Tx) error {
		cur, err := tx.KeyBySerial(ctx, k.Serial)
		if err != nil {
			return err
		}
		p, err := tx.Activation(ctx, k.ID)
		if err != nil {
			return err
		}
		if cur.Version != k.Version || p == nil || p.KeyVersion != k.Version {
			return fmt.Errorf("key %s changed while it was being activated (now %s): nothing was recorded", k.Serial, cur.Status)
		}
		p.Step = string(keys.Step(p.Step).Later(keys.StepGiveSecret))
		if err := tx.PutActivation(ctx, p); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, "key.secret-given", keyTarget(k.Serial), store.OutcomeSuccess, map[string]any{"how": how})
	})
}

// errNeedCode: the key can only be given its secret with the code typed
// now; a resumed activation stops there, waiting for the person.
var errNeedCode = errors.New("the code must be typed again to give the key its secret")

// probeDevice finds out what a key that proved its identity holds: nothing
// (blank), the key's secret, or the secret from before an unlock (AUTH with
// each). The session is returned (to be closed) when AUTH succeeded.
func probeDevice(ctx context.Context, d *proto.Device, state proto.KeyState, cur, prev []byte) (keys.DeviceState, *proto.Session, error) {
	switch state {
	case proto.StateBlank:
		return keys.DeviceBlank, nil, nil
	case proto.StateLinked, proto.StateLocked:
		sess, err := d.Auth(ctx, cur)
		switch {
		case err == nil && state == proto.StateLocked:
			return keys.DeviceOursLocked, sess, nil
		case err == nil:
			return keys.DeviceOurs, sess, nil
		case !errors.Is(err, proto.ErrAuth):
			return keys.DeviceNotPresent, nil, fmt.Errorf("authenticate to the key: %w", err)
		}
		if prev == nil {
			return keys.DeviceForeign, nil, nil
		}
		sess, err = d.Auth(ctx, prev)
		switch {
		case err == nil:
			return keys.DevicePrevious, sess, nil
		case errors.Is(err, proto.ErrAuth):
			return keys.DeviceForeign, nil, nil
		}
		return keys.DeviceNotPresent, nil, fmt.Errorf("authenticate to the key: %w", err)
	}
	return keys.DeviceNotPresent, nil, fmt.Errorf("the key reports an unknown state %q", state)
}

// recordActive is StepRecordActive, in the caller's transaction: the key
// becomes Active and its recorded progress goes.
func (s *Service) recordActive(ctx context.Context, tx *store.Tx, a Actor, k *store.Key, prog *store.Activation) error {
	if err := tx.DeleteActivation(ctx, k.ID); err != nil {
		return err
	}
	ch := keyChange{action: keys.ActionActivate}
	if a.Name != prog.Actor {
		ch.note = "resumed after an interruption; the code was accepted from " + prog.Actor
	}
	_, err := s.transition(ctx, tx, a, k, ch)
	return err
}
