package ui

import (
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"keydesk/internal/sanitize"
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

// viewDialog draws a dialog in a space of width x height cells, with its
// own footer: the keys that work in it, in its bottom border (or, when they
// do not fit there, on lines of their own at the bottom of the box).
func viewDialog(d Dialog, c *Common, width, height int) string {
	draw := func(h int) string {
		if s, ok := d.(sizedDialog); ok {
			return s.ViewSized(c, width, h)
		}
		return d.View(c, width)
	}
	box := draw(height)
	hints := d.Help(c)
	if len(hints) == 0 {
		return box
	}
	lines := strings.Split(box, "\n")
	extra := dialogFooter(c, hints, ansi.StringWidth(lines[len(lines)-1]))
	if len(extra) > 1 {
		if _, sized := d.(sizedDialog); sized {
			// Room for the footer's lines: the dialog draws itself smaller.
			lines = strings.Split(draw(height-len(extra)+1), "\n")
			extra = dialogFooter(c, hints, ansi.StringWidth(lines[len(lines)-1]))
		}
	}
	if len(lines) < 2 {
		return box
	}
	return strings.Join(append(lines[:len(lines)-1], extra...), "\n")
}

// dialogFooter draws a dialog box's last lines, bw cells wide, with its
// keys: the bottom border holding them ("╚═ y yes · n/esc no ═══╝"), or
// when they do not fit in it, lines of keys inside the box over a plain
// border. A hint is never cut: the lines break between hints.
func dialogFooter(c *Common, hints []key.Binding, bw int) []string {
	st := c.Styles
	parts := make([]string, len(hints))
	for i, b := range hints {
		h := b.Help()
		parts[i] = st.FooterKey.Render(h.Key) + " " + st.Dim.Render(h.Desc)
	}
	sep := st.Dim.Render(" · ")
	all := strings.Join(parts, sep)
	if w := ansi.StringWidth(all); w <= bw-6 {
		return []string{st.DialogBorder.Render("╚═") + " " + all + " " + st.DialogBorder.Render(strings.Repeat("═", bw-5-w)+"╝")}
	}
	inner := max(1, bw-4)
	side := st.DialogBorder.Render("║")
	var out []string
	line := ""
	for _, p := range parts {
		switch {
		case line == "":
			line = p
		case ansi.StringWidth(line+sep+p) <= inner:
			line += sep + p
		default:
			out = append(out, side+" "+fit(line, inner)+" "+side)
			line = p
		}
	}
	out = append(out, side+" "+fit(line, inner)+" "+side)
	return append(out, st.DialogBorder.Render("╚"+strings.Repeat("═", max(0, bw-2))+"╝"))
}

// confirmDialog asks yes or no; destructive actions always go through one.
// What yes runs is fixed when the dialog opens: the item it names is the
// item it acts on, whatever the lists do meanwhile. A confirmation that
// waits (newWaitingConfirm) stays open while its operation runs and, when
// the operation is refused, says why inside itself.
type confirmDialog struct {
	title, body string
	danger      bool
	yes         tea.Cmd
	wait        bool
	op          operation
	keys        KeyMap
}

func newConfirm(c *Common, title, body string, danger bool, yes tea.Cmd) *confirmDialog {
	return &confirmDialog{title: title, body: body, danger: danger, yes: yes, keys: c.Keys}
}

// newWaitingConfirm is a confirmation whose yes runs an operation that
// ends in an outcome: the dialog shows that it runs, closes when it
// succeeded and says why in one line when it did not.
func newWaitingConfirm(c *Common, title, body string, danger bool, yes tea.Cmd) *confirmDialog {
	d := newConfirm(c, title, body, danger, yes)
	d.wait = true
	return d
}

func (d *confirmDialog) Init() tea.Cmd { return nil }

func (d *confirmDialog) Update(msg tea.Msg) (Dialog, tea.Cmd) {
	switch msg := msg.(type) {
	case dialogDoneMsg:
		if msg.to == Dialog(d) {
			return d.op.done(d, msg.msg)
		}
	case tea.KeyMsg:
		switch {
		case d.op.busy:
		case d.op.problem != "":
			// Refused: the question is answered; the dialog only closes.
			if key.Matches(msg, d.keys.Cancel, d.keys.No, d.keys.Accept) {
				return nil, nil
			}
		case key.Matches(msg, d.keys.Yes):
			if d.wait {
				return d, d.op.start(d, d.yes)
			}
			return nil, d.yes
		case key.Matches(msg, d.keys.No):
			return nil, notify("cancelled")
		}
	}
	return d, nil
}

func (d *confirmDialog) View(c *Common, width int) string {
	return dialogBox(c, width, d.title, d.danger, d.body, d.op.status(c))
}

func (d *confirmDialog) Help(c *Common) []key.Binding {
	switch {
	case d.op.busy:
		return []key.Binding{workingKey}
	case d.op.problem != "":
		return []key.Binding{closeKey}
	}
	return []key.Binding{c.Keys.Yes, c.Keys.No}
}

// The keys of a dialog whose operation runs, or was refused.
var (
	workingKey = key.NewBinding(key.WithKeys(), key.WithHelp("…", "working"))
	closeKey   = key.NewBinding(key.WithKeys("esc", "enter"), key.WithHelp("esc", "close"))
)

// outcome is the message that ends an operation a dialog waits for (a key
// operation's keyOpMsg).
type outcome interface {
	// failure is why the operation failed (nil: it succeeded).
	failure() error
	// reported is the same message with its failure marked as shown to
	// the operator, in the dialog: the panes then only reload.
	reported() tea.Msg
}

// dialogDoneMsg brings an operation's message back to the dialog that
// started it.
type dialogDoneMsg struct {
	to  Dialog
	msg tea.Msg
}

// operation is the part of a dialog that runs an operation and waits for
// its outcome: while it runs the dialog takes no keys; a refusal stays in
// the dialog, in one line.
type operation struct {
	busy    bool
	problem string
}

// start runs cmd for dialog d: its message comes back to d first.
func (o *operation) start(d Dialog, cmd tea.Cmd) tea.Cmd {
	o.busy, o.problem = true, ""
	return func() tea.Msg {
		var msg tea.Msg
		if cmd != nil {
			msg = cmd()
		}
		return dialogDoneMsg{to: d, msg: msg}
	}
}

// done takes the operation's message: a success closes the dialog and
// hands the message on; a failure keeps the dialog open with why, and
// hands the message on marked as shown.
func (o *operation) done(d Dialog, msg tea.Msg) (Dialog, tea.Cmd) {
	o.busy = false
	if out, ok := msg.(outcome); ok && out.failure() != nil {
		o.problem = userError(out.failure())
		r := out.reported()
		return d, func() tea.Msg { return r }
	}
	if msg == nil {
		return nil, nil
	}
	return nil, func() tea.Msg { return msg }
}

// status is the line the operation adds to its dialog: that it runs, or
// why it was refused.
func (o *operation) status(c *Common) string {
	switch {
	case o.busy:
		return c.Styles.Dim.Render("working…")
	case o.problem != "":
		return c.Styles.Err.Render(sanitize.Text(o.problem))
	}
	return ""
}

// inputDialog asks for a line of text (a serial to confirm, a code). The
// value is checked before it is submitted; a refusal shows in the dialog.
type inputDialog struct {
	title, body string
	danger      bool
	input       textinput.Model
	valid       func(string) (ok bool, why string) // nil: anything
	submit      func(string) (Dialog, tea.Cmd)
	problem     string
	op          operation // the operation submit started, when it waits (submitWaits)
	keys        KeyMap
}

func newInput(c *Common, title, body, placeholder string, submit func(string) (Dialog, tea.Cmd)) *inputDialog {
	return &inputDialog{title: title, body: body, input: newTextInput("› ", placeholder, 64, 30), submit: submit, keys: c.Keys}
}

func (d *inputDialog) Init() tea.Cmd { return d.input.Focus() }

// submitWaits makes the dialog run the operation run makes of the value
// and wait for its outcome, as a waiting confirmation does.
func (d *inputDialog) submitWaits(run func(string) tea.Cmd) {
	d.submit = func(v string) (Dialog, tea.Cmd) { return d, d.op.start(d, run(v)) }
}

func (d *inputDialog) Update(msg tea.Msg) (Dialog, tea.Cmd) {
	if m, ok := msg.(dialogDoneMsg); ok && m.to == Dialog(d) {
		return d.op.done(d, m.msg)
	}
	k, ok := msg.(tea.KeyMsg)
	if !ok {
		var cmd tea.Cmd
		d.input, cmd = d.input.Update(msg)
		return d, cmd
	}
	switch {
	case d.op.busy:
		return d, nil
	case d.op.problem != "":
		if key.Matches(k, d.keys.Cancel, d.keys.Accept) {
			return nil, nil
		}
		return d, nil
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
	return dialogBox(c, width, d.title, d.danger, append(parts, d.op.status(c))...)
}

func (d *inputDialog) Help(c *Common) []key.Binding {
	switch {
	case d.op.busy:
		return []key.Binding{workingKey}
	case d.op.problem != "":
		return []key.Binding{closeKey}
	}
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

// dialogBox draws a dialog: its title, then its parts; viewDialog adds the
// dialog's keys at its bottom.
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
