package ui

import (
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"keydesk/app"
)

// slot places a pane in the layout: its column, how its height is found,
// and the permission without which the pane is not shown at all.
type slot struct {
	pane Pane
	name string // for focusMsg; the title may carry counts
	col  int    // 0 left, 1 right
	size sizing
	perm app.Permission
}

// sizing says how tall a pane is: fitted to its rows (at most fit), a share
// of the column in percent, or (neither) the rest of the column.
type sizing struct{ fit, share int }

// minRest is the least height left to the pane that takes the rest of a
// column before the fitted panes give way.
const minRest = 6

// rect is where a pane is drawn, in body coordinates (below the header).
type rect struct{ x, y, w, h int }

func (r rect) contains(x, y int) bool { return x >= r.x && x < r.x+r.w && y >= r.y && y < r.y+r.h }

// manager owns the panes' layout, focus and mouse: keys go to the focused
// pane, the mouse to the pane under it, every other message to all panes.
// It draws each pane's border and title; panes draw only their content.
type manager struct {
	c             *Common
	slots         []slot // the panes this operator sees, in tab order
	rects         []rect
	focus         int
	width, height int
}

func newManager(c *Common, slots []slot, focus string) *manager {
	m := &manager{c: c}
	for _, s := range slots {
		if c.Can(s.perm) {
			m.slots = append(m.slots, s)
		}
	}
	m.rects = make([]rect, len(m.slots))
	m.focusName(focus)
	return m
}

func (m *manager) Init() tea.Cmd {
	cmds := make([]tea.Cmd, len(m.slots))
	for i, s := range m.slots {
		cmds[i] = s.pane.Init()
	}
	return tea.Batch(cmds...)
}

// focused is the pane with the focus.
func (m *manager) focused() Pane { return m.slots[m.focus].pane }

func (m *manager) focusedName() string { return m.slots[m.focus].name }

func (m *manager) setFocus(i int) {
	m.slots[m.focus].pane.SetFocused(false)
	m.focus = (i + len(m.slots)) % len(m.slots)
	m.slots[m.focus].pane.SetFocused(true)
}

// focusName focuses the pane of that name; false when it is not shown.
func (m *manager) focusName(name string) bool {
	for i, s := range m.slots {
		if s.name == name {
			m.setFocus(i)
			return true
		}
	}
	return false
}

func (m *manager) next() { m.setFocus(m.focus + 1) }
func (m *manager) prev() { m.setFocus(m.focus - 1) }

// pane finds a shown pane by name.
func (m *manager) pane(name string) Pane {
	for _, s := range m.slots {
		if s.name == name {
			return s.pane
		}
	}
	return nil
}

// SetSize lays the panes out in a body of w x h cells.
func (m *manager) SetSize(w, h int) {
	m.width, m.height = w, h
	m.layout()
}

// layout computes every pane's rectangle and tells each its content size.
// It runs after every update: a pane fitted to its rows grows and shrinks
// with them.
func (m *manager) layout() {
	leftW := max(40, m.width*55/100)
	if leftW > m.width-20 {
		leftW = m.width / 2
	}
	cols := [2][]int{}
	for i, s := range m.slots {
		cols[s.col] = append(cols[s.col], i)
	}
	if len(cols[1]) == 0 {
		leftW = m.width
	}
	for c, idx := range cols {
		x, w := 0, leftW
		if c == 1 {
			x, w = leftW, m.width-leftW
		}
		hs := m.heights(idx)
		y := 0
		for j, i := range idx {
			m.rects[i] = rect{x: x, y: y, w: w, h: hs[j]}
			m.slots[i].pane.SetSize(max(0, w-4), max(0, hs[j]-2))
			y += hs[j]
		}
	}
}

// heights shares the body's height among a column's panes: fitted and
// shared panes first (fitted ones give way so that minRest remains), the
// first pane without a size (or the last one) takes the rest.
func (m *manager) heights(idx []int) []int {
	hs := make([]int, len(idx))
	rest := -1
	for j, i := range idx {
		if s := m.slots[i].size; s.fit == 0 && s.share == 0 && rest < 0 {
			rest = j
		}
	}
	if rest < 0 {
		rest = len(idx) - 1
	}
	used := 0
	for j, i := range idx {
		if j == rest {
			continue
		}
		switch s := m.slots[i].size; {
		case s.fit > 0:
			hs[j] = min(max(m.slots[i].pane.Rows(), 1), s.fit) + 2
			if m.height-used-hs[j] < minRest {
				hs[j] = max(3, m.height-used-minRest)
			}
		default:
			hs[j] = m.height * s.share / 100
		}
		used += hs[j]
	}
	hs[rest] = max(0, m.height-used)
	return hs
}

// Update routes a message: keys to the focused pane, the mouse to the pane
// under it (which it focuses), anything else to every pane.
func (m *manager) Update(msg tea.Msg) tea.Cmd {
	var cmd tea.Cmd
	switch msg := msg.(type) {
	case tea.KeyMsg:
		cmd = m.focused().Update(msg)
	case tea.MouseMsg:
		cmd = m.mouse(msg)
	default:
		cmds := make([]tea.Cmd, len(m.slots))
		for i, s := range m.slots {
			cmds[i] = s.pane.Update(msg)
		}
		cmd = tea.Batch(cmds...)
	}
	m.layout()
	return cmd
}

func (m *manager) mouse(msg tea.MouseMsg) tea.Cmd {
	for i, r := range m.rects {
		if !r.contains(msg.X, msg.Y) {
			continue
		}
		switch {
		case msg.Button == tea.MouseButtonWheelUp:
			m.setFocus(i)
			return m.slots[i].pane.Update(scrollMsg{-3})
		case msg.Button == tea.MouseButtonWheelDown:
			m.setFocus(i)
			return m.slots[i].pane.Update(scrollMsg{3})
		case msg.Button == tea.MouseButtonLeft && msg.Action == tea.MouseActionPress:
			m.setFocus(i)
			return m.slots[i].pane.Update(clickMsg{msg.Y - r.y - 1})
		}
		return nil
	}
	return nil
}

// View draws every pane in its border, the columns side by side.
func (m *manager) View() string {
	lines := make([]string, m.height)
	for i, s := range m.slots {
		r := m.rects[i]
		for j, l := range strings.Split(frame(m.c.Styles, s.pane.Title(), i == m.focus, s.pane.View(), r.w, r.h), "\n") {
			if y := r.y + j; y < len(lines) && r.h > 0 {
				lines[y] += l
			}
		}
	}
	return strings.Join(lines, "\n")
}
