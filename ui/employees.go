package ui

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"

	"keydesk/app"
	"keydesk/internal/sanitize"
	keylife "keydesk/keys"
	"keydesk/store"
)

// empRow is an employee as the list needs them for drawing, filtering and
// sorting, and no more: every string that came from the directory is
// sanitised once, when the list is loaded. Their accounts' details are read
// when they are selected (employeesPane.detail), so that 100,000 employees
// take little memory.
type empRow struct {
	id      int64
	name    string
	email   string
	domains string
	flags   string
	status  string              // active, removed
	changed int64               // when they last changed, in Unix nanoseconds (0: never)
	dn      string              // without an email: the first account's DN, which y copies
	subj    app.FilterSubject   // what the filter compares
	invite  *app.InvitationView // the newest invitation (nil: never invited)

	// The sort keys: folded name, email and domains; the key's status.
	sortName, sortEmail, sortDomains string
	key                              string // "" without a key
}

func (r *empRow) removed() bool { return r.status == "removed" }

// rowBuilder prepares employees for the list, each with their newest
// invitation; the strings many rows share (domains, flags, statuses) are
// kept once.
type rowBuilder struct {
	inviteOf map[int64]*app.InvitationView
	strs     map[string]string
	slab     []empRow // rows are made in blocks: side by side, as the filter reads them
}

func newRowBuilder(invites []app.InvitationView) *rowBuilder {
	b := &rowBuilder{inviteOf: make(map[int64]*app.InvitationView, len(invites)), strs: map[string]string{}}
	for i := range invites {
		b.inviteOf[invites[i].Employee] = &invites[i]
	}
	return b
}

// intern gives s, or the equal string kept before.
func (b *rowBuilder) intern(s string) string {
	if k, ok := b.strs[s]; ok {
		return k
	}
	b.strs[s] = s
	return s
}

// row prepares one employee; it keeps nothing of v.
func (b *rowBuilder) row(v *app.EmployeeView) *empRow {
	if len(b.slab) == cap(b.slab) {
		b.slab = make([]empRow, 0, 1024)
	}
	b.slab = append(b.slab, empRow{id: v.ID, name: sanitize.Text(v.DisplayName), status: b.intern(v.Status), invite: b.inviteOf[v.ID]})
	r := &b.slab[len(b.slab)-1]
	if !v.ChangedAt.IsZero() {
		r.changed = v.ChangedAt.UnixNano()
	}
	if v.Email != nil {
		r.email = sanitize.Text(*v.Email)
	}
	if r.email == "" && len(v.Accounts) > 0 {
		r.dn = v.Accounts[0].DN
	}
	var doms []string
	for _, a := range v.Accounts {
		if !slices.Contains(doms, a.Domain) {
			doms = append(doms, a.Domain)
		}
	}
	r.domains = b.intern(sanitize.Text(strings.Join(doms, ",")))
	flags := append([]string(nil), v.Flags...)
	if v.Key != nil {
		flags = append([]string{"key:" + v.Key.Status}, flags...)
		r.key = b.intern(v.Key.Status)
	}
	if r.removed() {
		flags = append([]string{"removed"}, flags...)
	}
	if v.Source == "manual" {
		flags = append(flags, "manual")
	}
	r.flags = b.intern(strings.Join(flags, ","))
	r.subj = app.NewFilterSubject(v)
	r.subj.Intern(b.intern)
	r.sortName, r.sortEmail, r.sortDomains = app.FoldText(r.name), app.FoldText(r.email), b.intern(app.FoldText(r.domains))
	return r
}

// The columns the Employees pane sorts by.
type sortColumn int

const (
	sortName sortColumn = iota
	sortEmail
	sortDomains
	sortChanged // when a sync (or an operator) last changed the employee
	sortKey     // the key's status
	sortColumns
)

// sortHeaders are the columns' headers; the pane shows the domains column,
// or in its place the one sorted by when that is not drawn otherwise.
var sortHeaders = [sortColumns]string{"NAME", "EMAIL", "DOMAINS", "CHANGED", "KEY"}

// empSort is how the Employees pane orders its rows: by a column, ties by
// name then id; the newest change comes first by default.
type empSort struct {
	col  sortColumn
	desc bool
}

// next is the sort by the following column, in its usual direction.
func (s empSort) next() empSort {
	col := (s.col + 1) % sortColumns
	return empSort{col: col, desc: col == sortChanged}
}

// keyRank orders keys as their lifecycle does; no key comes last.
func keyRank(status string) int {
	switch keylife.Status(status) {
	case keylife.StatusReserved:
		return 0
	case keylife.StatusActive:
		return 1
	case keylife.StatusLocked:
		return 2
	case keylife.StatusSuspended:
		return 3
	case "":
		return 5
	}
	return 4
}

func (s empSort) compare(a, b *empRow) int {
	var c int
	switch s.col {
	case sortName:
		c = cmp.Or(strings.Compare(a.sortName, b.sortName), cmp.Compare(a.id, b.id))
	case sortEmail:
		// No email comes after every address.
		c = cmp.Or(cmp.Compare(boolInt(a.sortEmail == ""), boolInt(b.sortEmail == "")), strings.Compare(a.sortEmail, b.sortEmail))
	case sortDomains:
		c = strings.Compare(a.sortDomains, b.sortDomains)
	case sortChanged:
		c = cmp.Compare(a.changed, b.changed)
	case sortKey:
		c = cmp.Compare(keyRank(a.key), keyRank(b.key))
	}
	if s.desc {
		c = -c
	}
	// Ties go by name, then id, whichever the direction.
	return cmp.Or(c, strings.Compare(a.sortName, b.sortName), cmp.Compare(a.id, b.id))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// sorted returns the rows in this order: rows itself when they are in it
// already (the store lists by name), else a sorted copy (of the pointers).
func (s empSort) sorted(rows []*empRow) []*empRow {
	if slices.IsSortedFunc(rows, s.compare) {
		return rows
	}
	out := slices.Clone(rows)
	slices.SortFunc(out, s.compare)
	return out
}

type (
	employeesMsg struct {
		rows      []*empRow
		err       error
		inviteErr error // the employees came, their invitations did not
	}
	// startFilterMsg opens the employee filter (the global / key).
	startFilterMsg struct{}
)

// employeesPane lists the employees; / filters them as the operator types.
type employeesPane struct {
	c             *Common
	width, height int
	focused       bool

	rows      []*empRow // in the order of sort
	sort      empSort
	filter    employeeFilter
	input     textinput.Model
	filtering bool
	list      list
	loaded    bool
	loader    loader
	selected  int64 // the selected employee's id, kept across reloads, sorts and the filter
	chosen    bool  // the operator moved (or found them with the filter): keep their employee (else the first row)
	actions   []Action
	gen       int // counts the list's loads

	// The selected employee's details, read on selection (detailCmd):
	// the list holds no one's accounts.
	detail     *app.EmployeeView
	detailGen  int   // the list's load they were read after
	detailErr  error // reading them failed
	detailBusy bool  // a read is on its way
}

func newEmployeesPane(c *Common) *employeesPane {
	in := newTextInput("/", "name, email, account; domain: flag: key: status: rotation:", 200, 30)
	in.PromptStyle = c.Styles.FilterPrompt
	p := &employeesPane{c: c, input: in}
	p.actions = []Action{
		{Key: key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "details")), Priority: 3,
			Applies: func() (bool, string) { return p.current() != nil, "no employee selected" },
			Focus:   paneDetails},
		{Key: key.NewBinding(key.WithKeys("I"), key.WithHelp("I", "invite")), Perm: app.PermInvitationSend, Priority: 2,
			Applies: func() (bool, string) {
				r := p.current()
				switch {
				case r == nil:
					return false, "no employee selected"
				case r.removed():
					return false, r.name + " was removed"
				case r.email == "":
					return false, r.name + " has no email"
				}
				return true, ""
			},
			Run: func() tea.Cmd {
				r := p.current()
				return sendInvite(p.c, "invite", r.id, r.email, false)
			}},
		{Key: key.NewBinding(key.WithKeys("o"), key.WithHelp("o", "sort: next column")), Priority: 1,
			Run: func() tea.Cmd { p.setSort(p.sort.next()); return p.detailCmd() }},
		{Key: key.NewBinding(key.WithKeys("O"), key.WithHelp("O", "sort: reverse")), Priority: 0, Hidden: true,
			Run: func() tea.Cmd { p.setSort(empSort{col: p.sort.col, desc: !p.sort.desc}); return p.detailCmd() }},
	}
	return p
}

const paneEmployees, paneDetails = "Employees", "Details"

func (p *employeesPane) Title() string {
	n := p.visibleCount()
	if !p.loaded {
		return paneEmployees + " (loading…)"
	}
	note := ""
	if p.filter.matches != nil {
		note = fmt.Sprintf("%d of %d", n, len(p.rows))
	}
	return p.list.title(p.width, paneEmployees, note, n)
}

func (p *employeesPane) Init() tea.Cmd     { return p.loader.start(p.load) }
func (p *employeesPane) Rows() int         { return p.visibleCount() + 1 }
func (p *employeesPane) Actions() []Action { return p.actions }
func (p *employeesPane) SetFocused(f bool) { p.focused = f }
func (p *employeesPane) Capturing() bool   { return p.filtering }

func (p *employeesPane) CaptureHelp() []key.Binding {
	return []key.Binding{
		key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "clear filter")),
		key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "keep filter")),
		key.NewBinding(key.WithHelp("type", "to filter")),
	}
}

func (p *employeesPane) SetSize(w, h int) {
	p.width, p.height = w, h
	p.input.Width = max(10, w-4)
	p.list.clamp(p.visibleCount(), p.listRows())
}

// listRows is how many employees fit under the column header (and above
// the filter line, and the filter's error).
func (p *employeesPane) listRows() int {
	rows := p.height - 1
	if p.filterShown() {
		rows--
		if p.filter.err != nil {
			rows--
		}
	}
	return max(1, rows)
}

// filterShown reports whether the filter line is drawn.
func (p *employeesPane) filterShown() bool { return p.filtering || p.input.Value() != "" }

// load reads everyone's newest invitation, then the employees as a
// stream, keeping of each only what the list needs (one query each, rather
// than one per employee).
func (p *employeesPane) load() tea.Cmd {
	svc, ctx, actor := p.c.Svc, p.c.Ctx, p.c.Actor
	return func() tea.Msg {
		invites, ierr := svc.Invitations(ctx, actor)
		b := newRowBuilder(invites)
		var rows []*empRow
		err := svc.EachEmployee(ctx, actor, "", func(v app.EmployeeView) error {
			rows = append(rows, b.row(&v))
			return nil
		})
		if err != nil {
			return employeesMsg{err: err}
		}
		return employeesMsg{rows: rows, inviteErr: ierr}
	}
}

type employeeDetailMsg struct {
	id   int64
	gen  int // the list's load it follows
	view app.EmployeeView
	err  error
}

// detailCmd reads the selected employee's details (their accounts, key and
// rotation states) when those shown are another's or older than the list,
// one read at a time: keys held down move the cursor faster than reads.
func (p *employeesPane) detailCmd() tea.Cmd {
	id := p.selected
	if id == 0 || p.detailBusy || (p.detail != nil && p.detail.ID == id && p.detailGen == p.gen) {
		return nil
	}
	p.detailBusy = true
	svc, ctx, actor, gen := p.c.Svc, p.c.Ctx, p.c.Actor, p.gen
	return func() tea.Msg {
		v, err := svc.Employee(ctx, actor, id)
		return employeeDetailMsg{id: id, gen: gen, view: v, err: err}
	}
}

// Update handles msg, then reads the selected employee's details if they
// changed.
func (p *employeesPane) Update(msg tea.Msg) tea.Cmd {
	cmd := p.update(msg)
	return tea.Batch(cmd, p.detailCmd())
}

func (p *employeesPane) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case employeeDetailMsg:
		p.detailBusy = false
		p.detail, p.detailGen, p.detailErr = &msg.view, msg.gen, msg.err
		if msg.err != nil {
			p.detail = &app.EmployeeView{ID: msg.id}
			if errors.Is(msg.err, store.ErrNotFound) {
				// Gone since the list was read: the next list will not
				// have them.
				p.detailErr = errors.New("no longer in the database")
			}
		}
	case employeesMsg:
		var cmd tea.Cmd
		switch {
		case msg.err != nil:
			cmd = notify("loading employees failed: %v", msg.err)
		case msg.inviteErr != nil:
			cmd = notify("loading the invitations of employees failed: %v", msg.inviteErr)
		}
		if msg.err == nil {
			p.rows, p.loaded = p.sort.sorted(msg.rows), true
			p.gen++ // the details shown are read again
			p.refilter()
			p.keepSelection(p.chosen)
		}
		return tea.Batch(cmd, p.loader.done(p.load))
	case inviteDoneMsg:
		// An employee's details show their invitation.
		cmd := p.loader.start(p.load)
		if msg.what == "invite" {
			cmd = tea.Batch(inviteDone(p.c, msg), cmd)
		}
		return cmd
	case resetDoneMsg, enrollConfirmedMsg:
		return p.loader.start(p.load)
	case gotoEmployeeMsg:
		// The command line's go EMAIL: the filter is cleared and the
		// cursor put on the person.
		p.closeFilter(true)
		for i, n := 0, p.visibleCount(); i < n; i++ {
			if r := p.rowAt(i); r.email != "" && strings.EqualFold(r.email, msg.email) {
				p.list.cursor, p.selected, p.chosen = i, r.id, true
				p.list.clamp(n, p.listRows())
				return nil
			}
		}
		return notify("no employee with email %s", sanitize.Text(msg.email))
	case eventMsg:
		switch e := msg.e.(type) {
		case app.DataChanged:
			if e.What.Has(app.ChangedEmployees) {
				return p.loader.start(p.load)
			}
		case app.EventsLost:
			return p.loader.start(p.load)
		}
	case startFilterMsg:
		p.filtering = true
		p.list.clamp(p.visibleCount(), p.listRows())
		return p.input.Focus()
	case tea.KeyMsg:
		if p.filtering {
			return p.filterKey(msg)
		}
		if d, ok := p.c.Keys.movement(msg, p.listRows()); ok {
			p.move(d)
		}
	case clickMsg:
		if i := p.list.offset + msg.row - 1; msg.row >= 1 && i < p.visibleCount() { // row 0 is the column header
			p.list.cursor, p.chosen = i, true
			p.list.clamp(p.visibleCount(), p.listRows())
			p.selected = p.rowAt(i).id
		}
	case scrollMsg:
		p.move(msg.delta)
	default:
		if p.filtering {
			var cmd tea.Cmd
			p.input, cmd = p.input.Update(msg)
			return cmd
		}
	}
	return nil
}

// filterKey handles a key while the filter is open: the input gets every
// key, so that nothing else runs while typing.
func (p *employeesPane) filterKey(msg tea.KeyMsg) tea.Cmd {
	return filterInput(msg, &p.input, p.closeFilter, p.Update, p.applyFilter)
}

// closeFilter leaves the filter input, keeping or clearing what it holds.
func (p *employeesPane) closeFilter(clearIt bool) {
	p.filtering = false
	p.input.Blur()
	if clearIt {
		p.input.SetValue("")
		p.applyFilter()
	}
}

// applyFilter filters the rows by what the input holds. The cursor stays
// on the employee the operator chose while they still match, else goes to
// the best match; when the filter is cleared it stays on the employee
// selected, found with the filter, now among everyone.
func (p *employeesPane) applyFilter() {
	was := p.filter.matches != nil
	p.filter.apply(p.rows, p.input.Value())
	switch {
	case p.filter.err != nil:
		// The rows stay as they were; the error takes a line.
		p.list.clamp(p.visibleCount(), p.listRows())
	case p.filter.matches == nil:
		if !was {
			p.keepSelection(p.chosen)
		} else if p.keepSelection(true) {
			p.chosen = true
		}
	case p.chosen && p.keepSelection(true):
		// The employee the operator chose still matches: the cursor stays.
	default:
		p.chosen = false
		p.list.cursor, p.list.offset = 0, 0
		p.keepSelection(false)
	}
}

// refilter filters the rows anew (they were reloaded or sorted): by the
// last query that parsed, with the error of the one in the input if it
// does not.
func (p *employeesPane) refilter() {
	q := p.filter.query
	p.filter = employeeFilter{}
	p.filter.apply(p.rows, q)
	if v := p.input.Value(); v != q {
		p.filter.apply(p.rows, v)
	}
}

// setSort orders the rows anew; the cursor stays on the employee the
// operator chose, or on the first row.
func (p *employeesPane) setSort(s empSort) {
	p.sort = s
	p.rows = s.sorted(p.rows)
	p.refilter()
	if !p.chosen {
		p.list.cursor, p.list.offset = 0, 0
	}
	p.keepSelection(p.chosen)
}

func (p *employeesPane) move(delta int) {
	p.chosen = true
	p.list.move(delta, p.visibleCount(), p.listRows())
	if r := p.current(); r != nil {
		p.selected = r.id
	}
}

// visibleCount is the number of rows the filter lets through (all without
// a filter).
func (p *employeesPane) visibleCount() int {
	if p.filter.matches != nil {
		return len(p.filter.matches)
	}
	return len(p.rows)
}

func (p *employeesPane) rowAt(i int) *empRow {
	if p.filter.matches != nil {
		if i < 0 || i >= len(p.filter.matches) {
			return nil
		}
		return p.rows[p.filter.matches[i]]
	}
	if i < 0 || i >= len(p.rows) {
		return nil
	}
	return p.rows[i]
}

func (p *employeesPane) current() *empRow { return p.rowAt(p.list.cursor) }

// keepSelection puts the cursor back on the selected employee after the
// list changed, when keep says so and they are still listed (and reports
// whether they were); the selection is then what the cursor is on.
func (p *employeesPane) keepSelection(keep bool) bool {
	found := false
	if keep && p.selected != 0 {
		for i, n := 0, p.visibleCount(); i < n; i++ {
			if p.rowAt(i).id == p.selected {
				p.list.cursor, found = i, true
				break
			}
		}
	}
	p.list.clamp(p.visibleCount(), p.listRows())
	if r := p.current(); r != nil {
		p.selected = r.id
	}
	return found
}

func (p *employeesPane) Selected() Item {
	r := p.current()
	if r == nil {
		return nil
	}
	it := employeeItem{r: r}
	if p.detail != nil && p.detail.ID == r.id {
		it.v, it.err = p.detail, p.detailErr
	}
	return it
}

// View draws the column header (the sorted column marked ▲ or ▼), the
// visible rows only, and the filter with its error.
func (p *employeesPane) View() string {
	st := p.c.Styles
	cw := p.width - 2 // the cursor mark
	// The third column is the domains, or the column sorted by when it
	// has none of its own (when the employee last changed, their key).
	third := sortDomains
	if p.sort.col > sortDomains {
		third = p.sort.col
	}
	// Narrow panes shorten the flags and drop the third column, or, when
	// it is the one sorted by, the flags.
	flagsW, domW := min(16, max(8, cw/5)), min(14, max(8, cw/6))
	gaps := 3
	if cw < 46 {
		flagsW, domW, gaps = 8, 0, 2
		if p.sort.col >= sortDomains {
			flagsW, domW = 0, 9 // "CHANGED ▼"
		}
	}
	rest := cw - flagsW - domW - gaps
	nameW := rest * 48 / 100
	emailW := rest - nameW
	col := func(mark, name, email, doms, flags string) string {
		line := mark + fit(name, nameW) + " " + fit(email, emailW)
		if domW > 0 {
			line += " " + fit(doms, domW)
		}
		if flagsW > 0 {
			line += " " + fit(flags, flagsW)
		}
		return line
	}
	headers := sortHeaders
	arrow := " ▲"
	if p.sort.desc {
		arrow = " ▼"
	}
	headers[p.sort.col] += arrow
	lines := []string{st.Label.Render(col("  ", headers[sortName], headers[sortEmail], headers[third], "FLAGS"))}
	n := p.visibleCount()
	if n == 0 {
		switch {
		case !p.loaded:
			lines = append(lines, st.Dim.Render("loading…"))
		case p.filter.matches != nil:
			lines = append(lines, st.Dim.Render("no employee matches the filter (esc clears it)"))
		default:
			lines = append(lines, st.Dim.Render("no employees yet: press S to sync"))
		}
	}
	rows := p.listRows()
	p.list.clamp(n, rows)
	now := p.c.Now()
	for i := p.list.offset; i < n && i < p.list.offset+rows; i++ {
		r := p.rowAt(i)
		email := r.email
		if email == "" {
			email = "-"
		}
		mark := "  "
		if i == p.list.cursor {
			mark = "› "
		}
		var thirdVal string
		switch third {
		case sortChanged:
			thirdVal = "-"
			if r.changed != 0 {
				thirdVal = relTime(time.Unix(0, r.changed), now)
			}
		case sortKey:
			thirdVal = cmp.Or(r.key, "-")
		default:
			thirdVal = r.domains
		}
		line := col(mark, r.name, email, thirdVal, r.flags)
		switch {
		case i == p.list.cursor && p.focused:
			line = st.Selected.Render(line)
		case i == p.list.cursor:
			line = st.SelectedDim.Render(line)
		case r.removed():
			line = st.Dim.Render(line)
		}
		lines = append(lines, line)
	}
	if p.filterShown() {
		for len(lines) < rows+1 {
			lines = append(lines, "")
		}
		lines = append(lines, p.input.View())
		if p.filter.err != nil {
			lines = append(lines, st.Err.Render(fit(sanitize.Text(p.filter.err.Error()), p.width)))
		}
	}
	return block(lines, p.width, p.height)
}

// employeeItem is an employee as the Details pane describes it: their row,
// and their details once read (v nil until then).
type employeeItem struct {
	r   *empRow
	v   *app.EmployeeView
	err error // reading the details failed
}

func (e employeeItem) Kind() string       { return "employee" }
func (p *employeesPane) ItemKind() string { return "employee" }
func (e employeeItem) ID() string         { return strconv.FormatInt(e.r.id, 10) }

// DetailLines describe the employee and each account; long values wrap.
func (e employeeItem) DetailLines(c *Common, cw int) []string {
	r, v, st := e.r, e.v, c.Styles
	var out []string
	add := func(label, value string) { out = append(out, wrapField(c, label, value, cw)...) }
	add("Name", r.name)
	email := r.email
	if email == "" {
		email = "(none)"
	}
	add("Email", email)
	switch {
	case e.err != nil:
		add("Status", r.status)
		return append(out, st.Err.Render(fit("reading the details failed: "+sanitize.Text(e.err.Error()), cw)))
	case v == nil:
		add("Status", r.status)
		return append(out, st.Dim.Render("loading…"))
	}
	status := v.Status
	if v.RemovedAt != nil {
		status += " " + relTime(*v.RemovedAt, c.Now())
	}
	add("Status", status+" · "+v.Source)
	if v.Department != "" {
		add("Dept", sanitize.Text(v.Department))
	}
	if r.flags != "" {
		add("Flags", st.Flag.Render(r.flags))
	}
	if v.Key != nil {
		add("Key", sanitize.Text(v.Key.Serial)+" "+keyStatusWords(v.Key.Status, v.Key.Reason))
	} else {
		add("Key", st.Dim.Render("none"))
	}
	if r.invite != nil {
		out = append(out, invitationLines(c, r.invite, cw)...)
	}
	for _, a := range v.Accounts {
		out = append(out, "")
		head := st.Label.Render(sanitize.Text(a.Domain) + `\` + sanitize.Text(a.SAMAccountName))
		if a.LeftReason != nil {
			head += " " + st.Warn.Render("left: "+*a.LeftReason)
		}
		out = append(out, head)
		add("DN", sanitize.Text(a.DN))
		if a.UPN != "" {
			add("UPN", sanitize.Text(a.UPN))
		}
		enabled := "enabled"
		if !a.Enabled {
			enabled = st.Warn.Render("disabled")
		}
		add("Account", enabled)
		var groups []string
		if a.InSyncGroup {
			groups = append(groups, "sync")
		}
		if a.PasswordRotation {
			groups = append(groups, "password rotation")
		}
		if len(groups) == 0 {
			groups = append(groups, "none")
		}
		add("Groups", strings.Join(groups, ", "))
		if a.Title != "" {
			add("Title", sanitize.Text(a.Title))
		}
		if a.Rotation != nil {
			out = append(out, passwordLines(c, a.Rotation, cw)...)
		} else if a.PwdLastSet != nil {
			add("Password", "set "+relTime(*a.PwdLastSet, c.Now()))
		}
	}
	return out
}
