package ui

import (
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"

	"keydesk/app"
)

// TestCommandLine: : opens the command line; tab completes commands and
// their arguments; go EMAIL selects the person, add adds one, sync runs; a
// wrong command or one the role may not run says why in the line.
func TestCommandLine(t *testing.T) {
	svc := fixture(t, 20)
	m := newTestModel(t, svc, 120, 40)
	footer := func() string {
		lines := strings.Split(m.View(), "\n")
		return lines[len(lines)-1]
	}
	m = press(t, m, keys(":"))
	if m.cmd == nil || !strings.Contains(footer(), ":") {
		t.Fatalf(": did not open the command line:\n%s", footer())
	}
	// Completion: the command, then the domain.
	m = press(t, m, append(typeText("sy"), tea.KeyMsg{Type: tea.KeyTab})...)
	if got := m.cmd.input.Value(); got != "sync " {
		t.Errorf("tab after sy: %q, want %q", got, "sync ")
	}
	m = press(t, m, tea.KeyMsg{Type: tea.KeyTab})
	if !strings.Contains(m.cmd.hint, "branch") || !strings.Contains(m.cmd.hint, "corp") {
		t.Errorf("tab after sync lists %q, want the domains", m.cmd.hint)
	}
	m = press(t, m, append(typeText("co"), tea.KeyMsg{Type: tea.KeyTab})...)
	if got := m.cmd.input.Value(); got != "sync corp " {
		t.Errorf("tab after sync co: %q", got)
	}
	m = press(t, m, keyEsc)
	if m.cmd != nil {
		t.Fatal("esc did not close the command line")
	}

	// go EMAIL (completed from the employees) selects the person.
	m = press(t, m, keys(":"))
	m = press(t, m, append(typeText("go mallory"), tea.KeyMsg{Type: tea.KeyTab})...)
	if got := m.cmd.input.Value(); got != "go mallory@example.com " {
		t.Fatalf("tab after go mallory: %q", got)
	}
	m = press(t, m, keyEnter)
	if m.cmd != nil || m.mgr.focusedName() != paneEmployees {
		t.Fatal("go did not close the line and focus Employees")
	}
	if r := m.employees().current(); r == nil || r.email != "mallory@example.com" {
		t.Errorf("go selected %+v, want Mallory", r)
	}

	// add EMAIL NAME adds a person.
	m = press(t, m, keys(":"))
	m = press(t, m, append(typeText("add guard@example.com Night Guard"), keyEnter)...)
	if got, err := svc.Employees(t.Context(), testActor, "guard@example.com"); err != nil || len(got) != 1 || got[0].DisplayName != "Night Guard" {
		t.Errorf("add: %v %v", got, err)
	}

	// A wrong command, and one the role may not run, say why in the line.
	m = press(t, m, keys(":"))
	m = press(t, m, append(typeText("snyc"), keyEnter)...)
	if m.cmd == nil || !strings.Contains(m.cmd.hint, `no command "snyc"`) {
		t.Errorf("a wrong command: %+v", m.cmd)
	}
	m = press(t, m, keyEsc)
	aud := newTestModelAs(t, svc, app.Actor{Name: "aud", Role: app.RoleAuditor}, 120, 40)
	aud = press(t, aud, keys(":"))
	aud = press(t, aud, append(typeText("add x@example.com X"), keyEnter)...)
	if aud.cmd == nil || !strings.Contains(aud.cmd.hint, "cannot add") {
		t.Errorf("an auditor's add: %+v", aud.cmd)
	}
	if got, _ := svc.Employees(t.Context(), testActor, "x@example.com"); len(got) != 0 {
		t.Error("an auditor added someone")
	}
}
