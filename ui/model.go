// Package ui is KeyDesk's full-screen console, built with Bubble Tea: panes
// for domains, employees, an employee's details and the activity log, with
// key bindings kept as data, dialogs for anything destructive, and styles
// from a renderer passed down so that each terminal (each SSH session) gets
// its own. All I/O runs in commands off the UI goroutine; the application
// layer's events arrive as messages.
package ui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"keydesk/app"
	"keydesk/internal/sanitize"
	"keydesk/ldapsync"
	"keydesk/store"
)

// Pane identifies a pane of the console.
type Pane int

// The panes, in tab order.
const (
	PaneDomains Pane = iota
	PaneEmployees
	PaneKeys
	PaneDetails
	PaneActivity
	paneCount
)

func (p Pane) String() string {
	return [...]string{"Domains", "Employees", "Keys", "Details", "Activity"}[p]
}

// Minimum usable size; below it the console says so instead of drawing.
const (
	MinWidth  = 60
	MinHeight = 16
)

const (
	activityLimit  = 500
	messageTimeout = 6 * time.Second
)

// Options configure the console.
type Options struct {
	Actor    app.Actor
	Renderer *lipgloss.Renderer
	NoColor  bool             // no colours (NO_COLOR); attributes stay
	Now      func() time.Time // default time.Now
	Location *time.Location   // for clock times; default time.Local
	Context  context.Context  // cancels background work; default Background
	Label    string           // shown in the header, e.g. "demo"
	// Subscribe (default true) makes the console follow the service's
	// events; tests that drive the model by hand turn it off.
	NoEvents bool
}

// Model is the console's root model.
type Model struct {
	svc    *app.Service
	opts   Options
	ctx    context.Context
	styles Styles
	keys   KeyMap

	width, height int
	focus         Pane
	showHelp      bool
	dialog        *dialog
	message       string
	messageAt     time.Time

	events      <-chan app.Event
	unsubscribe func()

	domains   []app.DomainStatus
	domCursor list
	progress  map[string]ldapsync.Progress

	rows      []empRow
	empList   list
	filter    employeeFilter
	input     textinput.Model
	filtering bool
	loaded    bool
	loading   bool
	reload    bool // another reload was asked for while one was running
	selected  int64

	keysList  []app.KeyView
	keyCursor list

	detailOffset int
	activity     []store.AuditEntry
	actOffset    int
	lastSeq      int64

	pendingSyncs int
	quitting     bool
}

// New builds the console over the service.
func New(svc *app.Service, opts Options) Model {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Context == nil {
		opts.Context = context.Background()
	}
	if opts.Renderer == nil {
		opts.Renderer = lipgloss.DefaultRenderer()
	}
	if opts.Location == nil {
		opts.Location = time.Local
	}
	st := NewStyles(opts.Renderer, !opts.NoColor)
	in := textinput.New()
	in.Prompt = "/"
	in.PromptStyle = st.FilterPrompt
	in.Placeholder = "name, email or account"
	in.CharLimit = 200
	m := Model{svc: svc, opts: opts, ctx: opts.Context, styles: st, keys: DefaultKeyMap(), focus: PaneEmployees,
		input: in, progress: map[string]ldapsync.Progress{}, loading: true}
	if !opts.NoEvents {
		m.events, m.unsubscribe = svc.Subscribe(app.SubscribeOptions{Places: []string{app.PlaceLocal}})
	}
	return m
}

// Close ends the console's event subscription.
func (m Model) Close() {
	if m.unsubscribe != nil {
		m.unsubscribe()
	}
}

// Init loads the data and starts listening for events.
func (m Model) Init() tea.Cmd {
	cmds := []tea.Cmd{m.loadDomains(), m.loadActivity(0), tick(), m.loadEmployees(), m.loadKeys()}
	if m.events != nil {
		cmds = append(cmds, waitEvent(m.events))
	}
	return tea.Batch(cmds...)
}

// Messages.
type (
	employeesMsg struct {
		rows []empRow
		err  error
	}
	domainsMsg struct {
		list []app.DomainStatus
		err  error
	}
	activityMsg struct {
		entries []store.AuditEntry
		after   int64
		err     error
	}
	eventMsg      struct{ e app.Event }
	eventsDoneMsg struct{}
	syncDoneMsg   struct {
		rep app.SyncReport
		err error
	}
	tickMsg time.Time
)

func tick() tea.Cmd {
	return tea.Tick(time.Second, func(t time.Time) tea.Msg { return tickMsg(t) })
}

func waitEvent(ch <-chan app.Event) tea.Cmd {
	return func() tea.Msg {
		e, ok := <-ch
		if !ok {
			return eventsDoneMsg{}
		}
		return eventMsg{e}
	}
}

func (m Model) loadEmployees() tea.Cmd {
	svc, ctx, actor := m.svc, m.ctx, m.opts.Actor
	return func() tea.Msg {
		views, err := svc.Employees(ctx, actor, "")
		if err != nil {
			return employeesMsg{err: err}
		}
		return employeesMsg{rows: buildRows(views)}
	}
}

func (m Model) loadDomains() tea.Cmd {
	svc, ctx, actor := m.svc, m.ctx, m.opts.Actor
	return func() tea.Msg {
		l, err := svc.DomainStatuses(ctx, actor)
		return domainsMsg{list: l, err: err}
	}
}

func (m Model) loadActivity(after int64) tea.Cmd {
	svc, ctx, actor := m.svc, m.ctx, m.opts.Actor
	return func() tea.Msg {
		var es []store.AuditEntry
		err := svc.AuditEntries(ctx, actor, store.AuditFilter{AfterSeq: after, Limit: activityLimit, Newest: true}, func(e store.AuditEntry) error {
			es = append(es, e)
			return nil
		})
		return activityMsg{entries: es, after: after, err: err}
	}
}

func (m Model) syncCmd(domains []string, allowRemovals bool) tea.Cmd {
	svc, ctx, actor := m.svc, m.ctx, m.opts.Actor
	return func() tea.Msg {
		rep, err := svc.Sync(ctx, app.SyncRequest{Actor: actor, Domains: domains, AllowRemovals: allowRemovals})
		return syncDoneMsg{rep: rep, err: err}
	}
}

func (m *Model) say(format string, args ...any) {
	m.message = fmt.Sprintf(format, args...)
	m.messageAt = m.opts.Now()
}

// visibleRows is the filtered list (or all rows).
func (m *Model) visibleCount() int {
	if m.filter.matches != nil {
		return len(m.filter.matches)
	}
	return len(m.rows)
}

func (m *Model) rowAt(i int) *empRow {
	if m.filter.matches != nil {
		if i < 0 || i >= len(m.filter.matches) {
			return nil
		}
		return &m.rows[m.filter.matches[i]]
	}
	if i < 0 || i >= len(m.rows) {
		return nil
	}
	return &m.rows[i]
}

func (m *Model) selectedRow() *empRow { return m.rowAt(m.empList.cursor) }

// keepSelection puts the cursor back on the selected employee after the
// list changed, if it is still there.
func (m *Model) keepSelection() {
	if m.selected != 0 {
		for i, n := 0, m.visibleCount(); i < n; i++ {
			if m.rowAt(i).id == m.selected {
				m.empList.cursor = i
				break
			}
		}
	}
	m.empList.clamp(m.visibleCount(), m.layout().empRows)
	if r := m.selectedRow(); r != nil {
		m.selected = r.id
	}
}

func (m *Model) applyFilter() {
	m.filter.apply(m.rows, m.input.Value())
	m.empList.cursor, m.empList.offset = 0, 0
	m.empList.clamp(m.visibleCount(), m.layout().empRows)
	m.detailOffset = 0
	if r := m.selectedRow(); r != nil {
		m.selected = r.id
	}
}

// Update handles a message.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.input.Width = max(10, m.layout().leftW-8)
		m.empList.clamp(m.visibleCount(), m.layout().empRows)
		return m, nil
	case employeesMsg:
		m.loading = false
		if msg.err != nil {
			m.say("loading employees failed: %v", msg.err)
		} else {
			m.rows, m.loaded = msg.rows, true
			q := m.input.Value()
			m.filter = employeeFilter{}
			m.filter.apply(m.rows, q)
			m.keepSelection()
		}
		if m.reload {
			m.reload, m.loading = false, true
			return m, m.loadEmployees()
		}
		return m, nil
	case domainsMsg:
		if msg.err != nil {
			m.say("loading domains failed: %v", msg.err)
			return m, nil
		}
		m.domains = msg.list
		m.domCursor.clamp(len(m.domains), len(m.domains))
		return m, nil
	case activityMsg:
		if msg.err != nil {
			m.say("loading activity failed: %v", msg.err)
			return m, nil
		}
		if msg.after == 0 {
			m.activity = msg.entries
		} else {
			m.activity = append(msg.entries, m.activity...)
			if len(m.activity) > activityLimit {
				m.activity = m.activity[:activityLimit]
			}
		}
		if len(m.activity) > 0 {
			m.lastSeq = m.activity[0].Seq
		}
		return m, nil
	case keysMsg:
		if msg.err != nil {
			m.say("loading keys failed: %v", msg.err)
			return m, nil
		}
		m.keysList = msg.list
		m.keyCursor.clamp(len(m.keysList), max(1, m.layout().keyRows))
		return m, nil
	case keyOpMsg:
		return m.keyOpDone(msg)
	case eventMsg:
		return m.handleEvent(msg.e)
	case eventsDoneMsg:
		m.events = nil
		return m, nil
	case syncDoneMsg:
		m.pendingSyncs--
		if msg.err != nil {
			m.say("sync: %v", msg.err)
		} else if failed := msg.rep.Failed(); len(failed) > 0 {
			m.say("sync of %s failed: %s", failed[0].Domain, firstLine(failed[0].Error))
		} else {
			var held int
			for _, d := range msg.rep.Domains {
				held += d.Held
			}
			if held > 0 {
				m.say("sync done; %d removals held: select the domain and press a to apply them", held)
			} else {
				m.say("sync done")
			}
		}
		return m, nil
	case tickMsg:
		if m.message != "" && m.opts.Now().Sub(m.messageAt) > messageTimeout {
			m.message = ""
		}
		return m, tick()
	case tea.MouseMsg:
		return m.handleMouse(msg)
	case tea.KeyMsg:
		return m.handleKey(msg)
	}
	if m.filtering {
		var cmd tea.Cmd
		m.input, cmd = m.input.Update(msg)
		return m, cmd
	}
	return m, nil
}

// upsertKey puts a key into the list (replacing one with its serial).
func upsertKey(l []app.KeyView, k app.KeyView) []app.KeyView {
	for i := range l {
		if l[i].Serial == k.Serial {
			l[i].Status, l[i].PluggedIn = k.Status, true
			return l
		}
	}
	return append(l, k)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func (m Model) handleEvent(e app.Event) (tea.Model, tea.Cmd) {
	var cmds []tea.Cmd
	if m.events != nil {
		cmds = append(cmds, waitEvent(m.events))
	}
	switch e := e.(type) {
	case app.SyncStarted:
		m.progress[e.Domain] = ldapsync.Progress{Phase: "connecting"}
		m.setRunning(e.Domain, true)
	case app.SyncProgressed:
		m.progress[e.Domain] = e.Progress
	case app.SyncFinished:
		delete(m.progress, e.Domain)
		m.setRunning(e.Domain, false)
		if !e.Summary.OK {
			m.say("%s: sync failed: %s", e.Domain, firstLine(e.Summary.Error))
		}
		cmds = append(cmds, m.loadDomains())
	case app.ScheduleChanged:
		for i := range m.domains {
			if m.domains[i].Name == e.Domain {
				m.domains[i].Next = e.Next
			}
		}
	case app.KeyPlugged:
		cmds = append(cmds, m.loadKeys())
		if e.PluggedIn && m.dialog == nil && !m.filtering {
			switch e.Status {
			case "reserved":
				// The activation screen: the key was plugged in on site.
				m.keysList = upsertKey(m.keysList, app.KeyView{Serial: e.Serial, Status: e.Status, PluggedIn: true})
				next, cmd, _ := m.activationDialog(e.Serial)
				m = next
				cmds = append(cmds, cmd)
			case "suspended", "locked":
				m.say("key %s is %s: an admin must unlock it before it can be activated", sanitize.Text(e.Serial), e.Status)
			}
		}
	case app.DataChanged:
		cmds = append(cmds, m.loadActivity(m.lastSeq), m.loadDomains(), m.loadKeys())
		if m.loading {
			m.reload = true
		} else {
			m.loading = true
			cmds = append(cmds, m.loadEmployees())
		}
	}
	return m, tea.Batch(cmds...)
}

func (m *Model) setRunning(domain string, on bool) {
	for i := range m.domains {
		if m.domains[i].Name == domain {
			m.domains[i].Running = on
		}
	}
}

func (m *Model) running() bool {
	if m.pendingSyncs > 0 || len(m.progress) > 0 {
		return true
	}
	for _, d := range m.domains {
		if d.Running {
			return true
		}
	}
	return false
}

func (m Model) handleKey(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	// Keys typed faster than the terminal is read arrive as one message with
	// several runes ("/ann" in one go): take them one by one, so that a key
	// binding among them is not lost. A paste into the filter stays whole.
	if msg.Type == tea.KeyRunes && len(msg.Runes) > 1 && !msg.Paste && !m.filtering && m.dialog == nil {
		var cmds []tea.Cmd
		var next tea.Model = m
		for _, r := range msg.Runes {
			var cmd tea.Cmd
			next, cmd = next.(Model).handleKey(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}, Alt: msg.Alt})
			cmds = append(cmds, cmd)
		}
		return next, tea.Batch(cmds...)
	}
	k := m.keys
	if key.Matches(msg, k.ForceQuit) {
		m.quitting = true
		return m, tea.Quit
	}
	if m.dialog != nil {
		return m.handleDialogKey(msg)
	}
	if m.showHelp {
		if key.Matches(msg, k.Help, k.No, k.Quit) {
			m.showHelp = false
		}
		return m, nil
	}
	if m.filtering {
		// A focused input gets every key: nothing else runs while typing.
		// Esc and a key pressed right after it can arrive together as
		// alt+key: that is the Esc, then the key.
		if msg.Alt && msg.Type == tea.KeyRunes {
			next, _ := m.handleKey(tea.KeyMsg{Type: tea.KeyEsc})
			plain := msg
			plain.Alt = false
			return next.(Model).handleKey(plain)
		}
		switch {
		case key.Matches(msg, k.ClearInput):
			m.filtering = false
			m.input.Blur()
			m.input.SetValue("")
			m.applyFilter()
			return m, nil
		case key.Matches(msg, k.Accept):
			m.filtering = false
			m.input.Blur()
			return m, nil
		}
		before := m.input.Value()
		var cmd tea.Cmd
		m.input, cmd = m.input.Update(msg)
		if m.input.Value() != before {
			m.applyFilter()
		}
		return m, cmd
	}
	switch {
	case key.Matches(msg, k.Quit):
		if m.running() {
			m.dialog = confirmDialog("Quit while a sync is running?",
				"The running sync will be stopped; it changes nothing unless it completes.", false,
				func(m *Model) tea.Cmd { m.quitting = true; return tea.Quit })
			return m, nil
		}
		m.quitting = true
		return m, tea.Quit
	case key.Matches(msg, k.Help):
		m.showHelp = true
		return m, nil
	case key.Matches(msg, k.NextPane):
		m.focus = (m.focus + 1) % paneCount
		return m, nil
	case key.Matches(msg, k.PrevPane):
		m.focus = (m.focus + paneCount - 1) % paneCount
		return m, nil
	case key.Matches(msg, k.Filter):
		m.focus = PaneEmployees
		m.filtering = true
		return m, m.input.Focus()
	case key.Matches(msg, k.SyncAll):
		if len(m.domains) == 0 {
			m.say("no domains are configured")
			return m, nil
		}
		m.pendingSyncs++
		m.say("syncing all domains…")
		return m, m.syncCmd(nil, false)
	case key.Matches(msg, k.Sync):
		d := m.currentDomain()
		if d == nil {
			m.say("no domains are configured")
			return m, nil
		}
		if m.focus != PaneDomains && len(m.domains) > 1 {
			m.say("syncing %s (the domain selected in Domains; S syncs all)…", d.Name)
		} else {
			m.say("syncing %s…", d.Name)
		}
		m.pendingSyncs++
		return m, m.syncCmd([]string{d.Name}, false)
	case m.focus == PaneKeys && !key.Matches(msg, k.Up, k.Down, k.Top, k.Bottom, k.PageUp, k.PageDown):
		next, cmd, ok := m.handleKeysPaneKey(msg)
		if ok {
			return next, cmd
		}
		return next.handleMove(msg)
	case key.Matches(msg, k.Apply) && m.focus == PaneDomains:
		d := m.currentDomain()
		if d == nil || d.Held == 0 {
			m.say("no held removals in this domain")
			return m, nil
		}
		domain := d.Name
		m.dialog = confirmDialog(fmt.Sprintf("Apply %d held removals in %s?", d.Held, d.Name),
			fmt.Sprintf("A sync found that %d accounts left at once, more than the accident guard allows. Applying marks them as leavers and their employees as removed (they are kept, not deleted).", d.Held),
			true, func(m *Model) tea.Cmd {
				m.pendingSyncs++
				m.say("applying held removals in %s…", domain)
				return m.syncCmd([]string{domain}, true)
			})
		return m, nil
	}
	return m.handleMove(msg)
}

func (m *Model) currentDomain() *app.DomainStatus {
	if len(m.domains) == 0 {
		return nil
	}
	m.domCursor.clamp(len(m.domains), len(m.domains))
	return &m.domains[m.domCursor.cursor]
}

func (m Model) handleMove(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	k := m.keys
	lay := m.layout()
	delta := 0
	switch {
	case key.Matches(msg, k.Up):
		delta = -1
	case key.Matches(msg, k.Down):
		delta = 1
	case key.Matches(msg, k.PageUp):
		delta = -max(1, m.paneHeight(lay)-1)
	case key.Matches(msg, k.PageDown):
		delta = max(1, m.paneHeight(lay)-1)
	case key.Matches(msg, k.Top):
		delta = -1 << 30
	case key.Matches(msg, k.Bottom):
		delta = 1 << 30
	case key.Matches(msg, k.Details) && m.focus == PaneEmployees:
		m.focus = PaneDetails
		return m, nil
	default:
		return m, nil
	}
	m.scroll(delta)
	return m, nil
}

// scroll moves the focused pane's cursor or view by delta lines.
func (m *Model) scroll(delta int) {
	lay := m.layout()
	switch m.focus {
	case PaneDomains:
		m.domCursor.move(clampDelta(delta, len(m.domains)), len(m.domains), lay.domRows)
	case PaneEmployees:
		m.empList.move(clampDelta(delta, m.visibleCount()), m.visibleCount(), lay.empRows)
		m.detailOffset = 0
		if r := m.selectedRow(); r != nil {
			m.selected = r.id
		}
	case PaneKeys:
		m.keyCursor.move(clampDelta(delta, len(m.keysList)), len(m.keysList), lay.keyRows)
	case PaneDetails:
		m.detailOffset = max(0, min(m.detailOffset+clampDelta(delta, 1<<20), max(0, len(m.detailLines(lay.rightW-4))-lay.detailRows)))
	case PaneActivity:
		m.actOffset = max(0, min(m.actOffset+clampDelta(delta, 1<<20), max(0, len(m.activity)-lay.actRows)))
	}
}

func clampDelta(d, n int) int {
	if d > n {
		return n
	}
	if d < -n {
		return -n
	}
	return d
}

func (m *Model) paneHeight(lay layout) int {
	switch m.focus {
	case PaneDomains:
		return lay.domRows
	case PaneDetails:
		return lay.detailRows
	case PaneActivity:
		return lay.actRows
	case PaneKeys:
		return lay.keyRows
	}
	return lay.empRows
}

func (m Model) handleMouse(msg tea.MouseMsg) (tea.Model, tea.Cmd) {
	if m.dialog != nil || m.showHelp || m.width < MinWidth || m.height < MinHeight {
		return m, nil
	}
	lay := m.layout()
	pane, row := lay.hit(msg.X, msg.Y)
	if pane < 0 {
		return m, nil
	}
	switch msg.Button {
	case tea.MouseButtonWheelUp:
		m.focus = pane
		m.scroll(-3)
	case tea.MouseButtonWheelDown:
		m.focus = pane
		m.scroll(3)
	case tea.MouseButtonLeft:
		if msg.Action != tea.MouseActionPress {
			return m, nil
		}
		m.focus = pane
		switch pane {
		case PaneEmployees:
			if i := m.empList.offset + row - 1; row >= 1 && i < m.visibleCount() { // row 0 is the column header
				m.empList.cursor = i
				m.empList.clamp(m.visibleCount(), lay.empRows)
				m.selected = m.rowAt(i).id
				m.detailOffset = 0
			}
		case PaneDomains:
			if i := m.domCursor.offset + row; row >= 0 && i < len(m.domains) {
				m.domCursor.cursor = i
			}
		case PaneKeys:
			if i := m.keyCursor.offset + row - 1; row >= 1 && i < len(m.keysList) {
				m.keyCursor.cursor = i
			}
		}
	}
	return m, nil
}
