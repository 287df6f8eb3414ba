package ui

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"keydesk/app"
	"keydesk/config"
	"keydesk/internal/simtest"
	keylife "keydesk/keys"
	"keydesk/store"
)

// fixedNow is the clock of every UI test, so that relative times and the
// golden files are stable.
var fixedNow = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// storeNow is the database's clock in the fixture: what it records, and
// the moment a TOTP code is checked at.
var storeNow = fixedNow.Add(-90 * time.Second)

var testActor = app.Actor{Name: "test:admin", Role: app.RoleAdmin}

const fixtureConfig = `[[domain]]
name = "corp"
urls = ["ldaps://127.0.0.1:1"]
base_dn = "DC=corp,DC=example,DC=test"
bind_dn = "svc@corp.example.test"
bind_password_env = "KD_UI_TEST_UNUSED"
connect_timeout = "1s"

[[domain]]
name = "branch"
urls = ["ldaps://127.0.0.1:1"]
base_dn = "DC=branch,DC=example,DC=test"
bind_dn = "svc@branch.example.test"
bind_password_env = "KD_UI_TEST_UNUSED"
connect_timeout = "1s"
`

// fixture builds a service over a real SQLite file holding n employees
// (plus a few special ones), the domains' sync states, held removals and
// audit entries, all at fixed times.
func fixture(t testing.TB, n int) *app.Service {
	t.Helper()
	return fixtureWith(t, n, "")
}

// fixtureWith is the fixture with more configuration ahead of the
// domains' (a [mail] section).
func fixtureWith(t testing.TB, n int, conf string) *app.Service {
	t.Helper()
	ctx := context.Background()
	cfg, err := config.Parse("fixture.toml", []byte(conf+fixtureConfig))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	st.SetClock(func() time.Time { return storeNow })
	pwdSet := fixedNow.Add(-40 * 24 * time.Hour)
	err = st.Update(ctx, func(tx *store.Tx) error {
		add := func(name, email, domain, sam, dn string, left string, rotation bool) error {
			e := &store.Employee{EmailNorm: email, Email: email, DisplayName: name, Status: store.StatusActive, Source: store.SourceAD, Department: "Engineering"}
			if left != "" {
				e.Status = store.StatusRemoved
				e.RemovedAt = &pwdSet
			}
			if err := tx.InsertEmployee(ctx, e); err != nil {
				return err
			}
			a := &store.Account{Domain: domain, ObjectGUID: fmt.Sprintf("00000000-0000-4000-8000-%012d", e.ID), EmployeeID: e.ID,
				SAMAccountName: sam, Mail: email, DisplayName: name, DN: dn, Enabled: left != "disabled", InSyncGroup: left == "" || left == "disabled",
				PasswordRotation: rotation, LeftReason: left, PwdLastSet: &pwdSet, UPN: sam + "@" + domain + ".example.test"}
			if left != "" {
				a.LeftAt = &pwdSet
			}
			return tx.InsertAccount(ctx, a)
		}
		special := []struct{ name, email, domain, sam, left string }{
			{"Anna Smith", "anna.smith@example.com", "corp", "asmith", ""},
			{"Mallory \x1b[31mRed\x1b[0m", "mallory@example.com", "corp", "mallory", ""},
			{"Eve \u202egnp.exe", "eve@example.com", "branch", "eve", ""},
			{"Zoë Łukasiewicz", "zoe@example.com", "branch", "zoe", ""},
			{"Bob Gone", "bob@example.com", "corp", "bob", store.LeftGroup},
		}
		for _, s := range special {
			if err := add(s.name, s.email, s.domain, s.sam, "CN="+s.sam+",CN=Users,DC="+s.domain+",DC=example,DC=test", s.left, s.sam == "asmith"); err != nil {
				return err
			}
		}
		for i := 0; i < n; i++ {
			dom := "corp"
			if i%3 == 2 {
				dom = "branch"
			}
			sam := fmt.Sprintf("user%06d", i)
			if err := add(fmt.Sprintf("Person %06d", i), sam+"@example.com", dom, sam, "CN=Person "+sam+",OU=Staff,DC="+dom+",DC=example,DC=test", "", i%5 == 0); err != nil {
				return err
			}
		}
		// A second account for Anna in branch: a merged employee.
		anna, err := tx.EmployeeByEmail(ctx, "anna.smith@example.com")
		if err != nil {
			return err
		}
		if err := tx.InsertAccount(ctx, &store.Account{Domain: "branch", ObjectGUID: "00000000-0000-4000-8000-999999999999", EmployeeID: anna.ID,
			SAMAccountName: "anna", Mail: "Anna.Smith@example.com", DisplayName: "Anna S.", DN: "CN=Anna S.,CN=Users,DC=branch,DC=example,DC=test", Enabled: true, InSyncGroup: true}); err != nil {
			return err
		}
		if err := tx.InsertKey(ctx, &store.Key{Serial: "KD-0001", Status: "ready", Model: "KeyDesk Sim"}); err != nil {
			return err
		}
		annID := anna.ID
		if err := tx.InsertKey(ctx, &store.Key{Serial: "KD-0002", Status: "active", EmployeeID: &annID, Model: "KeyDesk Sim", Firmware: "1.0.0"}); err != nil {
			return err
		}
		ok := fixedNow.Add(-5 * time.Minute)
		sum, _ := json.Marshal(app.DomainSummary{Domain: "corp", OK: true, Mode: "full", Members: n, Added: 3, Updated: 2, Removed: 1, DurationMS: 850})
		if err := tx.PutSyncState(ctx, store.SyncState{Domain: "corp", HighestUSN: 100, LastSuccessAt: &ok, LastAttemptAt: &ok, LastSummary: string(sum)}); err != nil {
			return err
		}
		failed := fixedNow.Add(-2 * time.Minute)
		if err := tx.PutSyncState(ctx, store.SyncState{Domain: "branch", LastAttemptAt: &failed, LastError: "connect to domain branch: ldaps://dc1.branch: connection refused"}); err != nil {
			return err
		}
		if err := tx.ReplaceHeldRemovals(ctx, "corp", []store.HeldRemoval{{Domain: "corp", ObjectGUID: "g1", Reason: "left-group", DetectedAt: ok}, {Domain: "corp", ObjectGUID: "g2", Reason: "left-group", DetectedAt: ok}}); err != nil {
			return err
		}
		for _, e := range []store.AuditEntry{
			{Actor: "scheduler", Action: "sync", Target: "domain:corp", Outcome: store.OutcomeSuccess, Details: map[string]any{"added": 3, "updated": 2, "removed": 1, "held": 2}},
			{Actor: "scheduler", Action: "sync", Target: "domain:branch", Outcome: store.OutcomeFailure, Details: map[string]any{"error": "connection refused"}},
			{Actor: "cli:root", Action: "employee.add", Target: "employee:1", Outcome: store.OutcomeSuccess},
		} {
			if _, err := tx.AppendAudit(ctx, e, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("build fixture: %v", err)
	}
	var mk keylife.MasterKey
	rand.Read(mk[:])
	return app.New(cfg, st, app.WithClock(func() time.Time { return fixedNow }), app.WithMasterKey(mk), app.WithTrustedMaker(simtest.Maker(t).Cert()))
}

// asciiRenderer renders without colours, as golden files need.
func asciiRenderer() *lipgloss.Renderer {
	r := lipgloss.NewRenderer(nil)
	r.SetColorProfile(termenv.Ascii)
	return r
}

// newTestModel builds a console over the fixture, sized and with its data
// loaded by running the panes' load commands synchronously.
func newTestModel(t testing.TB, svc *app.Service, w, h int) *Model {
	t.Helper()
	return newTestModelAs(t, svc, testActor, w, h)
}

func newTestModelAs(t testing.TB, svc *app.Service, actor app.Actor, w, h int) *Model {
	t.Helper()
	m := New(svc, Options{Actor: actor, Renderer: asciiRenderer(), Now: func() time.Time { return fixedNow }, Location: time.UTC, NoEvents: true})
	m = update(t, m, tea.WindowSizeMsg{Width: w, Height: h})
	return run(t, m, m.mgr.Init())
}

func update(t testing.TB, m *Model, msg tea.Msg) *Model {
	t.Helper()
	m.Update(msg)
	return m
}

// run executes a command chain synchronously, feeding each message back
// into the model, until no command is left; batches and sequences run in
// order. Timers (ticks, cursor blinks) are not waited for.
func run(t testing.TB, m *Model, cmd tea.Cmd) *Model {
	t.Helper()
	queue := []tea.Cmd{cmd}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		if c == nil {
			continue
		}
		msg := c()
		if v := reflect.ValueOf(msg); msg != nil && v.Kind() == reflect.Slice && v.Type().Elem() == reflect.TypeOf(tea.Cmd(nil)) {
			// tea.BatchMsg, and tea.Sequence's own message.
			for i := 0; i < v.Len(); i++ {
				queue = append(queue, v.Index(i).Interface().(tea.Cmd))
			}
			continue
		}
		switch msg.(type) {
		case nil, tickMsg, tea.QuitMsg:
			continue
		}
		if _, ok := msg.(interface{ Blink() }); ok {
			continue
		}
		_, next := m.Update(msg)
		queue = append(queue, next)
	}
	return m
}

// press sends messages one by one, running what each starts, and returns
// the model.
func press(t testing.TB, m *Model, msgs ...tea.Msg) *Model {
	if t != nil {
		t.Helper()
	}
	for _, msg := range msgs {
		_, cmd := m.Update(msg)
		if t != nil {
			m = run(t, m, cmd)
		}
	}
	return m
}

// pressOnly sends messages without running what they start, and returns
// the last command.
func pressOnly(m *Model, msgs ...tea.Msg) tea.Cmd {
	var cmd tea.Cmd
	for _, msg := range msgs {
		_, cmd = m.Update(msg)
	}
	return cmd
}

func (m *Model) employees() *employeesPane { return m.mgr.pane(paneEmployees).(*employeesPane) }
func (m *Model) keysPane() *keysPane       { return m.mgr.pane(paneKeys).(*keysPane) }

// buildRows prepares employees as the Employees pane's load does.
func buildRows(views []app.EmployeeView, invites []app.InvitationView) []*empRow {
	b := newRowBuilder(invites)
	rows := make([]*empRow, len(views))
	for i := range views {
		rows[i] = b.row(&views[i])
	}
	return rows
}
