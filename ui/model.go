// Package ui is KeyDesk's full-screen console, built with Bubble Tea.
//
// The console is components. Each pane (domains.go, employees.go,
// keyspane.go, details.go, rotation.go, invitations.go, activity.go) is a
// Pane: it loads its own data, draws its content and has an action table
// (component.go) from which the footer, the help screen and what a role is
// offered are generated. The pane manager (manager.go) owns layout, focus
// and the mouse; the root model (this file) owns the header, the footer,
// the help screen, dialogs (dialog.go; the activation screen in
// activation.go, the enrollment of an authenticator app in enroll.go) and
// the subscription to the application layer's events. Every component
// shares one Common (common.go): the service, the operator, the styles of
// this terminal. All I/O runs in commands off the UI goroutine.
package ui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"

	"keydesk/app"
	"keydesk/internal/sanitize"
)

// Minimum usable size; below it the console says so instead of drawing.
const (
	MinWidth  = 60
	MinHeight = 16
)

const messageTimeout = 6 * time.Second

// panes is the console's layout: which panes, where, in tab order, and who
// sees them. Adding a pane is a file with its Pane and one line here.
func panes(c *Common) []slot {
	return []slot{
		{pane: newDomainsPane(c), name: paneDomains, col: 0, size: sizing{fit: 6}},
		{pane: newEmployeesPane(c), name: paneEmployees, col: 0},
		{pane: newKeysPane(c), name: paneKeys, col: 0, size: sizing{fit: 6}},
		{pane: newDetailsPane(c), name: paneDetails, col: 1, size: sizing{share: 45}},
		{pane: newRotationPane(c), name: paneRotation, col: 1, size: sizing{fit: 8}},
		{pane: newInvitationsPane(c), name: paneInvitations, col: 1, size: sizing{fit: 6}, perm: app.PermRead},
		{pane: newActivityPane(c), name: paneActivity, col: 1, perm: app.PermAuditRead},
	}
}

// Options configure the console.
type Options struct {
	Actor    app.Actor
	Renderer *lipgloss.Renderer
	NoColor  bool             // no colours (NO_COLOR); attributes stay
	Now      func() time.Time // default time.Now
	Location *time.Location   // for clock times; default time.Local
	Context  context.Context  // cancels background work; default Background
	Label    string           // shown in the header, e.g. "demo"
	// Places are where the keys this console serves are plugged in (its
	// activation screen opens for them); default this machine.
	Places []string
	// NoEvents turns off following the service's events (tests that drive
	// the model by hand).
	NoEvents bool
	// Mailbox, when set, reads the messages a local mail server received
	// (the demo's): the Invitations pane then shows what was sent to a
	// person.
	Mailbox func(ctx context.Context) ([]MailMessage, error)
	// About are lines the help screen ends with, e.g. where the demo keeps
	// its simulated keys.
	About []string
}

// MailMessage is one message a mailbox received.
type MailMessage struct {
	To, Subject, Text string
	At                time.Time
}

// Model is the console's root model.
type Model struct {
	c      *Common
	mgr    *manager
	global []Action // the console's own actions (tab, /, S, s, ?, q)

	width, height int
	showHelp      bool
	helpOffset    int      // the first line of the help shown, when it scrolls
	cmd           *cmdLine // the command line, while it is open
	dialog        Dialog
	queued        []Dialog // dialogs waiting for the open one to close
	message       string
	messageAt     time.Time
	clip          clipboard // a copy (y) written with the frame that says so (clipboard.go)

	events       <-chan app.Event
	unsubscribe  func()
	pendingSyncs int
	quitting     bool
}

// New builds the console over the service.
func New(svc *app.Service, opts Options) *Model {
	c := newCommon(svc, &opts)
	m := &Model{c: c, mgr: newManager(c, panes(c), paneEmployees)}
	m.global = m.globalActions()
	if !opts.NoEvents && svc != nil {
		m.events, m.unsubscribe = svc.Subscribe(app.SubscribeOptions{Places: opts.Places})
	}
	return m
}

// newCommon is what the components of one console share, from its options
// (defaults filled in).
func newCommon(svc *app.Service, opts *Options) *Common {
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
	if opts.Places == nil {
		opts.Places = []string{app.PlaceLocal}
	}
	return &Common{Ctx: opts.Context, Svc: svc, Actor: opts.Actor, Styles: NewStyles(opts.Renderer, !opts.NoColor), Keys: DefaultKeyMap(),
		Now: opts.Now, Location: opts.Location, Label: opts.Label, mailbox: opts.Mailbox, about: opts.About, selected: map[string]Item{}}
}

// Close ends the console's event subscription.
func (m *Model) Close() {
	if m.unsubscribe != nil {
		m.unsubscribe()
	}
}

type (
	eventsDoneMsg struct{}
	// quitMsg ends the console (after a confirmation).
	quitMsg struct{}
	// syncRequestedMsg and syncDoneMsg frame a sync this console started.
	syncRequestedMsg struct{}
	syncDoneMsg      struct {
		rep app.SyncReport
		err error
	}
)

// Init loads every pane's data and starts listening for events.
func (m *Model) Init() tea.Cmd {
	cmds := []tea.Cmd{m.mgr.Init(), tick()}
	if m.events != nil {
		cmds = append(cmds, waitEvent(m.events))
	}
	return tea.Batch(cmds...)
}

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

// startSync runs a sync of some domains (all when none) off the UI
// goroutine; the console counts it while it runs.
func startSync(c *Common, domains []string, allowRemovals bool) tea.Cmd {
	svc, ctx, actor := c.Svc, c.Ctx, c.Actor
	return tea.Sequence(func() tea.Msg { return syncRequestedMsg{} }, func() tea.Msg {
		rep, err := svc.Sync(ctx, app.SyncRequest{Actor: actor, Domains: domains, AllowRemovals: allowRemovals})
		return syncDoneMsg{rep: rep, err: err}
	})
}

// globalActions are the keys that mean the same in every pane.
func (m *Model) globalActions() []Action {
	k := m.c.Keys
	domain := func() *domainItem {
		d, _ := m.c.Selected("domain").(domainItem)
		if d.d.Name == "" {
			return nil
		}
		return &d
	}
	return []Action{
		{Key: k.NextPane, Priority: 2, Run: func() tea.Cmd { m.mgr.next(); return nil }},
		{Key: k.PrevPane, Priority: 0, Hidden: true, Run: func() tea.Cmd { m.mgr.prev(); return nil }},
		{Key: k.Filter, Priority: 3, Run: func() tea.Cmd {
			// A pane with a filter of its own (Activity) filters itself.
			if _, own := m.mgr.focused().(ownFilter); !own && !m.mgr.focusName(paneEmployees) {
				return nil
			}
			return m.mgr.focused().Update(startFilterMsg{})
		}},
		{Key: k.SyncAll, Perm: app.PermSync, Priority: 2,
			// S syncs every configured domain, so it need not wait for the
			// Domains pane's first list (the service says if there is none).
			Applies: func() (bool, string) {
				p, ok := m.mgr.pane(paneDomains).(*domainsPane)
				return !ok || !p.loaded || len(p.domains) > 0, "no domains are configured"
			},
			Run: func() tea.Cmd { return tea.Batch(notify("syncing all domains…"), startSync(m.c, nil, false)) }},
		{Key: k.Sync, Perm: app.PermSync, Priority: 1, Hidden: true,
			Applies: func() (bool, string) { return domain() != nil, "no domains are configured" },
			Run: func() tea.Cmd {
				d := domain()
				what := "syncing %s…"
				if m.mgr.focusedName() != paneDomains {
					what = "syncing %s (the domain selected in Domains; S syncs all)…"
				}
				return tea.Batch(notify(what, sanitize.Text(d.d.Name)), startSync(m.c, []string{d.d.Name}, false))
			}},
		m.copyAction(),
		{Key: cmdKey, Priority: 0, Run: func() tea.Cmd { return m.openCmdLine() }},
		{Key: k.Help, Priority: 100, Run: func() tea.Cmd { m.showHelp = true; return nil }},
		{Key: k.Quit, Priority: 100, Run: func() tea.Cmd {
			if m.busy() {
				m.dialog = newConfirm(m.c, "Quit while a sync is running?", "The running sync will be stopped; it changes nothing unless it completes.", false,
					func() tea.Msg { return quitMsg{} })
				return nil
			}
			return m.quit()
		}},
	}
}

func (m *Model) quit() tea.Cmd {
	m.quitting = true
	return tea.Quit
}

// busy reports whether quitting would cut off a sync.
func (m *Model) busy() bool {
	if m.pendingSyncs > 0 {
		return true
	}
	for _, s := range m.mgr.slots {
		if b, ok := s.pane.(busy); ok && b.Busy() {
			return true
		}
	}
	return false
}

func (m *Model) say(format string, args ...any) {
	m.message = sprintf(format, args...)
	m.messageAt = m.c.Now()
}

// capturing is the focused pane taking every key, if it is.
func (m *Model) capturing() capturer {
	if c, ok := m.mgr.focused().(capturer); ok && c.Capturing() {
		return c
	}
	return nil
}

// Update handles a message.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	cmd := m.update(msg)
	m.refreshSelection()
	return m, cmd
}

func (m *Model) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.mgr.SetSize(msg.Width, max(0, msg.Height-2))
		return nil
	case tea.KeyMsg:
		return m.key(msg)
	case tea.MouseMsg:
		if m.dialog != nil || m.showHelp || m.width < MinWidth || m.height < MinHeight {
			return nil
		}
		msg.Y-- // the header line
		return m.mgr.Update(msg)
	case noticeMsg:
		m.say("%s", msg.text)
		return nil
	case quitMsg:
		return m.quit()
	case openDialogMsg:
		switch {
		case msg.ifIdle && (m.dialog != nil || m.showHelp || m.capturing() != nil):
			return nil
		case m.dialog != nil:
			// Never over another: a code shown once, a code being typed.
			m.queued = append(m.queued, msg.d)
			return nil
		}
		m.dialog = msg.d
		return msg.d.Init()
	case syncRequestedMsg:
		m.pendingSyncs++
		return nil
	case syncDoneMsg:
		m.pendingSyncs--
		return m.syncDone(msg)
	case eventMsg:
		if e, ok := msg.e.(app.Stopping); ok {
			m.message, m.messageAt = fmt.Sprintf("KeyDesk is stopping: this session ends in %d s", int(e.In.Seconds())), m.c.Now()
		}
		cmd := m.broadcast(msg)
		if m.events != nil {
			cmd = tea.Batch(waitEvent(m.events), cmd)
		}
		return cmd
	case eventsDoneMsg:
		m.events = nil
		return nil
	case tickMsg:
		if m.message != "" && m.c.Now().Sub(m.messageAt) > messageTimeout {
			m.message = ""
		}
		return tick()
	}
	return m.broadcast(msg)
}

// broadcast gives a message to every pane and to the open dialog.
func (m *Model) broadcast(msg tea.Msg) tea.Cmd {
	cmd := m.mgr.Update(msg)
	if m.dialog != nil {
		var dcmd tea.Cmd
		m.dialog, dcmd = m.dialogUpdate(msg)
		cmd = tea.Batch(cmd, dcmd)
	}
	return cmd
}

// dialogUpdate updates the open dialog; a dialog that hands over to another
// one starts it, and one that closes lets the next waiting one open.
func (m *Model) dialogUpdate(msg tea.Msg) (Dialog, tea.Cmd) {
	prev := m.dialog
	next, cmd := prev.Update(msg)
	if next == nil && len(m.queued) > 0 {
		next, m.queued = m.queued[0], m.queued[1:]
	}
	if next != nil && next != prev {
		cmd = tea.Batch(cmd, next.Init())
	}
	return next, cmd
}

func (m *Model) syncDone(msg syncDoneMsg) tea.Cmd {
	switch failed := msg.rep.Failed(); {
	case msg.err != nil:
		m.say("sync: %s", firstLine(msg.err.Error()))
	case len(failed) > 0:
		m.say("sync of %s failed: %s", failed[0].Domain, firstLine(failed[0].Error))
	default:
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
	return nil
}

// refreshSelection tells every component what is selected: each kind's
// item, and the item Details describes (the focused pane's, if it has one).
func (m *Model) refreshSelection() {
	for _, s := range m.mgr.slots {
		if sel, ok := s.pane.(selector); ok {
			m.c.selected[sel.ItemKind()] = sel.Selected()
		}
	}
	if sel, ok := m.mgr.focused().(selector); ok {
		m.c.detail = sel.Selected()
	} else if m.c.detail == nil {
		m.c.detail = m.c.selected["employee"]
	} else if cur := m.c.selected[m.c.detail.Kind()]; cur != nil && cur.ID() == m.c.detail.ID() {
		m.c.detail = cur // the same item, reloaded
	}
}

func (m *Model) key(msg tea.KeyMsg) tea.Cmd {
	// Keys typed faster than the terminal is read arrive as one message with
	// several runes ("/ann" in one go): take them one by one, so that a key
	// binding among them is not lost. A paste into an input stays whole.
	if msg.Type == tea.KeyRunes && len(msg.Runes) > 1 && !msg.Paste && m.capturing() == nil && m.dialog == nil {
		var cmds []tea.Cmd
		for _, r := range msg.Runes {
			cmds = append(cmds, m.key(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}, Alt: msg.Alt}))
			m.refreshSelection()
		}
		return tea.Batch(cmds...)
	}
	k := m.c.Keys
	m.message = "" // a key answers the message of the moment
	switch {
	case key.Matches(msg, k.ForceQuit):
		return m.quit()
	case m.dialog != nil:
		var cmd tea.Cmd
		m.dialog, cmd = m.dialogUpdate(msg)
		return cmd
	case m.cmd != nil:
		return m.cmdLineKey(msg)
	case m.showHelp:
		switch {
		case key.Matches(msg, k.Help, k.No, k.Quit):
			m.showHelp, m.helpOffset = false, 0
		case key.Matches(msg, k.Down):
			m.helpOffset++
		case key.Matches(msg, k.Up):
			m.helpOffset = max(0, m.helpOffset-1)
		case key.Matches(msg, k.PageDown):
			m.helpOffset += max(1, m.height-6)
		case key.Matches(msg, k.PageUp):
			m.helpOffset = max(0, m.helpOffset-max(1, m.height-6))
		}
		return nil
	case m.capturing() != nil:
		// A focused input gets every key: nothing else runs while typing.
		return m.mgr.Update(msg)
	}
	if a, ok := matching(m.global, msg); ok {
		return m.run(a)
	}
	if a, ok := matching(m.mgr.focused().Actions(), msg); ok {
		return m.run(a)
	}
	return m.mgr.Update(msg)
}

// run starts an action the operator asked for: refused with a short reason
// when their role cannot do it or it does not apply now; confirmed first
// when the action says so.
func (m *Model) run(a Action) tea.Cmd {
	if !m.c.Can(a.Perm) {
		m.say("%s: your role (%s) cannot do this", a.Key.Help().Desc, m.c.Actor.Role)
		return nil
	}
	if ok, why := a.applies(); !ok {
		m.say("%s: %s", a.Key.Help().Desc, why)
		return nil
	}
	switch {
	case a.Focus != "":
		m.mgr.focusName(a.Focus)
		return nil
	case a.Confirm != ConfirmNone:
		// The question and the command are both made now, from the item
		// selected now.
		title, body := a.Ask()
		m.dialog = newConfirm(m.c, title, body, a.Confirm == ConfirmDanger, a.Run())
		return nil
	}
	return a.Run()
}

// View draws the console.
func (m *Model) View() string {
	if m.quitting {
		return ""
	}
	if m.width == 0 {
		return "starting…"
	}
	if m.width < MinWidth || m.height < MinHeight {
		msg := fmt.Sprintf("terminal too small (%dx%d)\nKeyDesk needs at least %dx%d", m.width, m.height, MinWidth, MinHeight)
		return m.c.Styles.r.Place(m.width, m.height, lipgloss.Center, lipgloss.Center, msg)
	}
	bodyH := m.height - 2
	var body string
	switch {
	case m.showHelp:
		body = m.viewHelp(m.width, bodyH)
	default:
		body = m.mgr.View()
		if m.dialog != nil {
			body = overlay(body, viewDialog(m.dialog, m.c, m.width, bodyH), m.width, bodyH)
		}
	}
	return m.header() + "\n" + body + "\n" + m.footer()
}

// overlay draws a dialog's box centred over the body.
func overlay(body, box string, w, h int) string {
	lines := strings.Split(body, "\n")
	boxLines := strings.Split(box, "\n")
	bw := 0
	for _, l := range boxLines {
		bw = max(bw, ansi.StringWidth(l))
	}
	x0, y0 := max(0, (w-bw)/2), max(0, (h-len(boxLines))/2)
	for i, l := range boxLines {
		y := y0 + i
		if y >= len(lines) {
			break
		}
		bg := lines[y]
		lines[y] = fit(ansi.Truncate(bg, x0, "")+fit(l, bw)+ansi.TruncateLeft(bg, x0+bw, ""), w)
	}
	return strings.Join(lines, "\n")
}

func (m *Model) header() string {
	left := " KeyDesk"
	if m.c.Label != "" {
		left += " [" + m.c.Label + "]"
	}
	left += " › " + m.mgr.focusedName()
	// Who works here (over SSH, the operator the session's key proved),
	// then what the scheduler does next.
	right := sanitize.Text(m.c.Actor.Name) + " (" + string(m.c.Actor.Role) + ") "
	for _, s := range m.mgr.slots {
		if sl, ok := s.pane.(statusLine); ok {
			right += "· " + sl.Status() + " "
		}
	}
	pad := m.width - ansi.StringWidth(left) - ansi.StringWidth(right)
	if pad < 1 {
		return m.c.Styles.Header.Render(fit(left, m.width))
	}
	return m.c.Styles.Header.Render(left + strings.Repeat(" ", pad) + right)
}
