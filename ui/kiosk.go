package ui

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"keydesk/app"
	"keydesk/internal/sanitize"
	keylife "keydesk/keys"
)

// DefaultKioskIdle is how long a kiosk screen waits for the person before
// it returns to the start.
const DefaultKioskIdle = 60 * time.Second

// kioskDone is how long the kiosk shows how things ended before it returns
// to the start by itself.
const kioskDone = 10 * time.Second

// KioskOptions configure a kiosk.
type KioskOptions struct {
	Actor    app.Actor
	Renderer *lipgloss.Renderer
	NoColor  bool
	Now      func() time.Time
	Context  context.Context
	// Places are where the keys this kiosk serves are plugged in (default
	// this machine).
	Places []string
	// Idle returns the kiosk to the start after this long without a key
	// press (default DefaultKioskIdle).
	Idle time.Duration
	// ExitCode is the operator's code that leaves the kiosk (compared as a
	// hash; "" means the kiosk cannot be left but by stopping its process).
	ExitCode string
	// ExitHash is the SHA-256 of the exit code, when only that is known
	// (a remote kiosk sends it, never the code).
	ExitHash []byte
	// NoEvents turns off following the service's events (tests).
	NoEvents bool
}

// Kiosk is the locked-down screen of a kiosk: "plug in your key", then,
// for the key plugged in here only, its activation with the code or the
// person's own password change; without a key, the enrollment of an
// authenticator app with the code of an invitation. It shows nothing
// about anyone else, returns to the start after inactivity and after each
// person, and cannot be left without the operator's exit code (ctrl+x).
type Kiosk struct {
	c         *Common
	idle      time.Duration
	exitHash  [32]byte
	hasExit   bool
	events    <-chan app.Event
	unsub     func()
	width     int
	height    int
	serial    string // the key plugged in now ("" at the start)
	screen    Dialog // the key's screen (activation, password change)
	outcome   string // how the last person's visit ended, shown until reset
	outcomeAt time.Time
	lastInput time.Time
	exit      *textinput.Model // the exit prompt, when open
	problem   string
	exitKey   key.Binding
	enrollKey key.Binding
	places    []string // where the keys it serves are plugged in
}

// NewKiosk builds a kiosk over the service.
func NewKiosk(svc *app.Service, o KioskOptions) *Kiosk {
	opts := Options{Actor: o.Actor, Renderer: o.Renderer, NoColor: o.NoColor, Now: o.Now, Context: o.Context, Places: o.Places, Label: "kiosk"}
	c := newCommon(svc, &opts)
	k := &Kiosk{c: c, idle: o.Idle, places: opts.Places, exitKey: key.NewBinding(key.WithKeys("ctrl+x"), key.WithHelp("ctrl+x", "operator: leave the kiosk")),
		enrollKey: key.NewBinding(key.WithKeys("e", "E"), key.WithHelp("e", "enroll an authenticator app"))}
	if k.idle <= 0 {
		k.idle = DefaultKioskIdle
	}
	switch {
	case o.ExitCode != "":
		k.exitHash, k.hasExit = sha256.Sum256([]byte(o.ExitCode)), true
	case len(o.ExitHash) == len(k.exitHash):
		copy(k.exitHash[:], o.ExitHash)
		k.hasExit = true
	}
	if !o.NoEvents && svc != nil {
		k.events, k.unsub = svc.Subscribe(app.SubscribeOptions{Places: opts.Places})
	}
	k.lastInput = c.Now()
	return k
}

// Close ends the kiosk's event subscription.
func (k *Kiosk) Close() {
	if k.unsub != nil {
		k.unsub()
	}
}

// kioskStartMsg is the key already plugged in when the kiosk starts.
type kioskStartMsg struct{ plugged app.KeyPlugged }

// Init starts listening for keys plugged in here, and serves a key that
// already is.
func (k *Kiosk) Init() tea.Cmd {
	cmds := []tea.Cmd{tick()}
	if k.events != nil {
		cmds = append(cmds, waitEvent(k.events))
	}
	if svc := k.c.Svc; svc != nil {
		ctx, actor, places := k.c.Ctx, k.c.Actor, k.places
		cmds = append(cmds, func() tea.Msg {
			var plugged []string
			for _, p := range places {
				plugged = append(plugged, svc.PluggedAt(p)...)
			}
			if len(plugged) != 1 {
				return nil
			}
			v, err := svc.KeyAtHand(ctx, actor, plugged[0])
			if err != nil {
				return nil
			}
			return kioskStartMsg{app.KeyPlugged{Serial: v.Serial, PluggedIn: true, Status: v.Status}}
		})
	}
	return tea.Batch(cmds...)
}

// reset returns to the start screen.
func (k *Kiosk) reset() {
	k.serial, k.screen, k.exit, k.problem = "", nil, nil, ""
}

// Update handles the keys, the events and the clock.
func (k *Kiosk) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		k.width, k.height = msg.Width, msg.Height
		return k, nil
	case tickMsg:
		now := k.c.Now()
		if k.screen != nil && now.Sub(k.lastInput) > k.idle {
			k.outcome, k.outcomeAt = "The screen was left alone: it is back at the start.", now
			if k.serial != "" {
				k.outcome += " Plug your key in again to carry on."
			}
			k.reset()
		}
		if k.outcome != "" && now.Sub(k.outcomeAt) > kioskDone && k.screen == nil {
			k.outcome = ""
		}
		return k, tick()
	case eventMsg:
		cmd := k.event(msg.e)
		if k.events != nil {
			cmd = tea.Batch(cmd, waitEvent(k.events))
		}
		return k, cmd
	case eventsDoneMsg:
		k.events = nil
		return k, nil
	case kioskStartMsg:
		if k.serial != "" {
			return k, nil // a key plugged in meanwhile was served already
		}
		return k, k.event(msg.plugged)
	case noticeMsg:
		// How the key's screen ended (it closed itself).
		k.outcome, k.outcomeAt = msg.text, k.c.Now()
		return k, nil
	case tea.KeyMsg:
		k.lastInput = k.c.Now()
		if k.exit != nil {
			return k, k.exitPrompt(msg)
		}
		if key.Matches(msg, k.exitKey) {
			in := newTextInput("› ", "exit code", 64, 24)
			in.EchoMode, in.EchoCharacter = textinput.EchoPassword, '•'
			k.exit, k.problem = &in, ""
			return k, in.Focus()
		}
		if k.screen == nil {
			if key.Matches(msg, k.enrollKey) && k.c.Can(app.PermEnroll) {
				// Enrollment needs no key: the code of the invitation
				// says whom it is for.
				k.screen, k.outcome, k.problem = newEnroll(k.c), "", ""
				return k, k.screen.Init()
			}
			return k, nil // nothing else to type into; quit keys do nothing here
		}
	}
	if k.screen == nil {
		return k, nil
	}
	var cmd tea.Cmd
	k.screen, cmd = k.screen.Update(msg)
	if k.screen == nil {
		k.outcomeAt = k.c.Now()
	}
	return k, cmd
}

// exitPrompt takes the exit code: the right one leaves the kiosk.
func (k *Kiosk) exitPrompt(msg tea.KeyMsg) tea.Cmd {
	switch {
	case key.Matches(msg, k.c.Keys.Cancel):
		k.exit = nil
		return nil
	case key.Matches(msg, k.c.Keys.Accept):
		sum := sha256.Sum256([]byte(k.exit.Value()))
		if k.hasExit && subtle.ConstantTimeCompare(sum[:], k.exitHash[:]) == 1 {
			return tea.Quit
		}
		k.exit, k.problem = nil, "wrong exit code"
		return nil
	}
	var cmd tea.Cmd
	*k.exit, cmd = k.exit.Update(msg)
	return cmd
}

// event opens the screen of a key plugged in here, and closes it when the
// key is pulled out.
func (k *Kiosk) event(e app.Event) tea.Cmd {
	p, ok := e.(app.KeyPlugged)
	if !ok {
		return nil
	}
	if !p.PluggedIn {
		if p.Serial == k.serial {
			k.reset()
		}
		return nil
	}
	k.reset()
	k.serial, k.outcome, k.lastInput = p.Serial, "", k.c.Now()
	shown := sanitize.Text(p.Serial)
	switch keylife.Status(p.Status) {
	case keylife.StatusReserved:
		k.screen = newActivation(k.c, p.Serial)
	case keylife.StatusActive:
		k.screen = newOwnPassword(k.c, p.Serial)
	case "":
		k.outcome, k.outcomeAt = "This key could not be read: unplug it and try again, or see the helpdesk.", k.c.Now()
		return nil
	default:
		k.outcome, k.outcomeAt = fmt.Sprintf("Key %s is %s: please see the helpdesk.", shown, keyStatusWords(p.Status, "")), k.c.Now()
		return nil
	}
	return k.screen.Init()
}

// View draws the kiosk: the key's screen, or the start.
func (k *Kiosk) View() string {
	w, h := max(k.width, 40), max(k.height, 12)
	st := k.c.Styles
	var body string
	switch {
	case k.exit != nil:
		body = dialogBox(k.c, w, "Leave the kiosk", false, "The operator's exit code:", k.exit.View())
	case k.screen != nil:
		body = viewDialog(k.screen, k.c, w, h-1)
	default:
		parts := []string{"Plug in your key.", st.Dim.Render("Activate a new key with the code you were given, or change your password.")}
		if k.c.Can(app.PermEnroll) {
			parts = append(parts, "e: enroll an authenticator app (with the code from your invitation email)")
		}
		if k.outcome != "" {
			parts = append(parts, sanitize.Text(k.outcome))
		}
		if k.problem != "" {
			parts = append(parts, st.Err.Render(k.problem))
		}
		body = dialogBox(k.c, w, "KeyDesk", false, parts...)
	}
	var help []string
	if k.screen != nil && k.exit == nil {
		for _, b := range k.screen.Help(k.c) {
			help = append(help, b.Help().Key+" "+b.Help().Desc)
		}
	}
	footer := st.Dim.Render(fit(" "+strings.Join(help, " · "), w))
	return lipgloss.Place(w, h-1, lipgloss.Center, lipgloss.Center, body) + "\n" + footer
}
