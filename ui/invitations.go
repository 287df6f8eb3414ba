package ui

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"keydesk/app"
	"keydesk/internal/sanitize"
)

type (
	invitationsMsg struct {
		list []app.InvitationView
		err  error
	}
	// inviteDoneMsg is how an invitation sent from the console ended (the
	// Invitations pane's resend, the Employees pane's invite).
	inviteDoneMsg struct {
		what string // "invite", "resend"
		who  string // the email, sanitised
		rs   []app.InviteResult
		err  error
	}
	// resetDoneMsg ends the reset of an authenticator.
	resetDoneMsg struct {
		who string
		err error
	}
	// mailboxMsg is the mailbox, read to show what was sent to someone.
	mailboxMsg struct {
		email string
		msgs  []MailMessage
		err   error
	}
)

const paneInvitations = "Invitations"

// invitationsPane lists each invited employee's newest invitation: its
// state (queued, sent, failed and why, enrolled...), when and until when;
// the selected one's details are in Details.
type invitationsPane struct {
	c             *Common
	width, height int
	focused       bool
	list          []app.InvitationView
	cursor        list
	loaded        bool
	loader        loader
	actions       []Action
}

func newInvitationsPane(c *Common) *invitationsPane {
	p := &invitationsPane{c: c}
	selected := func() (bool, string) { return p.current() != nil, "no invitation selected" }
	svc, ctx, actor := c.Svc, c.Ctx, c.Actor
	p.actions = []Action{
		{Key: key.NewBinding(key.WithKeys("r"), key.WithHelp("r", "resend a new code")), Perm: app.PermInvitationSend, OnItem: true, Priority: 6,
			Confirm: ConfirmAsk, Applies: selected,
			Ask: func() (string, string) {
				v := p.current()
				body := "A new invitation with a new enrollment code goes to " + sanitize.Text(v.Email) + "; the code sent before stops working."
				if v.EnrolledAt != nil {
					body += " They enrolled an authenticator already: enrolling with the new code replaces it."
				}
				return "Send " + sanitize.Text(v.Name) + " a new enrollment code?", body
			},
			Run: func() tea.Cmd {
				v := *p.current()
				return sendInvite(p.c, "resend", v.Employee, v.Email, true)
			}},
		{Key: key.NewBinding(key.WithKeys("x"), key.WithHelp("x", "reset the authenticator")), Perm: app.PermEnrollmentReset, OnItem: true, Priority: 4,
			Confirm: ConfirmDanger,
			Applies: func() (bool, string) {
				v := p.current()
				switch {
				case v == nil:
					return false, "no invitation selected"
				case v.EnrolledAt == nil:
					return false, "no authenticator is enrolled"
				}
				return true, ""
			},
			Ask: func() (string, string) {
				v := p.current()
				return "Reset the authenticator of " + sanitize.Text(v.Name) + "?",
					"Their app's codes stop being asked and accepted; they enroll again with a new invitation (r)."
			},
			Run: func() tea.Cmd {
				id, who := p.current().Employee, sanitize.Text(p.current().Email)
				return func() tea.Msg {
					_, err := svc.ResetEnrollment(ctx, actor, strconv.FormatInt(id, 10))
					return resetDoneMsg{who: who, err: err}
				}
			}},
		{Key: key.NewBinding(key.WithKeys("e"), key.WithHelp("e", "enroll (with the person's code)")), Perm: app.PermEnroll, Priority: 3,
			Run: func() tea.Cmd { return openDialog(newEnroll(p.c)) }},
	}
	if mb := c.mailbox; mb != nil {
		p.actions = append(p.actions, Action{Key: key.NewBinding(key.WithKeys("m"), key.WithHelp("m", "mail sent to them")), Perm: app.PermInvitationSend, OnItem: true, Priority: 2,
			Applies: selected,
			Run: func() tea.Cmd {
				email := p.current().Email
				return func() tea.Msg {
					msgs, err := mb(ctx)
					return mailboxMsg{email: email, msgs: msgs, err: err}
				}
			}})
	}
	return p
}

// sendInvite invites an employee ("invite"), or sends them a new code
// ("resend"), in a command.
func sendInvite(c *Common, what string, employee int64, email string, resend bool) tea.Cmd {
	svc, ctx, actor, who := c.Svc, c.Ctx, c.Actor, sanitize.Text(email)
	doing := "inviting %s…"
	if resend {
		doing = "sending a new code to %s…"
	}
	return tea.Batch(notify(doing, who), func() tea.Msg {
		rs, err := svc.Invite(ctx, actor, []string{strconv.FormatInt(employee, 10)}, resend)
		return inviteDoneMsg{what: what, who: who, rs: rs, err: err}
	})
}

// inviteDone says in one line how an invitation ended.
func inviteDone(c *Common, msg inviteDoneMsg) tea.Cmd {
	var r app.InviteResult
	if len(msg.rs) > 0 {
		r = msg.rs[0]
	}
	switch {
	case r.Error != "":
		return notify("%s: %s", msg.what, firstLine(r.Error))
	case msg.err != nil:
		return notify("%s %s: %s", msg.what, msg.who, firstLine(msg.err.Error()))
	case msg.what == "resend":
		return notify("a new enrollment code goes to %s by email (the old one stops working); it works until %s", msg.who, when(c, r.ExpiresAt))
	}
	return notify("invited %s: the enrollment code goes by email and works until %s", msg.who, when(c, r.ExpiresAt))
}

func (p *invitationsPane) Title() string {
	if !p.loaded {
		return paneInvitations + " (loading…)"
	}
	n := len(p.list)
	if f := p.failed(); f > 0 {
		// The failures stay when the count gives way to the position.
		if t := p.cursor.title(p.width, paneInvitations, fmt.Sprintf("%d, %d failed", n, f), n); strings.Contains(t, "failed") {
			return t
		}
		return p.cursor.title(p.width, paneInvitations, fmt.Sprintf("%d failed", f), n)
	}
	return p.cursor.title(p.width, paneInvitations, "", n)
}

func (p *invitationsPane) Init() tea.Cmd { return p.reload() }
func (p *invitationsPane) Rows() int {
	if len(p.list) == 0 {
		return 1 // a hint, no column header
	}
	return len(p.list) + 1
}
func (p *invitationsPane) Actions() []Action { return p.actions }
func (p *invitationsPane) SetFocused(f bool) { p.focused = f }
func (p *invitationsPane) ItemKind() string  { return "invitation" }

func (p *invitationsPane) SetSize(w, h int) {
	p.width, p.height = w, h
	p.cursor.clamp(len(p.list), p.listRows())
}

// header reports whether the column header is drawn: not when the pane
// has room for one row only (the selected invitation is drawn then).
func (p *invitationsPane) header() bool { return p.height >= 2 }

func (p *invitationsPane) listRows() int {
	if p.header() {
		return p.height - 1
	}
	return max(1, p.height)
}

// failed is how many invitations could not be sent.
func (p *invitationsPane) failed() int {
	n := 0
	for _, v := range p.list {
		if v.State == app.InviteFailed {
			n++
		}
	}
	return n
}

func (p *invitationsPane) reload() tea.Cmd { return p.loader.start(p.load) }

func (p *invitationsPane) load() tea.Cmd {
	svc, ctx, actor := p.c.Svc, p.c.Ctx, p.c.Actor
	return func() tea.Msg {
		l, err := svc.Invitations(ctx, actor)
		return invitationsMsg{list: l, err: err}
	}
}

func (p *invitationsPane) current() *app.InvitationView {
	if len(p.list) == 0 {
		return nil
	}
	p.cursor.clamp(len(p.list), p.listRows())
	return &p.list[p.cursor.cursor]
}

func (p *invitationsPane) Update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case invitationsMsg:
		again := p.loader.done(p.load)
		if msg.err != nil {
			return tea.Batch(again, notify("loading invitations failed: %v", msg.err))
		}
		var was int64
		if v := p.current(); v != nil {
			was = v.Employee
		}
		p.list, p.loaded = msg.list, true
		for i := range p.list {
			if p.list[i].Employee == was {
				p.cursor.cursor = i
			}
		}
		p.cursor.clamp(len(p.list), p.listRows())
		return again
	case inviteDoneMsg:
		if msg.what != "resend" {
			return p.reload() // the Employees pane's: it says how it went
		}
		return tea.Batch(inviteDone(p.c, msg), p.reload())
	case resetDoneMsg:
		if msg.err != nil {
			return notify("reset the authenticator of %s: %s", msg.who, firstLine(msg.err.Error()))
		}
		return tea.Batch(notify("the authenticator of %s is reset: they enroll again with a new invitation", msg.who), p.reload())
	case mailboxMsg:
		return p.showMail(msg)
	case enrollConfirmedMsg:
		if msg.err == nil {
			return p.reload()
		}
	case eventMsg:
		switch e := msg.e.(type) {
		case app.DataChanged:
			if e.What.Has(app.ChangedEmployees) || e.What.Has(app.ChangedAudit) {
				return p.reload()
			}
		case app.EventsLost:
			return p.reload()
		}
	case tea.KeyMsg:
		if d, ok := p.c.Keys.movement(msg, p.listRows()); ok {
			p.cursor.move(d, len(p.list), p.listRows())
		}
	case clickMsg:
		first := 0 // the row of the first invitation
		if p.header() {
			first = 1
		}
		if i := p.cursor.offset + msg.row - first; msg.row >= first && i < len(p.list) {
			p.cursor.cursor = i
		}
	case scrollMsg:
		p.cursor.move(msg.delta, len(p.list), p.listRows())
	}
	return nil
}

// showMail opens the newest message the mailbox holds for the person.
func (p *invitationsPane) showMail(msg mailboxMsg) tea.Cmd {
	who := sanitize.Text(msg.email)
	if msg.err != nil {
		return notify("read the mailbox: %s", firstLine(msg.err.Error()))
	}
	var theirs []MailMessage
	for _, m := range msg.msgs {
		if app.NormalizeEmail(m.To) == app.NormalizeEmail(msg.email) {
			theirs = append(theirs, m)
		}
	}
	if len(theirs) == 0 {
		return notify("no message to %s in the mailbox", who)
	}
	newest := theirs[0]
	for _, m := range theirs[1:] {
		if !m.At.Before(newest.At) {
			newest = m
		}
	}
	return openDialog(newMailDialog(p.c, newest, len(theirs)))
}

func (p *invitationsPane) Selected() Item {
	v := p.current()
	if v == nil {
		return nil
	}
	var can []string
	for _, a := range p.actions {
		if ok, _ := a.applies(); ok && a.OnItem && p.c.Can(a.Perm) {
			can = append(can, a.Key.Help().Desc+" ("+a.Key.Help().Key+")")
		}
	}
	return invitationItem{v: *v, can: can}
}

// invColumns are the widths of the pane's columns (0: not shown).
type invColumns struct{ name, email, state, invited, expires, detail int }

// invitationColumns fits the columns in a content width: the name, the
// state and the expiry always; then, as they fit, the detail (when a row
// has one: why a mail failed), the email and the date invited. What is
// left widens the name and the email, then the detail.
func invitationColumns(cw int, hasDetail bool) invColumns {
	c := invColumns{state: 9, expires: 8}
	rest := cw - 2 - c.state - c.expires - 2 // the mark, the gaps after the name and the state
	c.name = max(1, min(rest, 14))
	rest -= c.name
	take := func(col *int, w int) {
		if rest >= w+1 {
			*col, rest = w, rest-w-1
		}
	}
	if hasDetail {
		take(&c.detail, 20)
	}
	take(&c.email, 16)
	take(&c.invited, 10)
	grow := func(col *int, upto int) {
		if *col > 0 && rest > 0 {
			d := min(rest, upto-*col)
			*col, rest = *col+d, rest-d
		}
	}
	grow(&c.name, 24)
	grow(&c.email, 30)
	grow(&c.detail, 1<<20)
	return c
}

// View draws the column header and the visible invitations.
func (p *invitationsPane) View() string {
	st := p.c.Styles
	hasDetail := false
	for _, v := range p.list {
		hasDetail = hasDetail || v.Detail != ""
	}
	c := invitationColumns(p.width, hasDetail)
	row := func(mark, name, email, state, invited, expires, detail string) string {
		line := mark + fit(name, c.name) + " "
		if c.email > 0 {
			line += fit(email, c.email) + " "
		}
		line += fit(state, c.state) + " "
		if c.invited > 0 {
			line += fit(invited, c.invited) + " "
		}
		line += fit(expires, c.expires)
		if c.detail > 0 {
			line += " " + fit(detail, c.detail)
		}
		return line
	}
	if len(p.list) == 0 {
		hint := "none yet"
		switch {
		case !p.loaded:
			hint = "loading…"
		case p.c.Can(app.PermInvitationSend):
			hint += ": I in Employees invites"
		}
		return block([]string{st.Dim.Render(hint)}, p.width, p.height)
	}
	var lines []string
	if p.header() {
		lines = append(lines, st.Label.Render(row("  ", "NAME", "EMAIL", "STATE", "INVITED", "EXPIRES", "DETAIL")))
	}
	rows := p.listRows()
	p.cursor.clamp(len(p.list), rows)
	now := p.c.Now()
	for i := p.cursor.offset; i < len(p.list) && i < p.cursor.offset+rows; i++ {
		v := p.list[i]
		mark := "  "
		if i == p.cursor.cursor {
			mark = "› "
		}
		expires := "-"
		if live(v.State) || v.State == app.InviteExpired {
			expires = relTime(v.ExpiresAt, now)
		}
		line := row(mark, sanitize.Text(v.Name), sanitize.Text(v.Email), inviteState(st, v.State),
			v.InvitedAt.In(p.c.Location).Format("2006-01-02"), expires, sanitize.Text(firstLine(v.Detail)))
		if i == p.cursor.cursor && p.focused {
			line = st.Selected.Render(fit(ansi.Strip(line), p.width))
		}
		lines = append(lines, line)
	}
	return block(lines, p.width, p.height)
}

// live reports whether an invitation in this state can still be used.
func live(state string) bool {
	switch state {
	case app.InviteQueued, app.InviteRetrying, app.InviteSent:
		return true
	}
	return false
}

// inviteState is an invitation's state, coloured by what it needs.
func inviteState(st Styles, state string) string {
	switch state {
	case app.InviteSent, app.InviteEnrolled:
		return st.OK.Render(state)
	case app.InviteQueued, app.InviteRetrying:
		return st.Warn.Render(state)
	case app.InviteFailed:
		return st.Err.Render(state)
	}
	return st.Dim.Render(state)
}

// when is a moment as the details show it: the date and time here, and
// how long ago or until.
func when(c *Common, t time.Time) string {
	return t.In(c.Location).Format("2006-01-02 15:04") + " (" + relTime(t, c.Now()) + ")"
}

// invitationItem is an invitation as the Details pane describes it, with
// what the operator can do about it now.
type invitationItem struct {
	v   app.InvitationView
	can []string
}

func (i invitationItem) Kind() string { return "invitation" }
func (i invitationItem) ID() string   { return strconv.FormatInt(i.v.Employee, 10) }

func (i invitationItem) DetailLines(c *Common, cw int) []string {
	out := wrapField(c, "Name", sanitize.Text(i.v.Name), cw)
	out = append(out, wrapField(c, "Email", sanitize.Text(i.v.Email), cw)...)
	out = append(out, invitationLines(c, &i.v, cw)...)
	can := "nothing"
	if len(i.can) > 0 {
		can = strings.Join(i.can, ", ")
	}
	return append(append(out, ""), wrapField(c, "You can", c.Styles.Dim.Render(can), cw)...)
}

// invitationLines describe an invitation and the authenticator it
// enrolled (the Details of an invitation, and of an employee).
func invitationLines(c *Common, v *app.InvitationView, cw int) []string {
	var out []string
	add := func(label, value string) { out = append(out, wrapField(c, label, value, cw)...) }
	add("Invite", inviteState(c.Styles, v.State))
	if v.Detail != "" {
		add("Error", sanitize.Text(firstLine(v.Detail)))
	}
	add("Invited", when(c, v.InvitedAt)+" by "+sanitize.Text(v.InvitedBy))
	if live(v.State) || v.State == app.InviteExpired {
		add("Expires", when(c, v.ExpiresAt))
	}
	switch {
	case v.SentAt != nil:
		add("Sent", when(c, *v.SentAt)+", after "+attempts(v.Attempts))
	case v.State == app.InviteFailed:
		add("Sent", "no: given up after "+attempts(v.Attempts))
	case v.State == app.InviteQueued || v.State == app.InviteRetrying:
		add("Sent", "not yet, after "+attempts(v.Attempts))
	}
	if v.EnrolledAt != nil {
		add("Auth app", "authenticator enrolled "+when(c, *v.EnrolledAt))
	} else {
		add("Auth app", c.Styles.Dim.Render("none enrolled"))
	}
	return out
}

func attempts(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return strconv.Itoa(n) + " attempts"
}
