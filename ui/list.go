package ui

import tea "github.com/charmbracelet/bubbletea"

// list is a scrolling cursor over n items, of which height are visible:
// panes draw only the rows from offset to offset+height.
type list struct {
	cursor int
	offset int
}

// clamp keeps the cursor on an item and in view.
func (l *list) clamp(n, height int) {
	height = max(1, height)
	l.cursor = max(0, min(l.cursor, n-1))
	if l.offset > l.cursor {
		l.offset = l.cursor
	}
	if l.cursor >= l.offset+height {
		l.offset = l.cursor - height + 1
	}
	l.offset = max(0, min(l.offset, n-height))
}

// move moves the cursor by delta items (clamped).
func (l *list) move(delta, n, height int) {
	l.cursor = max(0, min(l.cursor+clampDelta(delta, n), n-1))
	l.clamp(n, height)
}

// scroll moves a view without a cursor by delta lines over n lines, of which
// height are visible.
func scroll(offset, delta, n, height int) int {
	return max(0, min(offset+clampDelta(delta, 1<<20), n-height))
}

func clampDelta(d, n int) int { return max(-n, min(d, n)) }

// loader runs one load of a pane's data at a time: a reload asked for
// while one runs happens once, after it, so an older answer never lands
// after a newer one and a burst of changes costs two loads, not one each.
type loader struct{ running, again bool }

// start returns the load's command, or nil when a load is running (it
// runs again when that one is done).
func (l *loader) start(load func() tea.Cmd) tea.Cmd {
	if l.running {
		l.again = true
		return nil
	}
	l.running = true
	return load()
}

// done notes that an answer arrived and returns the reload asked for
// meanwhile, if any.
func (l *loader) done(load func() tea.Cmd) tea.Cmd {
	l.running = false
	if l.again {
		l.again = false
		return l.start(load)
	}
	return nil
}
