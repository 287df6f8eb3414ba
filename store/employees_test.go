package store

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// requireAllSet fails when a field of the struct v is its zero value, so
// that a round trip really covers every field. skip names fields that the
// test sets on purpose to zero or that the store fills in.
func requireAllSet(t *testing.T, v any, skip ...string) {
	t.Helper()
	rv := reflect.ValueOf(v)
	for i := 0; i < rv.NumField(); i++ {
		name := rv.Type().Field(i).Name
		if containsName(skip, name) {
			continue
		}
		if rv.Field(i).IsZero() {
			t.Fatalf("fixture %T leaves %s zero: the round trip would not cover it", v, name)
		}
	}
}

func containsName(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// equalFields compares two structs field by field, comparing time.Time and
// *time.Time by instant, and reports the fields that differ.
func equalFields(t *testing.T, what string, got, want any, skip ...string) {
	t.Helper()
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	timeType := reflect.TypeOf(time.Time{})
	for i := 0; i < g.NumField(); i++ {
		name := g.Type().Field(i).Name
		if containsName(skip, name) {
			continue
		}
		gf, wf := g.Field(i), w.Field(i)
		var same bool
		switch {
		case gf.Type() == timeType:
			same = gf.Interface().(time.Time).Equal(wf.Interface().(time.Time))
		case gf.Type() == reflect.PointerTo(timeType):
			same = timePtrEqual(gf.Interface().(*time.Time), wf.Interface().(*time.Time))
		default:
			same = reflect.DeepEqual(gf.Interface(), wf.Interface())
		}
		if !same {
			t.Errorf("%s.%s = %v, want %v", what, name, gf.Interface(), wf.Interface())
		}
	}
}

func tp(t time.Time) *time.Time { return &t }

func insertEmployee(t *testing.T, s *Store, e *Employee) {
	t.Helper()
	update(t, s, func(ctx context.Context, tx *Tx) error { return tx.InsertEmployee(ctx, e) })
}

func insertAccount(t *testing.T, s *Store, a *Account) {
	t.Helper()
	update(t, s, func(ctx context.Context, tx *Tx) error { return tx.InsertAccount(ctx, a) })
}

func getEmployee(t *testing.T, s *Store, id int64) *Employee {
	t.Helper()
	e, err := s.Employee(context.Background(), id)
	if err != nil {
		t.Fatalf("Employee(%d): %v", id, err)
	}
	return e
}

func TestEmployeeRoundTrip(t *testing.T) {
	removed := time.Date(2024, 11, 5, 17, 30, 0, 123456789, time.UTC)
	tests := []struct {
		name   string
		insert Employee
		update Employee // ID is filled in
	}{
		{
			name: "every field set, then changed",
			insert: Employee{EmailNorm: "ann.lee@corp.example.com", Email: "Ann.Lee@Corp.example.com", DisplayName: "Ann Lee",
				Department: "Finance", Status: StatusRemoved, Source: SourceManual, RemovedAt: &removed},
			update: Employee{EmailNorm: "ann@example.org", Email: "Ann@Example.org", DisplayName: "Ann Lee-Park",
				Department: "Legal", Status: StatusActive, Source: SourceAD, RemovedAt: nil},
		},
		{
			name:   "no email, nil time, then set",
			insert: Employee{DisplayName: "No Mail", Status: StatusActive, Source: SourceAD},
			update: Employee{EmailNorm: "now@example.com", Email: "now@example.com", DisplayName: "Has Mail", Department: "IT",
				Status: StatusRemoved, Source: SourceManual, RemovedAt: tp(removed.In(time.FixedZone("X", -7*3600)))},
		},
	}
	requireAllSet(t, tests[0].insert, "ID", "CreatedAt", "UpdatedAt", "Accounts")
	requireAllSet(t, tests[1].update, "ID", "CreatedAt", "UpdatedAt", "Accounts")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openStore(t)
			e := tt.insert
			insertEmployee(t, s, &e)
			if e.ID == 0 {
				t.Fatal("InsertEmployee did not set the ID")
			}
			got := getEmployee(t, s, e.ID)
			equalFields(t, "inserted", *got, e, "Accounts")
			if got.CreatedAt.IsZero() || !got.CreatedAt.Equal(got.UpdatedAt) {
				t.Errorf("CreatedAt %v, UpdatedAt %v: want both the insert time", got.CreatedAt, got.UpdatedAt)
			}

			u := tt.update
			u.ID = e.ID
			update(t, s, func(ctx context.Context, tx *Tx) error { return tx.UpdateEmployee(ctx, &u) })
			got = getEmployee(t, s, e.ID)
			u.CreatedAt = e.CreatedAt // UpdateEmployee does not touch it
			equalFields(t, "updated", *got, u, "Accounts")
			if !got.UpdatedAt.After(e.UpdatedAt) {
				t.Errorf("UpdatedAt %v not after the insert's %v", got.UpdatedAt, e.UpdatedAt)
			}

			// The transaction-side readers see the same.
			update(t, s, func(ctx context.Context, tx *Tx) error {
				all, err := tx.LoadEmployees(ctx)
				if err != nil {
					return err
				}
				if len(all) != 1 {
					t.Fatalf("LoadEmployees = %d employees, want 1", len(all))
				}
				equalFields(t, "loaded", all[0], u, "Accounts")
				if u.EmailNorm != "" {
					byMail, err := tx.EmployeeByEmail(ctx, u.EmailNorm)
					if err != nil || byMail.ID != u.ID {
						t.Errorf("EmployeeByEmail(%q) = %v, %v", u.EmailNorm, byMail, err)
					}
				}
				return nil
			})
		})
	}
}

func TestEmployeeNotFound(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	err := s.Update(ctx, func(tx *Tx) error {
		return tx.UpdateEmployee(ctx, &Employee{ID: 77, Status: StatusActive, Source: SourceAD})
	})
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateEmployee of a missing employee: %v, want ErrNotFound", err)
	}
	if _, err := s.Employee(ctx, 77); !errors.Is(err, ErrNotFound) {
		t.Errorf("Employee(77): %v, want ErrNotFound", err)
	}
	err = s.Update(ctx, func(tx *Tx) error {
		_, err := tx.EmployeeByEmail(ctx, "nobody@example.com")
		return err
	})
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("EmployeeByEmail of an unknown email: %v, want ErrNotFound", err)
	}
}

func TestEmployeeEmailUniqueness(t *testing.T) {
	tests := []struct {
		name      string
		first     Employee
		second    Employee
		wantErr   bool
		wantCount int
	}{
		{"same email_norm",
			Employee{EmailNorm: "a@example.com", Email: "a@example.com", Status: StatusActive, Source: SourceAD},
			Employee{EmailNorm: "a@example.com", Email: "A@Example.com", Status: StatusActive, Source: SourceManual},
			true, 1},
		{"both without email",
			Employee{DisplayName: "One", Status: StatusActive, Source: SourceAD},
			Employee{DisplayName: "Two", Status: StatusActive, Source: SourceAD},
			false, 2},
		{"different emails",
			Employee{EmailNorm: "a@example.com", Status: StatusActive, Source: SourceAD},
			Employee{EmailNorm: "b@example.com", Status: StatusActive, Source: SourceAD},
			false, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, _ := openStore(t)
			insertEmployee(t, s, &tt.first)
			err := s.Update(ctx, func(tx *Tx) error { return tx.InsertEmployee(ctx, &tt.second) })
			if (err != nil) != tt.wantErr {
				t.Fatalf("second InsertEmployee: error = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "an employee with this email already exists") {
				t.Errorf("error %q does not say the email is taken", err)
			}
			c, err := s.Counts(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if c.Employees != tt.wantCount {
				t.Errorf("%d employees, want %d", c.Employees, tt.wantCount)
			}
		})
	}
}

func TestClearEmployeeEmails(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	a := Employee{EmailNorm: "a@example.com", Email: "a@example.com", DisplayName: "A", Status: StatusActive, Source: SourceAD}
	b := Employee{EmailNorm: "b@example.com", Email: "b@example.com", DisplayName: "B", Status: StatusActive, Source: SourceAD}
	c := Employee{EmailNorm: "c@example.com", Email: "c@example.com", DisplayName: "C", Status: StatusActive, Source: SourceAD}
	for _, e := range []*Employee{&a, &b, &c} {
		insertEmployee(t, s, e)
	}
	swap := func(tx *Tx) error {
		a2, b2 := a, b
		a2.EmailNorm, a2.Email, b2.EmailNorm, b2.Email = b.EmailNorm, b.Email, a.EmailNorm, a.Email
		if err := tx.UpdateEmployee(ctx, &a2); err != nil {
			return err
		}
		return tx.UpdateEmployee(ctx, &b2)
	}

	// Swapping without clearing trips the unique index, and rolls back.
	if err := s.Update(ctx, swap); err == nil {
		t.Fatal("swapping emails without clearing them first succeeded; is email_norm still unique?")
	}
	if got := getEmployee(t, s, a.ID); got.EmailNorm != "a@example.com" {
		t.Fatalf("failed swap was not rolled back: A has %q", got.EmailNorm)
	}

	// Clearing first makes the swap work.
	if err := s.Update(ctx, func(tx *Tx) error {
		if err := tx.ClearEmployeeEmails(ctx, []int64{a.ID, b.ID}); err != nil {
			return err
		}
		return swap(tx)
	}); err != nil {
		t.Fatalf("swap after ClearEmployeeEmails: %v", err)
	}
	want := map[int64]string{a.ID: "b@example.com", b.ID: "a@example.com", c.ID: "c@example.com"}
	for id, mail := range want {
		if got := getEmployee(t, s, id); got.EmailNorm != mail {
			t.Errorf("employee %d email_norm = %q, want %q", id, got.EmailNorm, mail)
		}
	}

	// Cleared on its own, the email is free for another employee, and the
	// other employees keep theirs.
	update(t, s, func(ctx context.Context, tx *Tx) error { return tx.ClearEmployeeEmails(ctx, []int64{c.ID}) })
	if got := getEmployee(t, s, c.ID); got.EmailNorm != "" {
		t.Errorf("ClearEmployeeEmails left email_norm %q", got.EmailNorm)
	}
	if got := getEmployee(t, s, a.ID); got.EmailNorm != "b@example.com" {
		t.Errorf("ClearEmployeeEmails changed another employee: %q", got.EmailNorm)
	}
	insertEmployee(t, s, &Employee{EmailNorm: "c@example.com", Status: StatusActive, Source: SourceManual})
}

// fullAccount sets every field except the ones the store fills in.
func fullAccount(employeeID int64) Account {
	return Account{
		Domain:           "corp",
		ObjectGUID:       "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
		EmployeeID:       employeeID,
		ObjectSID:        "S-1-5-21-1004336348-1177238915-682003330-1001",
		SAMAccountName:   "alee",
		UPN:              "alee@corp.example.com",
		Mail:             "Ann.Lee@corp.example.com",
		GivenName:        "Ann",
		SN:               "Lee",
		DisplayName:      "Ann Lee",
		Department:       "Finance",
		Title:            "Controller",
		Company:          "Example Corp",
		Telephone:        "+1 555 0100",
		DN:               "CN=Ann Lee,OU=Staff,DC=corp,DC=example,DC=com",
		Enabled:          true,
		PwdLastSet:       tp(time.Date(2024, 2, 29, 8, 15, 0, 1, time.UTC)),
		USNChanged:       987654321,
		InSyncGroup:      true,
		PasswordRotation: true,
		LeftReason:       LeftDisabled,
		LeftAt:           tp(time.Date(2025, 1, 1, 0, 0, 0, 999, time.UTC)),
	}
}

func TestAccountRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	e1 := Employee{EmailNorm: "ann@example.com", DisplayName: "Ann", Status: StatusActive, Source: SourceAD}
	e2 := Employee{EmailNorm: "ann2@example.com", DisplayName: "Ann 2", Status: StatusActive, Source: SourceAD}
	insertEmployee(t, s, &e1)
	insertEmployee(t, s, &e2)

	a := fullAccount(e1.ID)
	requireAllSet(t, a, "ID", "FirstSeen", "UpdatedAt")
	insertAccount(t, s, &a)
	if a.ID == 0 || a.FirstSeen.IsZero() || !a.FirstSeen.Equal(a.UpdatedAt) {
		t.Fatalf("InsertAccount: ID %d, FirstSeen %v, UpdatedAt %v", a.ID, a.FirstSeen, a.UpdatedAt)
	}
	got := getEmployee(t, s, e1.ID).Accounts
	if len(got) != 1 {
		t.Fatalf("employee has %d accounts, want 1", len(got))
	}
	equalFields(t, "inserted", got[0], a)

	// Change every field UpdateAccount writes, flipping every boolean and
	// moving the account to the other employee.
	u := a
	u.EmployeeID = e2.ID
	u.ObjectSID, u.SAMAccountName, u.UPN, u.Mail = "S-1-5-21-9", "ann.lee", "ann.lee@corp.example.com", "ann.lee@example.org"
	u.GivenName, u.SN, u.DisplayName, u.Department = "Anna", "Lee-Park", "Anna Lee-Park", "Legal"
	u.Title, u.Company, u.Telephone, u.DN = "Counsel", "Example Inc", "+1 555 0199", "CN=Anna Lee-Park,OU=Staff,DC=corp,DC=example,DC=com"
	u.Enabled, u.InSyncGroup, u.PasswordRotation = false, false, false
	u.PwdLastSet = tp(time.Date(2025, 5, 5, 5, 5, 5, 5, time.UTC))
	u.USNChanged = 987654999
	u.LeftReason = LeftDeleted
	u.LeftAt = tp(time.Date(2025, 5, 6, 0, 0, 0, 0, time.UTC))
	for _, f := range []string{"EmployeeID", "ObjectSID", "SAMAccountName", "UPN", "Mail", "GivenName", "SN", "DisplayName", "Department",
		"Title", "Company", "Telephone", "DN", "Enabled", "PwdLastSet", "USNChanged", "InSyncGroup", "PasswordRotation", "LeftReason", "LeftAt"} {
		if reflect.DeepEqual(reflect.ValueOf(u).FieldByName(f).Interface(), reflect.ValueOf(a).FieldByName(f).Interface()) {
			t.Fatalf("the update does not change %s", f)
		}
	}
	update(t, s, func(ctx context.Context, tx *Tx) error { return tx.UpdateAccount(ctx, &u) })
	if got := getEmployee(t, s, e1.ID).Accounts; len(got) != 0 {
		t.Errorf("old employee still has %d accounts", len(got))
	}
	got = getEmployee(t, s, e2.ID).Accounts
	if len(got) != 1 {
		t.Fatalf("new employee has %d accounts, want 1", len(got))
	}
	equalFields(t, "updated", got[0], u, "UpdatedAt")
	if !got[0].UpdatedAt.After(a.UpdatedAt) || !got[0].FirstSeen.Equal(a.FirstSeen) {
		t.Errorf("FirstSeen %v, UpdatedAt %v: want FirstSeen kept and UpdatedAt later than %v", got[0].FirstSeen, got[0].UpdatedAt, a.UpdatedAt)
	}

	// Back to a member: optional fields cleared, booleans on again.
	m := u
	m.PwdLastSet, m.LeftAt, m.LeftReason = nil, nil, ""
	m.Enabled, m.InSyncGroup, m.PasswordRotation = true, true, true
	update(t, s, func(ctx context.Context, tx *Tx) error { return tx.UpdateAccount(ctx, &m) })
	update(t, s, func(ctx context.Context, tx *Tx) error {
		all, err := tx.LoadAccounts(ctx)
		if err != nil {
			return err
		}
		if len(all) != 1 {
			t.Fatalf("LoadAccounts = %d accounts, want 1", len(all))
		}
		equalFields(t, "member again", all[0], m)
		byEmp, err := tx.EmployeeAccounts(ctx, e2.ID)
		if err != nil || len(byEmp) != 1 || byEmp[0].ID != m.ID {
			t.Errorf("EmployeeAccounts(%d) = %v, %v", e2.ID, byEmp, err)
		}
		return nil
	})

	// Errors: a missing account, a duplicate (domain, objectGUID), an
	// unknown left reason.
	tests := []struct {
		name string
		fn   func(tx *Tx) error
		want string
		is   error
	}{
		{"update missing", func(tx *Tx) error { x := m; x.ID = 999; return tx.UpdateAccount(ctx, &x) }, "update account 999", ErrNotFound},
		{"duplicate guid", func(tx *Tx) error { x := fullAccount(e1.ID); return tx.InsertAccount(ctx, &x) }, "UNIQUE", nil},
		{"bad left reason", func(tx *Tx) error {
			x := fullAccount(e1.ID)
			x.ObjectGUID, x.LeftReason = "other", "fired"
			return tx.InsertAccount(ctx, &x)
		}, "CHECK", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Update(ctx, tt.fn)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %v does not wrap %v", err, tt.is)
			}
		})
	}
}

func TestAccountBooleans(t *testing.T) {
	s, _ := openStore(t)
	e := Employee{Status: StatusActive, Source: SourceAD}
	insertEmployee(t, s, &e)
	for i := 0; i < 8; i++ {
		a := Account{Domain: "corp", ObjectGUID: "guid-" + string(rune('a'+i)), EmployeeID: e.ID,
			Enabled: i&1 != 0, InSyncGroup: i&2 != 0, PasswordRotation: i&4 != 0}
		insertAccount(t, s, &a)
	}
	check := func(step string, combo func(i int) int) []Account {
		t.Helper()
		got, err := s.Employee(context.Background(), e.ID) // its accounts in the order inserted
		if err != nil || len(got.Accounts) != 8 {
			t.Fatalf("Employee = %v, %v; want 8 accounts", got, err)
		}
		accs := got.Accounts
		for i, a := range accs {
			c := combo(i)
			want := [3]bool{c&1 != 0, c&2 != 0, c&4 != 0}
			if got := [3]bool{a.Enabled, a.InSyncGroup, a.PasswordRotation}; got != want {
				t.Errorf("%s %s: Enabled, InSyncGroup, PasswordRotation = %v, want %v", step, a.ObjectGUID, got, want)
			}
			if a.PwdLastSet != nil || a.LeftAt != nil || a.LeftReason != "" {
				t.Errorf("%s %s: unset optional fields read back as %v, %v, %q", step, a.ObjectGUID, a.PwdLastSet, a.LeftAt, a.LeftReason)
			}
		}
		return accs
	}
	accs := check("inserted", func(i int) int { return i })

	// UpdateAccount writes each boolean from its own field: every account
	// gets the opposite combination.
	update(t, s, func(ctx context.Context, tx *Tx) error {
		for i := range accs {
			a := accs[i]
			a.Enabled, a.InSyncGroup, a.PasswordRotation = !a.Enabled, !a.InSyncGroup, !a.PasswordRotation
			if err := tx.UpdateAccount(ctx, &a); err != nil {
				return err
			}
		}
		return nil
	})
	check("updated", func(i int) int { return 7 - i })
}

// listFixture holds employees whose names, emails and accounts exercise the
// filter. Display names differ in case to check the ordering.
func listFixture(t *testing.T, s *Store) map[string]int64 {
	t.Helper()
	ids := map[string]int64{}
	people := []struct {
		name, email string
		sams        map[string]string // domain -> sAMAccountName
	}{
		{"bob Baker", "bob@corp.example.com", map[string]string{"corp": "bbaker", "lab": "bob.b"}},
		{"Alice Archer", "alice@corp.example.com", map[string]string{"corp": "aarcher"}},
		{"Carol 100% Sure", "carol_x@lab.example.com", map[string]string{"lab": "csure"}},
		{"Dave", "", map[string]string{"corp": "d_ave"}},
		{"Eve", "eve@example.org", nil},
		{"Élodie Åström", "elodie@example.fr", map[string]string{"lab": "eastrom"}},
	}
	update(t, s, func(ctx context.Context, tx *Tx) error {
		for _, p := range people {
			e := Employee{EmailNorm: p.email, Email: strings.ToUpper(p.email), DisplayName: p.name, Status: StatusActive, Source: SourceAD}
			if err := tx.InsertEmployee(ctx, &e); err != nil {
				return err
			}
			ids[p.name] = e.ID
			for _, domain := range []string{"lab", "corp"} { // out of order on purpose
				if sam, ok := p.sams[domain]; ok {
					a := Account{Domain: domain, ObjectGUID: sam, EmployeeID: e.ID, SAMAccountName: strings.ToUpper(sam)}
					if err := tx.InsertAccount(ctx, &a); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
	return ids
}

// The listing's stream gives everyone, by name (case folded beyond
// ASCII), each with all their accounts, by domain.
func TestEachEmployeeListsEveryoneWithTheirAccounts(t *testing.T) {
	s, _ := openStore(t)
	listFixture(t, s)
	es := listed(t, s)
	var names []string
	for _, e := range es {
		names = append(names, e.DisplayName)
		var got []string
		for _, a := range e.Accounts {
			if a.EmployeeID != e.ID {
				t.Errorf("%s holds account %s of employee %d", e.DisplayName, a.ObjectGUID, a.EmployeeID)
			}
			got = append(got, a.Domain+"/"+a.SAMAccountName)
		}
		var want []string
		switch e.DisplayName {
		case "bob Baker":
			want = []string{"corp/BBAKER", "lab/BOB.B"}
		case "Alice Archer":
			want = []string{"corp/AARCHER"}
		case "Carol 100% Sure":
			want = []string{"lab/CSURE"}
		case "Dave":
			want = []string{"corp/D_AVE"}
		case "Élodie Åström":
			want = []string{"lab/EASTROM"}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s accounts = %q, want %q", e.DisplayName, got, want)
		}
	}
	if want := []string{"Alice Archer", "bob Baker", "Carol 100% Sure", "Dave", "Eve", "Élodie Åström"}; !reflect.DeepEqual(names, want) {
		t.Errorf("listed %q, want %q", names, want)
	}
}

// listed is everyone as the listing's stream gives them.
func listed(t *testing.T, s *Store) []Employee {
	t.Helper()
	var out []Employee
	if err := s.EachEmployee(context.Background(), func(r *EmployeeRow) error { out = append(out, r.Employee); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFlags(t *testing.T) {
	member := func(domain string) Account { return Account{Domain: domain} }
	left := func(domain, reason string) Account { return Account{Domain: domain, LeftReason: reason} }
	tests := []struct {
		name      string
		emailNorm string
		accounts  []Account
		want      []string
	}{
		{"email, one account", "a@x", []Account{member("corp")}, []string{}},
		{"no email", "", []Account{member("corp")}, []string{FlagNoEmail}},
		{"no email, no accounts", "", nil, []string{FlagNoEmail}},
		{"two members of one domain", "a@x", []Account{member("corp"), member("corp")}, []string{FlagConflict}},
		{"one of them left", "a@x", []Account{member("corp"), left("corp", LeftGroup)}, []string{}},
		{"both left", "a@x", []Account{left("corp", LeftDisabled), left("corp", LeftDeleted)}, []string{}},
		{"members of two domains", "a@x", []Account{member("corp"), member("lab")}, []string{}},
		{"conflict in one of two domains", "a@x", []Account{member("lab"), member("corp"), member("lab")}, []string{FlagConflict}},
		{"no email and conflict", "", []Account{member("corp"), member("corp"), member("corp")}, []string{FlagNoEmail, FlagConflict}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Employee{EmailNorm: tt.emailNorm, Accounts: tt.accounts}
			got := e.Flags()
			if got == nil || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Flags() = %#v, want %#v", got, tt.want)
			}
		})
	}

	// The same through the database: the listing's stream fills in the
	// accounts.
	s, _ := openStore(t)
	var conflicted, settled Employee
	update(t, s, func(ctx context.Context, tx *Tx) error {
		conflicted = Employee{EmailNorm: "c@x", DisplayName: "Conflicted", Status: StatusActive, Source: SourceAD}
		settled = Employee{EmailNorm: "s@x", DisplayName: "Settled", Status: StatusActive, Source: SourceAD}
		for _, e := range []*Employee{&conflicted, &settled} {
			if err := tx.InsertEmployee(ctx, e); err != nil {
				return err
			}
		}
		for i, a := range []Account{
			{EmployeeID: conflicted.ID, Domain: "corp"}, {EmployeeID: conflicted.ID, Domain: "corp"},
			{EmployeeID: settled.ID, Domain: "corp"}, {EmployeeID: settled.ID, Domain: "corp", LeftReason: LeftGroup},
		} {
			a.ObjectGUID = "g" + string(rune('0'+i))
			if err := tx.InsertAccount(ctx, &a); err != nil {
				return err
			}
		}
		return nil
	})
	es := listed(t, s)
	if len(es) != 2 {
		t.Fatalf("listed %v, want 2 employees", es)
	}
	if got := es[0].Flags(); es[0].ID != conflicted.ID || !reflect.DeepEqual(got, []string{FlagConflict}) {
		t.Errorf("%s flags = %q, want [conflict]", es[0].DisplayName, got)
	}
	if got := es[1].Flags(); len(got) != 0 {
		t.Errorf("%s flags = %q, want none", es[1].DisplayName, got)
	}
}

func TestCounts(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	c, err := s.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.Employees != 0 || c.ActiveEmployees != 0 || c.ManualEmployees != 0 || c.PasswordRotation != 0 ||
		c.Accounts == nil || c.AccountsLeft == nil || len(c.Accounts) != 0 || len(c.AccountsLeft) != 0 {
		t.Errorf("Counts of an empty database = %+v", c)
	}

	type acc struct {
		domain string
		left   string
		rotate bool
	}
	people := []struct {
		status, source string
		accounts       []acc
	}{
		{StatusActive, SourceAD, []acc{{"corp", "", true}, {"lab", "", true}}},
		{StatusActive, SourceAD, []acc{{"corp", "", false}, {"corp", LeftDisabled, true}}},
		{StatusRemoved, SourceAD, []acc{{"corp", LeftDeleted, false}, {"lab", LeftGroup, false}}},
		{StatusActive, SourceManual, nil},
		{StatusRemoved, SourceManual, nil},
	}
	var want Counts
	want.Accounts, want.AccountsLeft = map[string]int{}, map[string]int{}
	update(t, s, func(ctx context.Context, tx *Tx) error {
		n := 0
		for _, p := range people {
			e := Employee{Status: p.status, Source: p.source}
			if err := tx.InsertEmployee(ctx, &e); err != nil {
				return err
			}
			want.Employees++
			if p.status == StatusActive {
				want.ActiveEmployees++
			}
			if p.source == SourceManual {
				want.ManualEmployees++
			}
			for _, a := range p.accounts {
				n++
				acct := Account{Domain: a.domain, ObjectGUID: "g" + string(rune('a'+n)), EmployeeID: e.ID, LeftReason: a.left, PasswordRotation: a.rotate}
				if err := tx.InsertAccount(ctx, &acct); err != nil {
					return err
				}
				if a.left == "" {
					want.Accounts[a.domain]++
					if a.rotate {
						want.PasswordRotation++
					}
				} else {
					want.AccountsLeft[a.domain]++
				}
			}
		}
		return nil
	})
	c, err = s.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Counts = %+v, want %+v", c, want)
	}
	// Guard against a fixture that would make the checks above trivial.
	if want.Accounts["corp"] != 2 || want.AccountsLeft["corp"] != 2 || want.PasswordRotation != 2 || want.ActiveEmployees != 3 {
		t.Fatalf("fixture changed: %+v", want)
	}
}
