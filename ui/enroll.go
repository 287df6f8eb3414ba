package ui

import (
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"keydesk/app"
	"keydesk/enroll"
	"keydesk/internal/sanitize"
)

type (
	// enrollBeganMsg is BeginEnrollment's answer, with the QR code of its
	// URI (made off the UI goroutine too).
	enrollBeganMsg struct {
		to      *Enroll
		start   app.EnrollmentStart
		modules [][]bool // nil when the QR code could not be made
		err     error
	}
	// enrollConfirmedMsg is ConfirmEnrollment's answer.
	enrollConfirmedMsg struct {
		to  *Enroll
		err error
	}
)

// The steps of an enrollment.
const (
	enrollCode = iota // the enrollment code from the invitation
	enrollScan        // the QR code, and the app's first code
	enrollDone        // enrolled
)

// enrollTitle is the enrollment screen's title until it is done.
const enrollTitle = "Enroll an authenticator app"

// Enroll is the enrollment of an authenticator app: the person types the
// code of their invitation email, scans the QR code of their new secret
// (or, on a screen too small for it, types the secret into the app) and
// types the app's first 6-digit code. An operator can run it on the
// person's behalf, with them; a kiosk offers it on its start screen. The
// secret is shown on this screen only, never logged or put in a message,
// and forgotten when the screen closes.
type Enroll struct {
	c       *Common
	step    int
	code    textinput.Model // the enrollment code
	totp    textinput.Model // the app's code
	typed   string          // the enrollment code BeginEnrollment accepted
	start   app.EnrollmentStart
	modules [][]bool
	name    string // whom the code enrolls, sanitised
	email   string
	problem string
	busy    bool
}

func newEnroll(c *Common) *Enroll {
	return &Enroll{c: c,
		code: newTextInput("› ", "ABCD-EFGH-IJKL-MNOP-QRST-UVWX", 40, 32),
		totp: newTextInput("› ", "6 digits", 7, 10)}
}

// Init focuses the code field.
func (d *Enroll) Init() tea.Cmd { return d.code.Focus() }

// Update takes the enrollment code, then the app's code.
func (d *Enroll) Update(msg tea.Msg) (Dialog, tea.Cmd) {
	switch msg := msg.(type) {
	case enrollBeganMsg:
		if msg.to != d {
			return d, nil
		}
		d.busy = false
		if msg.err != nil {
			d.problem = enrollProblem(msg.err)
			return d, nil
		}
		d.step, d.start, d.modules = enrollScan, msg.start, msg.modules
		d.name, d.email = sanitize.Text(msg.start.Name), sanitize.Text(msg.start.Email)
		if d.name == "" {
			d.name = d.email
		}
		d.code.Blur()
		return d, d.totp.Focus()
	case enrollConfirmedMsg:
		if msg.to != d {
			return d, nil
		}
		d.busy = false
		if msg.err != nil {
			d.problem = enrollProblem(msg.err)
			d.totp.SetValue("")
			return d, nil
		}
		d.forget()
		d.step = enrollDone
		return d, nil
	case tea.KeyMsg:
		if d.busy {
			return d, nil
		}
		if key.Matches(msg, d.c.Keys.Cancel) || d.step == enrollDone && key.Matches(msg, d.c.Keys.Accept) {
			d.forget()
			if d.step == enrollDone {
				return nil, notify("authenticator enrolled for %s", d.name)
			}
			return nil, notify("enrollment cancelled")
		}
		switch d.step {
		case enrollCode:
			return d, d.codeKey(msg)
		case enrollScan:
			return d, d.totpKey(msg)
		}
		return d, nil
	}
	var cmd tea.Cmd
	switch d.step {
	case enrollCode:
		d.code, cmd = d.code.Update(msg)
	case enrollScan:
		d.totp, cmd = d.totp.Update(msg)
	}
	return d, cmd
}

// codeKey edits the enrollment code; enter checks it with the service.
func (d *Enroll) codeKey(msg tea.KeyMsg) tea.Cmd {
	if !key.Matches(msg, d.c.Keys.Accept) {
		var cmd tea.Cmd
		d.code, cmd = d.code.Update(msg)
		d.problem = ""
		return cmd
	}
	typed := d.code.Value()
	if _, err := enroll.ParseCode(typed); err != nil {
		d.problem = firstLine(err.Error())
		return nil
	}
	d.busy, d.problem, d.typed = true, "", typed
	svc, ctx, actor := d.c.Svc, d.c.Ctx, d.c.Actor
	return func() tea.Msg {
		st, err := svc.BeginEnrollment(ctx, actor, typed)
		if err != nil {
			return enrollBeganMsg{to: d, err: err}
		}
		modules, _ := enroll.QR(st.URI) // none: the screen shows the secret as text
		return enrollBeganMsg{to: d, start: st, modules: modules}
	}
}

// totpKey takes the app's code (digits only); enter confirms it.
func (d *Enroll) totpKey(msg tea.KeyMsg) tea.Cmd {
	switch {
	case key.Matches(msg, d.c.Keys.Accept):
		totp := strings.ReplaceAll(d.totp.Value(), " ", "")
		if len(totp) != enroll.Digits {
			d.problem = "type the 6 digits your app shows"
			return nil
		}
		d.busy, d.problem = true, ""
		svc, ctx, actor, code := d.c.Svc, d.c.Ctx, d.c.Actor, d.typed
		return func() tea.Msg {
			_, err := svc.ConfirmEnrollment(ctx, actor, code, totp)
			return enrollConfirmedMsg{to: d, err: err}
		}
	case msg.Type == tea.KeyRunes && !digitsOnly(msg.Runes):
		d.problem = "the app's code is 6 digits"
		return nil
	}
	var cmd tea.Cmd
	d.totp, cmd = d.totp.Update(msg)
	d.problem = ""
	return cmd
}

// digitsOnly reports whether runes are digits (and spaces, as some apps
// show a code: 123 456).
func digitsOnly(runes []rune) bool {
	for _, r := range runes {
		if (r < '0' || r > '9') && r != ' ' {
			return false
		}
	}
	return true
}

// forget drops the secret and the codes: nothing of them stays on screen
// or in memory that this screen holds.
func (d *Enroll) forget() {
	clear(d.start.Secret)
	d.start, d.modules, d.typed = app.EnrollmentStart{}, nil, ""
	d.code.SetValue("")
	d.totp.SetValue("")
}

// enrollProblem is a refusal as one line: the service's sentences say
// what is wrong already.
func enrollProblem(err error) string {
	return strings.TrimPrefix(firstLine(err.Error()), "enroll: ")
}

// View draws the screen for a terminal of unknown height: a QR code is
// drawn only where the host says how tall the screen is (ViewSized).
func (d *Enroll) View(c *Common, width int) string { return d.ViewSized(c, width, 24) }

// ViewSized draws the screen in width x height cells.
func (d *Enroll) ViewSized(c *Common, width, height int) string {
	switch d.step {
	case enrollCode:
		return dialogBox(c, width, enrollTitle, false,
			"Type the enrollment code from your invitation email: 24 letters and digits, in groups of 4.", d.code.View(), d.status(c))
	case enrollDone:
		return dialogBox(c, width, "Authenticator enrolled for "+d.name, false,
			"From now on, a password change at your key asks for the 6-digit code your app shows.")
	}
	if box, ok := d.qrBox(c, width, height); ok {
		return box
	}
	return dialogBox(c, width, enrollTitle, false, d.who(),
		"Your terminal is too small for the QR code. In your app choose 'enter a setup key' and type:",
		c.Styles.Label.Render(inGroups(d.start.Secret.Base32(), 4)),
		"Issuer: "+sanitize.Text(d.start.Issuer)+" · Account: "+d.email+" · time-based, 6 digits",
		"Then type the 6 digits your app shows:\n"+d.totp.View(), d.status(c))
}

func (d *Enroll) who() string { return d.name + " · " + d.email }

const scanText = "Scan this with your authenticator app, then type the 6 digits it shows:"

// qrBox draws the QR code with the text beside it (a wide screen) or under
// it (a tall one); false when it fits neither way. Lines that could hold a
// refusal are counted in, so that a wrong code never makes the QR code
// give way to the text.
func (d *Enroll) qrBox(c *Common, width, height int) (string, bool) {
	if len(d.modules) == 0 {
		return "", false
	}
	st := c.Styles
	qr := enroll.HalfBlocks(d.modules, st.qrDrawsLight())
	for i, l := range qr {
		qr[i] = st.QR.Render(l)
	}
	qrW, qrH := len(d.modules[0]), len(qr)
	maxW := width - 2 // the box and a column either side
	wrap := func(s string, w int) []string {
		return strings.Split(c.Styles.r.NewStyle().Width(w).Render(s), "\n")
	}
	status := func(w int) []string {
		s := wrap(d.status(c), w)
		for len(s) < 2 {
			s = append(s, "")
		}
		return s
	}
	box := func(cw int, body []string) string {
		return st.Dialog.Width(cw + 2).Render(st.DialogTitle.Render(enrollTitle) + "\n" + strings.Join(body, "\n"))
	}
	// Beside: the QR code, two columns, the text.
	if tw := min(40, maxW-4-qrW-2); tw >= 24 {
		text := append(wrap(d.who(), tw), "")
		text = append(append(text, wrap(scanText, tw)...), "", d.totp.View(), "")
		text = append(text, status(tw)...)
		if rows := max(qrH, len(text)); rows+3 <= height {
			body := lipgloss.JoinHorizontal(lipgloss.Top, strings.Join(qr, "\n"), "  ", strings.Join(text, "\n"))
			return box(qrW+2+tw, strings.Split(body, "\n")), true
		}
	}
	// Under: the person, the QR code, the text.
	if cw := max(qrW, min(60, maxW-4)); cw <= maxW-4 {
		body := append(wrap(d.who(), cw), qr...)
		body = append(append(body, wrap(scanText, cw)...), d.totp.View())
		body = append(body, status(cw)...)
		if len(body)+3 <= height {
			return box(cw, body), true
		}
	}
	return "", false
}

// status is the line under the field: working, or why it was refused.
func (d *Enroll) status(c *Common) string {
	switch {
	case d.busy && d.step == enrollCode:
		return c.Styles.Dim.Render("checking the code…")
	case d.busy:
		return c.Styles.Dim.Render("confirming…")
	case d.problem != "":
		return c.Styles.Err.Render(sanitize.Text(d.problem))
	}
	return ""
}

// Help is the screen's footer.
func (d *Enroll) Help(c *Common) []key.Binding {
	switch d.step {
	case enrollCode:
		return []key.Binding{key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "check the code")), c.Keys.Cancel}
	case enrollScan:
		return []key.Binding{key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "confirm")), c.Keys.Cancel}
	}
	return []key.Binding{key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "done"))}
}

// inGroups writes s in groups of n separated by spaces, as a setup key is
// read out.
func inGroups(s string, n int) string {
	var parts []string
	for len(s) > n {
		parts = append(parts, s[:n])
		s = s[n:]
	}
	return strings.Join(append(parts, s), " ")
}
