package ui

import (
	"errors"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"

	"keydesk/app"
	"keydesk/enroll"
	"keydesk/internal/sanitize"
)

// ownPasswordDoneMsg ends a self-service change.
type ownPasswordDoneMsg struct {
	serial string
	r      app.ChangeResult
	err    error
}

// OwnPassword is the key screen's self-service password change: the person
// at their plugged-in Active key changes their own password, on the key
// only (they type the password AD already has) or on the key and in AD,
// proving who they are with the key's PIN or, when it has none, their
// current password, and, when they enrolled an authenticator app, its
// current code. The secrets are masked (the app's code, used once, is
// not); a refusal shows in the screen.
type OwnPassword struct {
	c       *Common
	serial  string
	on      string // app.SelfKeyOnly or app.SelfBoth
	fields  [4]textinput.Model
	focus   int
	problem string
	busy    bool
	toggle  key.Binding
	next    key.Binding
}

// The fields of the screen.
const (
	fieldPIN = iota
	fieldCurrent
	fieldTOTP
	fieldNew
)

func newOwnPassword(c *Common, serial string) *OwnPassword {
	d := &OwnPassword{c: c, serial: serial, on: app.SelfKeyOnly,
		toggle: key.NewBinding(key.WithKeys("ctrl+t"), key.WithHelp("ctrl+t", "key only / key and AD")),
		next:   key.NewBinding(key.WithKeys("tab", "down"), key.WithHelp("tab", "next field"))}
	for i, ph := range []string{"the key's PIN (empty if it has none)", "your current password (if the key has no PIN)", "6 digits, if you enrolled an app", ""} {
		in := newTextInput("› ", ph, 128, 36)
		in.EchoMode, in.EchoCharacter = textinput.EchoPassword, '•'
		d.fields[i] = in
	}
	d.fields[fieldTOTP].EchoMode, d.fields[fieldTOTP].CharLimit = textinput.EchoNormal, 7
	d.setPlaceholder()
	return d
}

func (d *OwnPassword) setPlaceholder() {
	if d.on == app.SelfKeyOnly {
		d.fields[fieldNew].Placeholder = "the password AD has now"
	} else {
		d.fields[fieldNew].Placeholder = "your new password"
	}
}

func (d *OwnPassword) Init() tea.Cmd { return d.fields[d.focus].Focus() }

func (d *OwnPassword) Update(msg tea.Msg) (Dialog, tea.Cmd) {
	shown := sanitize.Text(d.serial)
	switch msg := msg.(type) {
	case ownPasswordDoneMsg:
		if msg.serial != d.serial {
			return d, nil
		}
		d.busy = false
		if msg.err == nil {
			where := "on the key"
			if d.on == app.SelfBoth {
				where = "on the key and in AD"
			}
			return nil, notify("%s: the new password is %s", sanitize.Text(msg.r.Account), where)
		}
		d.problem = userError(msg.err)
		if errors.Is(msg.err, app.ErrNeedAuthenticator) || errors.Is(msg.err, enroll.ErrWrongTOTP) || errors.Is(msg.err, enroll.ErrReusedTOTP) {
			d.fields[fieldTOTP].SetValue("")
			return d, d.focusOn(fieldTOTP)
		}
		return d, nil
	case tea.KeyMsg:
		if d.busy {
			return d, nil
		}
		switch {
		case key.Matches(msg, d.c.Keys.Cancel):
			return nil, notify("password change at key %s cancelled", shown)
		case key.Matches(msg, d.toggle):
			d.on = map[string]string{app.SelfKeyOnly: app.SelfBoth, app.SelfBoth: app.SelfKeyOnly}[d.on]
			d.setPlaceholder()
			return d, nil
		case key.Matches(msg, d.next):
			return d, d.focusOn((d.focus + 1) % len(d.fields))
		case key.Matches(msg, d.c.Keys.Accept):
			if d.focus < fieldNew {
				return d, d.focusOn(d.focus + 1)
			}
			return d, d.submit()
		case d.focus == fieldTOTP && msg.Type == tea.KeyRunes && !digitsOnly(msg.Runes):
			d.problem = "the authenticator's code is 6 digits"
			return d, nil
		}
		var cmd tea.Cmd
		d.fields[d.focus], cmd = d.fields[d.focus].Update(msg)
		d.problem = ""
		return d, cmd
	}
	var cmd tea.Cmd
	d.fields[d.focus], cmd = d.fields[d.focus].Update(msg)
	return d, cmd
}

func (d *OwnPassword) focusOn(i int) tea.Cmd {
	d.fields[d.focus].Blur()
	d.focus = i
	return d.fields[i].Focus()
}

func (d *OwnPassword) submit() tea.Cmd {
	req := app.SelfChange{Serial: d.serial, On: d.on, PIN: d.fields[fieldPIN].Value(), Current: d.fields[fieldCurrent].Value(), New: d.fields[fieldNew].Value(),
		TOTP: strings.ReplaceAll(d.fields[fieldTOTP].Value(), " ", "")}
	switch {
	case req.PIN == "" && req.Current == "":
		d.problem = "enter the key's PIN, or your current password if the key has no PIN"
		return nil
	case req.New == "":
		d.problem = "enter the new password"
		return nil
	}
	d.busy, d.problem = true, ""
	svc, ctx, actor := d.c.Svc, d.c.Ctx, d.c.Actor
	return func() tea.Msg {
		r, err := svc.ChangeOwnPassword(ctx, actor, req)
		return ownPasswordDoneMsg{serial: req.Serial, r: r, err: err}
	}
}

func (d *OwnPassword) View(c *Common, width int) string {
	st := c.Styles
	mode := "On the key only: type the password AD already has (changed at a workstation); KeyDesk checks it with AD first."
	if d.on == app.SelfBoth {
		mode = "On the key and in AD: your new password, as your own change (the domain's history and minimum age apply)."
	}
	parts := []string{mode,
		st.Label.Render("Key PIN") + "\n" + d.fields[fieldPIN].View(),
		st.Label.Render("or current password") + "\n" + d.fields[fieldCurrent].View(),
		st.Label.Render("Authenticator code (if you enrolled one)") + "\n" + d.fields[fieldTOTP].View(),
		st.Label.Render("New password") + "\n" + d.fields[fieldNew].View()}
	switch {
	case d.busy:
		parts = append(parts, st.Dim.Render("changing…"))
	case d.problem != "":
		parts = append(parts, st.Err.Render(sanitize.Text(d.problem)))
	}
	return dialogBox(c, width, "Change your password at key "+sanitize.Text(d.serial), false, parts...)
}

func (d *OwnPassword) Help(c *Common) []key.Binding {
	return []key.Binding{d.next, d.toggle, key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "next / change")), c.Keys.Cancel}
}
