package ui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"keydesk/app"
	"keydesk/internal/sanitize"
	"keydesk/store"
)

// layout is where every pane goes for a terminal size; View and the mouse
// handler both use it, so a click lands where the pane was drawn.
type layout struct {
	w, h                                           int
	leftW, rightW                                  int
	domH, empH, keyH, detailH, actH                int
	domRows, empRows, keyRows, detailRows, actRows int
	filterLine                                     bool
}

func (m *Model) layout() layout {
	l := layout{w: m.width, h: m.height}
	bodyH := max(0, m.height-2)
	l.leftW = max(40, m.width*55/100)
	if l.leftW > m.width-20 {
		l.leftW = m.width / 2
	}
	l.rightW = m.width - l.leftW
	n := len(m.domains)
	l.domH = min(max(n, 1), 6) + 2
	if bodyH-l.domH < 6 {
		l.domH = max(3, bodyH-6)
	}
	l.keyH = min(max(len(m.keysList), 1), 5) + 3 // borders and the column header
	if bodyH-l.domH-l.keyH < 6 {
		l.keyH = max(3, bodyH-l.domH-6)
	}
	l.empH = bodyH - l.domH - l.keyH
	l.detailH = bodyH * 55 / 100
	l.actH = bodyH - l.detailH
	l.filterLine = m.filtering || m.input.Value() != ""
	l.domRows = max(0, l.domH-2)
	l.empRows = max(1, l.empH-3) // borders and the column header
	if l.filterLine {
		l.empRows = max(1, l.empRows-1)
	}
	l.keyRows = max(0, l.keyH-3)
	l.detailRows = max(0, l.detailH-2)
	l.actRows = max(0, l.actH-2)
	return l
}

// hit finds the pane and the content row under a screen cell (-1 if none).
func (l layout) hit(x, y int) (Pane, int) {
	y-- // the header line
	if y < 0 || y >= l.h-2 || x < 0 || x >= l.w {
		return -1, 0
	}
	if x < l.leftW {
		switch {
		case y < l.domH:
			return PaneDomains, y - 1
		case y < l.domH+l.empH:
			return PaneEmployees, y - l.domH - 1
		}
		return PaneKeys, y - l.domH - l.empH - 1
	}
	if y < l.detailH {
		return PaneDetails, y - 1
	}
	return PaneActivity, y - l.detailH - 1
}

// View draws the console.
func (m Model) View() string {
	if m.quitting {
		return ""
	}
	if m.width == 0 {
		return "starting…"
	}
	if m.width < MinWidth || m.height < MinHeight {
		msg := fmt.Sprintf("terminal too small (%dx%d)\nKeyDesk needs at least %dx%d", m.width, m.height, MinWidth, MinHeight)
		return m.styles.r.Place(m.width, m.height, lipgloss.Center, lipgloss.Center, msg)
	}
	lay := m.layout()
	var body string
	switch {
	case m.showHelp:
		body = m.viewHelp(lay.w, lay.h-2)
	case m.dialog != nil:
		body = m.viewDialog(lay.w, lay.h-2)
	default:
		left := m.box("Domains", PaneDomains, m.domainLines(lay.leftW-4, lay.domRows), lay.leftW, lay.domH) + "\n" +
			m.box(m.employeesTitle(), PaneEmployees, m.employeeLines(lay), lay.leftW, lay.empH) + "\n" +
			m.box(fmt.Sprintf("Keys (%d)", len(m.keysList)), PaneKeys, m.keyLines(lay.leftW-4, lay.keyRows), lay.leftW, lay.keyH)
		right := m.box("Details", PaneDetails, m.detailView(lay), lay.rightW, lay.detailH) + "\n" +
			m.box("Activity", PaneActivity, m.activityLines(lay.rightW-4, lay.actRows), lay.rightW, lay.actH)
		body = joinColumns(left, right)
	}
	return m.header(lay.w) + "\n" + body + "\n" + m.footer(lay.w)
}

// joinColumns puts two blocks of equal height side by side.
func joinColumns(left, right string) string {
	l := strings.Split(left, "\n")
	r := strings.Split(right, "\n")
	var b strings.Builder
	for i := 0; i < max(len(l), len(r)); i++ {
		if i > 0 {
			b.WriteByte('\n')
		}
		if i < len(l) {
			b.WriteString(l[i])
		}
		if i < len(r) {
			b.WriteString(r[i])
		}
	}
	return b.String()
}

// fit truncates or pads a (possibly styled) line to exactly w cells.
func fit(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if ansi.StringWidth(s) > w {
		s = ansi.Truncate(s, w, "…")
	}
	if pad := w - ansi.StringWidth(s); pad > 0 {
		s += strings.Repeat(" ", pad)
	}
	return s
}

// box draws a bordered pane of exactly w x h cells; the focused pane has a
// highlighted border and a marked title.
func (m Model) box(title string, p Pane, lines []string, w, h int) string {
	if h < 2 || w < 4 {
		return strings.Repeat("\n", max(0, h-1))
	}
	bs, ts := m.styles.Border, m.styles.Title
	mark := " "
	if m.focus == p {
		bs, ts, mark = m.styles.BorderFocus, m.styles.TitleFocus, "▸"
	}
	t := ansi.Truncate(mark+title+" ", w-4, "…")
	top := bs.Render("╭─") + ts.Render(t) + bs.Render(strings.Repeat("─", max(0, w-3-ansi.StringWidth(t)))+"╮")
	var b strings.Builder
	b.WriteString(top)
	side := bs.Render("│")
	for i := 0; i < h-2; i++ {
		line := ""
		if i < len(lines) {
			line = lines[i]
		}
		b.WriteString("\n" + side + " " + fit(line, w-4) + " " + side)
	}
	b.WriteString("\n" + bs.Render("╰"+strings.Repeat("─", w-2)+"╯"))
	return b.String()
}

func (m Model) header(w int) string {
	left := " KeyDesk"
	if m.opts.Label != "" {
		left += " [" + m.opts.Label + "]"
	}
	left += " › " + m.focus.String()
	right := m.schedulerStatus() + " "
	pad := w - ansi.StringWidth(left) - ansi.StringWidth(right)
	if pad < 1 {
		return m.styles.Header.Render(fit(left, w))
	}
	return m.styles.Header.Render(left + strings.Repeat(" ", pad) + right)
}

func (m Model) schedulerStatus() string {
	var running []string
	for _, d := range m.domains {
		if d.Running {
			running = append(running, d.Name)
		}
	}
	if len(running) > 0 {
		return "syncing " + strings.Join(running, ", ") + "…"
	}
	var next *app.DomainStatus
	for i := range m.domains {
		d := &m.domains[i]
		if !d.Next.IsZero() && (next == nil || d.Next.Before(next.Next)) {
			next = d
		}
	}
	if next == nil {
		return "scheduler: idle"
	}
	return "next sync: " + next.Name + " " + relTime(next.Next, m.opts.Now())
}

func (m Model) footer(w int) string {
	if m.message != "" {
		return m.styles.Message.Render(fit(" "+sanitize.Text(m.message), w))
	}
	k := m.keys
	var bs []key.Binding
	switch {
	case m.dialog != nil:
		bs = []key.Binding{k.Yes, k.No}
	case m.showHelp:
		bs = []key.Binding{key.NewBinding(key.WithKeys("?"), key.WithHelp("?/esc", "close help"))}
	case m.filtering:
		bs = []key.Binding{k.ClearInput, k.Accept, key.NewBinding(key.WithHelp("type", "to filter"))}
	case m.focus == PaneDomains:
		bs = []key.Binding{k.Sync, k.SyncAll, k.Apply, k.NextPane, k.Filter, k.Help, k.Quit}
	case m.focus == PaneEmployees:
		bs = []key.Binding{k.Filter, k.Details, k.SyncAll, k.NextPane, k.Down, k.Help, k.Quit}
	case m.focus == PaneKeys:
		bs = []key.Binding{k.KeyAssign, k.KeyActivate, k.KeyRenew, k.KeySuspend, k.KeyUnlock, k.KeyWithdraw, k.KeyCompromise}
		if m.svc != nil && m.svc.HasSimulatedKeys() {
			bs = append(bs, k.SimNew, k.SimPlug)
		}
		bs = append(bs, k.Help)
	default:
		bs = []key.Binding{k.Down, k.Up, k.NextPane, k.Filter, k.SyncAll, k.Help, k.Quit}
	}
	var parts []string
	for _, b := range bs {
		h := b.Help()
		parts = append(parts, m.styles.FooterKey.Render(h.Key)+" "+m.styles.Footer.Render(h.Desc))
	}
	return fit(" "+strings.Join(parts, m.styles.Footer.Render(" · ")), w)
}

func (m Model) viewHelp(w, h int) string {
	var lines []string
	lines = append(lines, m.styles.Label.Render("Key bindings"), "")
	for _, g := range m.keys.fullHelp() {
		lines = append(lines, m.styles.Label.Render(g.Title))
		for _, b := range g.Bindings {
			hb := b.Help()
			lines = append(lines, fmt.Sprintf("  %-12s %s", hb.Key, hb.Desc))
		}
	}
	lines = append(lines, "", "Mouse: click a pane or a row; the wheel scrolls.",
		"Domains: +added ~updated -removed by the last sync; \"held\" removals wait for a.")
	// Too long for the screen: two columns.
	if rows := h - 2; len(lines) > rows && w >= 70 {
		half := (len(lines) + 1) / 2
		colW := (w - 4) / 2
		var two []string
		for i := 0; i < half; i++ {
			right := ""
			if i+half < len(lines) {
				right = lines[i+half]
			}
			two = append(two, fit(lines[i], colW)+right)
		}
		lines = two
	}
	return m.box("Help", -1, lines, w, h)
}

func relTime(t, now time.Time) string {
	d := t.Sub(now)
	future := d > 0
	if !future {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		s = fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		s = fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		s = fmt.Sprintf("%dd", int(d.Hours()/24))
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

func (m Model) domainLines(cw, rows int) []string {
	if len(m.domains) == 0 {
		return []string{m.styles.Dim.Render("No domains configured: see the README, \"Configuration\"")}
	}
	m.domCursor.clamp(len(m.domains), rows)
	now := m.opts.Now()
	var out []string
	for i := m.domCursor.offset; i < len(m.domains) && len(out) < rows; i++ {
		d := m.domains[i]
		var status string
		switch p, running := m.progress[d.Name]; {
		case running || d.Running:
			status = m.styles.Warn.Render("⟳ syncing") + fmt.Sprintf(" %s, %d pages, %d read", p.Phase, p.Pages, p.Entries)
		case d.LastAttempt == nil:
			status = m.styles.Dim.Render("○ never synced")
		case d.LastError != "":
			status = m.styles.Err.Render("✗ failed") + " " + relTime(*d.LastAttempt, now) + ": " + sanitize.Text(firstLine(d.LastError))
		default:
			status = m.styles.OK.Render("● ok") + " " + relTime(*d.LastSuccess, now)
			if d.Last != nil {
				status += fmt.Sprintf(" +%d ~%d -%d", d.Last.Added, d.Last.Updated, d.Last.Removed)
			}
		}
		mark := "  "
		if i == m.domCursor.cursor {
			mark = "› "
		}
		line := fmt.Sprintf("%s%-8s %s · %d members", mark, sanitize.Text(d.Name), status, d.Members)
		if d.Held > 0 {
			line += " · " + m.styles.Warn.Render(fmt.Sprintf("%d held (a)", d.Held))
		}
		if !d.Next.IsZero() && !d.Running {
			line += m.styles.Dim.Render(" · next " + relTime(d.Next, now))
		}
		if i == m.domCursor.cursor && m.focus == PaneDomains {
			line = m.styles.Selected.Render(fit(ansi.Strip(line), cw))
		}
		out = append(out, line)
	}
	return out
}

func (m Model) employeesTitle() string {
	n := m.visibleCount()
	switch {
	case !m.loaded:
		return "Employees (loading…)"
	case m.filter.matches != nil:
		return fmt.Sprintf("Employees (%d of %d)", n, len(m.rows))
	default:
		return fmt.Sprintf("Employees (%d)", n)
	}
}

// employeeLines draws only the visible rows.
func (m Model) employeeLines(lay layout) []string {
	cw := lay.leftW - 4 - 2 // the cursor mark
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
	lines := []string{m.styles.Label.Render(col("  ", "NAME", "EMAIL", "DOMAINS", "FLAGS"))}
	n := m.visibleCount()
	if n == 0 {
		switch {
		case !m.loaded:
			lines = append(lines, m.styles.Dim.Render("loading…"))
		case m.filter.matches != nil:
			lines = append(lines, m.styles.Dim.Render("no employee matches the filter (esc clears it)"))
		default:
			lines = append(lines, m.styles.Dim.Render("no employees yet: press S to sync"))
		}
	}
	m.empList.clamp(n, lay.empRows)
	for i := m.empList.offset; i < n && i < m.empList.offset+lay.empRows; i++ {
		r := m.rowAt(i)
		email := r.email
		if email == "" {
			email = "-"
		}
		mark := "  "
		if i == m.empList.cursor {
			mark = "› "
		}
		line := col(mark, r.name, email, r.domains, r.flags)
		switch {
		case i == m.empList.cursor && m.focus == PaneEmployees:
			line = m.styles.Selected.Render(line)
		case i == m.empList.cursor:
			line = m.styles.SelectedDim.Render(line)
		case r.removed:
			line = m.styles.Dim.Render(line)
		}
		lines = append(lines, line)
	}
	if lay.filterLine {
		for len(lines) < lay.empRows+1 {
			lines = append(lines, "")
		}
		lines = append(lines, m.input.View())
	}
	return lines
}

func (m Model) detailView(lay layout) []string {
	if m.focus == PaneKeys {
		return m.keyDetailLines()
	}
	lines := m.detailLines(lay.rightW - 4)
	off := min(m.detailOffset, max(0, len(lines)-lay.detailRows))
	return lines[off:]
}

// detailLines describes the selected employee; long values wrap.
func (m Model) detailLines(cw int) []string {
	r := m.selectedRow()
	if r == nil {
		return []string{m.styles.Dim.Render("select an employee")}
	}
	v := r.view
	lab := m.styles.Label
	var out []string
	add := func(label, value string) {
		prefix := lab.Render(fmt.Sprintf("%-9s", label)) + " "
		wrapped := strings.Split(ansi.Hardwrap(value, max(10, cw-10), true), "\n")
		for i, w := range wrapped {
			if i == 0 {
				out = append(out, prefix+w)
			} else {
				out = append(out, strings.Repeat(" ", 10)+w)
			}
		}
	}
	add("Name", r.name)
	email := r.email
	if email == "" {
		email = "(none)"
	}
	add("Email", email)
	status := v.Status
	if v.RemovedAt != nil {
		status += " " + relTime(*v.RemovedAt, m.opts.Now())
	}
	add("Status", status+" · "+v.Source)
	if v.Department != "" {
		add("Dept", sanitize.Text(v.Department))
	}
	if r.flags != "" {
		add("Flags", m.styles.Flag.Render(r.flags))
	}
	if v.Key != nil {
		st := v.Key.Status
		if v.Key.Reason != "" {
			st += " (" + v.Key.Reason + ")"
		}
		add("Key", sanitize.Text(v.Key.Serial)+" "+st)
	} else {
		add("Key", m.styles.Dim.Render("none"))
	}
	for _, a := range v.Accounts {
		out = append(out, "")
		head := lab.Render(sanitize.Text(a.Domain) + `\` + sanitize.Text(a.SAMAccountName))
		if a.LeftReason != nil {
			head += " " + m.styles.Warn.Render("left: "+*a.LeftReason)
		}
		out = append(out, head)
		add("DN", sanitize.Text(a.DN))
		if a.UPN != "" {
			add("UPN", sanitize.Text(a.UPN))
		}
		enabled := "enabled"
		if !a.Enabled {
			enabled = m.styles.Warn.Render("disabled")
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
		if a.PwdLastSet != nil {
			add("Password", "set "+relTime(*a.PwdLastSet, m.opts.Now()))
		}
	}
	return out
}

func (m Model) activityLines(cw, rows int) []string {
	if len(m.activity) == 0 {
		return []string{m.styles.Dim.Render("no activity yet")}
	}
	var out []string
	for i := m.actOffset; i < len(m.activity) && len(out) < rows; i++ {
		out = append(out, m.activityLine(m.activity[i]))
	}
	return out
}

func (m Model) activityLine(e store.AuditEntry) string {
	at := e.At.In(m.opts.Location)
	ts := at.Format("15:04:05")
	if m.opts.Now().Sub(e.At) > 24*time.Hour {
		ts = at.Format("01-02 15:04")
	}
	outcome := m.styles.OK.Render("✓")
	if e.Outcome != store.OutcomeSuccess {
		outcome = m.styles.Err.Render("✗")
	}
	detail := ""
	if e.Action == "sync" && e.Outcome == store.OutcomeSuccess {
		detail = fmt.Sprintf(" +%v ~%v -%v", e.Details["added"], e.Details["updated"], e.Details["removed"])
		if h, ok := e.Details["held"].(float64); ok && h > 0 {
			detail += fmt.Sprintf(" held %v", h)
		}
	} else if msg, ok := e.Details["error"].(string); ok {
		detail = " " + firstLine(msg)
	}
	return sanitize.Text(fmt.Sprintf("%s %s %s %s", ts, e.Actor, e.Action, e.Target)) + " " + outcome + sanitize.Text(detail)
}
