package ui

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"keydesk/app"
	"keydesk/internal/sanitize"
	keylife "keydesk/keys"
	"keydesk/store"
)

// activityLimit is how many audit entries the Activity pane keeps.
const activityLimit = 500

type activityMsg struct {
	entries []store.AuditEntry
	err     error
}

// ownFilter is a pane that filters its own list: the global / opens its
// filter instead of the employees'. FilterHelp is the / key as the pane
// means it.
type ownFilter interface {
	FilterHelp() key.Binding
}

// activityPane is the audit log, newest first, following new entries live:
// a cursor on an entry (the Details pane describes it; enter opens it
// whole), and a filter of its own (/: by actor, action or target).
type activityPane struct {
	c             *Common
	width, height int
	focused       bool
	entries       []store.AuditEntry
	lastSeq       int64
	loader        loader
	list          list
	// moved: the operator moved the cursor, which then stays on its entry
	// (selSeq) as new ones arrive; until then it stays on the newest.
	moved  bool
	selSeq int64
	// The filter: the input, whether it takes the keys, and the entries
	// it lets through (indexes into entries; nil = no filter).
	input     textinput.Model
	filtering bool
	matches   []int
	actions   []Action
}

const paneActivity = "Activity"

func newActivityPane(c *Common) *activityPane {
	p := &activityPane{c: c, input: newTextInput("/ ", "actor, action or target", 64, 30)}
	p.actions = []Action{
		{Key: key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "open the entry")), OnItem: true, Priority: 5,
			Applies: func() (bool, string) { return p.current() != nil, "no entry selected" },
			Run: func() tea.Cmd {
				e := p.current()
				return openDialog(&entryDialog{item: auditItem{*e}, keys: p.c.Keys})
			}},
	}
	return p
}

func (p *activityPane) Title() string {
	note := ""
	if p.matches != nil {
		note = fmt.Sprintf("%d of %d", len(p.matches), len(p.entries))
	}
	return p.list.title(p.width, paneActivity, note, p.visibleCount())
}
func (p *activityPane) Init() tea.Cmd     { return p.reload() }
func (p *activityPane) Rows() int         { return p.visibleCount() + p.filterRows() }
func (p *activityPane) Actions() []Action { return p.actions }
func (p *activityPane) SetFocused(f bool) { p.focused = f }
func (p *activityPane) ItemKind() string  { return "audit" }
func (p *activityPane) Capturing() bool   { return p.filtering }

func (p *activityPane) SetSize(w, h int) {
	p.width, p.height = w, h
	p.input.Width = max(10, w-4)
	p.list.clamp(p.visibleCount(), p.listRows())
}

// FilterHelp is the / key in this pane.
func (p *activityPane) FilterHelp() key.Binding {
	return key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter entries"))
}

// CaptureHelp are the keys while the filter takes them.
func (p *activityPane) CaptureHelp() []key.Binding {
	return []key.Binding{
		key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "clear filter")),
		key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "keep filter")),
		key.NewBinding(key.WithHelp("type", "actor, action or target")),
	}
}

// filterRows is the filter's line under the list, while it is open or
// holds a query.
func (p *activityPane) filterRows() int {
	if p.filtering || p.input.Value() != "" {
		return 1
	}
	return 0
}

func (p *activityPane) listRows() int { return max(1, p.height-p.filterRows()) }

// visibleCount is how many entries the filter lets through.
func (p *activityPane) visibleCount() int {
	if p.matches != nil {
		return len(p.matches)
	}
	return len(p.entries)
}

// at is the i-th entry the filter lets through.
func (p *activityPane) at(i int) *store.AuditEntry {
	if p.matches != nil {
		return &p.entries[p.matches[i]]
	}
	return &p.entries[i]
}

// current is the entry under the cursor (nil when none).
func (p *activityPane) current() *store.AuditEntry {
	n := p.visibleCount()
	if n == 0 {
		return nil
	}
	p.list.clamp(n, p.listRows())
	return p.at(p.list.cursor)
}

// Selected is the entry under the cursor, for the Details pane.
func (p *activityPane) Selected() Item {
	if e := p.current(); e != nil {
		return auditItem{*e}
	}
	return nil
}

// reload reads the entries newer than those shown.
func (p *activityPane) reload() tea.Cmd { return p.loader.start(p.load) }

// load reads the entries after the newest shown (all, up to the limit, at
// first).
func (p *activityPane) load() tea.Cmd {
	svc, ctx, actor, after := p.c.Svc, p.c.Ctx, p.c.Actor, p.lastSeq
	return func() tea.Msg {
		var es []store.AuditEntry
		err := svc.AuditEntries(ctx, actor, store.AuditFilter{AfterSeq: after, Limit: activityLimit, Newest: true}, func(e store.AuditEntry) error {
			es = append(es, e)
			return nil
		})
		return activityMsg{entries: es, err: err}
	}
}

func (p *activityPane) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case activityMsg:
		again := p.loader.done(p.load)
		if msg.err != nil {
			return tea.Batch(again, notify("loading activity failed: %v", msg.err))
		}
		var fresh []store.AuditEntry
		for _, e := range msg.entries {
			if e.Seq > p.lastSeq { // an entry is shown once, whatever the loads
				fresh = append(fresh, e)
			}
		}
		p.entries = append(fresh, p.entries...)
		if len(p.entries) > activityLimit {
			p.entries = p.entries[:activityLimit]
		}
		if len(p.entries) > 0 {
			p.lastSeq = p.entries[0].Seq
		}
		p.refilter()
		return again
	case eventMsg:
		switch e := msg.e.(type) {
		case app.DataChanged:
			if e.What.Has(app.ChangedAudit) {
				return p.reload()
			}
		case app.EventsLost:
			return p.reload()
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
		if i := p.list.offset + msg.row; msg.row >= 0 && i < p.visibleCount() {
			p.list.cursor = i
			p.chose()
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

func (p *activityPane) move(delta int) {
	p.list.move(delta, p.visibleCount(), p.listRows())
	p.chose()
}

// chose keeps the entry under the cursor as the operator's choice.
func (p *activityPane) chose() {
	p.list.clamp(p.visibleCount(), p.listRows())
	if e := p.current(); e != nil {
		p.moved, p.selSeq = true, e.Seq
	}
}

// filterKey handles a key while the filter is open: the input gets every
// key.
func (p *activityPane) filterKey(msg tea.KeyMsg) tea.Cmd {
	return filterInput(msg, &p.input, p.closeFilter, p.Update, func() {
		p.moved = false // a new query starts at its newest match
		p.refilter()
	})
}

func (p *activityPane) closeFilter(clearIt bool) {
	p.filtering = false
	p.input.Blur()
	if clearIt {
		p.input.SetValue("")
		p.refilter()
	}
}

// refilter applies the query to the entries and puts the cursor back on
// the chosen entry (or the newest, until one was chosen).
func (p *activityPane) refilter() {
	q := strings.ToLower(strings.TrimSpace(p.input.Value()))
	p.matches = nil
	if q != "" {
		p.matches = []int{}
		for i, e := range p.entries {
			if strings.Contains(entryHaystack(e), q) {
				p.matches = append(p.matches, i)
			}
		}
	}
	p.list.cursor = 0
	if p.moved {
		for i := range p.visibleCount() {
			if p.at(i).Seq == p.selSeq {
				p.list.cursor = i
				break
			}
		}
	}
	p.list.clamp(p.visibleCount(), p.listRows())
}

// entryHaystack is what the filter looks in: who, what (as words and as
// recorded), the target, the outcome.
func entryHaystack(e store.AuditEntry) string {
	return strings.ToLower(strings.Join([]string{e.Actor, e.Role, auditActionWords(e.Action, e.Target), e.Action, e.Target, outcomeWord(e.Outcome)}, "\x00"))
}

func (p *activityPane) View() string {
	st := p.c.Styles
	rows := p.listRows()
	var out []string
	switch {
	case len(p.entries) == 0:
		out = append(out, st.Dim.Render("no activity yet"))
	case p.visibleCount() == 0:
		out = append(out, st.Dim.Render("no entry matches the filter (esc clears it)"))
	}
	n := p.visibleCount()
	p.list.clamp(n, rows)
	for i := p.list.offset; i < n && len(out) < rows; i++ {
		mark := "  "
		if i == p.list.cursor {
			mark = "› "
		}
		line := mark + p.line(*p.at(i))
		switch {
		case i == p.list.cursor && p.focused:
			line = st.Selected.Render(fit(ansi.Strip(line), p.width))
		case i == p.list.cursor:
			line = st.SelectedDim.Render(fit(ansi.Strip(line), p.width))
		}
		out = append(out, line)
	}
	if p.filterRows() > 0 {
		for len(out) < rows {
			out = append(out, "")
		}
		out = append(out, p.input.View())
	}
	return block(out, p.width, p.height)
}

// line is one entry in a line: when, who, what to which target, how it
// ended, and a few words more.
func (p *activityPane) line(e store.AuditEntry) string {
	st := p.c.Styles
	var outcome string
	switch e.Outcome {
	case store.OutcomeSuccess:
		outcome = st.OK.Render("✓")
	case store.OutcomeDenied:
		outcome = st.Err.Render("denied")
	default:
		outcome = st.Err.Render("✗ " + outcomeWord(e.Outcome))
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
	return sanitize.Text(entryTime(p.c, e.At)+" "+e.Actor+" "+auditActionWords(e.Action, e.Target)) + " " + outcome + sanitize.Text(detail)
}

// entryTime is when an entry was written: the clock time today, the date
// before.
func entryTime(c *Common, at time.Time) string {
	t := at.In(c.Location)
	if c.Now().Sub(at) > 24*time.Hour {
		return t.Format("01-02 15:04")
	}
	return t.Format("15:04:05")
}

// auditItem is an audit entry as the Details pane (and the entry's
// dialog) describes it.
type auditItem struct{ e store.AuditEntry }

func (a auditItem) Kind() string { return "audit" }
func (a auditItem) ID() string   { return strconv.FormatInt(a.e.Seq, 10) }

// DetailLines say who did what to which target, how it ended, and every
// detail recorded (the full error among them), in words.
func (a auditItem) DetailLines(c *Common, cw int) []string {
	e, st := a.e, c.Styles
	var out []string
	add := func(label, value string) { out = append(out, wrapField(c, label, value, cw)...) }
	add("When", e.At.In(c.Location).Format("2006-01-02 15:04:05")+" ("+timeWords(e.At, c.Now())+")")
	who := sanitize.Text(e.Actor)
	if e.Role != "" {
		who += " (" + sanitize.Text(e.Role) + ")"
	}
	if e.Auth != "" {
		who += ", " + sanitize.Text(e.Auth)
	}
	add("Who", who)
	add("What", sanitize.Text(auditActionWords(e.Action, e.Target)))
	add("Target", sanitize.Text(targetWords(e.Target)))
	outcome := outcomeWord(e.Outcome)
	if e.Outcome != store.OutcomeSuccess {
		outcome = st.Err.Render(outcome)
	}
	add("Outcome", outcome)
	if len(e.Details) > 0 {
		out = append(out, "")
		names := make([]string, 0, len(e.Details))
		for k := range e.Details {
			names = append(names, k)
		}
		slices.Sort(names)
		for _, k := range names {
			add(detailLabel(k), sanitize.Text(detailValue(k, e.Details[k])))
		}
	}
	out = append(out, "")
	return append(out, st.Dim.Render(fmt.Sprintf("entry %d of the audit log", e.Seq)))
}

// detailLabel is a detail's name as a label: "code_expires_at" is "Code
// expires at".
func detailLabel(k string) string {
	w := plainWords(k)
	if w == "" {
		return w
	}
	return strings.ToUpper(w[:1]) + w[1:]
}

// detailValue is a detail's value in words: a key status or reason in
// words, a list joined.
func detailValue(k string, v any) string {
	switch x := v.(type) {
	case string:
		switch k {
		case "from", "to":
			return keyStatusWords(x, "")
		case "reason":
			if w, ok := reasonWords[keylife.Reason(x)]; ok && w != "" {
				return w
			}
			return plainWords(x)
		}
		return x
	case []any:
		parts := make([]string, len(x))
		for i, y := range x {
			parts[i] = fmt.Sprint(y)
		}
		return strings.Join(parts, ", ")
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case nil:
		return "-"
	}
	return fmt.Sprint(v)
}

// entryDialog shows one audit entry whole, scrolled when it is taller than
// the screen.
type entryDialog struct {
	item   auditItem
	keys   KeyMap
	offset int
	page   int
}

func (d *entryDialog) Init() tea.Cmd { return nil }

func (d *entryDialog) Update(msg tea.Msg) (Dialog, tea.Cmd) {
	k, ok := msg.(tea.KeyMsg)
	if !ok {
		return d, nil
	}
	if key.Matches(k, d.keys.Cancel, d.keys.Accept) {
		return nil, nil
	}
	if delta, ok := d.keys.movement(k, max(1, d.page)); ok {
		d.offset = max(0, d.offset+clampDelta(delta, 1<<20)) // clamped when drawn
	}
	return d, nil
}

func (d *entryDialog) View(c *Common, width int) string { return d.ViewSized(c, width, 24) }

// ViewSized draws as many of the entry's lines as fit.
func (d *entryDialog) ViewSized(c *Common, width, height int) string {
	w := min(72, width-4)
	lines := d.item.DetailLines(c, max(20, w-4))
	d.page = max(3, height-4)
	d.offset = max(0, min(d.offset, len(lines)-d.page))
	shown := lines[d.offset:min(len(lines), d.offset+d.page)]
	return c.Styles.Dialog.Width(max(1, w-2)).Render(c.Styles.DialogTitle.Render("Audit entry") + "\n" + strings.Join(shown, "\n"))
}

func (d *entryDialog) Help(c *Common) []key.Binding {
	return []key.Binding{
		key.NewBinding(key.WithKeys("down"), key.WithHelp("↑/↓", "scroll")),
		key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "close")),
	}
}
