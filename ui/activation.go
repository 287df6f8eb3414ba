package ui

import (
	"errors"
	"fmt"

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
	owner   string // "" until the key is loaded
	input   textinput.Model
	problem string
	busy    bool
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
			return nil, notify("activate %s: %s", shown, firstLine(msg.err.Error()))
		case msg.k.Serial != a.serial:
			return a, nil
		case msg.k.Status != string(keylife.StatusReserved):
			return nil, notify("key %s is %s: only a reserved key is activated", shown, msg.k.Status)
		case !msg.k.PluggedIn:
			return nil, notify("plug key %s in to activate it", shown)
		}
		a.owner = sanitize.Text(msg.k.Owner)
		return a, nil
	case activationDoneMsg:
		if msg.serial != a.serial {
			return a, nil
		}
		a.busy = false
		switch {
		case msg.err == nil:
			return nil, notify("key %s is active%s", shown, passwordsSummary(msg.res.Passwords))
		case errors.Is(msg.err, app.ErrWrongCode):
			a.problem = fmt.Sprintf("wrong code for key %s: %d attempts left", shown, msg.res.Left)
			a.input.SetValue("")
			return a, nil
		case msg.res.Locked:
			return nil, notify("key %s: %s", shown, firstLine(msg.err.Error()))
		}
		a.problem = firstLine(msg.err.Error())
		return a, nil
	case tea.KeyMsg:
		if a.busy {
			return a, nil
		}
		switch {
		case key.Matches(msg, a.c.Keys.Cancel):
			return nil, notify("activation of key %s cancelled", shown)
		case key.Matches(msg, a.c.Keys.Accept):
			return a, a.submit()
		case msg.Type == tea.KeyRunes:
			for _, r := range msg.Runes {
				if (r < '0' || r > '9') && r != ' ' {
					a.problem = "the code is 6 digits"
					return a, nil
				}
			}
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
	parts := []string{"Enter the 6-digit activation code the admin gave you. Three wrong codes lock the key.", a.input.View()}
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
	return []key.Binding{key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "activate")), c.Keys.Cancel}
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
