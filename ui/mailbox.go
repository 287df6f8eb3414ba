package ui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"keydesk/internal/sanitize"
)

// mailDialog shows a message the demo's mailbox received: its subject,
// date and text, scrolled when it is longer than the screen.
type mailDialog struct {
	c      *Common
	msg    MailMessage
	of     int // how many messages the mailbox holds for this address
	offset int
	page   int // text lines shown at the last draw
}

func newMailDialog(c *Common, msg MailMessage, of int) *mailDialog {
	return &mailDialog{c: c, msg: msg, of: of}
}

func (d *mailDialog) Init() tea.Cmd { return nil }

func (d *mailDialog) Update(msg tea.Msg) (Dialog, tea.Cmd) {
	k, ok := msg.(tea.KeyMsg)
	if !ok {
		return d, nil
	}
	switch {
	case key.Matches(k, d.c.Keys.Cancel, d.c.Keys.Accept, d.c.Keys.Quit):
		return nil, nil
	}
	if delta, ok := d.c.Keys.movement(k, d.page); ok {
		d.offset += delta // clamped when drawn, for the width it is drawn in
	}
	return d, nil
}

func (d *mailDialog) View(c *Common, width int) string { return d.ViewSized(c, width, 24) }

// ViewSized draws the message in a box that fits width x height: the
// headers, then as much of the text as fits from the scroll position.
func (d *mailDialog) ViewSized(c *Common, width, height int) string {
	w := max(20, min(80, width-4))
	cw := max(10, w-4)
	var text []string
	for _, l := range strings.Split(strings.ReplaceAll(d.msg.Text, "\t", "    "), "\n") {
		text = append(text, strings.Split(ansi.Wrap(sanitize.Text(strings.TrimRight(l, "\r ")), cw, ""), "\n")...)
	}
	for len(text) > 0 && text[len(text)-1] == "" {
		text = text[:len(text)-1]
	}
	field := func(label, value string) string {
		return c.Styles.Label.Render(fmt.Sprintf("%-8s", label)) + " " + ansi.Truncate(value, max(1, cw-9), "…")
	}
	head := []string{
		field("Subject", sanitize.Text(d.msg.Subject)),
		field("To", sanitize.Text(d.msg.To)),
		field("Date", when(c, d.msg.At)),
		"",
	}
	// The box's border and title, the headers, and a line saying where
	// in the text this is.
	d.page = max(3, height-3-len(head)-1)
	d.offset = max(0, min(d.offset, len(text)-d.page))
	shown := text[d.offset:min(len(text), d.offset+d.page)]
	where := fmt.Sprintf("lines %d-%d of %d", d.offset+1, d.offset+len(shown), len(text))
	if len(text) <= d.page {
		where = ""
	}
	title := "Mail to " + sanitize.Text(d.msg.To)
	if d.of > 1 {
		title += fmt.Sprintf(" (the newest of %d)", d.of)
	}
	body := strings.Join(append(head, shown...), "\n")
	if where != "" {
		body += "\n" + c.Styles.Dim.Render(where)
	}
	return c.Styles.Dialog.Width(w - 2).Render(c.Styles.DialogTitle.Render(ansi.Truncate(title, cw, "…")) + "\n" + body)
}

func (d *mailDialog) Help(c *Common) []key.Binding {
	return []key.Binding{
		key.NewBinding(key.WithKeys("down"), key.WithHelp("↑/↓ pgup/pgdn", "scroll")),
		key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "close")),
	}
}
