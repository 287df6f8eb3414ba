package ui

import (
	"fmt"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"
)

// list is a scrolling cursor over n items, of which height are visible:
// panes draw only the rows from offset to offset+height. Its title says
// where it stands (position).
type list struct {
	cursor int
	offset int
	height int // the rows visible, as of the last clamp
}

// clamp keeps the cursor on an item and in view.
func (l *list) clamp(n, height int) {
	height = max(1, height)
	l.height = height
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

// position says where the cursor stands among n items, and whether items
// are hidden above (▲) or below (▼) the visible rows: "12/294 ▲▼" ("" for
// an empty list).
func (l *list) position(n int) string {
	if n <= 0 {
		return ""
	}
	c := *l
	c.clamp(n, max(1, l.height))
	return fmt.Sprintf("%d/%d", c.cursor+1, n) + scrollMarks(c.offset, n, c.height)
}

// title is the title of a pane showing a list of n items: its name, a
// note in brackets, and where the list stands (see paneTitle).
func (l *list) title(width int, name, note string, n int) string {
	return paneTitle(width, name, note, l.position(n))
}

// scrollPosition says where a view without a cursor (height lines of n,
// from offset) stands: its first and last visible lines and the marks,
// "11-20/57 ▲▼" ("" when it is empty).
func scrollPosition(offset, n, height int) string {
	if n <= 0 {
		return ""
	}
	height = max(1, height)
	offset = max(0, min(offset, n-height))
	return fmt.Sprintf("%d-%d/%d", offset+1, min(n, offset+height), n) + scrollMarks(offset, n, height)
}

func scrollMarks(offset, n, height int) string {
	switch up, down := offset > 0, offset+height < n; {
	case up && down:
		return " ▲▼"
	case up:
		return " ▲"
	case down:
		return " ▼"
	}
	return ""
}

// paneTitle is a pane's title, "Employees (3 of 294) 2/3 ▼": the name, the
// note in brackets, and the position. The note gives way when the title
// would not fit a pane whose content is width cells wide (the border
// draws the title with a mark and a space around it); with neither a note
// nor a position the title counts nothing: "Keys (0)".
func paneTitle(width int, name, note, pos string) string {
	t := name
	if note == "" && pos == "" {
		note = "0"
	}
	if note != "" {
		t += " (" + note + ")"
	}
	if pos == "" {
		return t
	}
	if width > 0 && ansi.StringWidth(t+" "+pos) > width-2 {
		return name + " " + pos
	}
	return t + " " + pos
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
