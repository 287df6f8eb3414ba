package app

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"keydesk/keys"
	"keydesk/rotation"
	"keydesk/store"
)

// AccountView is an account as the command line and the console show it.
type AccountView struct {
	Domain           string     `json:"domain"`
	ObjectGUID       string     `json:"object_guid"`
	ObjectSID        string     `json:"object_sid"`
	SAMAccountName   string     `json:"sam_account_name"`
	UPN              string     `json:"user_principal_name"`
	Mail             string     `json:"mail"`
	DisplayName      string     `json:"display_name"`
	GivenName        string     `json:"given_name"`
	SN               string     `json:"sn"`
	Department       string     `json:"department"`
	Title            string     `json:"title"`
	Company          string     `json:"company"`
	Telephone        string     `json:"telephone"`
	DN               string     `json:"dn"`
	Enabled          bool       `json:"enabled"`
	InSyncGroup      bool       `json:"in_sync_group"`
	PasswordRotation bool       `json:"password_rotation"`
	PwdLastSet       *time.Time `json:"pwd_last_set"`
	LeftReason       *string    `json:"left_reason"`
	LeftAt           *time.Time `json:"left_at"`
	// Rotation is where the password stands, for an account KeyDesk
	// manages (nil otherwise).
	Rotation *AccountRotation `json:"rotation,omitempty"`
}

// EmployeeView is an employee with its accounts; its JSON is the interface of
// `keydesk employees --json`.
type EmployeeView struct {
	ID          int64         `json:"id"`
	Email       *string       `json:"email"`
	DisplayName string        `json:"display_name"`
	Department  string        `json:"department"`
	Status      string        `json:"status"`
	Source      string        `json:"source"`
	Flags       []string      `json:"flags"`
	RemovedAt   *time.Time    `json:"removed_at"`
	Key         *EmployeeKey  `json:"key"` // the employee's key in use, if any
	Accounts    []AccountView `json:"accounts"`
	// ChangedAt is when the employee or one of their accounts last changed
	// (by a sync, or by hand).
	ChangedAt time.Time `json:"changed_at"`
}

// EmployeeKey is the key an employee holds (Reserved, Active, Locked or
// Suspended).
type EmployeeKey struct {
	Serial string `json:"serial"`
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

func viewEmployee(e *store.Employee) EmployeeView {
	v := EmployeeView{ID: e.ID, DisplayName: e.DisplayName, Department: e.Department, Status: e.Status,
		Source: e.Source, Flags: e.Flags(), RemovedAt: e.RemovedAt, ChangedAt: e.UpdatedAt, Accounts: []AccountView{}}
	if e.Email != "" {
		email := e.Email
		v.Email = &email
	}
	for _, a := range e.Accounts {
		if a.UpdatedAt.After(v.ChangedAt) {
			v.ChangedAt = a.UpdatedAt
		}
		av := AccountView{Domain: a.Domain, ObjectGUID: a.ObjectGUID, ObjectSID: a.ObjectSID, SAMAccountName: a.SAMAccountName,
			UPN: a.UPN, Mail: a.Mail, DisplayName: a.DisplayName, GivenName: a.GivenName, SN: a.SN, Department: a.Department,
			Title: a.Title, Company: a.Company, Telephone: a.Telephone, DN: a.DN, Enabled: a.Enabled,
			InSyncGroup: a.InSyncGroup, PasswordRotation: a.PasswordRotation, PwdLastSet: a.PwdLastSet, LeftAt: a.LeftAt}
		if a.LeftReason != "" {
			r := a.LeftReason
			av.LeftReason = &r
		}
		v.Accounts = append(v.Accounts, av)
	}
	return v
}

// Employees lists the employees, by name, that match filter (a query for
// ParseFilter; "" lists everyone).
func (s *Service) Employees(ctx context.Context, a Actor, filter string) ([]EmployeeView, error) {
	var out []EmployeeView
	err := s.EachEmployee(ctx, a, filter, func(v EmployeeView) error {
		out = append(out, v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []EmployeeView{}
	}
	return out, nil
}

// EachEmployee gives fn each employee that the filter finds, in the
// listing's order, read row by row with their keys and rotation states:
// `employees --json` streams in constant memory.
func (s *Service) EachEmployee(ctx context.Context, a Actor, filter string, fn func(EmployeeView) error) error {
	if err := s.authorize(ctx, a, PermRead, "employees"); err != nil {
		return err
	}
	f, err := ParseFilter(filter)
	if err != nil {
		return err
	}
	rv := s.rowViewer(ctx)
	return s.st.EachEmployee(ctx, func(e *store.EmployeeRow) error {
		v := rv(e)
		if f.Empty() || f.Match(v) {
			return fn(v)
		}
		return nil
	})
}

// Employee is one employee as the listing gives them, with their key and
// their accounts' rotation states: the console reads the details of the
// employee selected so, rather than holding everyone's.
func (s *Service) Employee(ctx context.Context, a Actor, id int64) (EmployeeView, error) {
	if err := s.authorize(ctx, a, PermRead, "employees"); err != nil {
		return EmployeeView{}, err
	}
	e, err := s.st.EmployeeRow(ctx, id)
	if err != nil {
		return EmployeeView{}, fmt.Errorf("read the details: %w", err) // the store names the employee
	}
	return s.rowViewer(ctx)(e), nil
}

// rowViewer makes the views of the store's employee rows, with the
// rotation state of each managed account (each domain's policy read
// once).
func (s *Service) rowViewer(ctx context.Context) func(*store.EmployeeRow) EmployeeView {
	now := s.now()
	pols := map[string]rotation.Policy{} // by domain: read once each
	return func(e *store.EmployeeRow) EmployeeView {
		v := viewEmployee(&e.Employee)
		if k := e.Key; k != nil {
			v.Key = &EmployeeKey{Serial: k.Serial, Status: k.Status, Reason: k.Reason}
		}
		for _, m := range e.Managed {
			d, ok := s.cfg.Domain(m.Domain)
			if !ok {
				continue
			}
			pol, ok := pols[m.Domain]
			if !ok {
				pol, _, _ = s.domainPolicy(ctx, *d, false)
				pols[m.Domain] = pol
			}
			r := s.rotationOf(m, *d, pol, now)
			for j := range e.Accounts {
				if e.Accounts[j].ID == m.ID {
					v.Accounts[j].Rotation = &r
				}
			}
		}
		return v
	}
}

// AddEmployee adds a manually managed employee (a person outside AD). An AD
// account with the same email later adopts it. Adding again a person
// removed by hand restores them (the same employee, with their history).
func (s *Service) AddEmployee(ctx context.Context, a Actor, email, name string) (EmployeeView, error) {
	if err := s.authorize(ctx, a, PermEmployeeAdd, "employee:"+strings.TrimSpace(email)); err != nil {
		return EmployeeView{}, err
	}
	addr, err := mail.ParseAddress(strings.TrimSpace(email))
	if err != nil || addr.Name != "" || !strings.Contains(addr.Address, "@") {
		return EmployeeView{}, fmt.Errorf("email %q is not an address such as anna@example.com", email)
	}
	name = strings.TrimSpace(name)
	if name == "" {
		return EmployeeView{}, fmt.Errorf("name is empty: give the person's name with --name")
	}
	e := store.Employee{EmailNorm: NormalizeEmail(addr.Address), Email: addr.Address, DisplayName: name, Status: store.StatusActive, Source: store.SourceManual}
	err = s.st.Update(ctx, func(tx *store.Tx) error {
		if ex, err := tx.EmployeeByEmail(ctx, e.EmailNorm); err == nil {
			accs, err := tx.EmployeeAccounts(ctx, ex.ID)
			if err != nil {
				return err
			}
			if ex.Status != store.StatusRemoved || ex.Source != store.SourceManual || len(accs) > 0 {
				return fmt.Errorf("%s is already employee %d (%s, %s, %s)", addr.Address, ex.ID, ex.DisplayName, ex.Source, ex.Status)
			}
			// A person removed by hand and added again is the same
			// employee, back: their history stays theirs.
			was := ex.RemovedAt
			ex.Status, ex.RemovedAt, ex.DisplayName, ex.Email = store.StatusActive, nil, name, addr.Address
			if err := tx.UpdateEmployee(ctx, ex); err != nil {
				return err
			}
			e = *ex
			return s.audit(ctx, tx, a, "employee.restore", employeeTarget(e.ID), store.OutcomeSuccess,
				map[string]any{"email": e.Email, "name": name, "removed_at": was.Format(time.RFC3339)})
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := tx.InsertEmployee(ctx, &e); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, "employee.add", employeeTarget(e.ID), store.OutcomeSuccess, map[string]any{"email": e.Email, "name": name})
	})
	if err != nil {
		return EmployeeView{}, fmt.Errorf("add employee: %w", err)
	}
	s.publish(DataChanged{What: ChangedEmployees | ChangedAudit})
	return viewEmployee(&e), nil
}

// RemoveEmployee marks a manually managed employee as removed (the record is
// kept). Employees from AD leave by leaving the sync group.
func (s *Service) RemoveEmployee(ctx context.Context, a Actor, idOrEmail string) (EmployeeView, error) {
	if err := s.authorize(ctx, a, PermEmployeeRemove, "employee:"+idOrEmail); err != nil {
		return EmployeeView{}, err
	}
	var out store.Employee
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		e, err := s.lookupEmployee(ctx, tx, idOrEmail)
		if err != nil {
			return err
		}
		accs, err := tx.EmployeeAccounts(ctx, e.ID)
		if err != nil {
			return err
		}
		if e.Source != store.SourceManual || len(accs) > 0 {
			return fmt.Errorf("employee %d (%s) comes from Active Directory: remove the account from the sync group in AD and sync", e.ID, e.Email)
		}
		if e.Status == store.StatusRemoved {
			return fmt.Errorf("employee %d (%s) is already removed", e.ID, e.Email)
		}
		now := tx.Now()
		e.Status, e.RemovedAt = store.StatusRemoved, &now
		if err := tx.UpdateEmployee(ctx, e); err != nil {
			return err
		}
		out = *e
		if err := s.audit(ctx, tx, a, "employee.remove", employeeTarget(e.ID), store.OutcomeSuccess, map[string]any{"email": e.Email}); err != nil {
			return err
		}
		_, err = s.deactivateLeaversKeys(ctx, tx, a, []int64{e.ID}, keys.ReasonEmployeeGone)
		return err
	})
	if err != nil {
		return EmployeeView{}, fmt.Errorf("remove employee %s: %w", idOrEmail, err)
	}
	s.publish(DataChanged{What: keysChanged})
	return viewEmployee(&out), nil
}

func (s *Service) lookupEmployee(ctx context.Context, tx *store.Tx, idOrEmail string) (*store.Employee, error) {
	if id, err := strconv.ParseInt(idOrEmail, 10, 64); err == nil {
		e, err := tx.Employee(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("no employee with id %d", id)
		}
		return e, nil
	}
	e, err := tx.EmployeeByEmail(ctx, NormalizeEmail(idOrEmail))
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("no employee with email %s", idOrEmail)
	}
	return e, err
}

func employeeTarget(id int64) string { return "employee:" + strconv.FormatInt(id, 10) }
