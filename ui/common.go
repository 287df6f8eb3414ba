package ui

import (
	"context"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"keydesk/app"
)

// Common is what every component of one console shares: the application
// layer and who uses it, the styles of this terminal, the clock, the key
// bindings, and the items selected in the panes. It is built once per
// console (per SSH session) and passed down; nothing in ui is global.
type Common struct {
	Ctx      context.Context
	Svc      *app.Service
	Actor    app.Actor
	Styles   Styles
	Keys     KeyMap
	Now      func() time.Time
	Location *time.Location
	Label    string // shown in the header, e.g. "demo"

	// mailbox reads the messages a demo's local mail server received (nil:
	// there is none, and the console offers no way to read mail).
	mailbox func(ctx context.Context) ([]MailMessage, error)
	// about are lines the help screen ends with (the demo's folders).
	about []string

	// selected holds each kind's selected item (the selected employee is
	// who a key is assigned to); detail is the item the Details pane shows,
	// the selection of the last focused pane that has one. The root model
	// sets both after every update, on the UI goroutine.
	selected map[string]Item
	detail   Item
}

// Can reports whether the operator may do what needs p ("" = anyone). The
// console uses it to offer only what the role allows; the application layer
// checks again.
func (c *Common) Can(p app.Permission) bool {
	if p == "" {
		return true
	}
	if c.Svc == nil {
		return c.Actor.Role.Has(p)
	}
	return c.Svc.Can(c.Actor, p)
}

// Selected is the selected item of a kind (nil when none).
func (c *Common) Selected(kind string) Item { return c.selected[kind] }

// Item is something a pane lists and the Details pane can describe: a
// domain, an employee, a key.
type Item interface {
	Kind() string // "domain", "employee", "key"
	ID() string   // stable across reloads
	// DetailLines describe the item in lines of at most width cells.
	DetailLines(c *Common, width int) []string
}

// Messages that components send to the root model.
type (
	// noticeMsg puts a short message in the footer.
	noticeMsg struct{ text string }
	// openDialogMsg opens a dialog; ifIdle drops it when the operator is
	// in the middle of something else (a dialog, typing a filter).
	openDialogMsg struct {
		d      Dialog
		ifIdle bool
	}
	// eventMsg is an event of the application layer.
	eventMsg struct{ e app.Event }
	// tickMsg is the console's second.
	tickMsg time.Time
)

func notify(format string, args ...any) tea.Cmd {
	text := sprintf(format, args...)
	return func() tea.Msg { return noticeMsg{text} }
}

func openDialog(d Dialog) tea.Cmd { return func() tea.Msg { return openDialogMsg{d: d} } }
