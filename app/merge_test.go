package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"keydesk/config"
	"keydesk/internal/simtest"
	"keydesk/ldapsync"
	"keydesk/store"
)

var (
	testAdmin    = Actor{Name: "test:admin", Role: RoleAdmin}
	testHelpdesk = Actor{Name: "test:helpdesk", Role: RoleHelpdesk}
)

// newTestService builds a service over a real SQLite file with the named
// domains configured (in that order). The URLs are never dialled here.
func newTestService(t testing.TB, domains ...string) *Service {
	t.Helper()
	return newTestServiceConf(t, "", domains...)
}

// newTestServiceConf is newTestService with more configuration (TOML that
// comes before the domains).
func newTestServiceConf(t testing.TB, conf string, domains ...string) *Service {
	t.Helper()
	var sb strings.Builder
	sb.WriteString(conf + "\n")
	for _, d := range domains {
		fmt.Fprintf(&sb, "[[domain]]\nname = %q\nurls = [\"ldaps://dc.%s.test:636\"]\nbase_dn = \"DC=%s,DC=test\"\nbind_dn = \"svc@%s.test\"\nbind_password_env = \"UNUSED_PW\"\n\n", d, d, d, d)
	}
	cfg, err := config.Parse("test.toml", []byte(sb.String()))
	if err != nil {
		t.Fatalf("parse test configuration: %v", err)
	}
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), store.FileName))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return New(cfg, st, WithTrustedMaker(simtest.Maker(t).Cert()))
}

// apply runs the merge and write path of a sync with a snapshot built in
// memory, exactly as a sync does after reading the directory.
func apply(t testing.TB, s *Service, domain string, snap *ldapsync.Snapshot, gone map[string]string, allow bool) DomainSummary {
	t.Helper()
	d, ok := s.cfg.Domain(domain)
	if !ok {
		t.Fatalf("no domain %s", domain)
	}
	if snap.PasswordGUIDs == nil {
		snap.PasswordGUIDs = map[string]bool{}
	}
	sum := DomainSummary{Domain: domain}
	req := SyncRequest{Actor: testAdmin, AllowRemovals: allow}
	if err := s.writeDomain(context.Background(), *d, req, snap, gone, nil, &sum, s.now()); err != nil {
		t.Fatalf("write %s: %v", domain, err)
	}
	return sum
}

func guid(domain string, n int) string {
	h := 0
	for _, c := range domain {
		h = h*31 + int(c)
	}
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", h&0xffffffff, n)
}

func user(domain string, n int, sam, mail, display string) ldapsync.User {
	return ldapsync.User{ObjectGUID: guid(domain, n), SAMAccountName: sam, Mail: mail, DisplayName: display,
		DN: "CN=" + display + ",CN=Users,DC=" + domain + ",DC=test", USNChanged: int64(1000 + n)}
}

func full(users ...ldapsync.User) *ldapsync.Snapshot {
	return &ldapsync.Snapshot{Full: true, Fetched: users}
}

func employees(t testing.TB, s *Service) []EmployeeView {
	t.Helper()
	es, err := s.Employees(context.Background(), testAdmin, "")
	if err != nil {
		t.Fatalf("list employees: %v", err)
	}
	return es
}

func byEmail(t testing.TB, s *Service, email string) *EmployeeView {
	t.Helper()
	for _, e := range employees(t, s) {
		if e.Email != nil && NormalizeEmail(*e.Email) == NormalizeEmail(email) {
			return &e
		}
	}
	return nil
}

func hasFlag(e EmployeeView, f string) bool {
	for _, x := range e.Flags {
		if x == f {
			return true
		}
	}
	return false
}

func TestMergeAcrossDomainsByEmail(t *testing.T) {
	s := newTestService(t, "corp", "branch")
	// The second domain syncs first: the first domain's name must still win.
	sb := apply(t, s, "branch", full(user("branch", 1, "asmith", "  Anna.Smith@Example.COM ", "Anna S. (Branch)")), nil, false)
	sc := apply(t, s, "corp", full(user("corp", 1, "anna", "anna.smith@example.com", "Anna Smith")), nil, false)
	if sb.Added != 1 || sc.Added != 1 || sc.Merged != 1 {
		t.Fatalf("summaries: branch %+v corp %+v; want one added each and corp merged", sb, sc)
	}
	es := employees(t, s)
	if len(es) != 1 {
		t.Fatalf("got %d employees, want 1 merged: %+v", len(es), es)
	}
	e := es[0]
	if e.DisplayName != "Anna Smith" || len(e.Accounts) != 2 || e.Status != "active" || e.Source != "ad" {
		t.Errorf("merged employee = %+v; want corp's name, two accounts, active, ad", e)
	}
	if *e.Email != "anna.smith@example.com" {
		t.Errorf("email = %q, want corp's spelling", *e.Email)
	}
	if len(e.Flags) != 0 {
		t.Errorf("flags = %v, want none", e.Flags)
	}
}

func TestMergeFlags(t *testing.T) {
	s := newTestService(t, "corp")
	apply(t, s, "corp", full(
		user("corp", 1, "nomail1", "", "No Mail One"),
		user("corp", 2, "nomail2", "", "No Mail Two"),
		user("corp", 3, "dup1", "dup@example.com", "Dup One"),
		user("corp", 4, "dup2", "DUP@example.com", "Dup Two"),
	), nil, false)
	es := employees(t, s)
	if len(es) != 3 {
		t.Fatalf("got %d employees, want 3 (two without email kept apart, duplicates merged)", len(es))
	}
	noMail := 0
	for _, e := range es {
		if e.Email == nil {
			noMail++
			if !hasFlag(e, "no-email") || len(e.Accounts) != 1 {
				t.Errorf("employee without email %+v: want flag no-email and one account", e)
			}
		}
	}
	if noMail != 2 {
		t.Errorf("%d employees without email, want 2", noMail)
	}
	dup := byEmail(t, s, "dup@example.com")
	if dup == nil || !hasFlag(*dup, "conflict") || len(dup.Accounts) != 2 {
		t.Errorf("duplicate email employee = %+v; want two accounts and flag conflict", dup)
	}
}

func TestEmailChange(t *testing.T) {
	tests := []struct {
		name       string
		setup      []ldapsync.User // corp accounts at first
		branch     []ldapsync.User
		change     ldapsync.User // corp account after the change
		wantSameID bool          // the employee followed the account (renamed)
		wantEmps   int
		wantMerged int
	}{
		{
			name:       "only account renames the employee",
			setup:      []ldapsync.User{user("corp", 1, "bob", "bob@old.example", "Bob")},
			change:     user("corp", 1, "bob", "bob@new.example", "Bob"),
			wantSameID: true, wantEmps: 1,
		},
		{
			name:     "account with a sibling moves to a new employee",
			setup:    []ldapsync.User{user("corp", 1, "bob", "bob@old.example", "Bob")},
			branch:   []ldapsync.User{user("branch", 1, "bob", "bob@old.example", "Bob B")},
			change:   user("corp", 1, "bob", "bob@new.example", "Bob"),
			wantEmps: 2,
		},
		{
			name:       "account moves into an existing employee",
			setup:      []ldapsync.User{user("corp", 1, "bob", "bob@old.example", "Bob"), user("corp", 2, "rob", "rob@example.com", "Rob")},
			change:     user("corp", 1, "bob", "rob@example.com", "Bob"),
			wantEmps:   2, // Bob's old employee is kept as removed, Rob's now holds both
			wantMerged: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestService(t, "corp", "branch")
			apply(t, s, "corp", full(tt.setup...), nil, false)
			if tt.branch != nil {
				apply(t, s, "branch", full(tt.branch...), nil, false)
			}
			before := byEmail(t, s, tt.setup[0].Mail)
			users := append([]ldapsync.User{tt.change}, tt.setup[1:]...)
			sum := apply(t, s, "corp", full(users...), nil, false)
			if sum.Updated != 1 || sum.Merged != tt.wantMerged {
				t.Errorf("summary %+v: want updated 1, merged %d", sum, tt.wantMerged)
			}
			after := byEmail(t, s, tt.change.Mail)
			if after == nil {
				t.Fatalf("no employee with the new email %s", tt.change.Mail)
			}
			found := false
			for _, a := range after.Accounts {
				found = found || a.ObjectGUID == tt.change.ObjectGUID
			}
			if !found {
				t.Errorf("the changed account is not with employee %s: %+v", tt.change.Mail, after)
			}
			if (after.ID == before.ID) != tt.wantSameID {
				t.Errorf("employee id before %d after %d; want same: %v", before.ID, after.ID, tt.wantSameID)
			}
			if n := len(employees(t, s)); n != tt.wantEmps {
				t.Errorf("%d employees, want %d", n, tt.wantEmps)
			}
		})
	}
}

func TestManualEmployeeAdopted(t *testing.T) {
	s := newTestService(t, "corp")
	ctx := context.Background()
	m, err := s.AddEmployee(ctx, testAdmin, "Guard@Example.com", "Night Guard")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddEmployee(ctx, testAdmin, "guard@example.com", "Another"); err == nil {
		t.Fatal("a second manual employee with the same email was accepted")
	}
	sum := apply(t, s, "corp", full(user("corp", 1, "guard", "guard@example.com", "Guard Person")), nil, false)
	if sum.Merged != 1 {
		t.Errorf("summary %+v: want the adoption counted as merged", sum)
	}
	es := employees(t, s)
	if len(es) != 1 || es[0].ID != m.ID || es[0].Source != "ad" || len(es[0].Accounts) != 1 {
		t.Fatalf("employees = %+v; want the manual employee %d adopted by the AD account", es, m.ID)
	}
	if _, err := s.RemoveEmployee(ctx, testAdmin, "guard@example.com"); err == nil || !strings.Contains(err.Error(), "Active Directory") {
		t.Errorf("removing an AD employee by hand: err = %v, want a refusal that points at AD", err)
	}
}

func TestLeaversAndRejoin(t *testing.T) {
	s := newTestService(t, "corp")
	a := user("corp", 1, "ann", "ann@example.com", "Ann")
	b := user("corp", 2, "ben", "ben@example.com", "Ben")
	c := user("corp", 3, "cid", "cid@example.com", "Cid")
	d := user("corp", 4, "dee", "dee@example.com", "Dee")
	apply(t, s, "corp", full(a, b, c, d), nil, false)

	dDisabled := d
	dDisabled.Disabled = true
	sum := apply(t, s, "corp", full(a, dDisabled), map[string]string{b.ObjectGUID: ldapsync.ReasonLeftGroup, c.ObjectGUID: ldapsync.ReasonDeleted}, false)
	if sum.Removed != 3 || sum.Held != 0 {
		t.Fatalf("summary %+v: want 3 removed (left, deleted, disabled), none held", sum)
	}
	want := map[string]string{"ann@example.com": "", "ben@example.com": "left-group", "cid@example.com": "deleted", "dee@example.com": "disabled"}
	for email, reason := range want {
		e := byEmail(t, s, email)
		if e == nil {
			t.Fatalf("employee %s was deleted; leavers must be kept", email)
		}
		acc := e.Accounts[0]
		got := ""
		if acc.LeftReason != nil {
			got = *acc.LeftReason
		}
		if got != reason {
			t.Errorf("%s: left_reason %q, want %q", email, got, reason)
		}
		wantStatus := "active"
		if reason != "" {
			wantStatus = "removed"
		}
		if e.Status != wantStatus || (reason != "" && e.RemovedAt == nil) {
			t.Errorf("%s: status %s removed_at %v, want %s", email, e.Status, e.RemovedAt, wantStatus)
		}
	}
	// Ben comes back.
	sum = apply(t, s, "corp", full(a, b, dDisabled), map[string]string{c.ObjectGUID: ldapsync.ReasonDeleted}, false)
	if sum.Removed != 0 || sum.Updated != 1 {
		t.Errorf("rejoin summary %+v: want 1 updated, 0 removed", sum)
	}
	if e := byEmail(t, s, "ben@example.com"); e.Status != "active" || e.Accounts[0].LeftReason != nil || !e.Accounts[0].InSyncGroup {
		t.Errorf("rejoined employee %+v: want active member", e)
	}
}

func TestRemovalGuard(t *testing.T) {
	tests := []struct {
		name     string
		total    int
		leave    int // accounts that leave the group
		disable  int // accounts disabled (after those that leave)
		allow    bool
		wantHeld int
	}{
		{"few leavers of a small domain pass", 30, 10, 0, false, 0},   // 33% but fewer than 20
		{"share under the limit passes", 300, 25, 0, false, 0},        // 8.3%
		{"many leavers are held", 100, 25, 0, false, 25},              // 25% and at least 20
		{"allowed removals are applied", 100, 25, 0, true, 0},         //
		{"exactly the minimum over the share", 100, 20, 0, false, 20}, // 20%, 20 leavers
		{"many disabled at once are held", 100, 0, 25, false, 25},     // disabling is leaving
		{"leavers and disabled count together", 100, 12, 12, false, 24},
		{"disabled applied when allowed", 100, 0, 25, true, 0},
		{"few disabled pass", 100, 0, 5, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestService(t, "corp")
			var all []ldapsync.User
			for i := 0; i < tt.total; i++ {
				all = append(all, user("corp", i, fmt.Sprintf("u%d", i), fmt.Sprintf("u%d@example.com", i), fmt.Sprintf("User %d", i)))
			}
			apply(t, s, "corp", full(all...), nil, false)
			after := append([]ldapsync.User(nil), all[tt.leave:]...)
			for i := 0; i < tt.disable; i++ {
				after[i].Disabled = true
			}
			sum := apply(t, s, "corp", full(after...), nil, tt.allow)
			if sum.Held != tt.wantHeld {
				t.Fatalf("held %d, want %d (summary %+v)", sum.Held, tt.wantHeld, sum)
			}
			held, err := s.st.HeldRemovals(context.Background(), "corp")
			if err != nil {
				t.Fatal(err)
			}
			if len(held) != tt.wantHeld {
				t.Errorf("%d held removals stored, want %d", len(held), tt.wantHeld)
			}
			removed := 0
			for _, e := range employees(t, s) {
				if e.Status == "removed" {
					removed++
				}
			}
			wantRemoved := tt.leave + tt.disable
			if tt.wantHeld > 0 {
				wantRemoved = 0
			}
			if removed != wantRemoved || sum.Removed != wantRemoved {
				t.Errorf("%d employees removed (summary %d), want %d", removed, sum.Removed, wantRemoved)
			}
		})
	}
}

func TestIncrementalKeepsUnchanged(t *testing.T) {
	s := newTestService(t, "corp")
	a := user("corp", 1, "ann", "ann@example.com", "Ann")
	b := user("corp", 2, "ben", "ben@example.com", "Ben")
	apply(t, s, "corp", full(a, b), nil, false)
	b2 := b
	b2.DisplayName, b2.Department = "Benjamin", "Sales"
	sum := apply(t, s, "corp", &ldapsync.Snapshot{Fetched: []ldapsync.User{b2}, Unchanged: []string{a.ObjectGUID},
		PasswordGUIDs: map[string]bool{a.ObjectGUID: true}}, nil, false)
	if sum.Updated != 2 || sum.Unchanged != 0 || sum.Removed != 0 {
		t.Errorf("summary %+v: want 2 updated (Ben's name, Ann's rotation), none removed", sum)
	}
	if e := byEmail(t, s, "ann@example.com"); e.DisplayName != "Ann" || !e.Accounts[0].PasswordRotation {
		t.Errorf("Ann = %+v: want name kept and rotation on", e)
	}
	if e := byEmail(t, s, "ben@example.com"); e.DisplayName != "Benjamin" || e.Department != "Sales" {
		t.Errorf("Ben = %+v: want the new name and department", e)
	}
	sum = apply(t, s, "corp", &ldapsync.Snapshot{Unchanged: []string{a.ObjectGUID, b.ObjectGUID}, PasswordGUIDs: map[string]bool{a.ObjectGUID: true}}, nil, false)
	if sum.Unchanged != 2 || sum.Updated != 0 {
		t.Errorf("second incremental summary %+v: want 2 unchanged", sum)
	}
}

func TestNonASCIIKeptExactly(t *testing.T) {
	s := newTestService(t, "corp")
	names := []string{"Zoë Łukasiewicz", "山田 太郎", "Ægir Þórsson", "O'Brien, Seán"}
	var us []ldapsync.User
	for i, n := range names {
		us = append(us, user("corp", i, fmt.Sprintf("u%d", i), fmt.Sprintf("u%d@example.com", i), n))
	}
	apply(t, s, "corp", full(us...), nil, false)
	got := map[string]bool{}
	for _, e := range employees(t, s) {
		got[e.DisplayName] = true
	}
	for _, n := range names {
		if !got[n] {
			t.Errorf("name %q not stored exactly; have %v", n, got)
		}
	}
}

// BenchmarkMergeWrite measures the merge and write path: a first full sync
// of n in-memory users into a fresh SQLite file, reported as users per
// second.
func BenchmarkMergeWrite(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("users=%d", n), func(b *testing.B) {
			var us []ldapsync.User
			for i := 0; i < n; i++ {
				us = append(us, user("corp", i, fmt.Sprintf("u%d", i), fmt.Sprintf("u%d@example.com", i), fmt.Sprintf("User %d", i)))
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				s := newTestService(b, "corp")
				b.StartTimer()
				apply(b, s, "corp", full(us...), nil, false)
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "users/s")
		})
	}
}

func TestSyncFinishedElsewhereWritesNothing(t *testing.T) {
	s := newTestService(t, "corp")
	apply(t, s, "corp", full(user("corp", 1, "ann", "ann@example.com", "Ann")), nil, false)
	// A sync that started before the one above finished must not overwrite it.
	d, _ := s.cfg.Domain("corp")
	sum := DomainSummary{Domain: "corp"}
	err := s.writeDomain(context.Background(), *d, SyncRequest{Actor: testAdmin}, full(), nil, nil, &sum, s.now().Add(-time.Hour))
	if !errors.Is(err, ErrSyncRunning) {
		t.Fatalf("stale write: err = %v, want ErrSyncRunning", err)
	}
	if es := employees(t, s); len(es) != 1 || es[0].Status != "active" {
		t.Errorf("the stale sync changed employees: %+v", es)
	}
}

// A person removed by hand can be added again: the same employee comes
// back (their id and history), and only such a person.
func TestARemovedManualEmployeeIsAddedAgain(t *testing.T) {
	s := newTestService(t, "corp")
	ctx := context.Background()
	first, err := s.AddEmployee(ctx, testAdmin, "guard@example.com", "Night Guard")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RemoveEmployee(ctx, testAdmin, "guard@example.com"); err != nil {
		t.Fatal(err)
	}
	again, err := s.AddEmployee(ctx, testAdmin, "Guard@example.com", "Day Guard")
	if err != nil {
		t.Fatalf("adding a removed person again: %v", err)
	}
	if again.ID != first.ID || again.Status != "active" || again.RemovedAt != nil || again.DisplayName != "Day Guard" {
		t.Errorf("added again: %+v, want employee %d active as Day Guard", again, first.ID)
	}
	if got := auditActions(t, s, employeeTarget(first.ID)); strings.Join(got, " ") != "employee.add:success employee.remove:success employee.restore:success" {
		t.Errorf("audit: %v", got)
	}
	// Someone present is not added twice; nor is a removed AD employee.
	if _, err := s.AddEmployee(ctx, testAdmin, "guard@example.com", "X"); err == nil || !strings.Contains(err.Error(), "already employee") {
		t.Errorf("adding a present person: %v", err)
	}
	apply(t, s, "corp", full(user("corp", 1, "ann", "ann@example.com", "Ann")), nil, false)
	apply(t, s, "corp", full(), map[string]string{guid("corp", 1): "deleted"}, true)
	if _, err := s.AddEmployee(ctx, testAdmin, "ann@example.com", "Ann"); err == nil || !strings.Contains(err.Error(), "already employee") {
		t.Errorf("adding a removed AD employee by hand: %v", err)
	}
}

// EachEmployee streams what Employees lists: the same people, in the same
// order, with the same accounts (and people without an account too).
func TestEachEmployeeStreamsTheListing(t *testing.T) {
	s := newTestService(t, "corp", "lab")
	ctx := context.Background()
	var corp, lab []ldapsync.User
	for i := range 120 {
		corp = append(corp, user("corp", i, fmt.Sprintf("c%03d", i), fmt.Sprintf("p%03d@example.com", i), fmt.Sprintf("Person %03d", 119-i)))
		if i%3 == 0 {
			lab = append(lab, user("lab", i, fmt.Sprintf("l%03d", i), fmt.Sprintf("p%03d@example.com", i), "Lab person"))
		}
	}
	apply(t, s, "corp", full(corp...), nil, false)
	apply(t, s, "lab", full(lab...), nil, false)
	s.AddEmployee(ctx, testAdmin, "guard@example.com", "Night Guard")
	for _, filter := range []string{"", "domain:lab", "person 01"} {
		want, err := s.Employees(ctx, testAdmin, filter)
		if err != nil {
			t.Fatal(err)
		}
		var got []EmployeeView
		if err := s.EachEmployee(ctx, testAdmin, filter, func(v EmployeeView) error { got = append(got, v); return nil }); err != nil {
			t.Fatal(err)
		}
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		if string(gj) != string(wj) {
			t.Errorf("filter %q: EachEmployee gave %d people, Employees %d, or not alike", filter, len(got), len(want))
		}
		if filter == "" && len(got) != 121 {
			t.Errorf("%d people, want 121", len(got))
		}
	}
	// One employee read alone (the console's details) is as listed.
	all, _ := s.Employees(ctx, testAdmin, "")
	for _, want := range all {
		got, err := s.Employee(ctx, testAdmin, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		if string(gj) != string(wj) {
			t.Errorf("Employee(%d) = %s, listed as %s", want.ID, gj, wj)
		}
	}
	if _, err := s.Employee(ctx, testAdmin, 1<<40); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an employee that does not exist: %v, want store.ErrNotFound", err)
	}
}
