package ui

import (
	"github.com/charmbracelet/bubbles/key"
)

// KeyMap holds every key binding of the console. Bindings are data: the
// footer and the help screen are generated from them, so they never drift
// from what the keys do.
type KeyMap struct {
	NextPane   key.Binding
	PrevPane   key.Binding
	Up         key.Binding
	Down       key.Binding
	Top        key.Binding
	Bottom     key.Binding
	PageUp     key.Binding
	PageDown   key.Binding
	Filter     key.Binding
	ClearInput key.Binding
	Accept     key.Binding
	Details    key.Binding
	Sync       key.Binding
	SyncAll    key.Binding
	Apply      key.Binding
	Help       key.Binding
	Quit       key.Binding
	ForceQuit  key.Binding
	Yes        key.Binding
	No         key.Binding

	KeyAssign     key.Binding
	KeyRenew      key.Binding
	KeyActivate   key.Binding
	KeySuspend    key.Binding
	KeyUnlock     key.Binding
	KeyWithdraw   key.Binding
	KeyCompromise key.Binding
	SimNew        key.Binding
	SimPlug       key.Binding
}

// DefaultKeyMap is the console's key bindings.
func DefaultKeyMap() KeyMap {
	return KeyMap{
		NextPane:   key.NewBinding(key.WithKeys("tab"), key.WithHelp("tab", "next pane")),
		PrevPane:   key.NewBinding(key.WithKeys("shift+tab"), key.WithHelp("shift+tab", "previous pane")),
		Up:         key.NewBinding(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
		Down:       key.NewBinding(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
		Top:        key.NewBinding(key.WithKeys("g", "home"), key.WithHelp("g", "first")),
		Bottom:     key.NewBinding(key.WithKeys("G", "end"), key.WithHelp("G", "last")),
		PageUp:     key.NewBinding(key.WithKeys("pgup", "ctrl+b"), key.WithHelp("pgup", "page up")),
		PageDown:   key.NewBinding(key.WithKeys("pgdown", "ctrl+f"), key.WithHelp("pgdn", "page down")),
		Filter:     key.NewBinding(key.WithKeys("/"), key.WithHelp("/", "filter")),
		ClearInput: key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "clear filter")),
		Accept:     key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "keep filter")),
		Details:    key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "details")),
		Sync:       key.NewBinding(key.WithKeys("s"), key.WithHelp("s", "sync domain")),
		SyncAll:    key.NewBinding(key.WithKeys("S"), key.WithHelp("S", "sync all")),
		Apply:      key.NewBinding(key.WithKeys("a"), key.WithHelp("a", "apply held removals")),
		Help:       key.NewBinding(key.WithKeys("?"), key.WithHelp("?", "help")),
		Quit:       key.NewBinding(key.WithKeys("q"), key.WithHelp("q", "quit")),
		ForceQuit:  key.NewBinding(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c", "quit now")),
		Yes:        key.NewBinding(key.WithKeys("y", "Y"), key.WithHelp("y", "yes")),
		No:         key.NewBinding(key.WithKeys("n", "N", "esc"), key.WithHelp("n/esc", "no")),

		KeyAssign:     key.NewBinding(key.WithKeys("a"), key.WithHelp("a", "assign to the selected employee")),
		KeyRenew:      key.NewBinding(key.WithKeys("c"), key.WithHelp("c", "new activation code")),
		KeyActivate:   key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "activate (plugged in)")),
		KeySuspend:    key.NewBinding(key.WithKeys("z"), key.WithHelp("z", "suspend")),
		KeyUnlock:     key.NewBinding(key.WithKeys("u"), key.WithHelp("u", "unlock")),
		KeyWithdraw:   key.NewBinding(key.WithKeys("w"), key.WithHelp("w", "withdraw")),
		KeyCompromise: key.NewBinding(key.WithKeys("x"), key.WithHelp("x", "lost/stolen/broken")),
		SimNew:        key.NewBinding(key.WithKeys("n"), key.WithHelp("n", "new simulated key")),
		SimPlug:       key.NewBinding(key.WithKeys("p"), key.WithHelp("p", "plug simulated key in/out")),
	}
}

// helpGroup is a titled set of bindings for the help screen.
type helpGroup struct {
	Title    string
	Bindings []key.Binding
}

// fullHelp lists every binding, grouped, for the help screen.
func (k KeyMap) fullHelp() []helpGroup {
	return []helpGroup{
		{"Everywhere", []key.Binding{k.NextPane, k.PrevPane, k.Filter, k.SyncAll, k.Help, k.Quit, k.ForceQuit}},
		{"Lists", []key.Binding{k.Up, k.Down, k.Top, k.Bottom, k.PageUp, k.PageDown}},
		{"Domains", []key.Binding{k.Sync, k.Apply}},
		{"Employees", []key.Binding{k.Details}},
		{"Keys", []key.Binding{k.KeyAssign, k.KeyRenew, k.KeyActivate, k.KeySuspend, k.KeyUnlock, k.KeyWithdraw, k.KeyCompromise, k.SimNew, k.SimPlug}},
		{"Filter", []key.Binding{k.ClearInput, k.Accept}},
	}
}
