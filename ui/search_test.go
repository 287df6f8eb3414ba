package ui

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"keydesk/app"
)

// searchFixture is the UI fixture with people whose names an operator
// types without accents, in another order, or with the comma of "Last,
// First"; Anna López holds a reserved key. With it come two people the
// service cannot make without a directory (two accounts of one domain
// sharing an email; a failed rotation), as views.
func searchFixture(t *testing.T) (*app.Service, []app.EmployeeView) {
	t.Helper()
	svc := fixture(t, 20)
	ctx := t.Context()
	for _, p := range [][2]string{{"anna.lopez@example.com", "Anna López"}, {"ayse.ahmed@example.com", "Ahmed, Ayşe"}, {"mads@example.com", "Mads Søndergaard"}} {
		if _, err := svc.AddEmployee(ctx, testActor, p[0], p[1]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.AssignKey(ctx, testActor, "KD-0001", "anna.lopez@example.com"); err != nil {
		t.Fatal(err)
	}
	views, err := svc.Employees(ctx, testActor, "")
	if err != nil {
		t.Fatal(err)
	}
	email := "kim.conflict@example.com"
	views = append(views,
		app.EmployeeView{ID: 9001, DisplayName: "Kim Doppel", Email: &email, Status: "active", Source: "ad", Flags: []string{"conflict"},
			Accounts: []app.AccountView{{Domain: "corp", SAMAccountName: "kim"}, {Domain: "corp", SAMAccountName: "kim2"}}},
		app.EmployeeView{ID: 9002, DisplayName: "Łukasz Failed", Status: "active", Source: "ad", Flags: []string{"no-email"},
			Accounts: []app.AccountView{{Domain: "branch", SAMAccountName: "lukasz", Rotation: &app.AccountRotation{State: app.RotationFailed}}}})
	return svc, views
}

// shown is the names of the rows the Employees pane lets through, in its
// order.
func shown(m *Model) []string {
	e := m.employees()
	var out []string
	for i := range e.visibleCount() {
		out = append(out, e.rowAt(i).name)
	}
	return out
}

// TestConsoleFilterFindsWhatTheCommandLineFinds: a query typed into the
// console's filter finds exactly the people app.Filter (which `keydesk
// employees --filter` uses) finds, and the ones named here.
func TestConsoleFilterFindsWhatTheCommandLineFinds(t *testing.T) {
	svc, views := searchFixture(t)
	tests := []struct {
		query string
		want  []string // in the console's order
	}{
		{"lopez", []string{"Anna López"}},
		{"anna lopez", []string{"Anna López"}},
		{"lopez anna", []string{"Anna López"}},
		{"ahmed ayse", []string{"Ahmed, Ayşe"}},
		{"ayse, ahmed", []string{"Ahmed, Ayşe"}},
		{"sondergaard", []string{"Mads Søndergaard"}},
		{"lukasz", []string{"Łukasz Failed", "Zoë Łukasiewicz"}}, // Zoë's letters are in order: fuzzy, after
		{"domain:corp anna", []string{"Anna Smith"}},
		{"flag:conflict", []string{"Kim Doppel"}},
		{"key:reserved", []string{"Anna López"}},
		{"key:active anna", []string{"Anna Smith"}},
		{"status:removed", []string{"Bob Gone"}},
		{"rotation:failed", []string{"Łukasz Failed"}},
		{"domain:branch flag:no-email", []string{"Łukasz Failed"}},
		{"anna", []string{"Anna López", "Anna Smith"}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			m := newTestModel(t, svc, 100, 40)
			m = press(t, m, employeesMsg{rows: buildRows(views, nil)})
			m = press(t, m, append([]tea.Msg{keys("/")}, typeText(tt.query)...)...)
			got := shown(m)
			if !slices.Equal(got, tt.want) {
				t.Errorf("the console shows %q for %q, want %q", got, tt.query, tt.want)
			}
			f, err := app.ParseFilter(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			var cli []string
			for _, v := range views {
				if f.Match(v) {
					cli = append(cli, v.DisplayName)
				}
			}
			slices.Sort(cli)
			sorted := slices.Sorted(slices.Values(got))
			if !slices.Equal(sorted, cli) {
				t.Errorf("the console shows %q for %q, app.Filter finds %q", sorted, tt.query, cli)
			}
			if selectedName(m) != tt.want[0] {
				t.Errorf("the cursor is on %q, want the first match %q", selectedName(m), tt.want[0])
			}
		})
	}
}

// TestConsoleFilterError: a field the filter does not know is said in one
// line under the filter, naming the fields; the rows stay as they were
// until the query parses again.
func TestConsoleFilterError(t *testing.T) {
	m := newTestModel(t, fixture(t, 5), 160, 30)
	m = press(t, m, append([]tea.Msg{keys("/")}, typeText("anna x:1")...)...)
	e := m.employees()
	lines := strings.Split(m.View(), "\n")
	at := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, "/anna x:1") })
	if at < 0 || at+1 >= len(lines) || !strings.Contains(lines[at+1], `unknown field "x": the fields are domain, flag, key, status, rotation`) {
		t.Fatalf("the error is not the line under the filter:\n%s", strings.Join(lines, "\n"))
	}
	if got := shown(m); !slices.Equal(got, []string{"Anna Smith"}) {
		t.Errorf("while the query does not parse the rows are %q, want those of \"anna x\" kept", got)
	}
	// Kept (enter) and sorted anew: still the rows of "anna x", and the error.
	m = press(t, m, keyEnter, keys("O"))
	if got := shown(m); !slices.Equal(got, []string{"Anna Smith"}) || !strings.Contains(m.View(), `unknown field "x"`) {
		t.Errorf("after a new sort the rows are %q (want Anna Smith) and the error is gone: %v", got, e.filter.err)
	}
	m = press(t, m, keys("/"), tea.KeyMsg{Type: tea.KeyBackspace}, tea.KeyMsg{Type: tea.KeyBackspace})
	if e.filter.err != nil || strings.Contains(m.View(), "unknown field") || e.input.Value() != "anna x" {
		t.Errorf("the error stays after the field was erased (%q): %v", e.input.Value(), e.filter.err)
	}
}

// TestSortByColumn: o sorts by the next column, O reverses; the header
// marks the column and direction; the cursor stays on the employee the
// operator chose.
func TestSortByColumn(t *testing.T) {
	m := newTestModel(t, fixture(t, 5), 120, 40)
	header := func() string {
		for _, l := range strings.Split(m.View(), "\n") {
			if strings.Contains(l, "NAME") && strings.Contains(l, "FLAGS") {
				return l
			}
		}
		return ""
	}
	if h := header(); !strings.Contains(h, "NAME ▲") || selectedName(m) != "Anna Smith" {
		t.Fatalf("at first: header %q, cursor on %q; want NAME ▲ and the first row", h, selectedName(m))
	}
	m = press(t, m, keys("O"))
	if h, got := header(), shown(m); !strings.Contains(h, "NAME ▼") || got[0] != "Zoë Łukasiewicz" || got[len(got)-1] != "Anna Smith" {
		t.Errorf("O: header %q, rows %q; want NAME ▼, Zoë first", h, got)
	}
	m = press(t, m, keys("o"), keys("o")) // email, then domains
	if h, got := header(), shown(m); !strings.Contains(h, "DOMAINS ▲") || got[0] != "Eve <U+202E>gnp.exe" || selectedName(m) != got[0] {
		t.Errorf("o o: header %q, rows %q, cursor on %q; want DOMAINS ▲, branch first (Eve), the cursor on the first row", h, got, selectedName(m))
	}
	m = press(t, m, keys("O"))
	if h, got := header(), shown(m); !strings.Contains(h, "DOMAINS ▼") || got[0] != "Bob Gone" {
		t.Errorf("O: header %q, rows %q; want DOMAINS ▼, corp first (Bob Gone)", h, got)
	}
	m = press(t, m, keys("j"), keys("j")) // the operator chooses someone
	chosen := selectedName(m)
	m = press(t, m, keys("o")) // when they last changed: newest first
	if h := header(); !strings.Contains(h, "CHANGED ▼") || selectedName(m) != chosen {
		t.Errorf("o: header %q, cursor on %q; want CHANGED ▼ and the cursor still on %q", h, selectedName(m), chosen)
	}
	m = press(t, m, keys("o")) // the key: Anna Smith's active key before none
	if h, got := header(), shown(m); !strings.Contains(h, "KEY ▲") || got[0] != "Anna Smith" || !strings.Contains(m.View(), "active") {
		t.Errorf("o: header %q, rows %q; want KEY ▲ with Anna Smith (active key) first", h, got)
	}
	m = press(t, m, keys("o"))
	if h := header(); !strings.Contains(h, "NAME ▲") {
		t.Errorf("o after the last column: header %q, want NAME ▲ again", h)
	}
	// Narrow, the sorted column takes the place of the flags.
	m = update(t, m, tea.WindowSizeMsg{Width: 80, Height: 24})
	m = press(t, m, keys("o"), keys("o"), keys("o"))
	if h := header(); h != "" || !strings.Contains(m.View(), "CHANGED ▼") {
		t.Errorf("80 wide, sorted by change: the header must show CHANGED ▼ instead of FLAGS:\n%s", m.View())
	}
}

// title is the pane title line of a pane (the top border that names it).
func title(m *Model, name string) string {
	for _, l := range strings.Split(ansi.Strip(m.View()), "\n") {
		for _, mark := range []string{"╭─▸", "╭─ "} {
			if i := strings.Index(l, mark+name); i >= 0 {
				return l[i+len(mark):]
			}
		}
	}
	return ""
}

// TestPositionIndicator: each list's title says where its cursor is and
// whether rows are hidden above or below.
func TestPositionIndicator(t *testing.T) {
	m := newTestModel(t, fixture(t, 40), 80, 24)
	steps := []struct {
		keys []tea.Msg
		want string
	}{
		{nil, "Employees 1/45 ▼ "},
		{[]tea.Msg{keys("j")}, "Employees 2/45 ▼ "},
		{[]tea.Msg{keyPgDown, keyPgDown}, "Employees 20/45 ▲▼ "},
		{[]tea.Msg{keys("G")}, "Employees 45/45 ▲ "},
		{[]tea.Msg{keys("g")}, "Employees 1/45 ▼ "},
		{append([]tea.Msg{keys("/")}, typeText("person 00001")...), "Employees (13 of 45) 1/13 ▼ "},
		{[]tea.Msg{keyEnter, keys("G")}, "Employees (13 of 45) 13/13 ▲ "},
	}
	for _, s := range steps {
		m = press(t, m, s.keys...)
		if got := title(m, "Employees"); !strings.HasPrefix(got, s.want) {
			t.Errorf("after %v the title is %q, want %q", s.keys, got, s.want)
		}
	}
	if got := title(m, "Rotation"); !strings.HasPrefix(got, "Rotation (1 due) 1/9 ▼") {
		t.Errorf("the Rotation pane's title is %q, want its position", got)
	}
}

func TestListPosition(t *testing.T) {
	var l list
	if got := l.position(0); got != "" {
		t.Errorf("empty list: %q", got)
	}
	l.clamp(3, 10)
	if got := l.position(3); got != "1/3" {
		t.Errorf("all visible: %q, want 1/3 without marks", got)
	}
	l.move(50, 100, 10)
	if got := l.position(100); got != "51/100 ▲▼" {
		t.Errorf("middle: %q", got)
	}
	if got := scrollPosition(0, 57, 10); got != "1-10/57 ▼" {
		t.Errorf("scrollPosition at the top: %q", got)
	}
	if got := scrollPosition(99, 57, 10); got != "48-57/57 ▲" {
		t.Errorf("scrollPosition past the end: %q", got)
	}
	if got := paneTitle(40, "Invitations", "12, 2 failed", "3/12 ▲▼"); got != "Invitations (12, 2 failed) 3/12 ▲▼" {
		t.Errorf("paneTitle with room: %q", got)
	}
	if got := paneTitle(20, "Invitations", "12, 2 failed", "3/12 ▲▼"); got != "Invitations 3/12 ▲▼" {
		t.Errorf("paneTitle narrow: %q, want the note dropped", got)
	}
	if got := paneTitle(40, "Keys", "", ""); got != "Keys (0)" {
		t.Errorf("paneTitle empty: %q", got)
	}
}

// TestCursorKeepsItsEmployee: the cursor starts on the first row, and keeps
// the employee it is on across a reload, a change of the filter that still
// matches them, and the filter cleared.
func TestCursorKeepsItsEmployee(t *testing.T) {
	m := newTestModel(t, fixture(t, 20), 100, 30)
	e := m.employees()
	if e.list.cursor != 0 || selectedName(m) != "Anna Smith" {
		t.Fatalf("the cursor starts on %q (row %d), want the first row", selectedName(m), e.list.cursor)
	}
	m = press(t, m, keys("jjj"))
	if selectedName(m) != "Mallory \\x1b[31mRed\\x1b[0m" {
		t.Fatalf("jjj: %q", selectedName(m))
	}
	// A reload with rows gone above and in another order.
	rows := slices.Clone(e.rows[2:])
	slices.Reverse(rows)
	m = press(t, m, employeesMsg{rows: rows})
	if selectedName(m) != "Mallory \\x1b[31mRed\\x1b[0m" {
		t.Errorf("after a reload the cursor is on %q, want Mallory", selectedName(m))
	}
	m = press(t, m, employeesMsg{rows: buildRowsFrom(t, m)})
	// Typed: the best match first; the operator moves to the third.
	m = press(t, m, append([]tea.Msg{keys("/")}, typeText("person")...)...)
	if selectedName(m) != "Person 000000" {
		t.Fatalf("filtered: the cursor is on %q, want the first match", selectedName(m))
	}
	m = press(t, m, keyEnter, keys("j"), keys("j"), keys("/"))
	m = press(t, m, typeText(" 0")...) // "person 0": Person 000000 first, and Person 000002 still matches
	if selectedName(m) != "Person 000002" {
		t.Errorf("a longer query that still matches the chosen employee moved the cursor to %q", selectedName(m))
	}
	m = press(t, m, typeText("1")...) // "person 01": Person 000002 no longer matches
	if selectedName(m) != "Person 000001" {
		t.Errorf("the chosen employee no longer matches, yet the cursor is on %q, not the best match", selectedName(m))
	}
	m = press(t, m, keyEnter, keys("j"), keys("/"), tea.KeyMsg{Type: tea.KeyBackspace}) // back to "person 0", on the second match
	chosen := selectedName(m)
	if chosen == "Person 000001" || chosen == "" {
		t.Fatalf("j after the filter was kept did not move (%q)", chosen)
	}
	m = press(t, m, keyEsc)
	if e.input.Value() != "" || selectedName(m) != chosen {
		t.Errorf("after the filter was cleared the cursor is on %q, want %q", selectedName(m), chosen)
	}
	want := slices.IndexFunc(e.rows, func(r *empRow) bool { return r.name == chosen }) + 1
	if got := title(m, "Employees"); !strings.HasPrefix(got, fmt.Sprintf("Employees %d/25 ", want)) {
		t.Errorf("the title after clearing the filter is %q, want the kept employee's position %d/25", got, want)
	}
	// And a reload after that keeps them too.
	m = press(t, m, employeesMsg{rows: e.rows[1:]})
	if selectedName(m) != chosen {
		t.Errorf("a reload after the filter was cleared moved the cursor to %q", selectedName(m))
	}
}

// buildRowsFrom reloads the employees as the pane does.
func buildRowsFrom(t *testing.T, m *Model) []*empRow {
	t.Helper()
	views, err := m.c.Svc.Employees(t.Context(), testActor, "")
	if err != nil {
		t.Fatal(err)
	}
	return buildRows(views, nil)
}
