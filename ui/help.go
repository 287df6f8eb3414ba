package ui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/x/ansi"

	"keydesk/internal/sanitize"
)

// wrapLines breaks lines wider than w at spaces (a word wider than w is
// cut), indenting the rest as the line was; nothing is lost.
func wrapLines(lines []string, w int) []string {
	var out []string
	for _, l := range lines {
		for ansi.StringWidth(l) > w && w > 10 {
			cut := strings.LastIndex(ansi.Truncate(l, w, ""), " ")
			if cut <= 0 {
				cut = len(ansi.Truncate(l, w, ""))
			}
			// A key's description goes on under itself; a note, two in.
			cont := 2
			if indent := len(l) - len(strings.TrimLeft(l, " ")); indent > 0 {
				cont = min(indent+13, w/2)
			}
			out = append(out, l[:cut])
			l = strings.Repeat(" ", cont) + strings.TrimLeft(l[cut:], " ")
		}
		out = append(out, l)
	}
	return out
}

// footerItem is one hint of the footer.
type footerItem struct {
	b        key.Binding
	priority int
}

// mustShow is the priority of the hints the footer never drops (? help,
// q quit).
const mustShow = 100

// footer is the message of the moment, or the keys that work now: the
// focused pane's actions that this operator may run and that apply to the
// selected item, then the global keys. When the line is too narrow the least
// important hints go first; ? help and q quit always stay, and no hint is
// ever cut in half.
//
// A copy (y) waiting to reach the terminal's clipboard is written in front
// of the message that says so (clipboard.go).
func (m *Model) footer() string {
	st := m.c.Styles
	if m.cmd != nil && m.dialog == nil {
		return m.cmdLineView()
	}
	if m.message != "" {
		return m.clipSeq() + st.Message.Render(fit(" "+sanitize.Text(m.message), m.width))
	}
	var items []footerItem
	// The keys of a dialog, of an input: in their order, the first the
	// most important.
	inOrder := func(bs []key.Binding) {
		for i, b := range bs {
			items = append(items, footerItem{b, mustShow - 1 - i})
		}
	}
	switch {
	case m.dialog != nil:
		inOrder(m.dialog.Help(m.c))
	case m.showHelp:
		items = []footerItem{{key.NewBinding(key.WithKeys("?"), key.WithHelp("?/esc", "close help")), mustShow}}
	case m.capturing() != nil:
		inOrder(m.capturing().CaptureHelp())
	default:
		items = append(m.offered(m.mgr.focused().Actions(), true), m.offered(m.global, false)...)
		// In a pane that filters itself, / says what it filters there.
		if f, ok := m.mgr.focused().(ownFilter); ok {
			for i, it := range items {
				if it.b.Help().Key == m.c.Keys.Filter.Help().Key {
					items[i].b = f.FilterHelp()
				}
			}
		}
	}
	return fit(" "+m.renderHints(items, m.width-1), m.width)
}

// offered are the actions of a table the footer offers now.
func (m *Model) offered(actions []Action, pane bool) []footerItem {
	var out []footerItem
	for _, a := range actions {
		if a.Hidden || !m.c.Can(a.Perm) {
			continue
		}
		if ok, _ := a.applies(); !ok {
			continue
		}
		out = append(out, footerItem{a.Key, a.Priority})
	}
	return out
}

// renderHints joins hints, dropping the least important until they fit in
// width cells. Only ? help and q quit are never dropped; a hint is never
// cut.
func (m *Model) renderHints(items []footerItem, width int) string {
	st := m.c.Styles
	render := func(items []footerItem) string {
		parts := make([]string, len(items))
		for i, it := range items {
			h := it.b.Help()
			parts[i] = st.FooterKey.Render(h.Key) + " " + st.Footer.Render(h.Desc)
		}
		return strings.Join(parts, st.Footer.Render(" · "))
	}
	for {
		s := render(items)
		if ansi.StringWidth(s) <= width {
			return s
		}
		drop := -1
		for i, it := range items {
			if it.priority < mustShow && (drop < 0 || it.priority < items[drop].priority) {
				drop = i
			}
		}
		if drop < 0 {
			return s // only what must show is left
		}
		items = append(items[:drop:drop], items[drop+1:]...)
	}
}

// viewHelp lists every key this operator can use: everywhere, in lists, and
// pane by pane, from the same tables the footer uses.
func (m *Model) viewHelp(w, h int) string {
	st := m.c.Styles
	var lines []string
	group := func(title string, bs []key.Binding) {
		if len(bs) == 0 {
			return
		}
		lines = append(lines, st.Label.Render(title))
		for _, b := range bs {
			hb := b.Help()
			lines = append(lines, fmt.Sprintf("  %-12s %s", hb.Key, hb.Desc))
		}
	}
	permitted := func(actions []Action) []key.Binding {
		var out []key.Binding
		for _, a := range actions {
			if m.c.Can(a.Perm) {
				out = append(out, a.Key)
			}
		}
		return out
	}
	lines = append(lines, st.Label.Render(fmt.Sprintf("Keys for %s (%s)", sanitize.Text(m.c.Actor.Name), m.c.Actor.Role)), "")
	group("Everywhere", append(permitted(m.global), m.c.Keys.ForceQuit))
	group("Lists", m.c.Keys.listKeys())
	for _, s := range m.mgr.slots {
		keys := permitted(s.pane.Actions())
		if f, ok := s.pane.(ownFilter); ok {
			keys = append(keys, f.FilterHelp())
		}
		group(s.name, keys)
	}
	if c, ok := m.mgr.pane(paneEmployees).(capturer); ok {
		group("Filter", c.CaptureHelp()[:2])
	}
	// The notes and the lines about this console (the demo's folders) go
	// under the keys, across the whole width.
	notes := []string{"", "Mouse: click a pane or a row; the wheel scrolls.",
		"Domains: +added ~updated -removed by the last sync; \"held\" removals wait for a."}
	about := notes
	if len(m.c.about) > 0 {
		about = append(about, "")
		for _, l := range m.c.about {
			about = append(about, sanitize.Text(l))
		}
	}
	inner := w - 4 // inside the frame's borders and margins
	about = wrapLines(about, inner)
	rows := h - 2 - len(about)
	// Too long for the screen: two columns, when every line fits its
	// column; else one column that scrolls (↑/↓, pgup/pgdn). A line is
	// never cut.
	if len(lines) > rows && w >= 70 {
		half := (len(lines) + 1) / 2
		colW := (inner - 2) / 2
		fits := true
		for _, l := range lines {
			fits = fits && ansi.StringWidth(l) <= colW
		}
		if fits {
			var two []string
			for i := 0; i < half; i++ {
				right := ""
				if i+half < len(lines) {
					right = lines[i+half]
				}
				two = append(two, fit(lines[i], colW+2)+right)
			}
			lines = two
		}
	}
	lines = wrapLines(lines, inner)
	if len(lines) > rows && rows > 2 {
		m.helpOffset = min(m.helpOffset, len(lines)-(rows-1))
		end := m.helpOffset + rows - 1
		more := fmt.Sprintf("(%d-%d of %d lines: ↑/↓ pgup/pgdn scroll)", m.helpOffset+1, end, len(lines))
		lines = append(lines[m.helpOffset:end:end], st.Label.Render(more))
	}
	lines = append(lines, about...)
	return frame(m.c.Styles, "Help", false, strings.Join(lines, "\n"), w, h)
}
