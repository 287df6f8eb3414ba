package ui

import (
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
)

type dialogKind int

const (
	// dialogConfirm asks yes or no; destructive actions always go through one.
	dialogConfirm dialogKind = iota
	// dialogInput asks for a line of text (an activation code, a serial).
	dialogInput
	// dialogCode shows a one-time activation code, large, once.
	dialogCode
	// dialogChoice offers a few keys, each with its own action.
	dialogChoice
)

// choice is one option of a dialogChoice.
type choice struct {
	key   string
	label string
	do    func(m *Model) tea.Cmd
}

// dialog is a modal box over the console. While it is open it gets every
// key.
type dialog struct {
	kind    dialogKind
	title   string
	body    string
	danger  bool
	onYes   func(m *Model) tea.Cmd                   // dialogConfirm
	input   textinput.Model                          // dialogInput
	submit  func(m *Model, value string) tea.Cmd     // dialogInput: may set m.dialog again
	valid   func(value string) (ok bool, why string) // dialogInput: checked before submit
	problem string                                   // dialogInput: why the last submit was refused
	code    string                                   // dialogCode
	choices []choice                                 // dialogChoice
}

func confirmDialog(title, body string, danger bool, onYes func(m *Model) tea.Cmd) *dialog {
	return &dialog{kind: dialogConfirm, title: title, body: body, danger: danger, onYes: onYes}
}

func (m *Model) inputDialog(title, body, placeholder string, secret bool, valid func(string) (bool, string), submit func(m *Model, value string) tea.Cmd) (*dialog, tea.Cmd) {
	in := textinput.New()
	in.Prompt = "› "
	in.Placeholder = placeholder
	in.CharLimit = 64
	in.Width = 30
	if secret {
		in.EchoMode = textinput.EchoPassword
		in.EchoCharacter = '•'
	}
	d := &dialog{kind: dialogInput, title: title, body: body, input: in, submit: submit, valid: valid}
	return d, d.input.Focus()
}

func (m Model) handleDialogKey(msg tea.KeyMsg) (tea.Model, tea.Cmd) {
	d := m.dialog
	switch d.kind {
	case dialogConfirm:
		switch {
		case key.Matches(msg, m.keys.Yes):
			m.dialog = nil
			return m, d.onYes(&m)
		case key.Matches(msg, m.keys.No):
			m.dialog = nil
			m.say("cancelled")
		}
	case dialogCode:
		if key.Matches(msg, m.keys.Accept, m.keys.ClearInput) {
			m.dialog = nil
		}
	case dialogChoice:
		if key.Matches(msg, m.keys.ClearInput) {
			m.dialog = nil
			m.say("cancelled")
			return m, nil
		}
		for _, c := range d.choices {
			if msg.String() == c.key {
				m.dialog = nil
				return m, c.do(&m)
			}
		}
	case dialogInput:
		switch {
		case key.Matches(msg, m.keys.ClearInput):
			m.dialog = nil
			m.say("cancelled")
			return m, nil
		case key.Matches(msg, m.keys.Accept):
			v := strings.TrimSpace(d.input.Value())
			if d.valid != nil {
				if ok, why := d.valid(v); !ok {
					nd := *d
					nd.problem = why
					m.dialog = &nd
					return m, nil
				}
			}
			m.dialog = nil
			return m, d.submit(&m, v)
		}
		nd := *d
		var cmd tea.Cmd
		nd.input, cmd = nd.input.Update(msg)
		nd.problem = ""
		m.dialog = &nd
		return m, cmd
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
	parts := []string{title}
	if d.body != "" {
		parts = append(parts, m.styles.r.NewStyle().Width(width-4).Render(d.body))
	}
	var keys string
	switch d.kind {
	case dialogConfirm:
		keys = m.styles.FooterKey.Render("y") + " yes   " + m.styles.FooterKey.Render("n/esc") + " no"
	case dialogCode:
		parts = append(parts, bigCode(d.code), "code: "+m.styles.Label.Render(d.code))
		keys = m.styles.FooterKey.Render("enter") + " done (the code is not shown again)"
	case dialogChoice:
		var cs []string
		for _, c := range d.choices {
			cs = append(cs, m.styles.FooterKey.Render(c.key)+" "+c.label)
		}
		keys = strings.Join(cs, "   ") + "   " + m.styles.FooterKey.Render("esc") + " cancel"
	case dialogInput:
		parts = append(parts, d.input.View())
		if d.problem != "" {
			parts = append(parts, m.styles.Err.Render(d.problem))
		}
		keys = m.styles.FooterKey.Render("enter") + " submit   " + m.styles.FooterKey.Render("esc") + " cancel"
	}
	parts = append(parts, keys)
	box := m.styles.Dialog.Width(width - 2).Render(strings.Join(parts, "\n\n"))
	return m.styles.r.Place(w, h, lipgloss.Center, lipgloss.Center, box)
}

// bigDigits is a 3x5 block font for activation codes, readable from across
// a desk.
var bigDigits = [10][5]string{
	{"███", "█ █", "█ █", "█ █", "███"},
	{" █ ", "██ ", " █ ", " █ ", "███"},
	{"███", "  █", "███", "█  ", "███"},
	{"███", "  █", "███", "  █", "███"},
	{"█ █", "█ █", "███", "  █", "  █"},
	{"███", "█  ", "███", "  █", "███"},
	{"███", "█  ", "███", "█ █", "███"},
	{"███", "  █", "  █", "  █", "  █"},
	{"███", "█ █", "███", "█ █", "███"},
	{"███", "█ █", "███", "  █", "███"},
}

// bigCode draws "482 913" in the block font.
func bigCode(code string) string {
	var rows [5]strings.Builder
	for _, r := range code {
		for i := range rows {
			switch {
			case r >= '0' && r <= '9':
				rows[i].WriteString(bigDigits[r-'0'][i] + " ")
			default:
				rows[i].WriteString("  ")
			}
		}
	}
	out := make([]string, 5)
	for i := range rows {
		out[i] = strings.TrimRight(rows[i].String(), " ")
	}
	return strings.Join(out, "\n")
}
