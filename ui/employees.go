package ui

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"

	"keydesk/app"
	"keydesk/internal/sanitize"
)

// empRow is an employee prepared for drawing: every string that came from
// the directory is sanitised once, when the list is loaded.
type empRow struct {
	view    *app.EmployeeView
	id      int64
	name    string
	email   string
	domains string
	flags   string
	removed bool
	hay     string              // lower-cased name, email and sAMAccountNames, for the filter
	invite  *app.InvitationView // the newest invitation (nil: never invited)
}

// buildRows prepares the employees for drawing, each with their newest
// invitation.
func buildRows(views []app.EmployeeView, invites []app.InvitationView) []empRow {
	inviteOf := make(map[int64]*app.InvitationView, len(invites))
	for i := range invites {
		inviteOf[invites[i].Employee] = &invites[i]
	}
	rows := make([]empRow, len(views))
	for i := range views {
		v := &views[i]
		r := empRow{view: v, id: v.ID, name: sanitize.Text(v.DisplayName), removed: v.Status == "removed", invite: inviteOf[v.ID]}
		if v.Email != nil {
			r.email = sanitize.Text(*v.Email)
		}
		var doms, sams []string
		seen := map[string]bool{}
		for _, a := range v.Accounts {
			if !seen[a.Domain] {
				seen[a.Domain] = true
				doms = append(doms, a.Domain)
			}
			sams = append(sams, a.SAMAccountName)
		}
		r.domains = sanitize.Text(strings.Join(doms, ","))
		flags := append([]string(nil), v.Flags...)
		if v.Key != nil {
			flags = append([]string{"key:" + v.Key.Status}, flags...)
		}
		if r.removed {
			flags = append([]string{"removed"}, flags...)
		}
		if v.Source == "manual" {
			flags = append(flags, "manual")
		}
		r.flags = strings.Join(flags, ",")
		r.hay = strings.ToLower(v.DisplayName + "\x00" + r.email + "\x00" + strings.Join(sams, "\x00"))
		rows[i] = r
	}
	return rows
}

type (
	employeesMsg struct {
		rows      []empRow
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

	rows      []empRow
	filter    employeeFilter
	input     textinput.Model
	filtering bool
	list      list
	loaded    bool
	loader    loader
	selected  int64 // the selected employee's id, kept across reloads
	chosen    bool  // the operator moved: keep their employee (else the first row)
	actions   []Action
}

func newEmployeesPane(c *Common) *employeesPane {
	in := newTextInput("/", "name, email or account", 200, 30)
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
				case r.removed:
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
	}
	return p
}

const paneEmployees, paneDetails = "Employees", "Details"

func (p *employeesPane) Title() string {
	n := p.visibleCount()
	switch {
	case !p.loaded:
		return "Employees (loading…)"
	case p.filter.matches != nil:
		return fmt.Sprintf("Employees (%d of %d)", n, len(p.rows))
	default:
		return fmt.Sprintf("Employees (%d)", n)
	}
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
// the filter line).
func (p *employeesPane) listRows() int {
	rows := p.height - 1
	if p.filtering || p.input.Value() != "" {
		rows--
	}
	return max(1, rows)
}

// load reads the employees and everyone's newest invitation (one query
// each, rather than one per employee selected).
func (p *employeesPane) load() tea.Cmd {
	svc, ctx, actor := p.c.Svc, p.c.Ctx, p.c.Actor
	return func() tea.Msg {
		views, err := svc.Employees(ctx, actor, "")
		if err != nil {
			return employeesMsg{err: err}
		}
		invites, ierr := svc.Invitations(ctx, actor)
		return employeesMsg{rows: buildRows(views, invites), inviteErr: ierr}
	}
}

func (p *employeesPane) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case employeesMsg:
		var cmd tea.Cmd
		switch {
		case msg.err != nil:
			cmd = notify("loading employees failed: %v", msg.err)
		case msg.inviteErr != nil:
			cmd = notify("loading the invitations of employees failed: %v", msg.inviteErr)
		}
		if msg.err == nil {
			p.rows, p.loaded = msg.rows, true
			p.filter = employeeFilter{}
			p.filter.apply(p.rows, p.input.Value())
			p.keepSelection()
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
	// Esc and a key pressed right after it can arrive together as alt+key:
	// that is the Esc, then the key.
	if msg.Alt && msg.Type == tea.KeyRunes {
		p.closeFilter(true)
		plain := msg
		plain.Alt = false
		return p.Update(plain)
	}
	switch msg.Type {
	case tea.KeyEsc:
		p.closeFilter(true)
		return nil
	case tea.KeyEnter:
		p.closeFilter(false)
		return nil
	}
	before := p.input.Value()
	var cmd tea.Cmd
	p.input, cmd = p.input.Update(msg)
	if p.input.Value() != before {
		p.applyFilter()
	}
	return cmd
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

func (p *employeesPane) applyFilter() {
	p.filter.apply(p.rows, p.input.Value())
	p.list.cursor, p.list.offset = 0, 0
	p.list.clamp(p.visibleCount(), p.listRows())
	if r := p.current(); r != nil {
		p.selected = r.id
	}
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
		return &p.rows[p.filter.matches[i]]
	}
	if i < 0 || i >= len(p.rows) {
		return nil
	}
	return &p.rows[i]
}

func (p *employeesPane) current() *empRow { return p.rowAt(p.list.cursor) }

// keepSelection puts the cursor back on the selected employee after the
// list changed, if it is still there.
func (p *employeesPane) keepSelection() {
	if p.chosen && p.selected != 0 {
		for i, n := 0, p.visibleCount(); i < n; i++ {
			if p.rowAt(i).id == p.selected {
				p.list.cursor = i
				break
			}
		}
	}
	p.list.clamp(p.visibleCount(), p.listRows())
	if r := p.current(); r != nil {
		p.selected = r.id
	}
}

func (p *employeesPane) Selected() Item {
	if r := p.current(); r != nil {
		return employeeItem{r}
	}
	return nil
}

// View draws the column header, the visible rows only, and the filter.
func (p *employeesPane) View() string {
	st := p.c.Styles
	cw := p.width - 2 // the cursor mark
	// Narrow panes drop the domains column and shorten the flags.
	flagsW, domW := min(16, max(8, cw/5)), min(14, max(8, cw/6))
	gaps := 3
	if cw < 46 {
		flagsW, domW, gaps = 8, 0, 2
	}
	rest := cw - flagsW - domW - gaps
	nameW := rest * 48 / 100
	emailW := rest - nameW
	col := func(mark, name, email, doms, flags string) string {
		line := mark + fit(name, nameW) + " " + fit(email, emailW) + " "
		if domW > 0 {
			line += fit(doms, domW) + " "
		}
		return line + fit(flags, flagsW)
	}
	lines := []string{st.Label.Render(col("  ", "NAME", "EMAIL", "DOMAINS", "FLAGS"))}
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
		line := col(mark, r.name, email, r.domains, r.flags)
		switch {
		case i == p.list.cursor && p.focused:
			line = st.Selected.Render(line)
		case i == p.list.cursor:
			line = st.SelectedDim.Render(line)
		case r.removed:
			line = st.Dim.Render(line)
		}
		lines = append(lines, line)
	}
	if p.filtering || p.input.Value() != "" {
		for len(lines) < rows+1 {
			lines = append(lines, "")
		}
		lines = append(lines, p.input.View())
	}
	return block(lines, p.width, p.height)
}

// employeeItem is an employee as the Details pane describes it.
type employeeItem struct{ r *empRow }

func (e employeeItem) Kind() string       { return "employee" }
func (p *employeesPane) ItemKind() string { return "employee" }
func (e employeeItem) ID() string         { return strconv.FormatInt(e.r.id, 10) }

// DetailLines describe the employee and each account; long values wrap.
func (e employeeItem) DetailLines(c *Common, cw int) []string {
	r, v, st := e.r, e.r.view, c.Styles
	var out []string
	add := func(label, value string) { out = append(out, wrapField(c, label, value, cw)...) }
	add("Name", r.name)
	email := r.email
	if email == "" {
		email = "(none)"
	}
	add("Email", email)
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
		ks := v.Key.Status
		if v.Key.Reason != "" {
			ks += " (" + v.Key.Reason + ")"
		}
		add("Key", sanitize.Text(v.Key.Serial)+" "+ks)
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
