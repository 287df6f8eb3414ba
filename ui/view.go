package ui

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/textinput"
	"github.com/charmbracelet/x/ansi"
)

// fit truncates or pads a (possibly styled) line to exactly w cells.
func fit(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if ansi.StringWidth(s) > w {
		s = ansi.Truncate(s, w, "…")
	}
	if pad := w - ansi.StringWidth(s); pad > 0 {
		s += strings.Repeat(" ", pad)
	}
	return s
}

// block is lines fitted to exactly w x h cells.
func block(lines []string, w, h int) string {
	out := make([]string, max(0, h))
	for i := range out {
		if i < len(lines) {
			out[i] = fit(lines[i], w)
		} else {
			out[i] = strings.Repeat(" ", max(0, w))
		}
	}
	return strings.Join(out, "\n")
}

// wrapField is a labelled value for the Details pane; a long value wraps
// under itself.
func wrapField(c *Common, label, value string, cw int) []string {
	prefix := c.Styles.Label.Render(fmt.Sprintf("%-9s", label)) + " "
	var out []string
	for i, w := range strings.Split(ansi.Wrap(value, max(10, cw-10), ""), "\n") {
		if i == 0 {
			out = append(out, prefix+w)
		} else {
			out = append(out, strings.Repeat(" ", 10)+w)
		}
	}
	return out
}

func relTime(t, now time.Time) string {
	d := t.Sub(now)
	future := d > 0
	if !future {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		s = fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		s = fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		s = fmt.Sprintf("%dd", int(math.Round(d.Hours()/24)))
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func sprintf(format string, args ...any) string {
	if len(args) == 0 {
		return format
	}
	return fmt.Sprintf(format, args...)
}

// frame draws content in a border of exactly w x h cells, with the title
// in the top border; a focused frame has a highlighted border and a marked
// title.
func frame(st Styles, title string, focused bool, content string, w, h int) string {
	if h < 2 || w < 4 {
		return strings.TrimSuffix(strings.Repeat(strings.Repeat(" ", max(0, w))+"\n", max(0, h)), "\n")
	}
	bs, ts, mark := st.Border, st.Title, " "
	if focused {
		bs, ts, mark = st.BorderFocus, st.TitleFocus, "▸"
	}
	t := ansi.Truncate(mark+title+" ", w-4, "…")
	var b strings.Builder
	b.WriteString(bs.Render("╭─") + ts.Render(t) + bs.Render(strings.Repeat("─", max(0, w-3-ansi.StringWidth(t)))+"╮"))
	side := bs.Render("│")
	for _, line := range strings.Split(block(strings.Split(content, "\n"), w-4, h-2), "\n") {
		b.WriteString("\n" + side + " " + line + " " + side)
	}
	b.WriteString("\n" + bs.Render("╰"+strings.Repeat("─", w-2)+"╯"))
	return b.String()
}

// newTextInput is a text field as every input of the console has it: a steady
// cursor (a blinking one redraws the screen twice a second, over SSH too).
func newTextInput(prompt, placeholder string, limit, width int) textinput.Model {
	in := textinput.New()
	in.Prompt = prompt
	in.Placeholder = placeholder
	in.CharLimit = limit
	in.Width = width
	in.Cursor.SetMode(cursor.CursorStatic)
	return in
}
