package app

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strconv"
	"time"

	"keydesk/config"
	"keydesk/keys"
	"keydesk/keys/proto"
	"keydesk/ldapsync"
	"keydesk/rotation"
	"keydesk/store"
)

// Carrying out the password journal: rotation.Next decides, this file acts
// (the key's slot over the encrypted session, AD over LDAP) and records
// each step, with an audit entry, before the next. A crash or an unplug at
// any moment leaves a row that the next drive, at start-up or when the key
// is plugged in, takes up from where it stopped.

// changeLeaseTTL bounds how long a drive keeps other processes away from
// its change, should it die without releasing it (a drive's exchanges are
// bounded by the key's and the DC's timeouts, well within it).
const changeLeaseTTL = 5 * time.Minute

// maxChangeRounds bounds the decisions of one drive (a change needs at most
// six steps; the rest is margin for a key that loses a write).
const maxChangeRounds = 12

// changeInput is what a drive may need beyond the journal: a user's own
// change on key and AD needs the user's current password, which is never
// stored.
type changeInput struct {
	old string
}

// change is a journal row with what carrying it out needs.
type change struct {
	row  *store.PasswordChange
	acct *store.Account
	dom  config.Domain
	key  *store.Key // the key that must hold the password (nil: none)
	pw   string     // the new password, opened from the journal
	in   changeInput
}

func (c *change) cred() proto.Credential {
	return proto.Credential{Login: credentialLogin(c.acct), Password: c.pw}
}

// loadChange reads a row, its account, domain and key, and opens its
// password (a closed row has none).
func (s *Service) loadChange(ctx context.Context, id int64, in changeInput) (*change, error) {
	c := &change{in: in}
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		var err error
		if c.row, err = tx.PasswordChange(ctx, id); err != nil {
			return err
		}
		if c.acct, err = tx.Account(ctx, c.row.AccountID); err != nil {
			return err
		}
		if c.row.KeyID != nil {
			if c.key, err = tx.KeyByID(ctx, *c.row.KeyID); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read password change %d: %w", id, err)
	}
	if c.dom, err = s.domainOf(c.acct); err != nil {
		return nil, err
	}
	if c.row.PasswordSealed != nil {
		mk, err := s.masterKey(ctx, nil)
		if err != nil {
			return nil, err
		}
		pw, err := mk.Open(c.row.PasswordSealed, passwordBinding(c.acct.ID))
		if err != nil {
			return nil, fmt.Errorf("open the password of change %d: %w", id, err)
		}
		c.pw = string(pw)
		clear(pw)
	}
	return c, nil
}

// keyUsable reports whether the change's key can take part now: plugged in,
// and in a status in which KeyDesk talks to it about credentials.
func (s *Service) keyUsable(k *store.Key) bool {
	if k == nil || !s.devices.plugged(k.Serial) {
		return false
	}
	switch keys.Status(k.Status) {
	case keys.StatusActive, keys.StatusReserved:
		return true
	}
	return false
}

// driveChange carries change id as far as it can go now: with the key, in
// one conversation in which it proves who it is and that it holds its
// secret, when it is plugged in; without it otherwise (what needs the key
// then waits).
//
// When ctx ends, the step in flight finishes (its I/O does not see ctx)
// and the drive stops before the next one.
func (s *Service) driveChange(ctx context.Context, a Actor, id int64, in changeInput) (ChangeResult, error) {
	stop := ctx
	ctx = context.WithoutCancel(ctx)
	// One drive of a change at a time: in this process, and among the
	// processes sharing the database (a lease on the change). The row is
	// read once both are held, so that no drive acts on a stale step.
	busy := ""
	if !s.rot.claim(id) {
		busy = "the drive of this change already under way"
	} else {
		defer s.rot.release(id)
		lease := "password-change:" + strconv.FormatInt(id, 10)
		held, err := s.takeLease(ctx, lease, changeLeaseTTL)
		if err != nil {
			return ChangeResult{ID: id}, err
		}
		if !held {
			busy = "the drive of this change under way in another KeyDesk process"
		} else {
			defer func() {
				if err := s.st.ReleaseLease(ctx, lease, s.holder); err != nil {
					s.log.Warn("release a password change", "change", id, "err", err)
				}
			}()
		}
	}
	c, err := s.loadChange(ctx, id, in)
	if err != nil {
		return ChangeResult{ID: id}, err
	}
	if busy != "" {
		return resultOf(c.row, c.acct, busy), nil
	}
	defer s.publish(DataChanged{What: passwordsChanged})
	if c.row.Closed() {
		return resultOf(c.row, c.acct, ""), nil
	}
	var waiting string
	if !s.keyUsable(c.key) {
		waiting, err = s.stepChange(ctx, stop, a, c, nil)
		return resultOf(c.row, c.acct, waiting), err
	}
	err = s.withProvenKeyFor(ctx, c.key, driveTimeout, func(ctx context.Context, d *proto.Device, pr proof, cur, _ []byte) error {
		sess, err := authWithEither(ctx, d, cur)
		if err != nil {
			return fmt.Errorf("authenticate to key %s: %w", c.key.Serial, err)
		}
		defer sess.Close()
		ks := &keySlot{sess: sess, slot: *c.row.Slot, slots: pr.info.Slots}
		waiting, err = s.stepChange(ctx, stop, a, c, ks)
		return err
	})
	if err != nil && waiting == "" && !c.row.Closed() {
		waiting = "the key: " + err.Error()
	}
	return resultOf(c.row, c.acct, waiting), err
}

// driveTimeout bounds the conversation with the key in which a change is
// carried out (its AD write and probe included); each exchange with the
// key stays bounded by the protocol's own timeout.
const driveTimeout = 2 * time.Minute

// errCrash is what a journal hook returns to stop a drive on the spot, as
// a crash would (tests).
var errCrash = errors.New("stopped by the journal hook")

// stepChange is the loop of decisions: observe, decide (rotation.Next),
// act, record, until stop ends. ks is nil when the key is not at hand. It
// returns what the change waits for, if it stops to wait.
func (s *Service) stepChange(ctx, stop context.Context, a Actor, c *change, ks *keySlot) (string, error) {
	var adErr error // an AD refusal, returned once the key is cleaned up
	for range maxChangeRounds {
		if stop.Err() != nil {
			return "KeyDesk to start again (it stopped between two steps)", adErr
		}
		f := rotation.Facts{Step: rotation.Step(c.row.Step), Order: rotation.Order(c.row.Order), Discarded: c.row.Discarded}
		if ks != nil {
			var err error
			f.KeyPresent = true
			if f.Pending, f.Current, err = ks.observe(ctx, c.cred(), f.Step == rotation.StepFailed); err != nil {
				return "", err
			}
		}
		d := rotation.Next(f)
		if d.Do == rotation.ActProbeAD {
			f.AD = s.probeAD(ctx, c)
			d = rotation.Next(f)
		}
		switch d.Do {
		case rotation.ActNone:
			return "", adErr
		case rotation.ActWaitKey:
			return d.Why, adErr
		case rotation.ActWaitAD:
			// The probe could not tell: note it (the scheduler backs off,
			// and each probe is a bind that counts toward the lockout).
			c.row.Attempts++
			if err := s.recordStep(ctx, a, c, f.Step, d.Why, d.Why); err != nil {
				return "", err
			}
			return d.Why, fmt.Errorf("change %d: %s", c.row.ID, d.Why)
		case rotation.ActWriteKey:
			if err := ks.write(ctx, c.cred()); err != nil {
				return "", err
			}
			if err := s.hookAt(c.row.ID, "key-written"); err != nil {
				return "", err
			}
			if f.Step == rotation.StepPlanned {
				if err := s.recordStep(ctx, a, c, rotation.StepKeyPending, d.Why, ""); err != nil {
					return "", err
				}
			}
		case rotation.ActCommitKey:
			if c.row.Order == string(rotation.KeyOnly) {
				// The password AD has may have changed since the person
				// typed it (a rotation finished meanwhile): a key never
				// gets one AD does not accept.
				if err := ldapsync.VerifyPassword(ctx, c.dom, c.acct.DN, c.pw); err != nil {
					c.row.Error = "AD no longer accepts the password typed: " + err.Error()
					if err := s.recordStep(ctx, a, c, rotation.StepFailed, "AD no longer accepts the password typed", c.row.Error); err != nil {
						return "", err
					}
					adErr = fmt.Errorf("%s: %s; the key is untouched", accountLabel(c.acct), c.row.Error)
					continue
				}
			}
			if err := ks.sess.Commit(ctx, ks.slot); err != nil {
				return "", err
			}
			if err := s.hookAt(c.row.ID, "key-committed"); err != nil {
				return "", err
			}
			if err := s.recordStep(ctx, a, c, rotation.StepDone, d.Why, ""); err != nil {
				return "", err
			}
		case rotation.ActDiscardKey:
			if err := ks.sess.Discard(ctx, ks.slot); err != nil {
				return "", err
			}
			c.row.Discarded = true
			if err := s.recordStep(ctx, a, c, rotation.StepFailed, d.Why, c.row.Error); err != nil {
				return "", err
			}
		case rotation.ActMarkStep:
			errText := "" // what happened is settled: no error stands
			if d.Mark == rotation.StepFailed {
				c.row.Discarded, errText = true, c.row.Error
			}
			if err := s.recordStep(ctx, a, c, d.Mark, d.Why, errText); err != nil {
				return "", err
			}
		case rotation.ActSendAD:
			waiting, refused, err := s.sendAD(ctx, a, c, d.Why)
			switch {
			case err != nil:
				return "", err
			case waiting != "":
				return waiting, refused
			}
			adErr = refused
		default:
			return "", fmt.Errorf("change %d: unexpected decision %s", c.row.ID, d.Do)
		}
	}
	return "", fmt.Errorf("change %d: no end after %d steps", c.row.ID, maxChangeRounds)
}

// sendAD records that the AD write is about to be sent, sends it, and
// records the outcome: written; failed (AD refused the password: the
// refusal is returned as refused); back to the step before (nothing could
// be sent: waiting); or, when the outcome is unknown, left to a probe
// (waiting). err is a failure to record, which ends the drive.
func (s *Service) sendAD(ctx context.Context, a Actor, c *change, why string) (waiting string, refused, err error) {
	before := rotation.Step(c.row.Step)
	if c.row.Kind == KindSelfBoth && c.in.old == "" {
		// A user's own change is sent bound as the user; cut off, it
		// cannot be sent again without them.
		c.row.Error = "the user's change was cut off before AD took it: the user can change the password again"
		c.row.Discarded = c.row.Order == string(rotation.ADFirst)
		return "", nil, s.recordStep(ctx, a, c, rotation.StepFailed, "cannot resend a user's change", c.row.Error)
	}
	if err := s.recordStep(ctx, a, c, rotation.StepADSending, why, ""); err != nil {
		return "", nil, err
	}
	sent, werr := s.writeAD(ctx, c)
	if werr == nil {
		if err := s.hookAt(c.row.ID, "ad-sent"); err != nil {
			return "", nil, err
		}
	}
	var pe *ldapsync.PasswordError
	switch {
	case werr == nil:
		return "", nil, s.recordStep(ctx, a, c, rotation.StepADWritten, "AD took the new password", "")
	case errors.As(werr, &pe) || errors.Is(werr, ldapsync.ErrNoTLS) || errors.Is(werr, ldapsync.ErrWrongPassword):
		c.row.Error = werr.Error()
		// Key first, the key holds it as pending, to be discarded; AD
		// first, the key never had it.
		c.row.Discarded = c.row.Order == string(rotation.ADFirst)
		if err := s.recordStep(ctx, a, c, rotation.StepFailed, "AD refused the password", c.row.Error); err != nil {
			return "", nil, err
		}
		return "", werr, nil
	case !sent:
		c.row.Attempts++
		if err := s.recordStep(ctx, a, c, before, "nothing was sent: the DC could not be reached", werr.Error()); err != nil {
			return "", nil, err
		}
		return "the DC: " + werr.Error(), werr, nil
	}
	// The write may or may not have happened: the row stays at ad-sending
	// and a probe decides, the next time.
	c.row.Attempts++
	if err := s.recordStep(ctx, a, c, rotation.StepADSending, "the AD write was cut off", werr.Error()); err != nil {
		return "", nil, err
	}
	return "the DC: " + werr.Error(), werr, nil
}

// writeAD writes the new password to AD: an administrative reset, or, for
// a user's own change, a change bound as the user. sent is false when the
// write certainly did not reach the DC (no connection, no bind).
func (s *Service) writeAD(ctx context.Context, c *change) (sent bool, err error) {
	if c.row.Kind == KindSelfBoth {
		err := ldapsync.ChangeOwnPassword(ctx, c.dom, c.acct.DN, c.in.old, c.pw)
		var ce *ldapsync.ConnectError
		return !errors.As(err, &ce) && !errors.Is(err, ldapsync.ErrWrongPassword), err
	}
	conn, err := dialService(ctx, c.dom)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	return true, conn.ResetPassword(ctx, c.acct.DN, c.pw)
}

// probeAD learns whether AD has the new password: one bind as the user with
// it (a failed bind counts toward the domain's lockout threshold, so it is
// tried once per drive).
func (s *Service) probeAD(ctx context.Context, c *change) rotation.AD {
	err := ldapsync.VerifyPassword(ctx, c.dom, c.acct.DN, c.pw)
	switch {
	case err == nil, ldapsync.PasswordValid(err):
		return rotation.ADAcceptsNew
	case errors.Is(err, ldapsync.ErrWrongPassword):
		return rotation.ADRefusesNew
	}
	s.log.Warn("probe a password change", "account", accountLabel(c.acct), "err", err)
	return rotation.ADUnreachable
}

// recordStep records the change at step (with the error text, "" to clear
// it), with an audit entry, if nobody changed the row meanwhile. A closed
// change loses its password. The journal hook runs after the commit.
func (s *Service) recordStep(ctx context.Context, a Actor, c *change, step rotation.Step, why, errText string) error {
	row := *c.row
	row.Step, row.Error = string(step), errText
	if row.Closed() {
		row.PasswordSealed = nil
	}
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		if err := tx.UpdatePasswordChange(ctx, &row); err != nil {
			return err
		}
		details := map[string]any{"change": row.ID, "kind": row.Kind, "why": why}
		if c.key != nil {
			details["key"] = c.key.Serial
		}
		outcome := store.OutcomeSuccess
		if step == rotation.StepFailed {
			outcome = store.OutcomeFailure
			if errText != "" {
				details["error"] = errText
			}
		}
		return s.audit(ctx, tx, a, "password."+string(step), accountTarget(c.acct), outcome, details)
	})
	if err != nil {
		return fmt.Errorf("record password change %d at %s: %w", c.row.ID, step, err)
	}
	*c.row = row
	return s.hookAt(c.row.ID, string(step))
}

// hookAt runs the journal hook at a point of the change: after a step is
// recorded (the step's name), or after an effect and before its step is
// recorded ("key-written", "ad-sent", "key-committed").
func (s *Service) hookAt(id int64, point string) error {
	if s.journalHook == nil {
		return nil
	}
	if err := s.journalHook(id, point); err != nil {
		return fmt.Errorf("%w at %s: %w", errCrash, point, err)
	}
	return nil
}

// keySlot is the change's slot on the key at hand, over its session.
type keySlot struct {
	sess  *proto.Session
	slot  int
	slots int  // the key's number of slots (INFO)
	wrote bool // this conversation wrote the change's pending value
}

// observe reads what the slot holds, compared with the change's
// credential. A key with a PIN does not let KeyDesk read its slots without
// the user: then LIST says only whether a pending and a current value
// exist. A pending value counts as the change's own only when this
// conversation wrote it (or, for an abandoned change, to be dropped); a
// current value counts as another one. The worst case is writing and
// committing once more; never committing a value that is not the change's.
func (k *keySlot) observe(ctx context.Context, want proto.Credential, abandoned bool) (pending, current rotation.Slot, err error) {
	if k.slot >= k.slots {
		return 0, 0, fmt.Errorf("the key has %d credential slots and this account has slot %d", k.slots, k.slot)
	}
	read := func(p bool) (rotation.Slot, bool, error) {
		var got proto.Credential
		var err error
		if p {
			got, err = k.sess.ReadPending(ctx, k.slot)
		} else {
			got, err = k.sess.ReadCredential(ctx, k.slot)
		}
		switch {
		case errors.Is(err, &proto.KeyError{Code: proto.CodeNotFound}):
			return rotation.SlotEmpty, true, nil
		case errors.Is(err, &proto.KeyError{Code: proto.CodePINRequired}):
			return rotation.SlotUnknown, false, nil
		case err != nil:
			return rotation.SlotUnknown, false, err
		}
		same := got.Login == want.Login && subtle.ConstantTimeCompare([]byte(got.Password), []byte(want.Password)) == 1
		if same {
			return rotation.SlotNew, true, nil
		}
		return rotation.SlotOther, true, nil
	}
	pending, ok, err := read(true)
	if err != nil {
		return 0, 0, err
	}
	if ok {
		current, _, err = read(false)
		return pending, current, err
	}
	list, err := k.sess.List(ctx)
	if err != nil {
		return 0, 0, err
	}
	pending, current = rotation.SlotEmpty, rotation.SlotEmpty
	for _, si := range list {
		if si.Slot != k.slot {
			continue
		}
		switch {
		case !si.Pending:
		case k.wrote || abandoned:
			// Written in this conversation; or, for an abandoned change,
			// whatever is pending is dropped (a change under way that
			// loses its pending value writes it again from the journal).
			pending = rotation.SlotNew
		default:
			// Not known to be this change's: it is written again.
			pending = rotation.SlotOther
		}
		if si.Current {
			current = rotation.SlotOther
		}
	}
	return pending, current, nil
}

// write gives the slot the credential as its pending value.
func (k *keySlot) write(ctx context.Context, c proto.Credential) error {
	if err := k.sess.WriteCredential(ctx, k.slot, c); err != nil {
		return err
	}
	k.wrote = true
	return nil
}
