package app

import (
	"context"
	"errors"
	"fmt"

	"keydesk/keys"
	"keydesk/rotation"
	"keydesk/store"
)

// firstPasswords gives the key just activated the first domain password of
// each of its employee's managed accounts (the activation's last step). A
// change that cannot finish now stays in the journal and finishes when the
// key is plugged in again; one that cannot even be planned (the DC is down)
// leaves the account due, so the scheduler plans it later.
func (s *Service) firstPasswords(ctx context.Context, a Actor, serial string) []ChangeResult {
	k, err := s.st.KeyBySerial(ctx, serial)
	if err != nil || k.EmployeeID == nil {
		return nil
	}
	var accts []store.Account
	err = s.st.Update(ctx, func(tx *store.Tx) error {
		all, err := tx.EmployeeAccounts(ctx, *k.EmployeeID)
		for _, acct := range all {
			if managed(&acct) {
				accts = append(accts, acct)
			}
		}
		return err
	})
	if err != nil {
		return []ChangeResult{{Err: fmt.Sprintf("read the accounts of key %s: %v", serial, err)}}
	}
	var out []ChangeResult
	for _, acct := range accts {
		r, _, err := s.changePassword(ctx, a, changePlan{kind: KindActivation, acct: acct, keyID: &k.ID})
		if r.ID == 0 {
			r.Account = accountLabel(&acct)
		}
		if err != nil {
			r.Err = err.Error()
			s.log.Warn("first password of an activated key", "key", serial, "account", accountLabel(&acct), "err", err)
		}
		out = append(out, r)
	}
	return out
}

// keyPasswords carries on, when key serial is plugged in, the password
// changes that wait for it, oldest first (an abandoned change's pending
// password is dropped before a newer change writes its own).
func (s *Service) keyPasswords(ctx context.Context, serial string) ([]ChangeResult, error) {
	k, err := s.st.KeyBySerial(ctx, serial)
	if err != nil {
		return nil, err
	}
	return s.driveUnfinished(ctx, k.ID)
}

// RecoverPasswordChanges takes up every password change left unfinished
// (at start-up): each is carried as far as it can go without the person;
// those that need a key that is not plugged in wait for it.
func (s *Service) RecoverPasswordChanges(ctx context.Context) ([]ChangeResult, error) {
	if s.master == nil {
		return nil, nil
	}
	return s.driveUnfinished(ctx, 0)
}

// driveUnfinished carries on the unfinished changes (of key keyID; 0: all),
// oldest first.
func (s *Service) driveUnfinished(ctx context.Context, keyID int64) ([]ChangeResult, error) {
	open, err := s.st.UnfinishedPasswordChanges(ctx, keyID)
	if err != nil {
		return nil, err
	}
	var out []ChangeResult
	var errs []error
	for _, c := range open {
		r, err := s.driveChange(ctx, rotationActor, c.ID, changeInput{})
		out = append(out, r)
		if err != nil {
			errs = append(errs, fmt.Errorf("password change %d of %s: %w", c.ID, r.Account, err))
		}
	}
	return out, errors.Join(errs...)
}

// supersede settles, in tx, an open change of the account that is meant
// for a key other than keyID (the employee got a new key) and whose old key
// is no longer active. One that has not reached AD is closed (AD still has
// the old password, and the old key is no longer the employee's). One that
// AD has (held for the old key) is moved to key keyID, which then gets that
// password: it is returned, to be carried on instead of a new one. One
// whose AD write may or may not have happened is left to its recovery.
func (s *Service) supersede(ctx context.Context, tx *store.Tx, a Actor, acct *store.Account, keyID int64) (*store.PasswordChange, error) {
	c, err := tx.OpenPasswordChange(ctx, acct.ID)
	if err != nil || c == nil || c.KeyID == nil || *c.KeyID == keyID {
		return nil, err
	}
	old, err := tx.KeyByID(ctx, *c.KeyID)
	if err != nil {
		return nil, err
	}
	if keys.Status(old.Status) == keys.StatusActive {
		return nil, nil
	}
	switch rotation.Step(c.Step) {
	case rotation.StepPlanned, rotation.StepKeyPending:
		c.Step, c.Discarded, c.PasswordSealed = string(rotation.StepFailed), true, nil
		c.Error = fmt.Sprintf("superseded: key %s is %s and no longer the employee's", old.Serial, old.Status)
		if err := tx.UpdatePasswordChange(ctx, c); err != nil {
			return nil, err
		}
		return nil, s.audit(ctx, tx, a, "password.failed", accountTarget(acct), store.OutcomeFailure,
			map[string]any{"change": c.ID, "kind": c.Kind, "why": "superseded", "error": c.Error, "key": old.Serial})
	case rotation.StepADWritten:
		slot, err := tx.CredentialSlot(ctx, keyID, acct.ID, keySlotLimit)
		if err != nil {
			return nil, err
		}
		nk, err := tx.KeyByID(ctx, keyID)
		if err != nil {
			return nil, err
		}
		c.KeyID, c.Slot, c.Error = &keyID, &slot, ""
		if err := tx.UpdatePasswordChange(ctx, c); err != nil {
			return nil, err
		}
		return c, s.audit(ctx, tx, a, "password.moved", accountTarget(acct), store.OutcomeSuccess,
			map[string]any{"change": c.ID, "kind": c.Kind, "from": old.Serial, "key": nk.Serial,
				"why": fmt.Sprintf("AD has the password held for key %s, which is %s: it goes to the employee's key %s", old.Serial, old.Status, nk.Serial)})
	}
	return nil, nil
}
