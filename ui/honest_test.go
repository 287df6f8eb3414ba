package ui

import (
	"encoding/base64"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"

	"keydesk/app"
	keylife "keydesk/keys"
)

// lifecycleKeys are the Keys pane's actions that the key lifecycle
// decides, by their key.
var lifecycleKeys = map[string]keylife.Action{
	"a":     keylife.ActionAssign,
	"enter": keylife.ActionActivate,
	"c":     keylife.ActionRenewCode,
	"z":     keylife.ActionSuspend,
	"u":     keylife.ActionUnlock,
	"w":     keylife.ActionWithdraw,
	"x":     keylife.ActionCompromise,
}

func keyPress(k string) tea.KeyMsg {
	if k == "enter" {
		return keyEnter
	}
	return keys(k)
}

// TestKeysPaneOffersWhatTheLifecycleAllows: for a key in each status, the
// footer and the key's details offer exactly the actions the lifecycle
// table allows from it, and each other one, pressed anyway, says why in
// one line and opens nothing.
func TestKeysPaneOffersWhatTheLifecycleAllows(t *testing.T) {
	svc := fixture(t, 5)
	for _, status := range keylife.Statuses() {
		t.Run(string(status), func(t *testing.T) {
			m := newTestModel(t, svc, 250, 40)
			m = press(t, m, keyTab) // Keys; the selected employee is Anna Smith, active
			kv := app.KeyView{Serial: "KD-T", Status: string(status), PluggedIn: true, Owner: "Anna Smith", StatusChangedAt: fixedNow}
			m = press(t, m, keysMsg{list: []app.KeyView{kv}})
			allowed := keylife.Allowed(status)
			footer := footerLine(m)
			details := m.View()
			for _, a := range m.keysPane().Actions() {
				act, ok := lifecycleKeys[a.Key.Help().Key]
				if !ok {
					continue
				}
				want := slices.Contains(allowed, act)
				h := a.Key.Help()
				if got := strings.Contains(footer, h.Key+" "+h.Desc); got != want {
					t.Errorf("footer offers %q: %v, the lifecycle allows %s from %s: %v (footer %q)", h.Desc, got, act, status, want, footer)
				}
				if got := strings.Contains(details, h.Desc+" ("+h.Key+")"); got != want {
					t.Errorf("the key's details list %q: %v, want %v", h.Desc, got, want)
				}
			}
			for k, act := range lifecycleKeys {
				if slices.Contains(allowed, act) {
					continue
				}
				m = press(t, m, keyPress(k))
				f := footerLine(m)
				if m.dialog != nil {
					t.Errorf("%s on a %s key opened a dialog", k, status)
					m = press(t, m, keyEsc)
				}
				if !strings.Contains(f, ": not for "+aKey(string(status))) || strings.Contains(f, "…") || strings.Contains(f, string(act)+" (to") {
					t.Errorf("%s on a %s key says %q; want one line saying it is not for %s", k, status, f, aKey(string(status)))
				}
			}
		})
	}
}

// TestARefusedActionSaysWhyInItsDialog: the key changes while the question
// is open (another console); yes is refused, and the dialog says why in
// one line, without the chain of wrapped errors, and nothing else does.
func TestARefusedActionSaysWhyInItsDialog(t *testing.T) {
	svc := fixture(t, 5)
	m := newTestModel(t, svc, 100, 30)
	m = press(t, m, keyTab, keys("j"), keys("z")) // KD-0002, active: suspend?
	if _, ok := m.dialog.(*confirmDialog); !ok {
		t.Fatalf("z on an active key did not ask:\n%s", m.View())
	}
	if err := svc.SuspendKey(t.Context(), testActor, "KD-0002", ""); err != nil {
		t.Fatal(err)
	}
	m = press(t, m, keys("y"))
	v := m.View()
	if m.dialog == nil {
		t.Fatalf("the refusal closed the dialog (footer %q)", footerLine(m))
	}
	const why = "the key is suspended now: it cannot be suspended"
	var line string
	for _, l := range strings.Split(v, "\n") {
		if strings.Contains(l, "the key is suspended") {
			line = l
		}
	}
	if !strings.Contains(line, why) || !strings.Contains(line, "║") {
		t.Errorf("the refusal is not one line inside the dialog (%q):\n%s", line, v)
	}
	for _, chain := range []string{"allowed from", "transition not allowed", "key KD-0002: key"} {
		if strings.Contains(v, chain) {
			t.Errorf("the screen shows the wrapped error (%q):\n%s", chain, v)
		}
	}
	if f := footerLine(m); !strings.Contains(f, "esc close") {
		t.Errorf("footer %q: want the dialog's esc close", f)
	}
	m = press(t, m, keyEsc)
	if m.dialog != nil || m.message != "" {
		t.Errorf("esc: dialog %v, message %q; want the dialog closed and nothing more said", m.dialog, m.message)
	}
	if k := m.keysPane().current(); k.Status != "suspended" {
		t.Errorf("the pane did not reload the key: %+v", k)
	}
}

// TestDialogsDrawTheirOwnKeys: a dialog's keys are drawn in its box.
func TestDialogsDrawTheirOwnKeys(t *testing.T) {
	m := newTestModel(t, fixture(t, 5), 80, 24)
	m = press(t, m, keyTab, keys("j"), keys("z"))
	lines := strings.Split(m.View(), "\n")
	var bottom string
	for _, l := range lines[:len(lines)-1] { // not the console's footer
		if strings.Contains(l, "╚") {
			bottom = l
		}
	}
	if !strings.Contains(bottom, "╚═ y yes · n/esc no ═") {
		t.Errorf("the dialog's bottom border does not hold its keys: %q\n%s", bottom, m.View())
	}
	// Keys too many for the border go on lines of their own in the box,
	// never cut.
	c := m.c
	hints := (&OwnPassword{}).Help(c)
	out := dialogFooter(c, hints, 40)
	if len(out) < 3 || !strings.HasPrefix(out[len(out)-1], "╚") {
		t.Fatalf("dialogFooter at 40 cells: %q", out)
	}
	all := ansi.Strip(strings.Join(out, "\n"))
	for _, h := range hints {
		if !strings.Contains(all, h.Help().Key+" "+h.Help().Desc) {
			t.Errorf("hint %q is cut or missing: %q", h.Help().Desc, all)
		}
	}
	for _, l := range out {
		if ansi.StringWidth(l) != 40 {
			t.Errorf("footer line %q is %d wide, want 40", l, ansi.StringWidth(l))
		}
	}
}

// TestActivationCodeTakesDigitsOnly: the code field takes digits and
// spaces; a letter (typed or in a paste) is refused with a word why, in
// the screen.
func TestActivationCodeTakesDigitsOnly(t *testing.T) {
	c := newCommon(nil, &Options{Actor: testActor, Renderer: asciiRenderer(), Now: func() time.Time { return fixedNow }, Location: time.UTC})
	a := newActivation(c, "KD-0001")
	a.input.Focus()
	var d Dialog = a
	typeIn := func(msgs ...tea.Msg) {
		for _, msg := range msgs {
			d, _ = d.Update(msg)
		}
	}
	typeIn(keys("4"), keys("a"), keys("8"), keys("x"), tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("2b3"), Paste: true})
	if got := a.input.Value(); got != "48" {
		t.Errorf("the field holds %q after 4 a 8 x and a paste of 2b3; want 48", got)
	}
	if v := d.View(c, 80); !strings.Contains(v, "the code is 6 digits") {
		t.Errorf("a refused letter is not explained in the screen:\n%s", v)
	}
	typeIn(tea.KeyMsg{Type: tea.KeySpace, Runes: []rune{' '}}, keys("2"), tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("91"), Paste: true})
	if got := a.input.Value(); got != "48 291" {
		t.Errorf("the field holds %q, want 48 291", got)
	}
	if v := d.View(c, 80); strings.Contains(v, "the code is 6 digits") {
		t.Errorf("the refusal stays after digits were typed:\n%s", v)
	}
}

// TestWrongCodesShowInTheActivationScreen: a wrong code, and the one that
// locks the key, are answered in the screen, which stays until it is
// closed.
func TestWrongCodesShowInTheActivationScreen(t *testing.T) {
	c := newCommon(nil, &Options{Actor: testActor, Renderer: asciiRenderer(), Now: func() time.Time { return fixedNow }, Location: time.UTC})
	a := newActivation(c, "KD-0001")
	var d Dialog = a
	d, _ = d.Update(activationDoneMsg{serial: "KD-0001", res: app.ActivationResult{Left: 1}, err: errWrap("activate key KD-0001", app.ErrWrongCode)})
	if v := d.View(c, 80); d == nil || !strings.Contains(v, "wrong code for key KD-0001: 1 attempt left") {
		t.Fatalf("a wrong code is not shown in the screen:\n%s", v)
	}
	d, _ = d.Update(activationDoneMsg{serial: "KD-0001", res: app.ActivationResult{Locked: true}, err: errWrap("activate key KD-0001", app.ErrKeyLocked)})
	v := d.View(c, 80)
	if d == nil || !strings.Contains(v, "key KD-0001 is now locked") || strings.Contains(v, "key.unlock") {
		t.Fatalf("the locking code is not shown in the screen, in words:\n%s", v)
	}
	if h := d.Help(c); len(h) != 1 || h[0].Help().Desc != "close" {
		t.Errorf("a locked key's screen offers %v; want only close", h)
	}
	if d, _ = d.Update(keyEsc); d != nil {
		t.Error("esc did not close the screen")
	}
}

func errWrap(prefix string, err error) error { return &wrapped{prefix, err} }

type wrapped struct {
	prefix string
	err    error
}

func (w *wrapped) Error() string { return w.prefix + ": " + w.err.Error() }
func (w *wrapped) Unwrap() error { return w.err }

// TestActivityCursorDetailsAndFilter: the Activity pane has a cursor, the
// Details pane and enter show the entry under it whole, and / filters the
// entries by actor, action or target.
func TestActivityCursorDetailsAndFilter(t *testing.T) {
	svc := fixture(t, 5)
	m := newTestModel(t, svc, 120, 40)
	if !m.mgr.focusName(paneActivity) {
		t.Fatal("no Activity pane")
	}
	a := m.mgr.pane(paneActivity).(*activityPane)
	if n := a.visibleCount(); n != 3 {
		t.Fatalf("%d entries, want the fixture's 3", n)
	}
	if e := a.current(); e.Action != "employee.add" {
		t.Fatalf("the cursor starts on %s, want the newest (employee.add)", e.Action)
	}
	m = press(t, m, keys("j"))
	if e := a.current(); e.Action != "sync" || e.Target != "domain:branch" {
		t.Fatalf("j moved the cursor to %s %s, want the failed sync of branch", e.Action, e.Target)
	}
	v := m.View()
	for _, want := range []string{"› 11:58:30 scheduler sync domain branch", "What      sync domain branch", "Outcome   failed", "Error     connection refused"} {
		if !strings.Contains(v, want) {
			t.Errorf("the view does not show %q:\n%s", want, v)
		}
	}
	m = press(t, m, keyEnter)
	if _, ok := m.dialog.(*entryDialog); !ok {
		t.Fatalf("enter did not open the entry:\n%s", m.View())
	}
	v = m.View()
	for _, want := range []string{"Audit entry", "Who       scheduler", "Target    domain branch", "entry 2 of the audit log"} {
		if !strings.Contains(v, want) {
			t.Errorf("the entry's dialog does not show %q:\n%s", want, v)
		}
	}
	m = press(t, m, keyEsc)
	if m.dialog != nil {
		t.Fatal("esc did not close the entry")
	}
	// A new entry arrives: the cursor stays on the chosen one.
	if err := svc.AddKeys(t.Context(), testActor, []string{"NEW-1"}); err != nil {
		t.Fatal(err)
	}
	m = press(t, m, eventMsg{app.DataChanged{What: app.ChangedAudit}})
	all := a.visibleCount() // the new key's entry, and the audit key's first one
	if e := a.current(); e.Target != "domain:branch" || all < 4 {
		t.Errorf("after a new entry the cursor is on %s of %d entries; want it kept on the sync of branch", e.Target, all)
	}
	// The filter: / in Activity filters its entries, not the employees.
	m = press(t, m, keys("/"))
	if m.mgr.focusedName() != paneActivity || !a.Capturing() {
		t.Fatalf("/ in Activity: focus %s, filtering %v", m.mgr.focusedName(), a.Capturing())
	}
	m = press(t, m, typeText("corp")...)
	if n := a.visibleCount(); n != 1 || a.current().Target != "domain:corp" {
		t.Errorf("the filter corp lets %d entries through (first %+v), want the sync of corp", n, a.current())
	}
	if !strings.Contains(m.View(), "Activity (1 of "+strconv.Itoa(all)+")") {
		t.Errorf("the title does not count the matches:\n%s", m.View())
	}
	m = press(t, m, keyEsc, keys("/"))
	m = press(t, m, typeText("add key")...) // the action as words
	if n := a.visibleCount(); n != 1 || a.current().Target != "key:NEW-1" {
		t.Errorf("the filter 'add key' lets %d entries through, want key.add of NEW-1", n)
	}
	m = press(t, m, keyEnter) // keep it
	if a.Capturing() || a.visibleCount() != 1 {
		t.Errorf("enter: filtering %v, %d entries; want the filter kept", a.Capturing(), a.visibleCount())
	}
	m = press(t, m, keys("/"), keyEsc)
	if n := a.visibleCount(); n != all {
		t.Errorf("esc left %d entries, want all %d", n, all)
	}
	if f := footerLine(m); !strings.Contains(f, "/ filter entries") {
		t.Errorf("the footer in Activity: %q; want / filter entries", f)
	}
	// Elsewhere / is still the employees' filter.
	m = press(t, m, keyTab, keys("/"))
	if m.mgr.focusedName() != paneEmployees || !m.employees().Capturing() {
		t.Errorf("/ outside Activity: focus %s", m.mgr.focusedName())
	}
}

// osc52For is the OSC 52 sequence's start for text.
func osc52For(text string) string {
	return "\x1b]52;c;" + base64.StdEncoding.EncodeToString([]byte(text))
}

// TestCopyWritesOSC52: y puts the selected item's identifier on the
// terminal's clipboard with OSC 52 (written with the frame), and says so.
func TestCopyWritesOSC52(t *testing.T) {
	svc := fixture(t, 5)
	m := newTestModel(t, svc, 100, 30)
	m = press(t, m, keys("y")) // Employees: Anna Smith
	if v := m.View(); !strings.Contains(v, osc52For("anna.smith@example.com")) || !strings.Contains(footerLine(m), "copied email anna.smith@example.com") {
		t.Errorf("y on an employee: footer %q", footerLine(m))
	}
	m = press(t, m, keyTab, keys("j"), keys("y")) // Keys: KD-0002
	v := m.View()
	i := strings.Index(v, osc52For("KD-0002"))
	if i < 0 || !strings.Contains(footerLine(m), "copied serial KD-0002") {
		t.Fatalf("y on a key: no OSC 52 with its serial; footer %q", footerLine(m))
	}
	end := v[i+len(osc52For("KD-0002")):]
	if !strings.HasPrefix(end, "\a") && !strings.HasPrefix(end, "\x1b\\") {
		t.Errorf("the sequence does not end (BEL or ST): %q", end[:min(len(end), 10)])
	}
	// Copied again: a new sequence, so that the renderer writes the line
	// again.
	first := footerLine(m)
	m = press(t, m, keys("y"))
	if again := footerLine(m); again == first || !strings.Contains(again, osc52For("KD-0002")) {
		t.Errorf("copying twice gives the same line %q: the terminal would not get it again", again)
	}
	// The sequence goes with its message only.
	m = press(t, m, keys("j"))
	if strings.Contains(m.View(), "\x1b]52") {
		t.Error("the sequence is written again after its message")
	}
	m.mgr.focusName(paneActivity)
	m = press(t, m, keys("j"), keys("y")) // the failed sync of branch
	if !strings.Contains(m.View(), osc52For("branch")) {
		t.Errorf("y on an audit entry does not copy its target: %q", footerLine(m))
	}
}

// TestNoColorKeepsTheSelectionVisible: with NO_COLOR the selected row is
// drawn in reverse video and bold, and nothing sets a colour. The terminal
// is an SSH session's (a terminal whatever its writer, as ssh.go makes
// it), with NO_COLOR in its environment.
func TestNoColorKeepsTheSelectionVisible(t *testing.T) {
	env := envFromList{"NO_COLOR=1", "TERM=xterm-256color"}
	r := lipgloss.NewRenderer(io.Discard, termenv.WithEnvironment(env), termenv.WithUnsafe())
	color := env.Getenv("NO_COLOR") == ""
	m := New(fixture(t, 5), Options{Actor: testActor, Renderer: r, NoColor: !color, Now: func() time.Time { return fixedNow }, Location: time.UTC, NoEvents: true})
	m = update(t, m, tea.WindowSizeMsg{Width: 100, Height: 30})
	m = run(t, m, m.mgr.Init())
	m = press(t, m, keyTab) // Keys: KD-0001 selected
	var row string
	for _, l := range strings.Split(m.View(), "\n") {
		if strings.Contains(ansi.Strip(l), "› KD-0001") {
			row = l
		}
	}
	attrs := map[int]bool{}
	for _, s := range sgr.FindAllStringSubmatch(row, -1) {
		for _, p := range strings.FieldsFunc(s[1], func(r rune) bool { return r == ';' }) {
			n, _ := strconv.Atoi(p)
			attrs[n] = true
		}
	}
	if !attrs[7] || !attrs[1] {
		t.Errorf("the selected row is not reverse video (7) and bold (1): %q", row)
	}
	if setsColour(m.View()) {
		t.Error("with NO_COLOR the screen sets colours")
	}
}

// TestFooterKeepsHelpAndQuitForEveryKey: at 80 columns, whatever key is
// selected, the footer's hints are whole and end with ? help · q quit.
func TestFooterKeepsHelpAndQuitForEveryKey(t *testing.T) {
	svc := fixture(t, 5)
	for _, status := range append(keylife.Statuses(), app.StatusUnverifiedDevice) {
		m := newTestModel(t, svc, 80, 24)
		m = press(t, m, keyTab, keysMsg{list: []app.KeyView{{Serial: "KD-T", Status: string(status), PluggedIn: true}}})
		f := footerLine(m)
		if !strings.HasSuffix(strings.TrimRight(f, " "), "? help · q quit") || strings.Contains(f, "…") || ansi.StringWidth(f) != 80 {
			t.Errorf("%s: footer %q", status, f)
		}
	}
}

func TestSeenIsNowWhilePluggedIn(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	ago := now.Add(-3 * time.Hour)
	for _, tt := range []struct {
		kv   app.KeyView
		want string
	}{
		{app.KeyView{PluggedIn: true, LastSeen: &ago}, "now"},
		{app.KeyView{PluggedIn: true}, "now"},
		{app.KeyView{LastSeen: &ago}, timeWords(ago, now)},
		{app.KeyView{}, "-"},
	} {
		if got := seenWords(tt.kv, now); got != tt.want {
			t.Errorf("seenWords(plugged %v, seen %v) = %q, want %q", tt.kv.PluggedIn, tt.kv.LastSeen, got, tt.want)
		}
	}
}
