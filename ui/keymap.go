package ui

import (
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
)

// KeyMap holds the bindings that mean the same everywhere: moving between
// panes and in lists, the global actions, and the keys of inputs and
// dialogs. Each pane's own keys are in its action table.
type KeyMap struct {
	NextPane  key.Binding
	PrevPane  key.Binding
	Up        key.Binding
	Down      key.Binding
	Top       key.Binding
	Bottom    key.Binding
	PageUp    key.Binding
	PageDown  key.Binding
	Filter    key.Binding
	Sync      key.Binding
	SyncAll   key.Binding
	Help      key.Binding
	Quit      key.Binding
	ForceQuit key.Binding

	Cancel key.Binding // leave an input or a dialog
	Accept key.Binding // submit an input
	Yes    key.Binding
	No     key.Binding
}

// DefaultKeyMap is the console's common bindings.
func DefaultKeyMap() KeyMap {
	return KeyMap{
		NextPane:  key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "next pane")),
		PrevPane:  key.NewBinding(key.WithKeys("shift+tab"), key.WithHelp("shift+tab", "previous pane")),
		Up:        key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
		Down:      key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
		Top:       key.NewBinding(key.WithKeys("g", "home"), key.WithHelp("g", "first")),
		Bottom:    key.NewBinding(key.WithKeys("G", "end"), key.WithHelp("G", "last")),
		PageUp:    key.NewBinding(key.WithKeys("pgup", "ctrl+b"), key.WithHelp("pgup", "page up")),
		PageDown:  key.NewBinding(key.WithKeys("pgdown", "ctrl+f"), key.WithHelp("pgdn", "page down")),
		Filter:    key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter employees")),
		Sync:      key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "sync the selected domain")),
		SyncAll:   key.NewBinding(key.WithKeys("S"), key.WithHelp("S", "sync all")),
		Help:      key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "help")),
		Quit:      key.NewBinding(key.WithKeys("q"), key.WithHelp("q", "quit")),
		ForceQuit: key.NewBinding(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c", "quit now")),

		Cancel: key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "cancel")),
		Accept: key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "submit")),
		Yes:    key.NewBinding(key.WithKeys("y", "Y"), key.WithHelp("y", "yes")),
		No:     key.NewBinding(key.WithKeys("n", "N", "esc"), key.WithHelp("n/esc", "no")),
	}
}

// listKeys are the movement keys every list understands, for the help
// screen.
func (k KeyMap) listKeys() []key.Binding {
	return []key.Binding{k.Up, k.Down, k.Top, k.Bottom, k.PageUp, k.PageDown}
}

// movement turns a movement key into a number of rows for a list whose
// page is page rows (0, false for any other key).
func (k KeyMap) movement(m tea.KeyMsg, page int) (int, bool) {
	switch {
	case key.Matches(m, k.Up):
		return -1, true
	case key.Matches(m, k.Down):
		return 1, true
	case key.Matches(m, k.PageUp):
		return -max(1, page-1), true
	case key.Matches(m, k.PageDown):
		return max(1, page-1), true
	case key.Matches(m, k.Top):
		return -1 << 30, true
	case key.Matches(m, k.Bottom):
		return 1 << 30, true
	}
	return 0, false
}
