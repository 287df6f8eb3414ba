package ui

import (
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"keydesk/app"
)

// Pane is one pane of the console: a component that loads its own data,
// knows its keys (its action table) and draws its content in the size the
// pane manager gives it. The manager draws the border and the title, owns
// focus and layout, and sends a pane the keys only while it has the focus;
// every other message goes to every pane.
type Pane interface {
	// Title is shown in the border; it also names the pane (focusMsg).
	Title() string
	// Init starts loading the pane's data.
	Init() tea.Cmd
	// Update handles a message: a key (when focused), a clickMsg or
	// scrollMsg (when the mouse is over it), anything else always.
	Update(msg tea.Msg) tea.Cmd
	// View draws the content, exactly the size last set.
	View() string
	// SetSize sets the content size (inside the border).
	SetSize(width, height int)
	// SetFocused tells the pane whether it has the focus.
	SetFocused(bool)
	// Rows is how many content rows the pane would like (its layout slot
	// may fit the pane to them).
	Rows() int
	// Actions is the pane's action table.
	Actions() []Action
}

// Optional pane interfaces.
type (
	// selector is a pane with a selected item (nil when its list is
	// empty) of one kind.
	selector interface {
		Selected() Item
		ItemKind() string
	}
	// capturer is a pane that takes every key while the operator types
	// into it (the employee filter), with the keys to say so.
	capturer interface {
		Capturing() bool
		CaptureHelp() []key.Binding
	}
	// busy is a pane that knows about work that quitting would cut off.
	busy interface{ Busy() bool }
	// statusLine is a pane that has something to say in the header.
	statusLine interface{ Status() string }
)

// Mouse messages for the pane under the mouse.
type (
	// clickMsg is a left click on a content row (0 is the first).
	clickMsg struct{ row int }
	// scrollMsg is the wheel: delta rows.
	scrollMsg struct{ delta int }
)

// Confirm is how an action is confirmed before it runs.
type Confirm int

// The confirmations.
const (
	ConfirmNone   Confirm = iota // runs at once
	ConfirmAsk                   // y/n
	ConfirmDanger                // y/n, marked dangerous (k9s's red)
)

// Action is one row of a pane's action table: the key and its help, the
// permission it needs, whether it applies to the selected item now, how it
// is confirmed and what it runs. The footer, the help screen and what a
// role is offered are all generated from these tables.
type Action struct {
	Key  key.Binding
	Perm app.Permission // "" = anyone using the console
	// Applies says whether the action applies now (to the selected item);
	// when it does not, why says why, in a few words (nil = always).
	Applies func() (ok bool, why string)
	Confirm Confirm
	// Ask is the confirmation's title and text for the selected item.
	Ask func() (title, body string)
	// Run makes the action's command for the item selected now: it reads
	// what it needs at once and does the I/O in the command, never here. A
	// confirmed action's command is made when the question is asked.
	Run func() tea.Cmd
	// Focus, instead of Run, moves the focus to the pane of that name.
	Focus string
	// Priority orders what the footer keeps when it is too narrow: higher
	// stays longer.
	Priority int
	// Hidden keeps the action out of the footer (still in the help).
	Hidden bool
	// OnItem marks an action on the selected item (the Details pane lists
	// those that apply to it).
	OnItem bool
}

func (a Action) applies() (bool, string) {
	if a.Applies == nil {
		return true, ""
	}
	return a.Applies()
}

// matching finds the action a key press means in a table.
func matching(actions []Action, msg tea.KeyMsg) (Action, bool) {
	for _, a := range actions {
		if key.Matches(msg, a.Key) {
			return a, true
		}
	}
	return Action{}, false
}
