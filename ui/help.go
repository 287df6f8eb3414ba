package ui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/x/ansi"

	"keydesk/internal/sanitize"
)

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
func (m *Model) footer() string {
	st := m.c.Styles
	if m.message != "" {
		return st.Message.Render(fit(" "+sanitize.Text(m.message), m.width))
	}
	var items []footerItem
	switch {
	case m.dialog != nil:
		for _, b := range m.dialog.Help(m.c) {
			items = append(items, footerItem{b, mustShow})
		}
	case m.showHelp:
		items = []footerItem{{key.NewBinding(key.WithKeys("?"), key.WithHelp("?/esc", "close help")), mustShow}}
	case m.capturing() != nil:
		for _, b := range m.capturing().CaptureHelp() {
			items = append(items, footerItem{b, mustShow})
		}
	default:
		items = append(m.offered(m.mgr.focused().Actions(), true), m.offered(m.global, false)...)
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
// width cells.
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
		group(s.name, permitted(s.pane.Actions()))
	}
	if c, ok := m.mgr.pane(paneEmployees).(capturer); ok {
		group("Filter", c.CaptureHelp()[:2])
	}
	lines = append(lines, "", "Mouse: click a pane or a row; the wheel scrolls.",
		"Domains: +added ~updated -removed by the last sync; \"held\" removals wait for a.")
	// The lines about this console (the demo's folders) go under the
	// keys, across the whole width: a path is not cut.
	var about []string
	if len(m.c.about) > 0 {
		about = append(about, "")
		for _, l := range m.c.about {
			about = append(about, sanitize.Text(l))
		}
	}
	// Too long for the screen: two columns.
	if rows := h - 2 - len(about); len(lines) > rows && w >= 70 {
		half := (len(lines) + 1) / 2
		colW := (w - 4) / 2
		var two []string
		for i := 0; i < half; i++ {
			right := ""
			if i+half < len(lines) {
				right = lines[i+half]
			}
			two = append(two, fit(lines[i], colW)+right)
		}
		lines = two
	}
	lines = append(lines, about...)
	return frame(m.c.Styles, "Help", false, strings.Join(lines, "\n"), w, h)
}
