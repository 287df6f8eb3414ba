package ui

import (
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
)

type dialogKind int

const (
	dialogQuit dialogKind = iota
	dialogApplyRemovals
)

// dialog asks for a confirmation; destructive actions always go through one.
type dialog struct {
	kind   dialogKind
	title  string
	body   string
	domain string
	danger bool
}

func (m Model) handleDialogKey(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	d := m.dialog
	switch {
	case key.Matches(msg, m.keys.Yes):
		m.dialog = nil
		switch d.kind {
		case dialogQuit:
			m.quitting = true
			return m, tea.Quit
		case dialogApplyRemovals:
			m.pendingSyncs++
			m.say("applying held removals in %s…", d.domain)
			return m, m.syncCmd([]string{d.domain}, true)
		}
	case key.Matches(msg, m.keys.No):
		m.dialog = nil
		m.say("cancelled")
	}
	return m, nil
}

func (m Model) viewDialog(w, h int) string {
	d := m.dialog
	width := min(64, w-4)
	title := m.styles.DialogTitle.Render(d.title)
	if d.danger {
		title = m.styles.Err.Render("! ") + title
	}
	body := m.styles.r.NewStyle().Width(width - 4).Render(d.body)
	keys := m.styles.FooterKey.Render("y") + " yes   " + m.styles.FooterKey.Render("n/esc") + " no"
	box := m.styles.Dialog.Width(width - 2).Render(title + "\n\n" + body + "\n\n" + keys)
	return m.styles.r.Place(w, h, lipgloss.Center, lipgloss.Center, box)
}
