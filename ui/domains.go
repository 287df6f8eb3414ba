package ui

import (
	"cmp"
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"keydesk/app"
	"keydesk/internal/sanitize"
	"keydesk/ldapsync"
)

type domainsMsg struct {
	list []app.DomainStatus
	err  error
}

// domainsPane shows each configured domain: health, the last sync, members,
// held removals, the next scheduled sync, and a sync's progress live.
type domainsPane struct {
	c             *Common
	width, height int
	focused       bool
	domains       []app.DomainStatus
	loaded        bool // the first list arrived
	progress      map[string]ldapsync.Progress
	started       map[string]time.Time    // when each domain's sync in progress began
	done          map[string]finishedSync // outcomes shown ahead of the list (finished)
	list          list
	loader        loader
	actions       []Action
}

const paneDomains = "Domains"

func newDomainsPane(c *Common) *domainsPane {
	p := &domainsPane{c: c, progress: map[string]ldapsync.Progress{}, started: map[string]time.Time{}, done: map[string]finishedSync{}}
	p.actions = []Action{
		{Key: key.NewBinding(key.WithKeys("a"), key.WithHelp("a", "apply held removals")), Perm: app.PermRemovalsApply, Priority: 5,
			Confirm: ConfirmDanger,
			Applies: func() (bool, string) {
				d := p.current()
				if d == nil || d.Held == 0 {
					return false, "no held removals in this domain"
				}
				return true, ""
			},
			Ask: func() (string, string) {
				d := p.current()
				return fmt.Sprintf("Apply %d held removals in %s?", d.Held, sanitize.Text(d.Name)),
					fmt.Sprintf("A sync found that %d accounts left at once, more than the accident guard allows. Applying marks them as leavers and their employees as removed (they are kept, not deleted).", d.Held)
			},
			Run: func() tea.Cmd {
				d := p.current()
				return tea.Batch(notify("applying held removals in %s…", sanitize.Text(d.Name)), startSync(p.c, []string{d.Name}, true))
			}},
	}
	return p
}

func (p *domainsPane) Title() string     { return paneDomains }
func (p *domainsPane) Init() tea.Cmd     { return p.reload() }
func (p *domainsPane) Rows() int         { return max(len(p.domains), 1) }
func (p *domainsPane) Actions() []Action { return p.actions }
func (p *domainsPane) SetFocused(f bool) { p.focused = f }

func (p *domainsPane) SetSize(w, h int) {
	p.width, p.height = w, h
	p.list.clamp(len(p.domains), h)
}

func (p *domainsPane) reload() tea.Cmd { return p.loader.start(p.load) }

func (p *domainsPane) load() tea.Cmd {
	svc, ctx, actor := p.c.Svc, p.c.Ctx, p.c.Actor
	return func() tea.Msg {
		l, err := svc.DomainStatuses(ctx, actor)
		return domainsMsg{list: l, err: err}
	}
}

func (p *domainsPane) current() *app.DomainStatus {
	if len(p.domains) == 0 {
		return nil
	}
	p.list.clamp(len(p.domains), p.height)
	return &p.domains[p.list.cursor]
}

func (p *domainsPane) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case domainsMsg:
		again := p.loader.done(p.load)
		if msg.err != nil {
			return tea.Batch(again, notify("loading domains failed: %v", msg.err))
		}
		p.domains, p.loaded = msg.list, true
		p.keepFinished()
		for name := range p.progress {
			if d := p.find(name); d == nil || !d.Running {
				delete(p.progress, name) // a sync that ended while its events were lost
			}
		}
		p.list.clamp(len(p.domains), p.height)
		return again
	case eventMsg:
		return p.event(msg.e)
	case tea.KeyMsg:
		if d, ok := p.c.Keys.movement(msg, p.height); ok {
			p.list.move(d, len(p.domains), p.height)
		}
	case clickMsg:
		if i := p.list.offset + msg.row; msg.row >= 0 && i < len(p.domains) {
			p.list.cursor = i
		}
	case scrollMsg:
		p.list.move(msg.delta, len(p.domains), p.height)
	}
	return nil
}

func (p *domainsPane) event(e app.Event) tea.Cmd {
	switch e := e.(type) {
	case app.SyncStarted:
		p.started[e.Domain] = e.At
		delete(p.done, e.Domain)
		p.progress[e.Domain] = ldapsync.Progress{Phase: "connecting"}
		p.setRunning(e.Domain, true)
	case app.SyncProgressed:
		p.progress[e.Domain] = e.Progress
	case app.SyncFinished:
		delete(p.progress, e.Domain)
		p.setRunning(e.Domain, false)
		p.finished(e.Domain, e.Summary)
		var cmd tea.Cmd
		if !e.Summary.OK {
			cmd = notify("%s: sync failed: %s", e.Domain, firstLine(e.Summary.Error))
		}
		return tea.Batch(cmd, p.reload())
	case app.ScheduleChanged:
		if d := p.find(e.Domain); d != nil {
			d.Next = e.Next
		}
	case app.DataChanged:
		if e.What.Has(app.ChangedDomains) {
			return p.reload()
		}
	case app.EventsLost:
		return p.reload()
	}
	return nil
}

func (p *domainsPane) find(name string) *app.DomainStatus {
	for i := range p.domains {
		if p.domains[i].Name == name {
			return &p.domains[i]
		}
	}
	return nil
}

// finishedSync is a sync's outcome as finished showed it, and when that
// sync began: a list loaded before it ended says less.
type finishedSync struct {
	status app.DomainStatus
	since  time.Time
}

// finished shows a sync's outcome from its summary at once, rather than
// the domain's status before it until the reload that follows arrives (a
// second or more while other panes reload 100,000 employees), and keeps
// showing it over any list loaded before the sync ended (keepFinished).
func (p *domainsPane) finished(domain string, sum app.DomainSummary) {
	d := p.find(domain)
	if d == nil {
		return
	}
	now := p.c.Now()
	d.LastAttempt, d.Running = &now, false
	if !sum.OK {
		d.LastError = cmp.Or(sum.Error, "sync failed")
	} else {
		last := sum
		d.LastSuccess, d.LastError, d.Last, d.Members, d.Held = &now, "", &last, sum.Members, sum.Held
		d.Left += sum.Removed
	}
	p.done[domain] = finishedSync{status: *d, since: p.started[domain]}
	delete(p.started, domain)
}

// keepFinished puts back, over a list just loaded, the outcomes finished
// showed that the list predates (its last attempt is older than the
// sync); a list that knows of the sync ends the overlay.
func (p *domainsPane) keepFinished() {
	for name, f := range p.done {
		d := p.find(name)
		switch {
		case d == nil:
			delete(p.done, name)
		case d.LastAttempt != nil && !d.LastAttempt.Before(f.since):
			delete(p.done, name)
		default:
			next := d.Next
			*d = f.status
			d.Next = next
		}
	}
}

func (p *domainsPane) setRunning(domain string, on bool) {
	if d := p.find(domain); d != nil {
		d.Running = on
	}
}

// Busy reports whether a sync runs: quitting would stop it.
func (p *domainsPane) Busy() bool {
	if len(p.progress) > 0 {
		return true
	}
	for _, d := range p.domains {
		if d.Running {
			return true
		}
	}
	return false
}

// Status is the header's summary: the domains syncing now, or the next
// scheduled sync.
func (p *domainsPane) Status() string {
	var running []string
	for _, d := range p.domains {
		if d.Running {
			running = append(running, d.Name)
		}
	}
	if len(running) > 0 {
		return "syncing " + sanitize.Text(strings.Join(running, ", ")) + "…"
	}
	var next *app.DomainStatus
	for i := range p.domains {
		d := &p.domains[i]
		if !d.Next.IsZero() && (next == nil || d.Next.Before(next.Next)) {
			next = d
		}
	}
	if next == nil {
		return "scheduler: idle"
	}
	return "next sync: " + sanitize.Text(next.Name) + " " + relTime(next.Next, p.c.Now())
}

func (p *domainsPane) Selected() Item {
	if d := p.current(); d != nil {
		return domainItem{*d, p.progress[d.Name]}
	}
	return nil
}

func (p *domainsPane) View() string {
	st := p.c.Styles
	if len(p.domains) == 0 {
		return block([]string{st.Dim.Render("No domains configured: see the README, \"Configuration\"")}, p.width, p.height)
	}
	p.list.clamp(len(p.domains), p.height)
	now := p.c.Now()
	var out []string
	for i := p.list.offset; i < len(p.domains) && len(out) < p.height; i++ {
		d := p.domains[i]
		var status string
		switch pr, running := p.progress[d.Name]; {
		case running || d.Running:
			status = st.Warn.Render("⟳ syncing") + fmt.Sprintf(" %s, %d pages, %d read", pr.Phase, pr.Pages, pr.Entries)
		case d.LastAttempt == nil:
			status = st.Dim.Render("○ never synced")
		case d.LastError != "":
			status = st.Err.Render("✗ failed") + " " + relTime(*d.LastAttempt, now) + ": " + sanitize.Text(firstLine(d.LastError))
		default:
			status = st.OK.Render("● ok") + " " + relTime(*d.LastSuccess, now)
			if d.Last != nil {
				status += fmt.Sprintf(" +%d ~%d -%d", d.Last.Added, d.Last.Updated, d.Last.Removed)
			}
		}
		mark := "  "
		if i == p.list.cursor {
			mark = "› "
		}
		line := fmt.Sprintf("%s%-8s %s · %d members", mark, sanitize.Text(d.Name), status, d.Members)
		if d.Held > 0 {
			line += " · " + st.Warn.Render(fmt.Sprintf("%d held (a)", d.Held))
		}
		if !d.Next.IsZero() && !d.Running {
			line += st.Dim.Render(" · next " + relTime(d.Next, now))
		}
		if i == p.list.cursor && p.focused {
			line = st.Selected.Render(fit(ansi.Strip(line), p.width))
		}
		out = append(out, line)
	}
	return block(out, p.width, p.height)
}

// domainItem is a domain as the Details pane describes it.
type domainItem struct {
	d        app.DomainStatus
	progress ldapsync.Progress
}

func (d domainItem) Kind() string       { return "domain" }
func (p *domainsPane) ItemKind() string { return "domain" }
func (d domainItem) ID() string         { return d.d.Name }

func (d domainItem) DetailLines(c *Common, cw int) []string {
	st, now := c.Styles, c.Now()
	var out []string
	add := func(label, value string) { out = append(out, wrapField(c, label, value, cw)...) }
	add("Domain", sanitize.Text(d.d.Name))
	for i, u := range d.d.URLs {
		label := ""
		if i == 0 {
			label = "Servers"
		}
		add(label, sanitize.Text(u))
	}
	add("Members", fmt.Sprintf("%d (%d kept as leavers)", d.d.Members, d.d.Left))
	switch {
	case d.d.Running:
		add("Sync", fmt.Sprintf("running: %s, %d pages, %d read", d.progress.Phase, d.progress.Pages, d.progress.Entries))
	case d.d.LastAttempt == nil:
		add("Sync", st.Dim.Render("never synced"))
	case d.d.LastError != "":
		add("Sync", st.Err.Render("failed")+" "+relTime(*d.d.LastAttempt, now))
		add("Error", sanitize.Text(d.d.LastError))
	default:
		add("Sync", "ok "+relTime(*d.d.LastSuccess, now))
	}
	if l := d.d.Last; l != nil {
		add("Last", fmt.Sprintf("%s: +%d ~%d -%d, %d merged, %d unchanged, in %s", l.Mode, l.Added, l.Updated, l.Removed, l.Merged, l.Unchanged, l.Duration))
	}
	if d.d.Held > 0 {
		add("Held", st.Warn.Render(fmt.Sprintf("%d removals wait for a confirmation (a)", d.d.Held)))
	}
	if !d.d.Next.IsZero() {
		add("Next", relTime(d.d.Next, now))
	}
	return out
}
