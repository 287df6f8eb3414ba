package ui

import (
	"encoding/base64"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"keydesk/internal/sanitize"
)

// Copying: y puts the selected item's main identifier (an employee's email,
// a key's serial, an account, an audit entry's target) on the clipboard of
// the operator's terminal with OSC 52, which the terminal itself carries
// out: it works over SSH, with no clipboard on the machine KeyDesk runs on.
// The sequence is written with the frame that says "copied …" (in front of
// the footer line), so it never lands in the middle of another escape
// sequence the renderer writes.

// clipboard is a copy waiting to be written: the OSC 52 sequence, with the
// message that announces it (the sequence goes out with that message only).
type clipboard struct {
	seq, msg string
	n        int // copies so far: each ends differently, so a repeat is written again
}

// osc52 is the sequence that sets the terminal's clipboard to text. Odd
// copies end with BEL, even ones with ST (both end an OSC), so that the
// same text copied twice makes a new line the renderer writes again.
func osc52(text string, n int) string {
	end := "\a"
	if n%2 == 0 {
		end = "\x1b\\"
	}
	return "\x1b]52;c;" + base64.StdEncoding.EncodeToString([]byte(text)) + end
}

// copyable is an item that says itself what y copies of it, and what to
// call it in the message.
type copyable interface {
	CopyText() (what, text string)
}

// copyText is what y copies of an item: its main identifier, and what to
// call it ("" when the item has none).
func copyText(it Item) (what, text string) {
	switch it := it.(type) {
	case nil:
		return "", ""
	case copyable:
		return it.CopyText()
	case keyItem:
		return "serial", it.k.Serial
	case employeeItem:
		if it.r.email != "" {
			return "email", it.r.email
		}
		if it.r.dn != "" {
			return "DN", it.r.dn
		}
		return "name", it.r.name
	case rotationItem:
		return "account", it.a.Account
	case invitationItem:
		return "email", it.v.Email
	case domainItem:
		return "domain", it.d.Name
	case auditItem:
		return "target", targetID(it.e.Target)
	}
	return "", it.ID()
}

// copied is the item y copies: the focused pane's selection, or what the
// Details pane shows when it has the focus.
func (m *Model) copied() Item {
	if sel, ok := m.mgr.focused().(selector); ok {
		return sel.Selected()
	}
	return m.c.detail
}

// copyAction is the global y: copy the selected item's identifier.
func (m *Model) copyAction() Action {
	return Action{Key: key.NewBinding(key.WithKeys("y"), key.WithHelp("y", "copy")), Priority: 1,
		Applies: func() (bool, string) {
			_, text := copyText(m.copied())
			return text != "", "nothing selected to copy"
		},
		Run: func() tea.Cmd {
			what, text := copyText(m.copied())
			// What is copied is what the console shows: no control
			// character of the directory's reaches the clipboard.
			text = sanitize.Text(text)
			m.clip.n++
			if what != "" {
				what += " "
			}
			m.say("copied %s%s", what, text)
			m.clip.seq, m.clip.msg = osc52(text, m.clip.n), m.message
			return nil
		}}
}

// clipSeq is the sequence to write with the footer: the waiting copy's,
// while its message shows.
func (m *Model) clipSeq() string {
	if m.clip.seq != "" && m.message != "" && m.message == m.clip.msg {
		return m.clip.seq
	}
	return ""
}
