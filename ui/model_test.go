package ui

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"keydesk/app"
	"keydesk/internal/simtest"
	"keydesk/keys/proto"
	"keydesk/ldapsync"
)

func keys(s string) tea.KeyMsg { return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)} }

var (
	keyTab      = tea.KeyMsg{Type: tea.KeyTab}
	keyShiftTab = tea.KeyMsg{Type: tea.KeyShiftTab}
	keyEsc      = tea.KeyMsg{Type: tea.KeyEsc}
	keyEnter    = tea.KeyMsg{Type: tea.KeyEnter}
	keyPgDown   = tea.KeyMsg{Type: tea.KeyPgDown}
)

func typeText(s string) []tea.Msg {
	var out []tea.Msg
	for _, r := range s {
		out = append(out, keys(string(r)))
	}
	return out
}

func isQuit(cmd tea.Cmd) bool {
	if cmd == nil {
		return false
	}
	switch cmd().(type) {
	case tea.QuitMsg, quitMsg:
		return true
	}
	return false
}

func selectedName(m *Model) string {
	if r := m.employees().current(); r != nil {
		return r.name
	}
	return ""
}

func footerLine(m *Model) string {
	v := strings.Split(m.View(), "\n")
	return v[len(v)-1]
}

func TestFocusCycles(t *testing.T) {
	m := newTestModel(t, fixture(t, 10), 80, 24)
	want := []string{paneKeys, paneDetails, paneRotation, paneInvitations, paneActivity, paneDomains, paneEmployees}
	for _, w := range want {
		m = press(t, m, keyTab)
		if got := m.mgr.focusedName(); got != w {
			t.Fatalf("after tab focus is %v, want %v", got, w)
		}
	}
	m = press(t, m, keyShiftTab)
	if got := m.mgr.focusedName(); got != paneDomains {
		t.Errorf("shift+tab from Employees gave %v, want Domains", got)
	}
	if !strings.Contains(m.View(), "KeyDesk › Domains") {
		t.Error("the header does not say where the user is")
	}
}

func TestListMovement(t *testing.T) {
	tests := []struct {
		name string
		keys []tea.Msg
		want string
	}{
		{"down", []tea.Msg{keys("j")}, "Bob Gone"},
		{"down then up", []tea.Msg{keys("j"), keys("j"), keys("k")}, "Bob Gone"},
		{"last", []tea.Msg{keys("G")}, "Zoë Łukasiewicz"},
		{"last then first", []tea.Msg{keys("G"), keys("g")}, "Anna Smith"},
		{"up at the top stays", []tea.Msg{keys("k"), keys("k")}, "Anna Smith"},
		{"page down", []tea.Msg{keyPgDown}, "Person 000005"}, // a page (10 rows at 80x24, with two keys) less one
		{"arrow keys", []tea.Msg{tea.KeyMsg{Type: tea.KeyDown}, tea.KeyMsg{Type: tea.KeyDown}}, "Eve <U+202E>gnp.exe"},
	}
	svc := fixture(t, 40)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestModel(t, svc, 80, 24)
			m = press(t, m, tt.keys...)
			if got := selectedName(m); got != tt.want {
				t.Errorf("selected %q, want %q", got, tt.want)
			}
			if !strings.Contains(m.View(), "› "+ansi.Truncate(tt.want, 10, "")) {
				t.Errorf("the view does not mark %q as selected:\n%s", tt.want, m.View())
			}
		})
	}
}

func TestFilter(t *testing.T) {
	svc := fixture(t, 40)
	tests := []struct {
		name  string
		typed string
		count int
		first string
	}{
		{"substring of a name", "mallory", 1, "Mallory \\x1b[31mRed\\x1b[0m"},
		{"case-insensitive email", "ZOE@", 1, "Zoë Łukasiewicz"},
		{"sAMAccountName", "asmith", 1, "Anna Smith"},
		{"fuzzy", "mlry", 1, "Mallory \\x1b[31mRed\\x1b[0m"},
		{"exact before fuzzy", "person 00001", 13, "Person 000010"}, // 10 exact, then 000001, 000021, 000031
		{"non-ASCII", "łuk", 1, "Zoë Łukasiewicz"},
		{"no match", "nobody-here", 0, ""},
		{"fuzzy stays within one field", "1u", 0, ""}, // "...0001" then "user...": only across fields
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestModel(t, svc, 100, 30)
			m = press(t, m, keys("/"))
			if !m.employees().Capturing() {
				t.Fatal("/ did not focus the filter")
			}
			m = press(t, m, typeText(tt.typed)...)
			if got := m.employees().visibleCount(); got != tt.count {
				t.Errorf("%d rows match %q, want %d", got, tt.typed, tt.count)
			}
			if got := selectedName(m); got != tt.first {
				t.Errorf("first match %q, want %q", got, tt.first)
			}
			v := m.View()
			if tt.count > 0 && !strings.Contains(v, fmt.Sprintf("Employees (%d of 45)", tt.count)) {
				t.Errorf("the title does not count the matches:\n%s", v)
			}
			if tt.count == 0 && !strings.Contains(v, "no employee matches") {
				t.Errorf("an empty result is not explained:\n%s", v)
			}
		})
	}
}

func TestFilterInputTakesEveryKey(t *testing.T) {
	m := newTestModel(t, fixture(t, 5), 80, 24)
	cmd := pressOnly(m, append([]tea.Msg{keys("/")}, typeText("qs?S")...)...)
	if isQuit(cmd) || m.showHelp || m.pendingSyncs != 0 || m.dialog != nil || m.message != "" {
		t.Fatalf("keys typed into the filter ran actions: quit=%v help=%v syncs=%d message=%q", isQuit(cmd), m.showHelp, m.pendingSyncs, m.message)
	}
	e := m.employees()
	if e.input.Value() != "qs?S" {
		t.Errorf("filter holds %q, want qs?S", e.input.Value())
	}
	m = press(t, m, keyEsc)
	if e.Capturing() || e.input.Value() != "" || e.visibleCount() != 10 {
		t.Errorf("esc: filtering=%v value=%q rows=%d; want the filter cleared", e.Capturing(), e.input.Value(), e.visibleCount())
	}
	m = press(t, m, append(append([]tea.Msg{keys("/")}, typeText("anna")...), keyEnter)...)
	if e.Capturing() || e.visibleCount() != 1 {
		t.Errorf("enter: filtering=%v rows=%d; want the filter kept and the input closed", e.Capturing(), e.visibleCount())
	}
	m = press(t, m, keys("j"))
	if selectedName(m) != "Anna Smith" {
		t.Error("j after enter did not act on the filtered list")
	}
}

func TestKeysReadTogetherAreTakenOneByOne(t *testing.T) {
	m := newTestModel(t, fixture(t, 5), 80, 24)
	e := m.employees()
	// A busy terminal hands "/" and the letters typed after it over at once.
	m = press(t, m, keys("/mallory"))
	if !e.Capturing() || e.input.Value() != "mallory" || e.visibleCount() != 1 {
		t.Fatalf("filtering=%v value=%q rows=%d; want the filter open with mallory", e.Capturing(), e.input.Value(), e.visibleCount())
	}
	m = press(t, m, keyEsc, keys("jj")) // esc keeps Mallory (the fourth row) selected
	if e.list.cursor != 5 {
		t.Errorf("jj moved the cursor to %d, want 5", e.list.cursor)
	}
	// Esc then j read together arrive as alt+j: the filter closes, then j.
	press(t, m, keys("/anna"), tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("j"), Alt: true})
	if e.Capturing() || e.input.Value() != "" || e.list.cursor != 1 {
		t.Errorf("alt+j while filtering: filtering=%v value=%q cursor=%d; want the filter cleared and the cursor moved", e.Capturing(), e.input.Value(), e.list.cursor)
	}
}

// TestHelpIsGeneratedFromTheActionTables checks that the help screen lists
// exactly the actions this operator may run: every permitted action of the
// global table and of each pane, and none other.
func TestHelpIsGeneratedFromTheActionTables(t *testing.T) {
	svc := fixture(t, 5)
	for _, role := range app.Roles() {
		t.Run(string(role), func(t *testing.T) {
			m := newTestModelAs(t, svc, app.Actor{Name: "op", Role: role}, 140, 70) // the help in one column
			m = press(t, m, keys("?"))
			v := m.View()
			tables := [][]Action{m.global}
			for _, s := range m.mgr.slots {
				tables = append(tables, s.pane.Actions())
			}
			for _, table := range tables {
				for _, a := range table {
					h := a.Key.Help()
					line := regexp.MustCompile(`(?m)^│?\s*` + regexp.QuoteMeta(h.Key) + `\s+` + regexp.QuoteMeta(h.Desc))
					listed := line.MatchString(strings.ReplaceAll(v, "│", "\n"))
					if listed != m.c.Can(a.Perm) {
						t.Errorf("help lists %q %q: %v, but the role may run it: %v", h.Key, h.Desc, listed, m.c.Can(a.Perm))
					}
				}
			}
			m = press(t, m, keys("?"))
			if m.showHelp {
				t.Error("? did not close the help")
			}
		})
	}
}

// TestRolesSeeOnlyWhatTheyMayDo: the console offers each role only its
// actions, hides panes it may not read, and an action pressed anyway is
// refused in a short message.
func TestRolesSeeOnlyWhatTheyMayDo(t *testing.T) {
	svc := fixture(t, 5)
	helpdesk := newTestModelAs(t, svc, app.Actor{Name: "hd", Role: app.RoleHelpdesk}, 100, 40)
	if helpdesk.mgr.pane(paneActivity) != nil || strings.Contains(helpdesk.View(), "Activity") {
		t.Error("helpdesk (no audit.read) is shown the Activity pane")
	}
	helpdesk = press(t, helpdesk, keyTab, keys("j")) // Keys, the active KD-0002
	if f := footerLine(helpdesk); strings.Contains(f, "lost/stolen/broken") || !strings.Contains(f, "z suspend") {
		t.Errorf("helpdesk's footer on an active key: %q; want suspend offered, compromise not", f)
	}
	helpdesk = press(t, helpdesk, keys("x"))
	if helpdesk.dialog != nil || !strings.Contains(footerLine(helpdesk), "lost/stolen/broken: your role (helpdesk) cannot do this") {
		t.Errorf("x as helpdesk: dialog %v, footer %q", helpdesk.dialog, footerLine(helpdesk))
	}
	helpdesk.mgr.focusName(paneDomains) // corp holds 2 removals
	helpdesk = press(t, helpdesk, keys("a"))
	if helpdesk.dialog != nil || !strings.Contains(footerLine(helpdesk), "your role (helpdesk) cannot do this") {
		t.Errorf("helpdesk could start applying held removals (focus %s)", helpdesk.mgr.focusedName())
	}

	auditor := newTestModelAs(t, svc, app.Actor{Name: "aud", Role: app.RoleAuditor}, 100, 40)
	auditor = press(t, auditor, keyTab) // Keys
	f := footerLine(auditor)
	for _, forbidden := range []string{"assign", "suspend", "withdraw", "new activation code"} {
		if strings.Contains(f, forbidden) {
			t.Errorf("auditor's footer offers %s: %q", forbidden, f)
		}
	}
	if !strings.Contains(f, "? help") || !strings.Contains(f, "q quit") {
		t.Errorf("auditor's footer %q lacks help and quit", f)
	}
	if auditor.mgr.pane(paneActivity) == nil {
		t.Error("the auditor does not see the Activity pane")
	}
}

// TestActionsFollowTheLifecycle: the Keys pane offers on a key only what
// its status allows, and says why in one line when a key is pressed anyway.
func TestActionsFollowTheLifecycle(t *testing.T) {
	m := newTestModel(t, fixture(t, 5), 120, 40)
	m = press(t, m, keyTab) // Keys: KD-0001 ready
	f := footerLine(m)
	if !strings.Contains(f, "a assign") || strings.Contains(f, "z suspend") || strings.Contains(f, "u unlock") {
		t.Errorf("footer on a ready key: %q", f)
	}
	m = press(t, m, keys("z"))
	if m.dialog != nil || !strings.Contains(footerLine(m), "suspend: not for a ready key") {
		t.Errorf("z on a ready key: dialog %v, footer %q", m.dialog, footerLine(m))
	}
	m = press(t, m, keys("j")) // KD-0002 active
	f = footerLine(m)
	if strings.Contains(f, "a assign") || !strings.Contains(f, "z suspend") {
		t.Errorf("footer on an active key: %q", f)
	}
	if v := m.View(); !strings.Contains(v, "You can") || !strings.Contains(v, "suspend (z)") {
		t.Errorf("the key's details do not say what can be done with it:\n%s", v)
	}
}

// TestFooterNeverCutsAHint: at 80 columns, whatever is focused, every hint
// in the footer is whole, and ? help and q quit are always there.
func TestFooterNeverCutsAHint(t *testing.T) {
	m := newTestModel(t, fixture(t, 5), 80, 24)
	for range m.mgr.slots {
		m = press(t, m, keyTab)
		f := footerLine(m)
		if !strings.HasSuffix(strings.TrimRight(f, " "), "? help · q quit") {
			t.Errorf("%s: footer %q does not end with ? help · q quit", m.mgr.focusedName(), f)
		}
		if strings.Contains(f, "…") || ansi.StringWidth(f) != 80 {
			t.Errorf("%s: footer %q is cut or not 80 wide", m.mgr.focusedName(), f)
		}
	}
}

// TestKeyLettersMeanOneThingPerPane: within a pane, a key is one action,
// and no pane's action takes a key that means something everywhere.
func TestKeyLettersMeanOneThingPerPane(t *testing.T) {
	m := newTestModel(t, fixture(t, 5), 100, 30)
	global := map[string]string{}
	for _, a := range m.global {
		for _, k := range a.Key.Keys() {
			global[k] = a.Key.Help().Desc
		}
	}
	for _, k := range m.c.Keys.listKeys() {
		for _, kk := range k.Keys() {
			global[kk] = k.Help().Desc
		}
	}
	for _, s := range m.mgr.slots {
		seen := map[string]string{}
		for _, a := range s.pane.Actions() {
			for _, k := range a.Key.Keys() {
				if other, ok := seen[k]; ok {
					t.Errorf("%s: %q means both %q and %q", s.name, k, other, a.Key.Help().Desc)
				}
				if g, ok := global[k]; ok {
					t.Errorf("%s: %q (%s) hides the global %q", s.name, k, a.Key.Help().Desc, g)
				}
				seen[k] = a.Key.Help().Desc
			}
		}
	}
}

func TestQuitAsksWhileSyncing(t *testing.T) {
	m := newTestModel(t, fixture(t, 5), 120, 30)
	if cmd := pressOnly(m, keys("q")); !isQuit(cmd) {
		t.Fatal("q did not quit when nothing runs")
	}
	m = newTestModel(t, fixture(t, 5), 120, 30)
	m = press(t, m, eventMsg{app.SyncStarted{Domain: "corp"}}, eventMsg{app.SyncProgressed{Domain: "corp", Progress: ldapsync.Progress{Phase: "members", Pages: 3, Entries: 2500}}})
	v := m.View()
	if !strings.Contains(v, "syncing corp") || !strings.Contains(v, "members, 3 pages, 2500 read") {
		t.Errorf("progress is not shown:\n%s", v)
	}
	if cmd := pressOnly(m, keys("q")); isQuit(cmd) || m.dialog == nil {
		t.Fatal("q quit at once while a sync runs")
	}
	if !strings.Contains(m.View(), "Quit while a sync is running?") {
		t.Errorf("no confirmation shown:\n%s", m.View())
	}
	if cmd := pressOnly(m, keys("n")); isQuit(cmd) || m.dialog != nil {
		t.Fatal("n did not cancel")
	}
	pressOnly(m, keys("q"))
	if cmd := pressOnly(m, keys("y")); !isQuit(cmd) {
		t.Error("y did not quit")
	}
	m = newTestModel(t, fixture(t, 5), 120, 30)
	m = press(t, m, eventMsg{app.SyncStarted{Domain: "corp"}}, eventMsg{app.SyncFinished{Domain: "corp", Summary: app.DomainSummary{Domain: "corp", Error: "bind refused"}}})
	if m.busy() || !strings.Contains(m.View(), "corp: sync failed: bind refused") {
		t.Errorf("a failed sync is not reported:\n%s", m.View())
	}
}

func TestApplyHeldRemovalsAsks(t *testing.T) {
	m := newTestModel(t, fixture(t, 5), 100, 30)
	m = press(t, m, keyShiftTab, keys("a"))
	d, ok := m.dialog.(*confirmDialog)
	if !ok || !d.danger || !strings.Contains(m.View(), "Apply 2 held removals in corp?") {
		t.Fatalf("a on a domain with held removals did not ask:\n%s", m.View())
	}
	cmd := pressOnly(m, keys("n"))
	if m.dialog != nil || m.pendingSyncs != 0 {
		t.Error("n did not cancel")
	}
	m = run(t, m, cmd)
	m = press(t, m, keys("j"), keys("a"))
	if m.dialog != nil || !strings.Contains(footerLine(m), "no held removals in this domain") {
		t.Errorf("branch has no held removals but a asked anyway (footer %q)", footerLine(m))
	}
}

func TestSyncKeyRunsOffTheUIGoroutine(t *testing.T) {
	m := newTestModel(t, fixture(t, 5), 80, 24)
	cmd := pressOnly(m, keys("s"))
	if cmd == nil || m.pendingSyncs != 0 {
		t.Fatal("s did the sync's work in Update instead of starting a command")
	}
	// The command does the I/O; here the domain's password is not set, so
	// the sync fails, and the console says so.
	m = run(t, m, cmd)
	if m.pendingSyncs != 0 || !strings.Contains(m.View(), "sync of corp failed") {
		t.Errorf("the failed sync is not reported:\n%s", m.View())
	}
}

// TestSyncAllNeedNotWaitForTheDomainsList: S pressed before the Domains
// pane's first list arrives syncs every configured domain (an SSH session
// sends keys as soon as the first frame shows); once the list says there
// are none, S says so instead.
func TestSyncAllNeedNotWaitForTheDomainsList(t *testing.T) {
	m := New(fixture(t, 5), Options{Actor: testActor, Renderer: asciiRenderer(), Now: func() time.Time { return fixedNow }, Location: time.UTC, NoEvents: true})
	m = update(t, m, tea.WindowSizeMsg{Width: 100, Height: 30})
	cmd := pressOnly(m, keys("S"))
	if cmd == nil {
		t.Fatal("S before the Domains list loaded started nothing")
	}
	m = run(t, m, cmd)
	if v := m.View(); !strings.Contains(v, "sync of corp failed") || strings.Contains(v, "no domains are configured") {
		t.Errorf("S before the Domains list loaded did not sync:\n%s", v)
	}

	empty := New(fixture(t, 5), Options{Actor: testActor, Renderer: asciiRenderer(), Now: func() time.Time { return fixedNow }, Location: time.UTC, NoEvents: true})
	empty = update(t, empty, tea.WindowSizeMsg{Width: 100, Height: 30})
	empty = update(t, empty, domainsMsg{})
	if cmd := pressOnly(empty, keys("S")); cmd != nil {
		empty = run(t, empty, cmd)
	}
	if v := empty.View(); !strings.Contains(v, "no domains are configured") {
		t.Errorf("S with an empty Domains list did not say why it did nothing:\n%s", v)
	}
}

func TestMouseSelectsAndFocuses(t *testing.T) {
	m := newTestModel(t, fixture(t, 20), 80, 24)
	emp := m.mgr.rects[1]
	y := 1 + emp.y + 1 + 1 + 3 // header, top border, column header, fourth row
	m = press(t, m, tea.MouseMsg{X: 5, Y: y, Button: tea.MouseButtonLeft, Action: tea.MouseActionPress})
	if got := selectedName(m); got != "Mallory \\x1b[31mRed\\x1b[0m" {
		t.Errorf("click on the fourth row selected %q", got)
	}
	details := m.mgr.rects[3]
	m = press(t, m, tea.MouseMsg{X: details.x + 3, Y: 2, Button: tea.MouseButtonLeft, Action: tea.MouseActionPress})
	if m.mgr.focusedName() != paneDetails {
		t.Errorf("click on Details focused %v", m.mgr.focusedName())
	}
	m = press(t, m, tea.MouseMsg{X: 5, Y: y, Button: tea.MouseButtonWheelDown})
	if m.mgr.focusedName() != paneEmployees || m.employees().list.cursor != 6 {
		t.Errorf("wheel: focus %v cursor %d, want Employees and 6", m.mgr.focusedName(), m.employees().list.cursor)
	}
}

func TestEveryViewFitsTheTerminal(t *testing.T) {
	svc := fixture(t, 30)
	for w := 0; w <= 160; w += 7 {
		for h := 0; h <= 60; h += 5 {
			for _, mode := range []string{"plain", "help", "dialog", "filter"} {
				m := newTestModel(t, svc, 80, 24)
				m = update(t, m, tea.WindowSizeMsg{Width: w, Height: h})
				switch mode {
				case "help":
					m = press(t, m, keys("?"))
				case "dialog":
					m = press(t, m, keyShiftTab, keys("a"))
				case "filter":
					m = press(t, m, append([]tea.Msg{keys("/")}, typeText("per")...)...)
				}
				v := m.View()
				if w < MinWidth || h < MinHeight {
					if w > 30 && h > 3 && !strings.Contains(v, "terminal too small") {
						t.Errorf("%dx%d %s: no 'terminal too small'", w, h, mode)
					}
					continue
				}
				lines := strings.Split(v, "\n")
				if len(lines) != h {
					t.Errorf("%dx%d %s: %d lines", w, h, mode, len(lines))
				}
				for i, l := range lines {
					if lw := ansi.StringWidth(l); lw != w {
						t.Errorf("%dx%d %s: line %d is %d wide: %q", w, h, mode, i, lw, l)
						break
					}
				}
			}
		}
	}
}

func TestDirectoryTextIsSanitised(t *testing.T) {
	m := newTestModel(t, fixture(t, 5), 120, 40)
	m = press(t, m, keys("j"), keys("j"), keys("j")) // Mallory, whose name holds escape sequences
	v := m.View()
	if strings.ContainsAny(v, "\x1b\u202e\x07") {
		t.Errorf("raw control characters reached the screen: %q", v)
	}
	for _, want := range []string{`Mallory \x1b[31mRed\x1b[0m`, "Eve <U+202E>"} {
		if !strings.Contains(v, want) {
			t.Errorf("the view does not show %q as harmless text", want)
		}
	}
}

func TestDarkBackground(t *testing.T) {
	for in, want := range map[string]bool{"": true, "15;0": true, "0;15": false, "0;default;15": false, "7;8": true, "garbage": true, "0;7": false} {
		if got := darkBackground(in); got != want {
			t.Errorf("darkBackground(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestDetailsFollowTheFocusedSelection(t *testing.T) {
	m := newTestModel(t, fixture(t, 5), 120, 40)
	if v := m.View(); !strings.Contains(v, "asmith") {
		t.Fatalf("Details does not describe the selected employee:\n%s", v)
	}
	m = press(t, m, keyTab, keys("j")) // Keys: KD-0002
	if v := m.View(); !strings.Contains(v, "Serial    KD-0002") {
		t.Errorf("Details does not describe the selected key:\n%s", v)
	}
	m = press(t, m, keyTab) // Details itself keeps the key
	if v := m.View(); !strings.Contains(v, "Serial    KD-0002") {
		t.Errorf("focusing Details changed what it describes:\n%s", v)
	}
	m = press(t, m, keyTab) // Rotation: corp\asmith, due (its key is not active)
	if v := m.View(); !strings.Contains(v, `Account   corp\asmith`) || !strings.Contains(v, "Rotation  due") {
		t.Errorf("Details does not describe the selected rotation:\n%s", v)
	}
	m = press(t, m, keyTab, keyTab, keyTab) // Invitations, Activity, Domains: corp
	if v := m.View(); !strings.Contains(v, "Domain    corp") || !strings.Contains(v, "2 removals wait") {
		t.Errorf("Details does not describe the selected domain:\n%s", v)
	}
}

func TestAssignShowsTheCodeOnceAndLargely(t *testing.T) {
	m := newTestModel(t, fixture(t, 5), 100, 40)
	// Select Person 000000 (no key yet), then the ready key KD-0001.
	m = press(t, m, keys("jjjj"))
	if selectedName(m) != "Person 000000" {
		t.Fatalf("selected %q", selectedName(m))
	}
	m = press(t, m, keyTab)
	if m.mgr.focusedName() != paneKeys || m.keysPane().current().Serial != "KD-0001" {
		t.Fatalf("focus %v key %+v", m.mgr.focusedName(), m.keysPane().current())
	}
	m = press(t, m, keys("a"))
	if m.dialog == nil || !strings.Contains(m.View(), "Assign key KD-0001 to Person 000000?") {
		t.Fatalf("a did not ask:\n%s", m.View())
	}
	m = press(t, m, keys("y"))
	d, ok := m.dialog.(*codeDialog)
	if !ok {
		t.Fatalf("no code dialog after assigning (message %q)", m.message)
	}
	code := d.code
	v := m.View()
	if !regexpMatch(`^\d{3} \d{3}$`, code) || !strings.Contains(v, "code: "+code) || !strings.Contains(v, "███") || !strings.Contains(v, "expires in 72 hours") {
		t.Errorf("the code %q is not shown large and readable, with its expiry:\n%s", code, v)
	}
	m = press(t, m, keyEnter)
	if m.dialog != nil || strings.Contains(m.View(), code) {
		t.Error("the code is still on screen after it was dismissed")
	}
	if k := m.keysPane().current(); k.Status != "reserved" || k.Owner != "Person 000000" {
		t.Errorf("key after assign = %+v", k)
	}
}

func TestCompromiseNeedsTheSerialTyped(t *testing.T) {
	m := newTestModel(t, fixture(t, 5), 100, 40)
	m = press(t, m, keyTab, keys("j"), keys("x"))
	if _, ok := m.dialog.(*choiceDialog); !ok {
		t.Fatalf("x did not offer lost/stolen/broken:\n%s", m.View())
	}
	m = press(t, m, keys("s"))
	if _, ok := m.dialog.(*inputDialog); !ok {
		t.Fatalf("no serial prompt:\n%s", m.View())
	}
	m = press(t, m, append(typeText("KD-0001"), keyEnter)...)
	if m.dialog == nil || !strings.Contains(m.View(), "not this key's serial") {
		t.Fatalf("a wrong serial was accepted:\n%s", m.View())
	}
	for range 7 {
		m = press(t, m, tea.KeyMsg{Type: tea.KeyBackspace})
	}
	m = press(t, m, append(typeText("KD-0002"), keyEnter)...)
	if k := m.keysPane().current(); k.Status != "compromised" || k.Reason != "stolen" {
		t.Errorf("key = %+v, want compromised (stolen)", k)
	}
}

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }

func TestActivationScreenCountsWrongCodes(t *testing.T) {
	svc := fixture(t, 5)
	m := newTestModel(t, svc, 100, 40)
	// KD-0001 is assigned to Person 000000 and plugged in (simulated).
	sk := simtest.NewKey(t, "KD-0001")
	if _, err := svc.KeyConnected(t.Context(), app.Plug{ID: "sim", Kind: "simulated", Place: app.PlaceLocal, Open: func() (proto.Transport, error) { return sk.Plug(), nil }}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AssignKey(t.Context(), testActor, "KD-0001", "user000000@example.com"); err != nil {
		t.Fatal(err)
	}
	m = press(t, m, eventMsg{app.KeyPlugged{Serial: "KD-0001", Place: app.PlaceLocal, PluggedIn: true, Status: "reserved"}})
	a, ok := m.dialog.(*Activation)
	if !ok || !strings.Contains(m.View(), "Activate key KD-0001 for Person 000000") {
		t.Fatalf("plugging a reserved key did not open the activation screen:\n%s", m.View())
	}
	if a.input.Value() != "" {
		t.Error("the code field is not empty")
	}
	m = press(t, m, keys("x"), keys("-"))
	if a.input.Value() != "" || !strings.Contains(m.View(), "the code is 6 digits") {
		t.Errorf("the code field took letters (%q)", a.input.Value())
	}
	m = press(t, m, append(typeText("987654"), keyEnter)...)
	v := m.View()
	if !strings.Contains(v, "wrong code for key KD-0001: 2 attempts left") || m.dialog == nil {
		t.Fatalf("a wrong code is not reported with the attempts left (and the screen kept):\n%s", v)
	}
	if strings.Contains(v, "987654") || strings.Contains(v, "987 654") {
		t.Errorf("the typed code is echoed on screen:\n%s", v)
	}
	// While the operator types a filter, a key plugged in does not steal
	// the keyboard.
	m = press(t, m, keyEsc, keys("/"))
	m = press(t, m, eventMsg{app.KeyPlugged{Serial: "KD-0001", Place: app.PlaceLocal, PluggedIn: true, Status: "reserved"}})
	if m.dialog != nil {
		t.Error("the activation screen opened over the filter being typed")
	}
}

// TestCursorStartsOnTheFirstRowUntilMoved: while the operator has not moved,
// the cursor stays on the first row as the list fills; once they chose an
// employee, reloads keep that employee.
func TestCursorStartsOnTheFirstRowUntilMoved(t *testing.T) {
	m := newTestModel(t, fixture(t, 5), 100, 30)
	e := m.employees()
	rows := e.rows
	m = press(t, m, employeesMsg{rows: rows[3:]}, employeesMsg{rows: rows})
	if e.list.cursor != 0 || selectedName(m) != rows[0].name {
		t.Errorf("after the list grew the cursor is on %q, want the first row %q", selectedName(m), rows[0].name)
	}
	m = press(t, m, keys("j"), keys("j"))
	want := selectedName(m)
	m = press(t, m, employeesMsg{rows: rows[1:]})
	if selectedName(m) != want {
		t.Errorf("after a reload the cursor is on %q, want the chosen %q", selectedName(m), want)
	}
}

// TestConfirmedActionActsOnWhatItNamed: the employees list reloads while
// the assign question is open (the scheduler, another console); yes still
// assigns the key to the employee the question named.
func TestConfirmedActionActsOnWhatItNamed(t *testing.T) {
	m := newTestModel(t, fixture(t, 5), 100, 40)
	m = press(t, m, keys("jjjj"), keyTab, keys("a"))
	if !strings.Contains(m.View(), "Assign key KD-0001 to Person 000000?") {
		t.Fatalf("no question:\n%s", m.View())
	}
	var others []*empRow
	for _, r := range m.employees().rows {
		if r.name != "Person 000000" {
			others = append(others, r)
		}
	}
	m = press(t, m, employeesMsg{rows: others}) // Person 000000 is gone from the list
	m = press(t, m, keys("y"))
	if k := m.keysPane().current(); k.Status != "reserved" || k.Owner != "Person 000000" {
		t.Errorf("key after yes = %s for %q, want reserved for Person 000000, whom the question named", k.Status, k.Owner)
	}
}

// TestADialogNeverReplacesAnother: a second code arriving while the first
// is on screen waits for it, so neither is lost.
func TestADialogNeverReplacesAnother(t *testing.T) {
	m := newTestModel(t, fixture(t, 5), 100, 40)
	first := &codeDialog{keys: m.c.Keys, code: "111 111", title: "first"}
	second := &codeDialog{keys: m.c.Keys, code: "222 222", title: "second"}
	m = press(t, m, openDialogMsg{d: first}, openDialogMsg{d: second})
	if m.dialog != first {
		t.Fatal("the second dialog replaced the first")
	}
	m = press(t, m, keyEnter)
	if m.dialog != second {
		t.Fatal("the waiting dialog did not open when the first closed")
	}
	m = press(t, m, keyEnter)
	if m.dialog != nil {
		t.Error("a dialog is still open")
	}
}

// TestActivityShowsEachEntryOnce: changes announced faster than the log is
// read load it once more, not once each, and no entry shows twice.
func TestActivityShowsEachEntryOnce(t *testing.T) {
	svc := fixture(t, 5)
	m := newTestModel(t, svc, 120, 40)
	if err := svc.AddKeys(t.Context(), testActor, []string{"NEW-1"}); err != nil {
		t.Fatal(err)
	}
	changed := eventMsg{app.DataChanged{What: app.ChangedAudit}}
	a := m.mgr.pane(paneActivity).(*activityPane)
	cmd1 := pressOnly(m, changed)
	cmd2 := pressOnly(m, changed)
	if cmd2 != nil {
		t.Error("a second load started while one was running")
	}
	m = run(t, m, cmd1)
	seen := map[int64]int{}
	for _, e := range a.entries {
		seen[e.Seq]++
		if seen[e.Seq] > 1 {
			t.Errorf("entry %d (%s) shows twice", e.Seq, e.Action)
		}
	}
	if !strings.Contains(m.View(), "add key NEW-1") {
		t.Errorf("the new entry is not shown:\n%s", m.View())
	}
}

// TestActivationScreenStandsAlone drives the activation screen without the
// console around it, as a kiosk will: it loads its key, takes the code and
// activates the key.
func TestActivationScreenStandsAlone(t *testing.T) {
	svc := fixture(t, 5)
	sk := simtest.NewKey(t, "KD-0001")
	if _, err := svc.KeyConnected(t.Context(), app.Plug{ID: "sim", Kind: "simulated", Place: app.PlaceLocal, Open: func() (proto.Transport, error) { return sk.Plug(), nil }}); err != nil {
		t.Fatal(err)
	}
	code, err := svc.AssignKey(t.Context(), testActor, "KD-0001", "user000000@example.com")
	if err != nil {
		t.Fatal(err)
	}
	c := newCommon(svc, &Options{Actor: testActor, Renderer: asciiRenderer(), Now: func() time.Time { return fixedNow }, Location: time.UTC})
	var d Dialog = newActivation(c, "KD-0001")
	var notices []string
	// drive runs a command chain into the screen, as a host program would.
	var drive func(cmd tea.Cmd)
	drive = func(cmd tea.Cmd) {
		if cmd == nil {
			return
		}
		switch msg := cmd().(type) {
		case tea.BatchMsg:
			for _, c := range msg {
				drive(c)
			}
		case noticeMsg:
			notices = append(notices, msg.text)
		case nil:
		default:
			if d != nil {
				var next tea.Cmd
				d, next = d.Update(msg)
				drive(next)
			}
		}
	}
	drive(d.Init())
	if v := d.View(c, 80); !strings.Contains(v, "Activate key KD-0001 for Person 000000") {
		t.Fatalf("the screen does not name the key and its owner:\n%s", v)
	}
	for _, r := range strings.ReplaceAll(code.String(), " ", "") {
		var cmd tea.Cmd
		d, cmd = d.Update(keys(string(r)))
		drive(cmd)
	}
	var cmd tea.Cmd
	d, cmd = d.Update(keyEnter)
	drive(cmd)
	// Person 000000 is in corp's password group, whose DC the fixture
	// cannot reach: the key is active, and the screen says the first
	// password is not on it yet, and why.
	if d != nil || len(notices) == 0 || !strings.HasPrefix(notices[len(notices)-1], "key KD-0001 is active; 0 of 1 domain passwords set on it (corp\\user000000: read the password policy") {
		t.Errorf("after the right code: screen %v, notices %q", d, notices)
	}
}

// TestAnUnverifiedDeviceIsShownAsSuch: a device that claims a key's serial
// without proving it appears in the Keys pane as an unverified device (not
// as the key), with why in the details, and the console says so.
func TestAnUnverifiedDeviceIsShownAsSuch(t *testing.T) {
	svc := fixture(t, 5)
	m := newTestModel(t, svc, 120, 40)
	clone, err := simtest.Maker(t).NewKeyClaiming("KD-CLONE", "KD-0001")
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.KeyConnected(t.Context(), app.Plug{ID: "sim:clone", Kind: "simulated", Place: app.PlaceLocal, Open: func() (proto.Transport, error) { return clone.Plug(), nil }})
	if !errors.Is(err, app.ErrUnverifiedDevice) {
		t.Fatalf("plugging the clone: %v", err)
	}
	m = press(t, m, eventMsg{app.KeyPlugged{Serial: "KD-0001", Place: app.PlaceLocal, PluggedIn: true, Status: app.StatusUnverifiedDevice}})
	if !strings.Contains(m.message, "did not prove it") || m.dialog != nil {
		t.Errorf("message %q, dialog %v: want a warning and no activation screen", m.message, m.dialog)
	}
	m = press(t, m, keyTab)
	p := m.keysPane()
	for range len(p.keys) {
		if p.current().Status == app.StatusUnverifiedDevice {
			break
		}
		m = press(t, m, keys("j"))
	}
	v := m.View()
	if k := p.current(); k.Status != app.StatusUnverifiedDevice || k.Serial != "KD-0001" {
		t.Fatalf("no unverified device row in the Keys pane:\n%s", v)
	}
	for _, want := range []string{"UNVERIFIED device", "claims serial KD-0001", "attestation certificate names KD-CLONE"} {
		if !strings.Contains(v, want) {
			t.Errorf("the console does not show %q:\n%s", want, v)
		}
	}
}

// TestDetailsFollowTheSelection: the Details pane reads the selected
// employee's accounts when they are selected, by moving or by a sort that
// puts another employee first, and shows no one's else.
func TestDetailsFollowTheSelection(t *testing.T) {
	m := newTestModel(t, fixture(t, 30), 120, 40)
	check := func(when string) {
		t.Helper()
		it, ok := m.employees().Selected().(employeeItem)
		if !ok || it.v == nil || it.v.ID != it.r.id || it.err != nil {
			t.Fatalf("%s: the selection's details are %+v", when, it)
		}
		if view := m.View(); strings.Contains(view, "loading…") || !strings.Contains(view, `\`+it.v.Accounts[0].SAMAccountName) {
			t.Errorf("%s: Details does not show %s's account:\n%s", when, it.r.name, view)
		}
	}
	check("at start")
	// Not moved yet: a sort puts the cursor on its first row, whoever
	// that is.
	seen := map[int64]bool{m.employees().current().id: true}
	for range 4 {
		m = press(t, m, keys("o")) // email, domains, changed, key
		check("after o")
		seen[m.employees().current().id] = true
	}
	if len(seen) < 2 {
		t.Error("no sort put another employee first: the sorts' details go untested")
	}
	m = press(t, m, keys("j"), keys("j"))
	check("after j j")
}

// TestFinishedSyncShowsAtOnce: the Domains pane shows a sync's outcome
// from the SyncFinished event itself, before the reload it starts returns
// (which, at 100,000 employees, waits behind the other panes' reloads).
func TestFinishedSyncShowsAtOnce(t *testing.T) {
	m := newTestModel(t, fixture(t, 5), 200, 30)
	row := func() string {
		for _, l := range strings.Split(m.View(), "\n") {
			if strings.Contains(l, "   branch   ") {
				return l
			}
		}
		t.Fatalf("no branch row:\n%s", m.View())
		return ""
	}
	before := row()
	pane := m.mgr.pane(paneDomains).(*domainsPane)
	stale := slices.Clone(pane.domains)
	pressOnly(m, eventMsg{app.SyncStarted{Domain: "branch", At: fixedNow}})
	pressOnly(m, eventMsg{app.SyncFinished{Domain: "branch", Summary: app.DomainSummary{Domain: "branch", OK: true, Mode: "full", Members: 4321, Added: 17}}})
	if got := row(); !strings.Contains(got, "● ok") || !strings.Contains(got, "+17 ~0 -0") || !strings.Contains(got, "4321 members") {
		t.Errorf("a finished sync shows %q until the reload (before it: %q); want its outcome at once", got, before)
	}
	// A list loaded before the sync ended does not take it back; one that
	// knows of it does.
	pressOnly(m, domainsMsg{list: stale})
	if got := row(); !strings.Contains(got, "4321 members") {
		t.Errorf("a list loaded before the sync ended took its outcome back: %q", got)
	}
	fresh := slices.Clone(stale)
	for i := range fresh {
		if fresh[i].Name == "branch" {
			at := fixedNow.Add(time.Second)
			fresh[i].LastAttempt, fresh[i].LastSuccess, fresh[i].LastError, fresh[i].Members = &at, &at, "", 4000
		}
	}
	pressOnly(m, domainsMsg{list: fresh})
	if got := row(); !strings.Contains(got, "4000 members") {
		t.Errorf("a list loaded after the sync did not replace what it showed: %q", got)
	}
	pressOnly(m, eventMsg{app.SyncStarted{Domain: "branch"}})
	pressOnly(m, eventMsg{app.SyncFinished{Domain: "branch", Summary: app.DomainSummary{Domain: "branch", Error: "bind refused"}}})
	if got := row(); !strings.Contains(got, "✗ failed") || !strings.Contains(got, "bind refused") {
		t.Errorf("a failed sync shows %q until the reload; want the failure at once", got)
	}
}
