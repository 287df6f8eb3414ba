package ui

import (
	tea "github.com/charmbracelet/bubbletea"
)

// detailsPane describes the item selected in the last focused pane that has
// a selection: an employee with their accounts, a key, a domain, an audit
// entry.
type detailsPane struct {
	c             *Common
	width, height int
	focused       bool
	shown         string // kind and id of the item the offset belongs to
	offset        int
}

func newDetailsPane(c *Common) *detailsPane { return &detailsPane{c: c} }

func (p *detailsPane) Title() string     { return paneDetails }
func (p *detailsPane) Init() tea.Cmd     { return nil }
func (p *detailsPane) Rows() int         { return len(p.lines()) }
func (p *detailsPane) Actions() []Action { return nil }
func (p *detailsPane) SetFocused(f bool) { p.focused = f }
func (p *detailsPane) SetSize(w, h int)  { p.width, p.height = w, h }

func (p *detailsPane) lines() []string {
	it := p.c.detail
	if it == nil {
		return []string{p.c.Styles.Dim.Render("select an employee, a key, a domain or an activity entry")}
	}
	if id := it.Kind() + ":" + it.ID(); id != p.shown {
		p.shown, p.offset = id, 0 // a new item starts at its top
	}
	return it.DetailLines(p.c, p.width)
}

func (p *detailsPane) Update(msg tea.Msg) tea.Cmd {
	delta := 0
	switch msg := msg.(type) {
	case tea.KeyMsg:
		d, ok := p.c.Keys.movement(msg, p.height)
		if !ok {
			return nil
		}
		delta = d
	case scrollMsg:
		delta = msg.delta
	default:
		return nil
	}
	p.offset = scroll(p.offset, delta, len(p.lines()), p.height)
	return nil
}

func (p *detailsPane) View() string {
	lines := p.lines()
	p.offset = max(0, min(p.offset, len(lines)-p.height))
	return block(lines[p.offset:], p.width, p.height)
}
