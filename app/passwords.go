package app

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"keydesk/config"
	"keydesk/keys"
	"keydesk/ldapsync"
	"keydesk/rotation"
	"keydesk/store"
)

// Domain passwords. For the members of a domain's password group, KeyDesk
// owns the domain password: a change is planned (the new password chosen
// against the account's policy and sealed in the journal), then carried out
// step by step (journal.go) on the employee's key and in AD, so that nobody
// is ever locked out. The operations here check permissions and choose the
// accounts; journal.go does the work.

// The kinds of change (the journal's kind column).
const (
	KindActivation = "activation" // the first password, when a key is activated
	KindScheduled  = "scheduled"  // a rotation that fell due
	KindRotate     = "rotate"     // an admin's rotate now
	KindGenerate   = "generate"   // an admin's generate
	KindSet        = "set"        // a password an admin typed
	KindSelfKey    = "self-key"   // a user's change on the key only
	KindSelfBoth   = "self-both"  // a user's change on the key and in AD
)

// keySlotLimit bounds the slot numbers KeyDesk gives out (the protocol's
// limit; a key with fewer slots refuses the write, and says so).
const keySlotLimit = 255

// rotationActor carries out the rotations that fall due and the recovery of
// cut-off changes.
var rotationActor = Actor{Name: "scheduler:passwords", Role: RoleAdmin, Auth: Auth{Method: AuthSystem}}

// passwordBinding binds a sealed journal password to its account: a sealed
// value copied to another account's row does not open.
func passwordBinding(accountID int64) string {
	return "password-change:account=" + strconv.FormatInt(accountID, 10)
}

// accountTarget names an account in the audit log.
func accountTarget(a *store.Account) string { return "account:" + a.Domain + `\` + a.SAMAccountName }

// accountLabel is DOMAIN\sAMAccountName, for messages.
func accountLabel(a *store.Account) string { return a.Domain + `\` + a.SAMAccountName }

// credentialLogin is the login the key types for the account: its UPN, or
// its sAMAccountName when it has none.
func credentialLogin(a *store.Account) string {
	if a.UPN != "" {
		return a.UPN
	}
	return a.SAMAccountName
}

// managed reports whether KeyDesk manages the account's password: it is a
// member of the sync group and of the password group, and has not left.
func managed(a *store.Account) bool { return a.PasswordRotation && a.InSyncGroup && a.LeftReason == "" }

// ChangeResult says how far a password change got.
type ChangeResult struct {
	ID      int64
	Account string // DOMAIN\sAMAccountName
	Kind    string
	Order   string
	Step    string
	// Waiting says what the change waits for ("" when it is closed or
	// failed).
	Waiting string
	// Err is why it failed, or the last error of a change that will be
	// retried.
	Err string
}

// Done reports whether the change is finished and the key holds the new
// password.
func (r ChangeResult) Done() bool { return r.Step == string(rotation.StepDone) }

func resultOf(c *store.PasswordChange, acct *store.Account, waiting string) ChangeResult {
	return ChangeResult{ID: c.ID, Account: accountLabel(acct), Kind: c.Kind, Order: c.Order, Step: c.Step, Waiting: waiting, Err: c.Error}
}

// errNotYet: a scheduled rotation before the account's minimum password
// age has passed.
var errNotYet = errors.New("not yet due: the minimum password age has not passed")

// ErrNotManaged: the account is not one whose password KeyDesk manages.
var ErrNotManaged = errors.New("KeyDesk does not manage this account's password")

// managedAccounts finds the employee's managed accounts, in one domain when
// domain is not "".
func (s *Service) managedAccounts(ctx context.Context, employee, domain string) (*store.Employee, []store.Account, error) {
	var e *store.Employee
	var out []store.Account
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		var err error
		if e, err = s.lookupEmployee(ctx, tx, employee); err != nil {
			return err
		}
		accts, err := tx.EmployeeAccounts(ctx, e.ID)
		if err != nil {
			return err
		}
		var others []string
		for _, a := range accts {
			if domain != "" && !strings.EqualFold(a.Domain, domain) {
				continue
			}
			if managed(&a) {
				out = append(out, a)
			} else {
				others = append(others, accountLabel(&a))
			}
		}
		if len(out) == 0 {
			d := "any domain"
			if domain != "" {
				d = "domain " + domain
			}
			msg := fmt.Sprintf("%s has no account in the password group of %s", e.Email, d)
			if len(others) > 0 {
				msg += " (" + strings.Join(others, ", ") + " is not a member: add it to the domain's password group, then sync)"
			}
			return fmt.Errorf("%w: %s", ErrNotManaged, msg)
		}
		return nil
	})
	return e, out, err
}

// domainOf is the configuration of the account's domain.
func (s *Service) domainOf(acct *store.Account) (config.Domain, error) {
	d, ok := s.cfg.Domain(acct.Domain)
	if !ok {
		return config.Domain{}, fmt.Errorf("account %s: domain %s is no longer configured", accountLabel(acct), acct.Domain)
	}
	return *d, nil
}

// dialService connects to the domain as its service account.
func dialService(ctx context.Context, d config.Domain) (*ldapsync.Conn, error) {
	pw, err := d.BindPassword()
	if err != nil {
		return nil, err
	}
	return ldapsync.Dial(ctx, d, pw)
}

// accountPolicy reads the password policy that applies to the account:
// the domain's, or its fine-grained policy.
func (s *Service) accountPolicy(ctx context.Context, d config.Domain, acct *store.Account) (rotation.Policy, error) {
	conn, err := dialService(ctx, d)
	if err != nil {
		return rotation.Policy{}, err
	}
	defer conn.Close()
	dp, err := conn.DomainPolicy(ctx, d.BaseDN, d.Name)
	if err != nil {
		return rotation.Policy{}, err
	}
	return conn.UserPolicy(ctx, acct.DN, dp)
}

// changePlan is a change to plan.
type changePlan struct {
	kind     string
	acct     store.Account
	password string // "" generates one
	// keyID, for an activation: the key being activated (else the
	// employee's Active key).
	keyID *int64
	// lastSet, for a scheduled change: when AD last got a password for
	// the account (the change waits for the minimum age of the account's
	// policy since then).
	lastSet *time.Time
}

// planChange chooses the new password (generated, or the one given,
// checked against the account's policy first: nothing is written for a
// password the policy refuses), picks the key and its slot, and records
// the change as planned with the password sealed. The order is key first,
// or AD first when the key is away and the domain rotates and holds.
func (s *Service) planChange(ctx context.Context, a Actor, p changePlan) (*store.PasswordChange, string, error) {
	acct := &p.acct
	mk, err := s.masterKey(ctx, nil)
	if err != nil {
		return nil, "", err
	}
	d, err := s.domainOf(acct)
	if err != nil {
		return nil, "", err
	}
	pol, err := s.accountPolicy(ctx, d, acct)
	if err != nil {
		return nil, "", fmt.Errorf("read the password policy of %s: %w", accountLabel(acct), err)
	}
	if p.kind == KindScheduled && p.lastSet != nil && pol.MinAge > 0 {
		if ok := p.lastSet.Add(pol.MinAge); s.now().Before(ok) {
			return nil, "", fmt.Errorf("%w: %s was changed on %s and %s holds it until %s", errNotYet, accountLabel(acct),
				p.lastSet.Format(time.RFC3339), pol.Source, ok.Format(time.RFC3339))
		}
	}
	who := rotation.Account{SAMAccountName: acct.SAMAccountName, DisplayName: acct.DisplayName}
	pw := p.password
	switch {
	case pw == "":
		if pw, err = rotation.Generate(pol, who, rotation.Options{Length: d.Passwords.Length, LayoutSafe: d.Passwords.LayoutSafe}); err != nil {
			return nil, "", fmt.Errorf("generate a password for %s: %w", accountLabel(acct), err)
		}
	case p.kind == KindSelfKey:
		// AD already has it (a bind proved it): nothing to check.
	default:
		if err := rotation.Check(pol, who, pw); err != nil {
			return nil, "", fmt.Errorf("the password for %s: %w; nothing was changed", accountLabel(acct), err)
		}
	}
	c := &store.PasswordChange{AccountID: acct.ID, Kind: p.kind, Step: string(rotation.StepPlanned), Actor: a.Name}
	var moved *store.PasswordChange // a held password moved to this key instead
	err = s.st.Update(ctx, func(tx *store.Tx) error {
		cur, err := tx.Account(ctx, acct.ID)
		if err != nil {
			return err
		}
		if !managed(cur) {
			return fmt.Errorf("%w: %s left the password group or the sync group", ErrNotManaged, accountLabel(cur))
		}
		var k *store.Key
		if p.keyID != nil {
			k, err = tx.KeyByID(ctx, *p.keyID)
		} else {
			k, err = tx.KeyForEmployee(ctx, cur.EmployeeID)
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("%s has no key: a password KeyDesk sets must go onto the employee's active key (assign one and activate it)", accountLabel(cur))
			}
		}
		if err != nil {
			return err
		}
		if p.keyID == nil && keys.Status(k.Status) != keys.StatusActive {
			return fmt.Errorf("%s: key %s is %s: a password KeyDesk sets must go onto an active key", accountLabel(cur), k.Serial, k.Status)
		}
		c.Order = string(rotation.KeyFirst)
		if p.kind == KindSelfKey {
			c.Order = string(rotation.KeyOnly)
		} else if !s.devices.plugged(k.Serial) && d.Passwords.Offline == config.OfflineRotateAndHold && p.kind != KindSelfBoth {
			c.Order = string(rotation.ADFirst)
		}
		if moved, err = s.supersede(ctx, tx, a, cur, k.ID); err != nil || moved != nil {
			return err
		}
		slot, err := tx.CredentialSlot(ctx, k.ID, cur.ID, keySlotLimit)
		if err != nil {
			return err
		}
		c.KeyID, c.Slot = &k.ID, &slot
		if c.PasswordSealed, err = mk.Seal([]byte(pw), passwordBinding(cur.ID)); err != nil {
			return err
		}
		if err := tx.InsertPasswordChange(ctx, c); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, "password.planned", accountTarget(cur), store.OutcomeSuccess,
			map[string]any{"change": c.ID, "kind": c.Kind, "order": c.Order, "key": k.Serial, "slot": slot, "policy": pol.Source})
	})
	if err != nil {
		return nil, "", fmt.Errorf("plan a password change for %s: %w", accountLabel(acct), err)
	}
	s.publish(DataChanged{What: passwordsChanged})
	if moved != nil {
		return moved, "", errMovedHeld
	}
	return c, pw, nil
}

// errMovedHeld: instead of a new change, a password AD has and that was
// held for the employee's former key goes to their key (planChange returns
// that change).
var errMovedHeld = errors.New("a held password goes to the employee's key first")

// passwordsChanged is what a password change touches.
const passwordsChanged = ChangedPasswords | ChangedEmployees | ChangedAudit

// RotatePasswords rotates now the passwords of the employee's managed
// accounts (in one domain when domain is not ""): each gets a new generated
// password, on the key and in AD. A rotation whose key is not plugged in
// waits for it (or, where the domain rotates and holds, changes AD now and
// holds the password for the key).
func (s *Service) RotatePasswords(ctx context.Context, a Actor, employee, domain string) ([]ChangeResult, error) {
	if err := s.authorize(ctx, a, PermPasswordRotate, "employee:"+employee); err != nil {
		return nil, err
	}
	_, accts, err := s.managedAccounts(ctx, employee, domain)
	if err != nil {
		return nil, err
	}
	var out []ChangeResult
	var errs []error
	for _, acct := range accts {
		r, _, err := s.changePassword(ctx, a, changePlan{kind: KindRotate, acct: acct})
		if r.ID != 0 {
			out = append(out, r)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return out, errors.Join(errs...)
}

// SetPassword sets the password an admin typed for the employee's managed
// account in domain (which may be "" when there is only one), on the key
// and in AD, after checking it against the account's policy.
func (s *Service) SetPassword(ctx context.Context, a Actor, employee, domain, password string) (ChangeResult, error) {
	if err := s.authorize(ctx, a, PermPasswordSet, "employee:"+employee); err != nil {
		return ChangeResult{}, err
	}
	if password == "" {
		return ChangeResult{}, errors.New("the password is empty: nothing was changed")
	}
	acct, err := s.oneManagedAccount(ctx, employee, domain)
	if err != nil {
		return ChangeResult{}, err
	}
	r, _, err := s.changePassword(ctx, a, changePlan{kind: KindSet, acct: acct, password: password})
	return r, err
}

// GeneratePassword gives the employee's managed account in domain a new
// generated password, on the key and in AD. With reveal (which needs
// password.reveal too, and is audited as a reveal) it returns the password.
func (s *Service) GeneratePassword(ctx context.Context, a Actor, employee, domain string, reveal bool) (ChangeResult, string, error) {
	if err := s.authorize(ctx, a, PermPasswordSet, "employee:"+employee); err != nil {
		return ChangeResult{}, "", err
	}
	if reveal {
		if err := s.authorize(ctx, a, PermPasswordReveal, "employee:"+employee); err != nil {
			return ChangeResult{}, "", err
		}
	}
	acct, err := s.oneManagedAccount(ctx, employee, domain)
	if err != nil {
		return ChangeResult{}, "", err
	}
	r, pw, err := s.changePassword(ctx, a, changePlan{kind: KindGenerate, acct: acct})
	if !reveal || r.ID == 0 {
		return r, "", err
	}
	if aerr := s.auditReveal(ctx, a, &acct, r.ID, "generated"); aerr != nil {
		return r, "", errors.Join(err, aerr)
	}
	return r, pw, err
}

// RevealPassword shows the password that AD has and the journal holds for
// the employee's account in domain, until the key gets it (rotate and
// hold): an emergency, admin only, audited as a reveal.
func (s *Service) RevealPassword(ctx context.Context, a Actor, employee, domain string) (string, error) {
	if err := s.authorize(ctx, a, PermPasswordReveal, "employee:"+employee); err != nil {
		return "", err
	}
	acct, err := s.oneManagedAccount(ctx, employee, domain)
	if err != nil {
		return "", err
	}
	mk, err := s.masterKey(ctx, nil)
	if err != nil {
		return "", err
	}
	var pw []byte
	err = s.st.Update(ctx, func(tx *store.Tx) error {
		c, err := tx.OpenPasswordChange(ctx, acct.ID)
		if err != nil {
			return err
		}
		if c == nil || rotation.Step(c.Step) != rotation.StepADWritten {
			return fmt.Errorf("%s: no password is held for it (only a password that AD has and its key has not yet received can be revealed)", accountLabel(&acct))
		}
		if pw, err = mk.Open(c.PasswordSealed, passwordBinding(acct.ID)); err != nil {
			return fmt.Errorf("open the held password of %s: %w", accountLabel(&acct), err)
		}
		return s.audit(ctx, tx, a, "password.reveal", accountTarget(&acct), store.OutcomeSuccess, map[string]any{"change": c.ID, "what": "held"})
	})
	if err != nil {
		return "", err
	}
	s.publish(DataChanged{What: ChangedAudit})
	return string(pw), nil
}

func (s *Service) auditReveal(ctx context.Context, a Actor, acct *store.Account, change int64, what string) error {
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		return s.audit(ctx, tx, a, "password.reveal", accountTarget(acct), store.OutcomeSuccess, map[string]any{"change": change, "what": what})
	})
	s.publish(DataChanged{What: ChangedAudit})
	return err
}

// oneManagedAccount is the employee's one managed account in domain; with
// domain "", the employee must have exactly one.
func (s *Service) oneManagedAccount(ctx context.Context, employee, domain string) (store.Account, error) {
	_, accts, err := s.managedAccounts(ctx, employee, domain)
	if err != nil {
		return store.Account{}, err
	}
	if len(accts) > 1 {
		names := make([]string, len(accts))
		for i := range accts {
			names[i] = accts[i].Domain
		}
		return store.Account{}, fmt.Errorf("%s has managed accounts in %s: name one with --domain", employee, strings.Join(names, ", "))
	}
	return accts[0], nil
}

// changePassword plans a change and carries it out as far as it can go now.
func (s *Service) changePassword(ctx context.Context, a Actor, p changePlan) (ChangeResult, string, error) {
	c, pw, err := s.planChange(ctx, a, p)
	if errors.Is(err, errMovedHeld) {
		// AD has the password held for the former key: the key gets it.
		// That is the activation's first password, or a rotation's; what
		// an admin asked for is planned once it is done.
		r, derr := s.driveChange(ctx, a, c.ID, changeInput{})
		if derr != nil || !r.Done() || p.kind == KindActivation || p.kind == KindScheduled || p.kind == KindRotate {
			return r, "", derr
		}
		c, pw, err = s.planChange(ctx, a, p)
	}
	if errors.Is(err, store.ErrChangeUnderWay) && (p.kind == KindRotate || p.kind == KindScheduled) {
		// A rotation asked for while one is under way finishes that one.
		open, oerr := s.openChange(ctx, p.acct.ID)
		if oerr != nil || open == nil {
			return ChangeResult{}, "", errors.Join(err, oerr)
		}
		r, err := s.driveChange(ctx, a, open.ID, changeInput{})
		return r, "", err
	}
	if err != nil {
		return ChangeResult{}, "", err
	}
	if err := s.hookAt(c.ID, string(rotation.StepPlanned)); err != nil {
		return ChangeResult{ID: c.ID, Account: accountLabel(&p.acct), Kind: c.Kind, Order: c.Order, Step: c.Step}, pw, err
	}
	r, err := s.driveChange(ctx, a, c.ID, changeInput{})
	return r, pw, err
}

// openChange is the account's change under way (nil: none).
func (s *Service) openChange(ctx context.Context, accountID int64) (*store.PasswordChange, error) {
	var c *store.PasswordChange
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		var err error
		c, err = tx.OpenPasswordChange(ctx, accountID)
		return err
	})
	return c, err
}
