package app

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"

	"keydesk/keys"
	"keydesk/keys/proto"
	"keydesk/ldapsync"
	"keydesk/store"
)

// A person's own password change, at their plugged-in Active key: on the
// key only (they type the password AD already has; KeyDesk proves it with
// a bind as them before writing it to the key, so a key never holds a
// wrong password), or on the key and in AD (a change bound as them, so the
// domain's history and minimum age apply). The person proves who they are
// with the key's PIN, or, when the key has none, with their current
// password.

// Where a self-service change goes.
const (
	SelfKeyOnly = "key"  // the key only: AD already has the password
	SelfBoth    = "both" // the key and AD
)

// SelfChange is a person's own password change.
type SelfChange struct {
	Serial string // the plugged-in key
	Domain string // the account's domain ("" when the employee has one managed account)
	On     string // SelfKeyOnly or SelfBoth
	// PIN is the key's PIN (when it has one); Current the password the key
	// holds now (when it has no PIN).
	PIN, Current string
	// New is the new password: for SelfKeyOnly, the one AD has.
	New string
	// TOTP is the authenticator app's current code, asked of a person who
	// enrolled one (see BeginEnrollment).
	TOTP string
}

// ErrNotYou: the person did not prove they are the key's owner.
var ErrNotYou = errors.New("the key's PIN or the current password is needed, and was not right")

// ChangeOwnPassword changes the password of the key's owner, as they ask
// at the key (see SelfChange). Nothing changes on the key or in AD unless
// the person proved who they are and, for the key only, AD accepts the
// password; a change AD refuses (history, minimum age, policy) leaves the
// key as it was and says why.
func (s *Service) ChangeOwnPassword(ctx context.Context, a Actor, req SelfChange) (ChangeResult, error) {
	if err := s.authorize(ctx, a, PermPasswordSelf, keyTarget(req.Serial)); err != nil {
		return ChangeResult{}, err
	}
	if req.On != SelfKeyOnly && req.On != SelfBoth {
		return ChangeResult{}, fmt.Errorf("change the password on %q: use %q (the key only) or %q (the key and AD)", req.On, SelfKeyOnly, SelfBoth)
	}
	if req.New == "" {
		return ChangeResult{}, errors.New("the new password is empty: nothing was changed")
	}
	if !s.devices.plugged(req.Serial) {
		return ChangeResult{}, fmt.Errorf("key %s: %w: plug it in first", req.Serial, ErrNotPluggedIn)
	}
	if err := s.atTheKiosk(ctx, a, req.Serial); err != nil {
		return ChangeResult{}, err
	}
	k, err := s.st.KeyBySerial(ctx, req.Serial)
	if err != nil {
		return ChangeResult{}, fmt.Errorf("key %s: %w", req.Serial, err)
	}
	if keys.Status(k.Status) != keys.StatusActive || k.EmployeeID == nil {
		return ChangeResult{}, fmt.Errorf("key %s is %s: only an active key's owner can change their password at it", req.Serial, k.Status)
	}
	acct, err := s.oneManagedAccount(ctx, fmt.Sprint(*k.EmployeeID), req.Domain)
	if err != nil {
		return ChangeResult{}, err
	}
	d, err := s.domainOf(&acct)
	if err != nil {
		return ChangeResult{}, err
	}
	// A person who enrolled an authenticator proves it first: a stolen key
	// and its PIN are not enough.
	if err := s.checkAuthenticator(ctx, a, *k.EmployeeID, req.TOTP, accountTarget(&acct)); err != nil {
		return ChangeResult{}, err
	}
	// The person proves who they are; the old password AD has comes with it.
	old, err := s.provePerson(ctx, a, k, &acct, req)
	if err != nil {
		return ChangeResult{}, err
	}
	plan := changePlan{kind: KindSelfBoth, acct: acct, password: req.New, keyID: &k.ID}
	in := changeInput{old: old}
	if req.On == SelfKeyOnly {
		// A key never holds a password AD does not accept.
		if err := ldapsync.VerifyPassword(ctx, d, acct.DN, req.New); err != nil {
			return ChangeResult{}, fmt.Errorf("%s: the password typed is not the one AD has (%w); the key is untouched", accountLabel(&acct), err)
		}
		plan.kind, in = KindSelfKey, changeInput{}
	}
	c, _, err := s.planChange(ctx, a, plan)
	if err != nil {
		return ChangeResult{}, err
	}
	r, err := s.driveChange(ctx, a, c.ID, in)
	if err == nil && !r.Done() {
		err = fmt.Errorf("%s: the change did not finish (%s)", r.Account, r.Waiting)
	}
	return r, err
}

// provePerson checks the key's PIN (in a session with the key: a wrong PIN
// uses up one of its retries) or, for a key without one, the current
// password: the one the key holds, or, when it holds none, one AD accepts.
// It returns the password AD has, when it learned it (for a change on
// both).
func (s *Service) provePerson(ctx context.Context, a Actor, k *store.Key, acct *store.Account, req SelfChange) (string, error) {
	var onKey string
	var pinSet bool
	err := s.withProvenKey(ctx, k, func(ctx context.Context, d *proto.Device, pr proof, cur, _ []byte) error {
		pinSet = pr.info.PINSet
		sess, err := authWithEither(ctx, d, cur)
		if err != nil {
			return fmt.Errorf("authenticate to key %s: %w", k.Serial, err)
		}
		defer sess.Close()
		if pinSet {
			if req.PIN == "" {
				return fmt.Errorf("%w: this key has a PIN: enter it", ErrNotYou)
			}
			if err := sess.VerifyPIN(ctx, req.PIN); err != nil {
				return fmt.Errorf("%w: %w", ErrNotYou, err)
			}
		}
		slot, err := s.slotOf(ctx, k.ID, acct.ID)
		if err != nil || slot < 0 {
			return err
		}
		c, err := sess.ReadCredential(ctx, slot)
		switch {
		case errors.Is(err, &proto.KeyError{Code: proto.CodeNotFound}):
			return nil
		case err != nil:
			return err
		}
		onKey = c.Password
		return nil
	})
	if err != nil {
		s.auditSelf(ctx, a, acct, k, "not proved", err)
		return "", err
	}
	if pinSet {
		switch {
		case req.Current != "":
			return req.Current, nil
		case onKey == "" && req.On == SelfBoth:
			// A change on both is sent as the person, with the password
			// AD has now.
			err := fmt.Errorf("the key holds no password for %s: enter your current password too", accountLabel(acct))
			s.auditSelf(ctx, a, acct, k, "no current password", err)
			return "", err
		}
		return onKey, nil
	}
	switch {
	case req.Current == "":
		err = fmt.Errorf("%w: this key has no PIN: enter the current password", ErrNotYou)
	case onKey != "" && subtle.ConstantTimeCompare([]byte(onKey), []byte(req.Current)) != 1:
		err = fmt.Errorf("%w: the current password is not the one on the key", ErrNotYou)
	case onKey == "":
		d, derr := s.domainOf(acct)
		if derr != nil {
			return "", derr
		}
		if verr := ldapsync.VerifyPassword(ctx, d, acct.DN, req.Current); verr != nil {
			err = fmt.Errorf("%w: %w", ErrNotYou, verr)
		}
	}
	if err != nil {
		s.auditSelf(ctx, a, acct, k, "not proved", err)
		return "", err
	}
	return req.Current, nil
}

// slotOf is the key's slot for the account (-1 when it has none yet).
func (s *Service) slotOf(ctx context.Context, keyID, accountID int64) (int, error) {
	slot := -1
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		n, err := tx.ExistingCredentialSlot(ctx, keyID, accountID)
		slot = n
		return err
	})
	return slot, err
}

// auditSelf records a refused self-service change.
func (s *Service) auditSelf(ctx context.Context, a Actor, acct *store.Account, k *store.Key, result string, cause error) {
	ctx = context.WithoutCancel(ctx)
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		return s.audit(ctx, tx, a, "password.self", accountTarget(acct), store.OutcomeFailure,
			map[string]any{"key": k.Serial, "result": result, "error": cause.Error()})
	})
	if err != nil {
		s.log.Error("audit a refused self-service change", "err", err)
	}
	s.publish(DataChanged{What: ChangedAudit})
}
