package ui

import (
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
)

// Dialog is a modal component over the console: while one is open it gets
// every key (and every other message too). Update returns the dialog that
// stays open (itself, the next one, or nil to close) and a command; what a
// dialog decides leaves it as a command or a message, never by reaching
// into the console.
type Dialog interface {
	Init() tea.Cmd
	Update(msg tea.Msg) (Dialog, tea.Cmd)
	// View draws the dialog's box (the console centres it).
	View(c *Common, width int) string
	// Help is the dialog's own footer.
	Help(c *Common) []key.Binding
}

// sizedDialog is a dialog that draws itself for the height it has too: one
// that shows a QR code draws it whole, or not at all.
type sizedDialog interface {
	ViewSized(c *Common, width, height int) string
}

// viewDialog draws a dialog in a space of width x height cells.
func viewDialog(d Dialog, c *Common, width, height int) string {
	if s, ok := d.(sizedDialog); ok {
		return s.ViewSized(c, width, height)
	}
	return d.View(c, width)
}

// confirmDialog asks yes or no; destructive actions always go through one.
// What yes runs is fixed when the dialog opens: the item it names is the
// item it acts on, whatever the lists do meanwhile.
type confirmDialog struct {
	title, body string
	danger      bool
	yes         tea.Cmd
	keys        KeyMap
}

func newConfirm(c *Common, title, body string, danger bool, yes tea.Cmd) *confirmDialog {
	return &confirmDialog{title: title, body: body, danger: danger, yes: yes, keys: c.Keys}
}

func (d *confirmDialog) Init() tea.Cmd { return nil }

func (d *confirmDialog) Update(msg tea.Msg) (Dialog, tea.Cmd) {
	if k, ok := msg.(tea.KeyMsg); ok {
		switch {
		case key.Matches(k, d.keys.Yes):
			return nil, d.yes
		case key.Matches(k, d.keys.No):
			return nil, notify("cancelled")
		}
	}
	return d, nil
}

func (d *confirmDialog) View(c *Common, width int) string {
	return dialogBox(c, width, d.title, d.danger, d.body)
}

func (d *confirmDialog) Help(c *Common) []key.Binding { return []key.Binding{c.Keys.Yes, c.Keys.No} }

// inputDialog asks for a line of text (a serial to confirm, a code). The
// value is checked before it is submitted; a refusal shows in the dialog.
type inputDialog struct {
	title, body string
	danger      bool
	input       textinput.Model
	valid       func(string) (ok bool, why string) // nil: anything
	submit      func(string) (Dialog, tea.Cmd)
	problem     string
	keys        KeyMap
}

func newInput(c *Common, title, body, placeholder string, submit func(string) (Dialog, tea.Cmd)) *inputDialog {
	return &inputDialog{title: title, body: body, input: newTextInput("› ", placeholder, 64, 30), submit: submit, keys: c.Keys}
}

func (d *inputDialog) Init() tea.Cmd { return d.input.Focus() }

func (d *inputDialog) Update(msg tea.Msg) (Dialog, tea.Cmd) {
	k, ok := msg.(tea.KeyMsg)
	if !ok {
		var cmd tea.Cmd
		d.input, cmd = d.input.Update(msg)
		return d, cmd
	}
	switch {
	case key.Matches(k, d.keys.Cancel):
		return nil, notify("cancelled")
	case key.Matches(k, d.keys.Accept):
		v := strings.TrimSpace(d.input.Value())
		if d.valid != nil {
			if ok, why := d.valid(v); !ok {
				d.problem = why
				return d, nil
			}
		}
		return d.submit(v)
	}
	var cmd tea.Cmd
	d.input, cmd = d.input.Update(k)
	d.problem = ""
	return d, cmd
}

func (d *inputDialog) View(c *Common, width int) string {
	parts := []string{d.body, d.input.View()}
	if d.problem != "" {
		parts = append(parts, c.Styles.Err.Render(d.problem))
	}
	return dialogBox(c, width, d.title, d.danger, parts...)
}

func (d *inputDialog) Help(c *Common) []key.Binding {
	return []key.Binding{c.Keys.Accept, c.Keys.Cancel}
}

// codeDialog shows a one-time activation code, large, once.
type codeDialog struct {
	title, body, code string
	keys              KeyMap
}

func (d *codeDialog) Init() tea.Cmd { return nil }

func (d *codeDialog) Update(msg tea.Msg) (Dialog, tea.Cmd) {
	if k, ok := msg.(tea.KeyMsg); ok && key.Matches(k, d.keys.Accept, d.keys.Cancel) {
		return nil, nil
	}
	return d, nil
}

func (d *codeDialog) View(c *Common, width int) string {
	return dialogBox(c, width, d.title, false, d.body, bigCode(d.code), "code: "+c.Styles.Label.Render(d.code))
}

func (d *codeDialog) Help(c *Common) []key.Binding {
	return []key.Binding{key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "done (the code is not shown again)"))}
}

// choice is one option of a choiceDialog.
type choice struct {
	key, label string
	pick       func() (Dialog, tea.Cmd)
}

// choiceDialog offers a few keys, each leading on.
type choiceDialog struct {
	title, body string
	danger      bool
	choices     []choice
	keys        KeyMap
}

func (d *choiceDialog) Init() tea.Cmd { return nil }

func (d *choiceDialog) Update(msg tea.Msg) (Dialog, tea.Cmd) {
	k, ok := msg.(tea.KeyMsg)
	if !ok {
		return d, nil
	}
	if key.Matches(k, d.keys.Cancel) {
		return nil, notify("cancelled")
	}
	for _, c := range d.choices {
		if k.String() == c.key {
			return c.pick()
		}
	}
	return d, nil
}

func (d *choiceDialog) View(c *Common, width int) string {
	return dialogBox(c, width, d.title, d.danger, d.body)
}

func (d *choiceDialog) Help(c *Common) []key.Binding {
	var bs []key.Binding
	for _, ch := range d.choices {
		bs = append(bs, key.NewBinding(key.WithKeys(ch.key), key.WithHelp(ch.key, ch.label)))
	}
	return append(bs, c.Keys.Cancel)
}

// dialogBox draws a dialog: its title, then its parts; the dialog's keys
// are in the footer.
func dialogBox(c *Common, width int, title string, danger bool, parts ...string) string {
	w := min(64, width-4)
	t := c.Styles.DialogTitle.Render(title)
	if danger {
		t = c.Styles.Err.Render("! ") + t
	}
	out := []string{t}
	for _, p := range parts {
		if p != "" {
			out = append(out, c.Styles.r.NewStyle().Width(max(1, w-4)).Render(p))
		}
	}
	return c.Styles.Dialog.Width(max(1, w-2)).Render(strings.Join(out, "\n\n"))
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
