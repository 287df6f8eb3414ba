package ui

import (
	"fmt"
	"sort"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"keydesk/app"
	"keydesk/internal/sanitize"
)

type rotationsMsg struct {
	rep app.RotationReport
	err error
}

// rotationOpMsg is how a rotation started from the pane ended.
type rotationOpMsg struct {
	what string
	rs   []app.ChangeResult
	err  error
}

// rotationPane shows each managed account's password: last changed, next
// due, what waits for a key, what failed and why; the recent changes are in
// the selected account's details.
type rotationPane struct {
	c             *Common
	width, height int
	focused       bool
	rep           app.RotationReport
	list          list
	loader        loader
	actions       []Action
}

const paneRotation = "Rotation"

func newRotationPane(c *Common) *rotationPane {
	p := &rotationPane{c: c}
	p.actions = []Action{
		{Key: key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "rotate now")), Perm: app.PermPasswordRotate, Priority: 6, OnItem: true,
			Confirm: ConfirmAsk,
			Applies: func() (bool, string) {
				a := p.current()
				if a == nil {
					return false, "no managed account"
				}
				if a.State == app.RotationNoKey {
					return false, "no active key"
				}
				return true, ""
			},
			Ask: func() (string, string) {
				a := p.current()
				return "Rotate the password of " + sanitize.Text(a.Account) + " now?",
					"A new generated password goes onto key " + sanitize.Text(a.Key) + " and into AD. If the key is not plugged in, the rotation waits for it (or, where the domain rotates and holds, AD changes now and the password is held for the key)."
			},
			Run: func() tea.Cmd {
				a := *p.current()
				svc, ctx, actor := p.c.Svc, p.c.Ctx, p.c.Actor
				return tea.Batch(notify("rotating %s…", sanitize.Text(a.Account)), func() tea.Msg {
					rs, err := svc.RotatePasswords(ctx, actor, a.Employee, a.Domain)
					return rotationOpMsg{what: "rotate " + a.Account, rs: rs, err: err}
				})
			}},
		{Key: key.NewBinding(key.WithKeys("R"), key.WithHelp("R", "rotate all due")), Perm: app.PermPasswordRotate, Priority: 3,
			Confirm: ConfirmAsk,
			Applies: func() (bool, string) {
				if p.dueCount() == 0 {
					return false, "nothing is due"
				}
				return true, ""
			},
			Ask: func() (string, string) {
				return fmt.Sprintf("Rotate the %d due passwords now?", p.dueCount()),
					"As the scheduler does: each gets a new password on its key and in AD; those whose key is away wait for it."
			},
			Run: func() tea.Cmd {
				svc, ctx, actor := p.c.Svc, p.c.Ctx, p.c.Actor
				return tea.Batch(notify("rotating what is due…"), func() tea.Msg {
					rs, err := svc.RotateDue(ctx, actor, "")
					return rotationOpMsg{what: "rotate what is due", rs: rs, err: err}
				})
			}},
	}
	return p
}

func (p *rotationPane) Title() string {
	note := ""
	if n := p.dueCount(); n > 0 {
		note = fmt.Sprintf("%d due", n)
	}
	return p.list.title(p.width, paneRotation, note, len(p.rep.Accounts))
}
func (p *rotationPane) Init() tea.Cmd     { return p.reload() }
func (p *rotationPane) Rows() int         { return max(len(p.rep.Accounts), 1) }
func (p *rotationPane) Actions() []Action { return p.actions }
func (p *rotationPane) SetFocused(f bool) { p.focused = f }
func (p *rotationPane) ItemKind() string  { return "rotation" }

func (p *rotationPane) SetSize(w, h int) {
	p.width, p.height = w, h
	p.list.clamp(len(p.rep.Accounts), h)
}

// dueCount is how many accounts are due now or wait for their key.
func (p *rotationPane) dueCount() int {
	n := 0
	for _, a := range p.rep.Accounts {
		switch a.State {
		case app.RotationDue, app.RotationWaitingKey, app.RotationHeld, app.RotationFailed, app.RotationRetrying:
			n++
		}
	}
	return n
}

func (p *rotationPane) reload() tea.Cmd { return p.loader.start(p.load) }

func (p *rotationPane) load() tea.Cmd {
	svc, ctx, actor := p.c.Svc, p.c.Ctx, p.c.Actor
	return func() tea.Msg {
		rep, err := svc.Rotations(ctx, actor)
		return rotationsMsg{rep: rep, err: err}
	}
}

func (p *rotationPane) current() *app.AccountRotation {
	if len(p.rep.Accounts) == 0 {
		return nil
	}
	p.list.clamp(len(p.rep.Accounts), p.height)
	return &p.rep.Accounts[p.list.cursor]
}

func (p *rotationPane) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case rotationsMsg:
		again := p.loader.done(p.load)
		if msg.err != nil {
			return tea.Batch(again, notify("loading rotations failed: %v", msg.err))
		}
		var was string
		if a := p.current(); a != nil {
			was = a.Account
		}
		p.rep = msg.rep
		// What needs attention first: failed, then due or waiting, then
		// under way, then the rest.
		sort.SliceStable(p.rep.Accounts, func(i, j int) bool {
			return stateRank(p.rep.Accounts[i].State) < stateRank(p.rep.Accounts[j].State)
		})
		for i := range p.rep.Accounts {
			if p.rep.Accounts[i].Account == was {
				p.list.cursor = i
			}
		}
		p.list.clamp(len(p.rep.Accounts), p.height)
		return again
	case rotationOpMsg:
		return tea.Batch(p.opDone(msg), p.reload())
	case eventMsg:
		switch e := msg.e.(type) {
		case app.DataChanged:
			if e.What.Has(app.ChangedPasswords) || e.What.Has(app.ChangedKeys) {
				return p.reload()
			}
		case app.EventsLost:
			return p.reload()
		}
	case tea.KeyMsg:
		if d, ok := p.c.Keys.movement(msg, p.height); ok {
			p.list.move(d, len(p.rep.Accounts), p.height)
		}
	case clickMsg:
		if i := p.list.offset + msg.row; msg.row >= 0 && i < len(p.rep.Accounts) {
			p.list.cursor = i
		}
	case scrollMsg:
		p.list.move(msg.delta, len(p.rep.Accounts), p.height)
	}
	return nil
}

// opDone says in one line how a rotation ended.
func (p *rotationPane) opDone(msg rotationOpMsg) tea.Cmd {
	done, waiting := 0, 0
	for _, r := range msg.rs {
		switch {
		case r.Done():
			done++
		case r.Waiting != "":
			waiting++
		}
	}
	switch {
	case msg.err != nil:
		return notify("%s: %s", sanitize.Text(msg.what), firstLine(msg.err.Error()))
	case len(msg.rs) == 0:
		return notify("%s: nothing to do", sanitize.Text(msg.what))
	case waiting > 0:
		return notify("%s: %d done, %d waiting (%s)", sanitize.Text(msg.what), done, waiting, firstLine(msg.rs[0].Waiting))
	}
	return notify("%s: %d done: the new password is on the key and in AD", sanitize.Text(msg.what), done)
}

func (p *rotationPane) Selected() Item {
	if a := p.current(); a != nil {
		return rotationItem{a: *a, recent: p.rep.Recent}
	}
	return nil
}

func (p *rotationPane) View() string {
	st := p.c.Styles
	if len(p.rep.Accounts) == 0 {
		return block([]string{st.Dim.Render("no managed accounts: members of a domain's password group appear here after a sync")}, p.width, p.height)
	}
	p.list.clamp(len(p.rep.Accounts), p.height)
	now := p.c.Now()
	var out []string
	for i := p.list.offset; i < len(p.rep.Accounts) && len(out) < p.height; i++ {
		a := p.rep.Accounts[i]
		mark := "  "
		if i == p.list.cursor {
			mark = "› "
		}
		line := fmt.Sprintf("%s%-20s %s", mark, sanitize.Text(a.Account), rotationState(st, a, now))
		if i == p.list.cursor && p.focused {
			line = st.Selected.Render(fit(ansi.Strip(line), p.width))
		}
		out = append(out, line)
	}
	return block(out, p.width, p.height)
}

// stateRank orders the states by how much they need attention.
func stateRank(state string) int {
	switch state {
	case app.RotationFailed, app.RotationRetrying:
		return 0
	case app.RotationDue, app.RotationWaitingKey, app.RotationHeld:
		return 1
	case app.RotationUnderWay:
		return 2
	case app.RotationOK:
		return 3
	}
	return 4
}

// rotationState is an account's state in a few words, as people say it.
func rotationState(st Styles, a app.AccountRotation, now time.Time) string {
	since := ""
	if a.Since != nil {
		since = " " + relTime(*a.Since, now)
	}
	switch a.State {
	case app.RotationOK:
		return st.OK.Render("● ok") + st.Dim.Render(" · due "+relTime(a.NextDue, now))
	case app.RotationDue:
		return st.Warn.Render("◐ due")
	case app.RotationWaitingKey:
		return st.Warn.Render("◐ due, waiting for key"+since) + " " + sanitize.Text(a.Key)
	case app.RotationHeld:
		return st.Warn.Render("◐ held for key"+since) + " " + sanitize.Text(a.Key)
	case app.RotationUnderWay:
		return st.Warn.Render("⟳ under way") + " " + sanitize.Text(a.Detail)
	case app.RotationRetrying:
		return st.Err.Render("⟳ retrying") + " " + sanitize.Text(firstLine(a.Detail))
	case app.RotationFailed:
		return st.Err.Render("✗ failed"+since) + " " + sanitize.Text(firstLine(a.Detail))
	}
	return st.Dim.Render("○ " + a.State)
}

// rotationItem is a managed account as the Details pane describes it.
type rotationItem struct {
	a      app.AccountRotation
	recent []app.ChangeView
}

func (r rotationItem) Kind() string { return "rotation" }
func (r rotationItem) ID() string   { return r.a.Account }

func (r rotationItem) DetailLines(c *Common, cw int) []string {
	a, now := r.a, c.Now()
	var out []string
	add := func(label, value string) { out = append(out, wrapField(c, label, value, cw)...) }
	add("Account", sanitize.Text(a.Account))
	add("Employee", sanitize.Text(a.Employee))
	if a.Key != "" {
		add("Key", sanitize.Text(a.Key)+" "+keyStatusWords(a.KeyStatus, ""))
	}
	out = append(out, passwordLines(c, &a, cw)...)
	var mine []string
	for _, ch := range r.recent {
		if ch.Account == a.Account && len(mine) < 8 {
			line := fmt.Sprintf("%s %s %s by %s", relTime(ch.Updated, now), ch.Kind, ch.Step, ch.Actor)
			if ch.Error != "" {
				line += ": " + firstLine(ch.Error)
			}
			mine = append(mine, sanitize.Text(line))
		}
	}
	if len(mine) > 0 {
		out = append(out, "", c.Styles.Label.Render("Recent changes"))
		out = append(out, mine...)
	}
	return out
}

// passwordLines describe where an account's password stands (the Details
// of a rotation, and of an employee's managed account).
func passwordLines(c *Common, a *app.AccountRotation, cw int) []string {
	now, st := c.Now(), c.Styles
	var out []string
	add := func(label, value string) { out = append(out, wrapField(c, label, value, cw)...) }
	changed := "never by KeyDesk"
	if a.Changed != nil {
		changed = relTime(*a.Changed, now)
	}
	add("Changed", changed)
	if a.State != app.RotationNoKey {
		due := "now"
		if a.NextDue.After(now) {
			due = relTime(a.NextDue, now)
		}
		add("Next due", due+" ("+a.DueWhy+")")
	}
	state := a.State
	switch a.State {
	case app.RotationFailed, app.RotationRetrying:
		state = st.Err.Render(state)
	case app.RotationWaitingKey, app.RotationHeld, app.RotationDue:
		state = st.Warn.Render(state)
	case app.RotationOK:
		state = st.OK.Render(state)
	}
	if a.Since != nil {
		state += " since " + relTime(*a.Since, now)
	}
	add("Rotation", state)
	if a.Detail != "" {
		add("", sanitize.Text(a.Detail))
	}
	return out
}
