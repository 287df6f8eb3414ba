package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"keydesk/config"
	"keydesk/keys"
	"keydesk/store"
)

// Errors of the key operations.
var (
	ErrNoMasterKey   = errors.New("no master key: keys cannot be assigned or activated")
	ErrWrongCode     = errors.New("wrong activation code")
	ErrCodeExpired   = errors.New("the activation code has expired")
	ErrKeyLocked     = errors.New("the key is locked")
	ErrNotPluggedIn  = errors.New("the key is not plugged in")
	ErrKeyNotLinked  = errors.New("the key holds another secret")
	ErrUnknownSerial = errors.New("no key with this serial")
)

// KeyView is a key as the command line and the console show it.
type KeyView struct {
	Serial          string     `json:"serial"`
	Status          string     `json:"status"`
	Reason          string     `json:"reason,omitempty"`
	EmployeeID      *int64     `json:"employee_id"`
	Owner           string     `json:"owner,omitempty"`
	OwnerEmail      string     `json:"owner_email,omitempty"`
	Model           string     `json:"model,omitempty"`
	Firmware        string     `json:"firmware,omitempty"`
	LastSeen        *time.Time `json:"last_seen"`
	PluggedIn       bool       `json:"plugged_in"`
	CodeExpiresAt   *time.Time `json:"code_expires_at"`
	CodeAttempts    int        `json:"code_attempts"`
	StatusChangedAt time.Time  `json:"status_changed_at"`
	// Attestation is how the key proved its serial: "verified" (its
	// attestation key, AttestationKey, from Maker's CA, is pinned),
	// "unattested" (registered without attestation) or "not-yet-seen".
	Attestation    string `json:"attestation"`
	Maker          string `json:"maker,omitempty"`
	AttestationKey string `json:"attestation_key,omitempty"`
	// DeviceState is the state the key last reported (a claim).
	DeviceState string `json:"device_state,omitempty"`
	// Unverified says, for a row of Status StatusUnverifiedDevice, why the
	// device plugged in is not the key whose serial it claims.
	Unverified string `json:"unverified,omitempty"`
}

func (s *Service) keyView(k store.KeyView) KeyView {
	v := KeyView{Serial: k.Serial, Status: k.Status, Reason: k.Reason, EmployeeID: k.EmployeeID, Owner: k.OwnerName, OwnerEmail: k.OwnerEmail,
		Model: k.Model, Firmware: k.Firmware, LastSeen: k.LastSeenAt, CodeAttempts: k.CodeAttempts, StatusChangedAt: k.StatusChangedAt}
	if k.CodeHash != "" {
		v.CodeExpiresAt = k.CodeExpiresAt
	}
	v.PluggedIn = s.devices.plugged(k.Serial)
	v.Attestation, v.Maker, v.AttestationKey = attestationView(k.Key)
	v.DeviceState = k.DeviceState
	return v
}

// unverifiedViews are the unverified devices plugged in now, as rows of
// the key list.
func (s *Service) unverifiedViews() []KeyView {
	var out []KeyView
	for _, u := range s.devices.unverifiedList() {
		seen := u.since
		out = append(out, KeyView{Serial: u.claimed, Status: StatusUnverifiedDevice, Model: u.model, LastSeen: &seen,
			PluggedIn: true, StatusChangedAt: u.since, Attestation: "unverified", Unverified: u.why})
	}
	return out
}

// IssuedCode is a new one-time activation code, shown once, and when it
// expires.
type IssuedCode struct {
	keys.Code
	ExpiresAt time.Time
}

// Keys lists the key inventory (one query), then the unverified devices
// plugged in now (Status StatusUnverifiedDevice).
func (s *Service) Keys(ctx context.Context, a Actor) ([]KeyView, error) {
	if err := s.authorize(ctx, a, PermRead, "keys"); err != nil {
		return nil, err
	}
	ks, err := s.st.Keys(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]KeyView, len(ks), len(ks)+1)
	for i, k := range ks {
		out[i] = s.keyView(k)
	}
	return append(out, s.unverifiedViews()...), nil
}

// Key returns one key.
func (s *Service) Key(ctx context.Context, a Actor, serial string) (KeyView, error) {
	if err := s.authorize(ctx, a, PermRead, keyTarget(serial)); err != nil {
		return KeyView{}, err
	}
	return s.keyBySerial(ctx, serial)
}

// keyBySerial is one key as operations show it.
func (s *Service) keyBySerial(ctx context.Context, serial string) (KeyView, error) {
	k, err := s.st.KeyView(ctx, serial)
	if errors.Is(err, store.ErrNotFound) {
		return KeyView{}, fmt.Errorf("%w: %s", ErrUnknownSerial, serial)
	}
	if err != nil {
		return KeyView{}, err
	}
	return s.keyView(*k), nil
}

func keyTarget(serial string) string { return "key:" + serial }

// normalizeSerial trims a serial and rejects what cannot be one.
func normalizeSerial(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 64 || strings.ContainsFunc(s, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		return "", fmt.Errorf("serial %q: use 1 to 64 printable ASCII characters without spaces", s)
	}
	return s, nil
}

// AddKeys registers keys as Ready (from a list of serials). All are added
// or none: a serial already known is an error that names it.
func (s *Service) AddKeys(ctx context.Context, a Actor, serials []string) error {
	if err := s.authorize(ctx, a, PermKeyAdd, "keys"); err != nil {
		return err
	}
	if len(serials) == 0 {
		return errors.New("no serials given")
	}
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		for _, raw := range serials {
			serial, err := normalizeSerial(raw)
			if err != nil {
				return err
			}
			k := &store.Key{Serial: serial, Status: string(keys.StatusReady)}
			if err := tx.InsertKey(ctx, k); err != nil {
				return err
			}
			if err := s.audit(ctx, tx, a, "key.add", keyTarget(serial), store.OutcomeSuccess, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("add keys: %w", err)
	}
	s.publish(DataChanged{What: keysChanged})
	return nil
}

// keyChange is one lifecycle step for transition.
type keyChange struct {
	action   keys.Action
	reason   keys.Reason
	employee *store.Employee // for assign
	note     string          // the admin's words, for the audit entry
}

// transition applies one action to a key inside tx: the lifecycle table
// decides the new status, keys.Effects what else changes; the audit entry
// is written in the same transaction. It returns the new activation code,
// when the action issues one (the only time it exists in plain text).
func (s *Service) transition(ctx context.Context, tx *store.Tx, a Actor, k *store.Key, ch keyChange) (IssuedCode, error) {
	from := keys.Status(k.Status)
	to, reason, err := keys.Apply(from, ch.action, ch.reason)
	if err != nil {
		return IssuedCode{}, fmt.Errorf("key %s: %w", k.Serial, err)
	}
	eff := keys.Effects(ch.action)
	now := tx.Now()
	var code IssuedCode
	switch eff.Employee {
	case keys.Renew:
		id := ch.employee.ID
		k.EmployeeID = &id
	case keys.Clear:
		k.EmployeeID = nil
	}
	switch eff.Code {
	case keys.Renew:
		pepper, err := s.codePepper(ctx, tx)
		if err != nil {
			return code, err
		}
		if code.Code, err = keys.NewCode(); err != nil {
			return code, err
		}
		h, err := keys.HashCode(code.Code, pepper, keys.SecretBinding(k.ID, k.Serial))
		if err != nil {
			return code, err
		}
		code.ExpiresAt = now.Add(s.codeTTL())
		k.CodeHash, k.CodeExpiresAt, k.CodeAttempts = string(h), &code.ExpiresAt, 0
	case keys.Clear:
		k.CodeHash, k.CodeExpiresAt, k.CodeAttempts = "", nil, 0
	}
	switch eff.Secret {
	case keys.Renew, keys.Rotate:
		mk, err := s.masterKey(ctx, tx)
		if err != nil {
			return code, err
		}
		secret, err := keys.NewSecret()
		if err != nil {
			return code, err
		}
		sealed, err := mk.Seal(secret, keys.SecretBinding(k.ID, k.Serial))
		clear(secret)
		if err != nil {
			return code, err
		}
		// Rotate keeps the secret the device holds (an earlier one, if an
		// unlock already kept one: the device was not linked since).
		if eff.Secret == keys.Rotate && k.PrevSecretSealed == nil {
			k.PrevSecretSealed = k.SecretSealed
		}
		k.SecretSealed = sealed
	case keys.Clear:
		k.SecretSealed, k.PrevSecretSealed = nil, nil
	}
	if eff.PrevSecret == keys.Clear {
		k.PrevSecretSealed = nil
	}
	k.Status, k.Reason = string(to), string(reason)
	if err := tx.UpdateKey(ctx, k); err != nil {
		return code, err
	}
	// Every lifecycle change ends an activation under way.
	if err := tx.DeleteActivation(ctx, k.ID); err != nil {
		return code, err
	}
	details := map[string]any{"from": string(from), "to": string(to)}
	if reason != "" {
		details["reason"] = string(reason)
	}
	if k.EmployeeID != nil {
		details["employee"] = *k.EmployeeID
	}
	if ch.note != "" {
		details["note"] = ch.note
	}
	if eff.Code == keys.Renew {
		details["code_expires_at"] = k.CodeExpiresAt.Format(time.RFC3339)
	}
	return code, s.audit(ctx, tx, a, "key."+string(ch.action), keyTarget(k.Serial), store.OutcomeSuccess, details)
}

func (s *Service) codeTTL() time.Duration {
	if s.cfg.Keys.CodeTTL.Duration > 0 {
		return s.cfg.Keys.CodeTTL.Duration
	}
	return config.DefaultCodeTTL
}

// changeKey runs one admin action on a key in its own transaction.
func (s *Service) changeKey(ctx context.Context, a Actor, p Permission, serial string, ch keyChange) (IssuedCode, error) {
	if err := s.authorize(ctx, a, p, keyTarget(serial)); err != nil {
		return IssuedCode{}, err
	}
	var code IssuedCode
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		k, err := tx.KeyBySerial(ctx, serial)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w %q: add it with keydesk keys add, or plug it in", ErrUnknownSerial, serial)
		}
		if err != nil {
			return err
		}
		// A new code or an unlock is for the employee who holds the key: not
		// for one who left.
		if ch.action == keys.ActionRenewCode || ch.action == keys.ActionUnlock {
			if gone, err := ownerGone(ctx, tx, k); err != nil {
				return err
			} else if gone != "" {
				return fmt.Errorf("key %s: %s", serial, gone)
			}
		}
		code, err = s.transition(ctx, tx, a, k, ch)
		return err
	})
	if err != nil {
		return IssuedCode{}, err
	}
	s.publish(DataChanged{What: keysChanged})
	return code, nil
}

// AssignKey gives a Ready key to an employee (by id or email): the key
// becomes Reserved and the returned one-time activation code is shown once.
func (s *Service) AssignKey(ctx context.Context, a Actor, serial, employee string) (IssuedCode, error) {
	if err := s.authorize(ctx, a, PermKeyAssign, keyTarget(serial)); err != nil {
		return IssuedCode{}, err
	}
	var code IssuedCode
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		e, err := s.lookupEmployee(ctx, tx, employee)
		if err != nil {
			return err
		}
		if e.Status != store.StatusActive {
			return fmt.Errorf("employee %d (%s) is %s: only active employees get keys", e.ID, e.Email, e.Status)
		}
		k, err := tx.KeyBySerial(ctx, serial)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w %q: add it with keydesk keys add, or plug it in", ErrUnknownSerial, serial)
		}
		if err != nil {
			return err
		}
		code, err = s.transition(ctx, tx, a, k, keyChange{action: keys.ActionAssign, employee: e})
		return err
	})
	if err != nil {
		return IssuedCode{}, fmt.Errorf("assign key %s: %w", serial, err)
	}
	s.publish(DataChanged{What: keysChanged})
	return code, nil
}

// RenewCode issues a new activation code for a Reserved key.
func (s *Service) RenewCode(ctx context.Context, a Actor, serial string) (IssuedCode, error) {
	return s.changeKey(ctx, a, PermKeyRenewCode, serial, keyChange{action: keys.ActionRenewCode})
}

// SuspendKey takes an Active key out of service.
func (s *Service) SuspendKey(ctx context.Context, a Actor, serial, note string) error {
	_, err := s.changeKey(ctx, a, PermKeySuspend, serial, keyChange{action: keys.ActionSuspend, note: note})
	return err
}

// UnlockKey brings a Locked or Suspended key back to Reserved for its
// employee, with a new activation code (returned) and a new master secret:
// the old one may have been copied while the key was out of its owner's
// hands. The activation authenticates to the key with the old one, wipes
// it and links it with the new one.
func (s *Service) UnlockKey(ctx context.Context, a Actor, serial, note string) (IssuedCode, error) {
	return s.changeKey(ctx, a, PermKeyUnlock, serial, keyChange{action: keys.ActionUnlock, note: note})
}

// WithdrawKey takes a key away from its employee (Deactivated); plugged in
// again, it is wiped and returns to Ready.
func (s *Service) WithdrawKey(ctx context.Context, a Actor, serial, note string) error {
	_, err := s.changeKey(ctx, a, PermKeyWithdraw, serial, keyChange{action: keys.ActionWithdraw, note: note})
	return err
}

// CompromiseKey marks a key lost, stolen or broken. It is final.
func (s *Service) CompromiseKey(ctx context.Context, a Actor, serial string, reason keys.Reason, note string) error {
	_, err := s.changeKey(ctx, a, PermKeyCompromise, serial, keyChange{action: keys.ActionCompromise, reason: reason, note: note})
	return err
}

// deactivateLeaversKeys deactivates the keys of employees that were just
// marked removed, and ends their invitations, in the transaction that
// removed them: every path that ends an employee goes through here.
func (s *Service) deactivateLeaversKeys(ctx context.Context, tx *store.Tx, a Actor, removed []int64, why keys.Reason) (int, error) {
	if len(removed) == 0 {
		return 0, nil
	}
	// A leaver's enrollment code no longer enrolls anyone, and its mail
	// does not go.
	if err := tx.EndInvitations(ctx, removed); err != nil {
		return 0, err
	}
	ks, err := tx.KeysForEmployees(ctx, removed)
	if err != nil {
		return 0, err
	}
	for i := range ks {
		if _, err := s.transition(ctx, tx, a, &ks[i], keyChange{action: keys.ActionDeactivate, reason: why}); err != nil {
			return 0, err
		}
	}
	return len(ks), nil
}
