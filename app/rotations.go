package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"keydesk/config"
	"keydesk/keys"
	"keydesk/rotation"
	"keydesk/store"
)

// Rotations that fall due: each managed account is due when its password
// is older than its domain's rotation period (rotation.NextDue, from
// pwdLastSet as the last sync read it and KeyDesk's own record). The
// scheduler plans a scheduled change for each due account and carries on
// the changes that can go on without a person; a change for a key that is
// not plugged in waits for it (or, where the domain rotates and holds,
// changes AD now).

// policyTTL is how long a domain's password policy, once read, is used
// before it is read again.
const policyTTL = time.Hour

// quietBeforeRecovery is how long a change under way must have been left
// alone before the scheduler carries it on (a person's change at a kiosk
// is driven there; the scheduler takes up only what was cut off).
const quietBeforeRecovery = 2 * time.Minute

// Backoff of an account whose rotation failed: from minBackoff, doubling,
// up to maxBackoff.
const (
	minBackoff = time.Minute
	maxBackoff = time.Hour
)

type cachedPolicy struct {
	pol rotation.Policy
	at  time.Time
}

// rotationState is the scheduler's memory: the domains' policies and the
// accounts' backoff.
type rotationState struct {
	mu       sync.Mutex
	policies map[string]cachedPolicy
	backoff  map[int64]backoff
	driving  map[int64]bool // changes being driven in this process
}

// claim marks change id as being driven; false if it already is.
func (r *rotationState) claim(id int64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.driving[id] {
		return false
	}
	if r.driving == nil {
		r.driving = map[int64]bool{}
	}
	r.driving[id] = true
	return true
}

func (r *rotationState) release(id int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.driving, id)
}

type backoff struct {
	next  time.Time
	delay time.Duration
}

// domainPolicy is the domain's password policy, read at most once per
// policyTTL (cached: false reads nothing, and gives ok false when it was
// never read).
func (s *Service) domainPolicy(ctx context.Context, d config.Domain, read bool) (rotation.Policy, bool, error) {
	s.rot.mu.Lock()
	c, ok := s.rot.policies[d.Name]
	s.rot.mu.Unlock()
	if !read || ok && s.now().Sub(c.at) < policyTTL {
		return c.pol, ok, nil
	}
	conn, err := dialService(ctx, d)
	if err != nil {
		return rotation.Policy{}, false, err
	}
	defer conn.Close()
	pol, err := conn.DomainPolicy(ctx, d.BaseDN, d.Name)
	if err != nil {
		return rotation.Policy{}, false, err
	}
	s.rot.mu.Lock()
	if s.rot.policies == nil {
		s.rot.policies = map[string]cachedPolicy{}
	}
	s.rot.policies[d.Name] = cachedPolicy{pol: pol, at: s.now()}
	s.rot.mu.Unlock()
	return pol, true, nil
}

// failed and succeeded keep the accounts' backoff.
func (s *Service) failed(id int64) {
	s.rot.mu.Lock()
	defer s.rot.mu.Unlock()
	if s.rot.backoff == nil {
		s.rot.backoff = map[int64]backoff{}
	}
	b := s.rot.backoff[id]
	b.delay = min(max(minBackoff, 2*b.delay), maxBackoff)
	b.next = s.now().Add(b.delay)
	s.rot.backoff[id] = b
}

func (s *Service) succeeded(id int64) {
	s.rot.mu.Lock()
	defer s.rot.mu.Unlock()
	delete(s.rot.backoff, id)
}

func (s *Service) backingOff(id int64) (time.Time, bool) {
	s.rot.mu.Lock()
	defer s.rot.mu.Unlock()
	b, ok := s.rot.backoff[id]
	return b.next, ok && s.now().Before(b.next)
}

// The states of a managed account's rotation.
const (
	RotationOK         = "ok"
	RotationDue        = "due"
	RotationWaitingKey = "waiting for key"
	RotationHeld       = "held for key"
	RotationUnderWay   = "under way"
	RotationRetrying   = "retrying"
	RotationFailed     = "failed"
	RotationNoKey      = "no active key"
)

// AccountRotation is where a managed account's password stands.
type AccountRotation struct {
	Employee  string     `json:"employee"`
	Account   string     `json:"account"` // DOMAIN\sAMAccountName
	Domain    string     `json:"domain"`
	Key       string     `json:"key,omitempty"`
	KeyStatus string     `json:"key_status,omitempty"`
	Changed   *time.Time `json:"last_changed,omitempty"` // when AD last got a password for it
	// NextDue is when it is next due (zero: now); DueWhy says what set it.
	NextDue time.Time `json:"next_due"`
	DueWhy  string    `json:"due_why"`
	State   string    `json:"state"` // one of the Rotation* values
	// Detail is what it waits for, or why it failed; Since when.
	Detail string     `json:"detail,omitempty"`
	Since  *time.Time `json:"since,omitempty"`
	Change int64      `json:"change,omitempty"` // the change under way, or the failed one
}

// Due reports whether the rotation is due at now.
func (r AccountRotation) Due(now time.Time) bool { return !r.NextDue.After(now) }

// ChangeView is one password change of the journal (no password).
type ChangeView struct {
	ID       int64      `json:"id"`
	Account  string     `json:"account"`
	Kind     string     `json:"kind"`
	Order    string     `json:"order"`
	Step     string     `json:"step"`
	Error    string     `json:"error,omitempty"`
	Actor    string     `json:"actor"`
	Attempts int        `json:"attempts"`
	Created  time.Time  `json:"created"`
	Updated  time.Time  `json:"updated"`
	Finished *time.Time `json:"finished,omitempty"`
}

// RotationReport is the schedule and the journal.
type RotationReport struct {
	Accounts []AccountRotation `json:"accounts"`
	Recent   []ChangeView      `json:"recent"`
	// Scheduler is the process that runs the scheduled rotations ("":
	// none is running).
	Scheduler string `json:"scheduler"`
}

// recentChanges is how many changes the report lists.
const recentChanges = 50

// Rotations reports where each managed account's password stands (last
// changed, next due, what waits for a key, what failed and why) and the
// recent changes. It reads only the database (and the policies the
// scheduler read).
func (s *Service) Rotations(ctx context.Context, a Actor) (RotationReport, error) {
	var rep RotationReport
	if err := s.authorize(ctx, a, PermRead, "rotations"); err != nil {
		return rep, err
	}
	var err error
	if rep.Accounts, _, err = s.accountRotations(ctx); err != nil {
		return rep, err
	}
	cs, err := s.st.RecentPasswordChanges(ctx, recentChanges)
	if err != nil {
		return rep, err
	}
	for _, c := range cs {
		rep.Recent = append(rep.Recent, ChangeView{ID: c.ID, Account: c.Domain + `\` + c.SAMAccountName, Kind: c.Kind, Order: c.Order, Step: c.Step, Error: c.Error,
			Actor: c.Actor, Attempts: c.Attempts, Created: c.CreatedAt, Updated: c.UpdatedAt, Finished: c.FinishedAt})
	}
	rep.Scheduler, _, err = s.st.LeaseHolder(ctx, schedulerLease)
	return rep, err
}

// accountRotations is where each managed account's password stands, in
// the order of ManagedAccounts, with their account ids (one query; the
// policies the scheduler read, no directory I/O).
func (s *Service) accountRotations(ctx context.Context) ([]AccountRotation, []int64, error) {
	ms, err := s.st.ManagedAccounts(ctx)
	if err != nil {
		return nil, nil, err
	}
	now := s.now()
	var out []AccountRotation
	var ids []int64
	for _, m := range ms {
		if d, ok := s.cfg.Domain(m.Domain); ok {
			pol, _, _ := s.domainPolicy(ctx, *d, false)
			out = append(out, s.rotationOf(m, *d, pol, now))
			ids = append(ids, m.ID)
		}
	}
	return out, ids, nil
}

// lastSet is when AD last got a password for the account, as far as
// KeyDesk knows.
func lastSet(m store.ManagedAccount) *time.Time {
	t := m.PwdLastSet
	if m.LastInAD != nil && (t == nil || m.LastInAD.After(*t)) {
		t = m.LastInAD
	}
	return t
}

// rotationOf says where the account's password stands at now.
func (s *Service) rotationOf(m store.ManagedAccount, d config.Domain, pol rotation.Policy, now time.Time) AccountRotation {
	r := AccountRotation{Employee: m.Email, Account: accountLabel(&m.Account), Domain: m.Domain, Key: m.KeySerial, KeyStatus: m.KeyStatus, Changed: lastSet(m)}
	f := rotation.ScheduleFacts{OnKey: m.LastOnKey != nil, Period: d.Passwords.RotationPeriod.Duration, MinAge: pol.MinAge, MaxAge: pol.MaxAge}
	if r.Changed != nil {
		f.LastSet = *r.Changed
	}
	r.NextDue, r.DueWhy = rotation.NextDue(f)
	r.State = RotationOK
	if r.Due(now) {
		r.State = RotationDue
	}
	if c := m.Open; c != nil {
		r.Change = c.ID
		switch {
		case c.Step == string(rotation.StepFailed) && (c.Kind == KindSelfKey || c.Kind == KindSelfBoth):
			// A person's own change that did not go through leaves the
			// rotation as it was: it is only mentioned.
			r.Change, r.Detail = 0, "the last change by the person at the key did not go through: "+c.Error
		case c.Step == string(rotation.StepFailed):
			// The last change failed: the account is due again (after
			// its backoff), and what failed is shown.
			r.State, r.Detail, r.Since = RotationFailed, c.Error, c.FinishedAt
			if !c.Closed() {
				r.Detail += " (the key still holds the abandoned password as pending: it is dropped when the key is plugged in)"
			}
		case c.Error != "":
			r.State, r.Detail, r.Since = RotationRetrying, c.Error, &c.UpdatedAt
		case c.Step == string(rotation.StepADWritten) && !s.devices.plugged(m.KeySerial):
			r.State, r.Since = RotationHeld, &c.UpdatedAt
			r.Detail = "AD has the new password; it is held sealed until key " + m.KeySerial + " is plugged in"
		case (c.Step == string(rotation.StepPlanned) || c.Step == string(rotation.StepKeyPending)) && c.Order != string(rotation.ADFirst) && !s.devices.plugged(m.KeySerial):
			r.State, r.Since = RotationWaitingKey, &c.CreatedAt
			r.Detail = "key " + m.KeySerial + " must be plugged in"
		default:
			r.State, r.Since = RotationUnderWay, &c.UpdatedAt
			r.Detail = c.Step
		}
	}
	if m.KeyID == nil || keys.Status(m.KeyStatus) != keys.StatusActive {
		r.State, r.NextDue, r.DueWhy, r.Detail = RotationNoKey, time.Time{}, "", ""
		if m.KeyID != nil {
			r.Detail = "key " + m.KeySerial + " is " + m.KeyStatus
		}
	}
	return r
}

// RotateDue runs the rotations that are due now (in one domain when domain
// is not ""), as the scheduler does, and carries on the changes under way
// that can go on without a person.
func (s *Service) RotateDue(ctx context.Context, a Actor, domain string) ([]ChangeResult, error) {
	if err := s.authorize(ctx, a, PermPasswordRotate, "rotations"); err != nil {
		return nil, err
	}
	if domain != "" {
		if _, ok := s.cfg.Domain(domain); !ok {
			return nil, fmt.Errorf("no domain %q in the configuration", domain)
		}
	}
	return s.rotateDue(ctx, a, domain)
}

// rotateDue is one pass of the schedule: per domain, at most the domain's
// concurrency at once; an account that failed waits for its backoff.
func (s *Service) rotateDue(ctx context.Context, a Actor, domain string) ([]ChangeResult, error) {
	if s.master == nil {
		return nil, nil
	}
	ms, err := s.st.ManagedAccounts(ctx)
	if err != nil {
		return nil, err
	}
	byDomain := map[string][]store.ManagedAccount{}
	for _, m := range ms {
		if domain == "" || m.Domain == domain {
			byDomain[m.Domain] = append(byDomain[m.Domain], m)
		}
	}
	var (
		mu   sync.Mutex
		out  []ChangeResult
		errs []error
		wg   sync.WaitGroup
	)
	for name, accts := range byDomain {
		d, ok := s.cfg.Domain(name)
		if !ok {
			continue
		}
		pol, _, err := s.domainPolicy(ctx, *d, true)
		if err != nil {
			mu.Lock()
			errs = append(errs, fmt.Errorf("domain %s: read its password policy: %w", name, err))
			mu.Unlock()
			continue
		}
		sem := make(chan struct{}, d.Passwords.Concurrency)
		for _, m := range accts {
			work := s.rotationWork(m, *d, pol)
			if work == nil {
				continue
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
			}
			if ctx.Err() != nil {
				break
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				r, err := work(ctx, a)
				if err != nil {
					s.failed(m.ID)
				} else {
					s.succeeded(m.ID)
				}
				mu.Lock()
				defer mu.Unlock()
				if r.ID != 0 {
					out = append(out, r)
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", accountLabel(&m.Account), err))
				}
			}()
		}
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// rotationWork is what the schedule does for the account now (nil:
// nothing): carry on its change under way when that can go on without a
// person, or plan and carry out a scheduled change when it is due.
func (s *Service) rotationWork(m store.ManagedAccount, d config.Domain, pol rotation.Policy) func(context.Context, Actor) (ChangeResult, error) {
	if m.KeyID == nil || keys.Status(m.KeyStatus) != keys.StatusActive {
		return nil
	}
	if _, wait := s.backingOff(m.ID); wait {
		return nil
	}
	now := s.now()
	r := s.rotationOf(m, d, pol, now)
	switch r.State {
	case RotationUnderWay, RotationRetrying, RotationHeld, RotationWaitingKey:
		if r.State == RotationWaitingKey || r.State == RotationHeld {
			return nil // the key's plug-in carries it on
		}
		if now.Sub(m.Open.UpdatedAt) < quietBeforeRecovery {
			return nil // probably being driven, here or by another process
		}
		id := m.Open.ID
		return func(ctx context.Context, a Actor) (ChangeResult, error) {
			return s.driveChange(ctx, a, id, changeInput{})
		}
	case RotationDue, RotationFailed:
		if !r.Due(now) {
			return nil
		}
		acct := m.Account
		set := r.Changed
		return func(ctx context.Context, a Actor) (ChangeResult, error) {
			res, _, err := s.changePassword(ctx, a, changePlan{kind: KindScheduled, acct: acct, lastSet: set})
			return res, err
		}
	}
	return nil
}

// schedulerLease is the lease that makes one process the scheduler.
const schedulerLease = "scheduler"
