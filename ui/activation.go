package ui

import (
	"errors"
	"fmt"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"

	"keydesk/app"
	"keydesk/internal/sanitize"
	keylife "keydesk/keys"
)

type (
	// activationKeyMsg is the key the activation screen is for, loaded.
	activationKeyMsg struct {
		k   app.KeyView
		err error
	}
	// activationDoneMsg ends an activation attempt.
	activationDoneMsg struct {
		serial string
		res    app.ActivationResult
		err    error
	}
)

// Activation is the on-site activation screen: the employee types the code
// of the Reserved key plugged in here. A wrong code is answered in the
// screen with the attempts left. In the console it is a dialog; a kiosk can
// show it on its own, as the whole screen.
type Activation struct {
	c       *Common
	serial  string
	owner   string     // "" until the key is loaded
	expires *time.Time // when the key's code expires, once loaded
	input   textinput.Model
	problem string
	busy    bool
	// over: the attempt cannot go on (the key locked): the screen shows why
	// until it is closed.
	over bool
}

// newActivation opens the activation screen for a key.
func newActivation(c *Common, serial string) *Activation {
	in := newTextInput("› ", "123 456", 7, 12)
	in.EchoMode = textinput.EchoPassword
	in.EchoCharacter = '•'
	return &Activation{c: c, serial: serial, input: in}
}

// Init loads the key and focuses the code field.
func (a *Activation) Init() tea.Cmd {
	svc, ctx, actor, serial := a.c.Svc, a.c.Ctx, a.c.Actor, a.serial
	return tea.Batch(a.input.Focus(), func() tea.Msg {
		k, err := svc.KeyAtHand(ctx, actor, serial)
		return activationKeyMsg{k: k, err: err}
	})
}

// Update takes the code (digits only) and runs the activation.
func (a *Activation) Update(msg tea.Msg) (Dialog, tea.Cmd) {
	shown := sanitize.Text(a.serial)
	switch msg := msg.(type) {
	case activationKeyMsg:
		switch {
		case msg.err != nil:
			return nil, notify("activate key %s: %s", shown, userError(msg.err))
		case msg.k.Serial != a.serial:
			return a, nil
		case msg.k.Status != string(keylife.StatusReserved):
			return nil, notify("key %s is %s: only a reserved key is activated", shown, keyStatusWords(msg.k.Status, msg.k.Reason))
		case !msg.k.PluggedIn:
			return nil, notify("plug key %s in to activate it", shown)
		}
		a.owner, a.expires = sanitize.Text(msg.k.Owner), msg.k.CodeExpiresAt
		return a, nil
	case activationDoneMsg:
		if msg.serial != a.serial {
			return a, nil
		}
		a.busy = false
		if msg.err == nil {
			return nil, notify("key %s is active%s", shown, passwordsSummary(msg.res.Passwords))
		}
		a.problem = activationProblem(shown, msg.res, msg.err)
		a.input.SetValue("")
		if msg.res.Locked || errors.Is(msg.err, app.ErrKeyLocked) {
			a.over = true
			a.input.Blur()
		}
		return a, nil
	case tea.KeyMsg:
		if a.busy {
			return a, nil
		}
		switch {
		case a.over:
			if key.Matches(msg, a.c.Keys.Cancel, a.c.Keys.Accept) {
				return nil, nil
			}
			return a, nil
		case key.Matches(msg, a.c.Keys.Cancel):
			return nil, notify("activation of key %s cancelled", shown)
		case key.Matches(msg, a.c.Keys.Accept):
			return a, a.submit()
		case msg.Type == tea.KeyRunes && !digitsOnly(msg.Runes):
			// The code is digits (and the space some people type in
			// the middle); a letter is refused, whole, here.
			a.problem = "the code is 6 digits: letters are not part of it"
			return a, nil
		case msg.Type == tea.KeySpace, msg.Type == tea.KeyRunes:
		case msg.Type != tea.KeyBackspace && msg.Type != tea.KeyDelete && msg.Type != tea.KeyLeft && msg.Type != tea.KeyRight &&
			msg.Type != tea.KeyHome && msg.Type != tea.KeyEnd && msg.Type != tea.KeyCtrlU:
			return a, nil // no other key edits the code
		}
		var cmd tea.Cmd
		a.input, cmd = a.input.Update(msg)
		a.problem = ""
		return a, cmd
	}
	var cmd tea.Cmd
	a.input, cmd = a.input.Update(msg)
	return a, cmd
}

func (a *Activation) submit() tea.Cmd {
	v := a.input.Value()
	if _, err := keylife.ParseCode(v); err != nil {
		a.problem = "the code is 6 digits, e.g. 482 913"
		return nil
	}
	a.busy, a.problem = true, ""
	svc, ctx, actor, serial := a.c.Svc, a.c.Ctx, a.c.Actor, a.serial
	return func() tea.Msg {
		res, err := svc.ActivateKey(ctx, actor, serial, v)
		return activationDoneMsg{serial: serial, res: res, err: err}
	}
}

// View draws the screen's box.
func (a *Activation) View(c *Common, width int) string {
	title := "Activate key " + sanitize.Text(a.serial)
	if a.owner != "" {
		title += " for " + a.owner
	}
	text := "Enter the 6-digit activation code the admin gave you. Three wrong codes lock the key."
	if a.expires != nil {
		if a.expires.After(c.Now()) {
			text += " The code expires " + timeWords(*a.expires, c.Now()) + "."
		} else {
			text += " The code expired " + timeWords(*a.expires, c.Now()) + ": ask for a new one."
		}
	}
	parts := []string{text, a.input.View()}
	if a.over {
		parts = parts[:1]
	}
	switch {
	case a.busy:
		parts = append(parts, c.Styles.Dim.Render("activating…"))
	case a.problem != "":
		parts = append(parts, c.Styles.Err.Render(sanitize.Text(a.problem)))
	}
	return dialogBox(c, width, title, false, parts...)
}

// Help is the screen's footer.
func (a *Activation) Help(c *Common) []key.Binding {
	switch {
	case a.busy:
		return []key.Binding{workingKey}
	case a.over:
		return []key.Binding{closeKey}
	}
	return []key.Binding{key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "activate")), c.Keys.Cancel}
}

// activationProblem is why an activation attempt failed, in one line for
// the person at the key.
func activationProblem(shown string, res app.ActivationResult, err error) string {
	switch {
	case res.Locked || errors.Is(err, app.ErrKeyLocked):
		return fmt.Sprintf("wrong code: key %s is now locked; an operator must unlock it, with a new code", shown)
	case errors.Is(err, app.ErrWrongCode):
		return fmt.Sprintf("wrong code for key %s: %s left", shown, count(res.Left, "attempt"))
	case errors.Is(err, app.ErrCodeExpired):
		return "this code has expired: ask an operator for a new one"
	case errors.Is(err, app.ErrNotPluggedIn):
		return fmt.Sprintf("key %s is not plugged in: plug it in and try again", shown)
	}
	return userError(err)
}

// passwordsSummary says in a few words how the activation's first
// passwords went.
func passwordsSummary(rs []app.ChangeResult) string {
	if len(rs) == 0 {
		return ""
	}
	done := 0
	var other string
	for _, r := range rs {
		switch {
		case r.Done():
			done++
		case r.Err != "":
			other = sanitize.Text(r.Account) + ": " + firstLine(r.Err)
		case r.Waiting != "":
			other = sanitize.Text(r.Account) + " waits for " + firstLine(r.Waiting)
		}
	}
	s := fmt.Sprintf("; %d of %d domain passwords set on it", done, len(rs))
	if other != "" {
		s += " (" + other + ")"
	}
	return s
}
