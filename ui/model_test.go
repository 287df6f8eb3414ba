package ui

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"keydesk/app"
	"keydesk/keys/proto"
	"keydesk/keys/simkey"
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

// press sends keys one by one and returns the model and the last command.
func press(t testing.TB, m Model, msgs ...tea.Msg) (Model, tea.Cmd) {
	if t != nil {
		t.Helper()
	}
	var cmd tea.Cmd
	for _, msg := range msgs {
		var nm tea.Model
		nm, cmd = m.Update(msg)
		m = nm.(Model)
	}
	return m, cmd
}

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
	_, ok := cmd().(tea.QuitMsg)
	return ok
}

func selectedName(m Model) string {
	if r := m.selectedRow(); r != nil {
		return r.name
	}
	return ""
}

func TestFocusCycles(t *testing.T) {
	m := newTestModel(t, fixture(t, 10), 80, 24)
	want := []Pane{PaneKeys, PaneDetails, PaneActivity, PaneDomains, PaneEmployees}
	for _, w := range want {
		m, _ = press(t, m, keyTab)
		if m.focus != w {
			t.Fatalf("after tab focus is %v, want %v", m.focus, w)
		}
	}
	m, _ = press(t, m, keyShiftTab)
	if m.focus != PaneDomains {
		t.Errorf("shift+tab from Employees gave %v, want Domains", m.focus)
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
		{"page down", []tea.Msg{keyPgDown}, "Person 000006"}, // a page (11 rows at 80x24) less one
		{"arrow keys", []tea.Msg{tea.KeyMsg{Type: tea.KeyDown}, tea.KeyMsg{Type: tea.KeyDown}}, "Eve <U+202E>gnp.exe"},
	}
	svc := fixture(t, 40)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestModel(t, svc, 80, 24)
			m, _ = press(t, m, tt.keys...)
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
			m, _ = press(t, m, keys("/"))
			if !m.filtering {
				t.Fatal("/ did not focus the filter")
			}
			m, _ = press(t, m, typeText(tt.typed)...)
			if got := m.visibleCount(); got != tt.count {
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
	m, cmd := press(t, m, append([]tea.Msg{keys("/")}, typeText("qs?S")...)...)
	if isQuit(cmd) || m.showHelp || m.pendingSyncs != 0 || m.dialog != nil {
		t.Fatalf("keys typed into the filter ran actions: quit=%v help=%v syncs=%d", isQuit(cmd), m.showHelp, m.pendingSyncs)
	}
	if m.input.Value() != "qs?S" {
		t.Errorf("filter holds %q, want qs?S", m.input.Value())
	}
	m, _ = press(t, m, keyEsc)
	if m.filtering || m.input.Value() != "" || m.visibleCount() != 10 {
		t.Errorf("esc: filtering=%v value=%q rows=%d; want the filter cleared", m.filtering, m.input.Value(), m.visibleCount())
	}
	m, _ = press(t, m, append(append([]tea.Msg{keys("/")}, typeText("anna")...), keyEnter)...)
	if m.filtering || m.visibleCount() != 1 {
		t.Errorf("enter: filtering=%v rows=%d; want the filter kept and the input closed", m.filtering, m.visibleCount())
	}
	m, _ = press(t, m, keys("j"))
	if selectedName(m) != "Anna Smith" {
		t.Error("j after enter did not act on the filtered list")
	}
}

func TestKeysReadTogetherAreTakenOneByOne(t *testing.T) {
	m := newTestModel(t, fixture(t, 5), 80, 24)
	// A busy terminal hands "/" and the letters typed after it over at once.
	m, _ = press(t, m, keys("/mallory"))
	if !m.filtering || m.input.Value() != "mallory" || m.visibleCount() != 1 {
		t.Fatalf("filtering=%v value=%q rows=%d; want the filter open with mallory", m.filtering, m.input.Value(), m.visibleCount())
	}
	m, _ = press(t, m, keyEsc, keys("jj"))
	if m.empList.cursor != 2 {
		t.Errorf("jj moved the cursor to %d, want 2", m.empList.cursor)
	}
	// Esc then j read together arrive as alt+j: the filter closes, then j.
	m, _ = press(t, m, keys("/anna"), tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("j"), Alt: true})
	if m.filtering || m.input.Value() != "" || m.empList.cursor != 1 {
		t.Errorf("alt+j while filtering: filtering=%v value=%q cursor=%d; want the filter cleared and the cursor moved", m.filtering, m.input.Value(), m.empList.cursor)
	}
}

func TestHelpIsGeneratedFromBindings(t *testing.T) {
	m := newTestModel(t, fixture(t, 5), 100, 40)
	m, _ = press(t, m, keys("?"))
	v := m.View()
	for _, g := range m.keys.fullHelp() {
		for _, b := range g.Bindings {
			if !strings.Contains(v, b.Help().Key) || !strings.Contains(v, b.Help().Desc) {
				t.Errorf("help lacks %s %s", b.Help().Key, b.Help().Desc)
			}
		}
	}
	m, _ = press(t, m, keys("?"))
	if m.showHelp {
		t.Error("? did not close the help")
	}
}

func TestQuitAsksWhileSyncing(t *testing.T) {
	m := newTestModel(t, fixture(t, 5), 120, 30)
	if _, cmd := press(t, m, keys("q")); !isQuit(cmd) {
		t.Fatal("q did not quit when nothing runs")
	}
	m, _ = press(t, m, eventMsg{app.SyncStarted{Domain: "corp"}}, eventMsg{app.SyncProgressed{Domain: "corp", Progress: ldapsync.Progress{Phase: "members", Pages: 3, Entries: 2500}}})
	v := m.View()
	if !strings.Contains(v, "syncing corp") || !strings.Contains(v, "members, 3 pages, 2500 read") {
		t.Errorf("progress is not shown:\n%s", v)
	}
	m, cmd := press(t, m, keys("q"))
	if isQuit(cmd) || m.dialog == nil {
		t.Fatal("q quit at once while a sync runs")
	}
	if !strings.Contains(m.View(), "Quit while a sync is running?") {
		t.Errorf("no confirmation shown:\n%s", m.View())
	}
	m, cmd = press(t, m, keys("n"))
	if isQuit(cmd) || m.dialog != nil {
		t.Fatal("n did not cancel")
	}
	m, _ = press(t, m, keys("q"))
	if _, cmd = press(t, m, keys("y")); !isQuit(cmd) {
		t.Error("y did not quit")
	}
	m, _ = press(t, m, eventMsg{app.SyncFinished{Domain: "corp", Summary: app.DomainSummary{Domain: "corp", Error: "bind refused"}}})
	if m.running() || !strings.Contains(m.View(), "corp: sync failed: bind refused") {
		t.Errorf("a failed sync is not reported:\n%s", m.View())
	}
}

func TestApplyHeldRemovalsAsks(t *testing.T) {
	m := newTestModel(t, fixture(t, 5), 100, 30)
	m, _ = press(t, m, keyShiftTab, keys("a"))
	if m.dialog == nil || !m.dialog.danger || !strings.Contains(m.View(), "Apply 2 held removals in corp?") {
		t.Fatalf("a on a domain with held removals did not ask:\n%s", m.View())
	}
	m, cmd := press(t, m, keys("n"))
	if m.dialog != nil || cmd != nil || m.pendingSyncs != 0 {
		t.Error("n did not cancel")
	}
	m, _ = press(t, m, keys("j"), keys("a"))
	if m.dialog != nil {
		t.Error("branch has no held removals but a asked anyway")
	}
}

func TestSyncKeyRunsOffTheUIGoroutine(t *testing.T) {
	m := newTestModel(t, fixture(t, 5), 80, 24)
	m, cmd := press(t, m, keys("s"))
	if cmd == nil || m.pendingSyncs != 1 {
		t.Fatal("s did not start a sync command")
	}
	// The command does the I/O; here the domain's password is not set, so
	// the sync fails, and the console says so.
	msg := cmd()
	m, _ = press(t, m, msg)
	if m.pendingSyncs != 0 || !strings.Contains(m.View(), "sync of corp failed") {
		t.Errorf("the failed sync is not reported:\n%s", m.View())
	}
}

func TestMouseSelectsAndFocuses(t *testing.T) {
	m := newTestModel(t, fixture(t, 20), 80, 24)
	lay := m.layout()
	y := 1 + lay.domH + 1 + 1 + 3 // header, domains box, top border, column header, fourth row
	m, _ = press(t, m, tea.MouseMsg{X: 5, Y: y, Button: tea.MouseButtonLeft, Action: tea.MouseActionPress})
	if got := selectedName(m); got != "Mallory \\x1b[31mRed\\x1b[0m" {
		t.Errorf("click on the fourth row selected %q", got)
	}
	m, _ = press(t, m, tea.MouseMsg{X: lay.leftW + 3, Y: 2, Button: tea.MouseButtonLeft, Action: tea.MouseActionPress})
	if m.focus != PaneDetails {
		t.Errorf("click on Details focused %v", m.focus)
	}
	m, _ = press(t, m, tea.MouseMsg{X: 5, Y: y, Button: tea.MouseButtonWheelDown})
	if m.focus != PaneEmployees || m.empList.cursor != 6 {
		t.Errorf("wheel: focus %v cursor %d, want Employees and 6", m.focus, m.empList.cursor)
	}
}

func TestEveryViewFitsTheTerminal(t *testing.T) {
	svc := fixture(t, 30)
	base := newTestModel(t, svc, 80, 24)
	for w := 0; w <= 160; w += 7 {
		for h := 0; h <= 60; h += 5 {
			for _, mode := range []string{"plain", "help", "dialog", "filter"} {
				m := update(t, base, tea.WindowSizeMsg{Width: w, Height: h})
				switch mode {
				case "help":
					m, _ = press(t, m, keys("?"))
				case "dialog":
					m, _ = press(t, m, keyShiftTab, keys("a"))
				case "filter":
					m, _ = press(t, m, append([]tea.Msg{keys("/")}, typeText("per")...)...)
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
	m, _ = press(t, m, keys("j"), keys("j"), keys("j")) // Mallory, whose name holds escape sequences
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

// run executes a command chain synchronously (tests), feeding each message
// back into the model, until no command is left; batches are run in order.
func run(t *testing.T, m Model, cmd tea.Cmd) Model {
	t.Helper()
	queue := []tea.Cmd{cmd}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		if c == nil {
			continue
		}
		switch msg := c().(type) {
		case tea.BatchMsg:
			queue = append(queue, msg...)
		case nil, tickMsg:
		default:
			if _, ok := msg.(interface{ Blink() }); ok {
				continue
			}
			var next tea.Cmd
			m, next = press(t, m, msg)
			if _, isKeys := msg.(keysMsg); !isKeys {
				queue = append(queue, next)
			}
		}
	}
	return m
}

func TestAssignShowsTheCodeOnceAndLargely(t *testing.T) {
	m := newTestModel(t, fixture(t, 5), 100, 40)
	m = run(t, m, m.loadKeys())
	// Select Person 000000 (no key yet), then the ready key KD-0001.
	m, _ = press(t, m, keys("jjjj"))
	if selectedName(m) != "Person 000000" {
		t.Fatalf("selected %q", selectedName(m))
	}
	m, _ = press(t, m, keyTab)
	if m.focus != PaneKeys || m.selectedKey().Serial != "KD-0001" {
		t.Fatalf("focus %v key %+v", m.focus, m.selectedKey())
	}
	m, _ = press(t, m, keys("a"))
	if m.dialog == nil || !strings.Contains(m.View(), "Assign key KD-0001 to Person 000000?") {
		t.Fatalf("a did not ask:\n%s", m.View())
	}
	m, cmd := press(t, m, keys("y"))
	m = run(t, m, cmd)
	if m.dialog == nil || m.dialog.kind != dialogCode {
		t.Fatalf("no code dialog after assigning (message %q)", m.message)
	}
	code := m.dialog.code
	v := m.View()
	if !regexpMatch(`^\d{3} \d{3}$`, code) || !strings.Contains(v, "code: "+code) || !strings.Contains(v, "███") {
		t.Errorf("the code %q is not shown large and readable:\n%s", code, v)
	}
	m, _ = press(t, m, keyEnter)
	if m.dialog != nil || strings.Contains(m.View(), code) {
		t.Error("the code is still on screen after it was dismissed")
	}
	if k := m.selectedKey(); k.Status != "reserved" || k.Owner != "Person 000000" {
		t.Errorf("key after assign = %+v", k)
	}
}

func TestCompromiseNeedsTheSerialTyped(t *testing.T) {
	m := newTestModel(t, fixture(t, 5), 100, 40)
	m = run(t, m, m.loadKeys())
	m, _ = press(t, m, keyTab, keys("j"), keys("x"))
	if m.dialog == nil || m.dialog.kind != dialogChoice {
		t.Fatalf("x did not offer lost/stolen/broken:\n%s", m.View())
	}
	m, cmd := press(t, m, keys("s"))
	m = run(t, m, cmd)
	if m.dialog == nil || m.dialog.kind != dialogInput {
		t.Fatalf("no serial prompt:\n%s", m.View())
	}
	m, _ = press(t, m, append(typeText("KD-0001"), keyEnter)...)
	if m.dialog == nil || !strings.Contains(m.View(), "not this key's serial") {
		t.Fatalf("a wrong serial was accepted:\n%s", m.View())
	}
	for range 7 {
		m, _ = press(t, m, tea.KeyMsg{Type: tea.KeyBackspace})
	}
	m, cmd = press(t, m, append(typeText("KD-0002"), keyEnter)...)
	m = run(t, m, cmd)
	if k := m.selectedKey(); k.Status != "compromised" || k.Reason != "stolen" {
		t.Errorf("key = %+v, want compromised (stolen)", k)
	}
}

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }

func TestActivationScreenCountsWrongCodes(t *testing.T) {
	svc := fixture(t, 5)
	m := newTestModel(t, svc, 100, 40)
	m = run(t, m, m.loadKeys())
	// KD-0001 is assigned to Person 000000 and plugged in (simulated).
	sk := simkey.New("KD-0001")
	if _, err := svc.KeyConnected(t.Context(), app.Plug{ID: "sim", Kind: "simulated", Open: func() (proto.Transport, error) { return sk.Plug(), nil }}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AssignKey(t.Context(), testActor, "KD-0001", "user000000@example.com"); err != nil {
		t.Fatal(err)
	}
	m, cmd := press(t, m, eventMsg{app.KeyPlugged{Serial: "KD-0001", PluggedIn: true, Status: "reserved"}})
	m = run(t, m, cmd)
	if m.dialog == nil || m.dialog.kind != dialogInput || !strings.Contains(m.View(), "Activate key KD-0001") {
		t.Fatalf("plugging a reserved key did not open the activation screen:\n%s", m.View())
	}
	if m.dialog.input.Value() != "" {
		t.Error("the code field is not empty")
	}
	m, cmd = press(t, m, append(typeText("987654"), keyEnter)...)
	m = run(t, m, cmd)
	v := m.View()
	if !strings.Contains(v, "wrong code for key KD-0001: 2 attempts left") || m.dialog == nil {
		t.Fatalf("a wrong code is not reported with the attempts left (and the screen kept):\n%s", v)
	}
	if strings.Contains(v, "987654") || strings.Contains(v, "987 654") {
		t.Errorf("the typed code is echoed on screen:\n%s", v)
	}
}
