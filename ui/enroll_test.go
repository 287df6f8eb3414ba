package ui

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"

	"keydesk/app"
	"keydesk/enroll"
	"keydesk/internal/qrtest"
	"keydesk/internal/smtpsink"
)

// mailFixture is the fixture with a mail server: a real SMTP server on
// this machine (the sink) that keeps what it is sent.
func mailFixture(t *testing.T, n int) (*app.Service, *smtpsink.Sink) {
	t.Helper()
	sink, err := smtpsink.Start(smtpsink.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	conf := fmt.Sprintf("[mail]\nhost = %q\nport = %d\nsecurity = \"none\"\nfrom = \"k@example.com\"\n\n", sink.Host(), sink.Port())
	return fixtureWith(t, n, conf), sink
}

var mailedCode = regexp.MustCompile(`[A-Z2-7]{4}(-[A-Z2-7]{4}){5}`)

// inviteCode invites the person, sends the mail as the console's
// scheduler would, and returns the enrollment code the mail carried.
func inviteCode(t *testing.T, svc *app.Service, sink *smtpsink.Sink, email string) string {
	t.Helper()
	if _, err := svc.Invite(t.Context(), testActor, []string{email}, false); err != nil {
		t.Fatal(err)
	}
	return deliveredCode(t, svc, sink, email)
}

// deliveredCode sends the outbox and reads the code of the newest message
// to the person.
func deliveredCode(t *testing.T, svc *app.Service, sink *smtpsink.Sink, email string) string {
	t.Helper()
	if rep, err := svc.DeliverMail(t.Context(), testActor); err != nil || rep.Sent == 0 {
		t.Fatalf("deliver the invitations: %+v, %v", rep, err)
	}
	msgs := sink.Messages()
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].To[0] != email {
			continue
		}
		p, err := smtpsink.Parse(msgs[i].Data)
		if err != nil {
			t.Fatal(err)
		}
		code := mailedCode.FindString(p.Text)
		if code == "" {
			t.Fatalf("the invitation to %s holds no code:\n%s", email, p.Text)
		}
		return code
	}
	t.Fatalf("no invitation to %s", email)
	return ""
}

var sgr = regexp.MustCompile("\x1b\\[([0-9;:]*)m")

// setsColour reports whether a string sets colours (SGR 30-38, 40-48,
// 90-97, 100-107).
func setsColour(s string) bool {
	for _, m := range sgr.FindAllStringSubmatch(s, -1) {
		for _, p := range strings.FieldsFunc(m[1], func(r rune) bool { return r == ';' || r == ':' }) {
			n, _ := strconv.Atoi(p)
			if n >= 30 && n <= 38 || n >= 40 && n <= 48 || n >= 90 && n <= 97 || n >= 100 && n <= 107 {
				return true
			}
		}
	}
	return false
}

// enrollModel is a console over svc drawn by r, sized, with the Enroll
// dialog open (as e in the Invitations pane opens it).
func enrollModel(t *testing.T, svc *app.Service, r *lipgloss.Renderer, noColor bool, w, h int) (*Model, *Enroll) {
	t.Helper()
	m := New(svc, Options{Actor: testActor, Renderer: r, NoColor: noColor, Now: func() time.Time { return fixedNow }, Location: time.UTC, NoEvents: true})
	m = update(t, m, tea.WindowSizeMsg{Width: w, Height: h})
	m = run(t, m, m.mgr.Init())
	if !m.mgr.focusName(paneInvitations) {
		t.Fatal("no Invitations pane")
	}
	m = press(t, m, keys("e"))
	d, ok := m.dialog.(*Enroll)
	if !ok || !strings.Contains(m.View(), "Enroll an authenticator app") {
		t.Fatalf("e in Invitations did not open the enrollment:\n%s", m.View())
	}
	return m, d
}

func renderer(profile termenv.Profile, dark bool) *lipgloss.Renderer {
	r := lipgloss.NewRenderer(nil)
	r.SetColorProfile(profile)
	r.SetHasDarkBackground(dark)
	return r
}

// TestTheQRCodeOnScreenReadsAsTheURI draws the enrollment's QR code in the
// console as a terminal shows it (with colour; without, on a dark and on a
// light background; the QR code beside the text or under it) and reads
// the screen back as a phone would: it must decode to the enrollment's
// URI, and read on the wrong background it must not.
func TestTheQRCodeOnScreenReadsAsTheURI(t *testing.T) {
	svc, sink := mailFixture(t, 5)
	code := inviteCode(t, svc, sink, "user000000@example.com")
	variants := []struct {
		name      string
		r         *lipgloss.Renderer
		noColor   bool
		lightText bool // how a drawn half block reads
	}{
		{"colour", renderer(termenv.TrueColor, false), false, true}, // white on black whatever the terminal's background
		{"NO_COLOR on dark", renderer(termenv.ANSI256, true), true, true},
		{"NO_COLOR on light", renderer(termenv.ANSI256, false), true, false},
	}
	for _, v := range variants {
		for _, size := range [][2]int{{160, 50}, {80, 46}} {
			t.Run(fmt.Sprintf("%s/%dx%d", v.name, size[0], size[1]), func(t *testing.T) {
				m, d := enrollModel(t, svc, v.r, v.noColor, size[0], size[1])
				m = press(t, m, append(typeText(code), keyEnter)...)
				screen := m.View()
				if d.step != enrollScan || !strings.Contains(screen, "Scan this with your authenticator app") {
					t.Fatalf("the right code does not show the QR code:\n%s", screen)
				}
				got, err := qrtest.Decode(screen, v.lightText)
				if err != nil || got != d.start.URI {
					// Never the URI itself in the output: it holds the secret.
					t.Fatalf("the screen does not read as the enrollment's URI (read %d characters, err %v)", len(got), err)
				}
				if _, err := qrtest.Decode(screen, !v.lightText); err == nil {
					t.Errorf("the QR code reads on the opposite background too: the test cannot tell a wrong convention")
				}
				if colour := setsColour(screen); colour == v.noColor {
					t.Errorf("the screen sets colours: %v, with NO_COLOR %v", colour, v.noColor)
				}
				if !v.noColor && (!strings.Contains(screen, "38;2;255;255;255") || !strings.Contains(screen, "48;2;0;0;0")) {
					t.Errorf("the QR code is not drawn white on black: %q", screen)
				}
				if got := strings.Count(ansi.Strip(screen), "Person 000000 · user000000@example.com"); got != 1 {
					t.Errorf("the screen names whom the code enrolls %d times:\n%s", got, screen)
				}
			})
		}
	}
}

// TestASmallTerminalGetsTheSetupKey: where the QR code does not fit, the
// screen says so and shows the secret to type in, in groups of 4, with
// the issuer and the account, and no QR code at all.
func TestASmallTerminalGetsTheSetupKey(t *testing.T) {
	svc, sink := mailFixture(t, 5)
	code := inviteCode(t, svc, sink, "user000000@example.com")
	m, d := enrollModel(t, svc, asciiRenderer(), true, 60, 20)
	m = press(t, m, append(typeText(code), keyEnter)...)
	v := m.View()
	secret := d.start.Secret.Base32()
	grouped := inGroups(secret, 4)
	if len(secret) != 32 || len(grouped) != 39 {
		t.Fatalf("secret %d chars, grouped %q", len(secret), grouped)
	}
	for _, want := range []string{"Your terminal is too small for the QR code", "'enter a setup key'", grouped, "Issuer: KeyDesk", "Account: user000000@example.com"} {
		if !strings.Contains(v, want) {
			t.Errorf("the small screen does not show %q:\n%s", want, v)
		}
	}
	if strings.ContainsAny(v, "▀▄█") {
		t.Errorf("the small screen draws (part of) a QR code:\n%s", v)
	}
	// Growing the window shows the QR code, and it never shows the secret
	// as text.
	m = update(t, m, tea.WindowSizeMsg{Width: 160, Height: 50})
	if v := m.View(); !strings.Contains(v, "▀") || strings.Contains(v, grouped) || strings.Contains(v, secret) {
		t.Errorf("a large screen shows the secret, or no QR code:\n%s", v)
	}
}

// totpNot is a 6-digit code that the secret's app shows at none of the
// steps around step.
func totpNot(t *testing.T, s enroll.Secret, step int64) string {
	t.Helper()
	taken := map[string]bool{}
	for _, st := range []int64{step - 1, step, step + 1} {
		c, err := enroll.CodeAt(s, st)
		if err != nil {
			t.Fatal(err)
		}
		taken[c] = true
	}
	for i := 0; ; i++ {
		if c := fmt.Sprintf("%06d", 111111*i%1000000); !taken[c] {
			return c
		}
	}
}

// TestEnrollingInTheConsole: a wrong enrollment code is answered in the
// dialog; the right one shows the QR code; a wrong authenticator code is
// answered in the dialog; the right one enrolls, and the Invitations pane
// says so; the enrolled authenticator can then be reset.
func TestEnrollingInTheConsole(t *testing.T) {
	svc, sink := mailFixture(t, 5)
	code := inviteCode(t, svc, sink, "user000000@example.com")
	m, d := enrollModel(t, svc, asciiRenderer(), true, 160, 50)
	if v := m.View(); !strings.Contains(v, "Person 000000") || !strings.Contains(v, "sent") {
		t.Fatalf("the Invitations pane does not show the sent invitation:\n%s", v)
	}

	m = press(t, m, append(typeText("ABCD-EFGH"), keyEnter)...)
	if m.dialog != d || !strings.Contains(m.View(), "an enrollment code has 24 letters and digits") {
		t.Fatalf("a short code is not refused in the dialog:\n%s", m.View())
	}
	wrong := "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF"
	if wrong == code {
		wrong = "BBBB-BBBB-CCCC-DDDD-EEEE-FFFF"
	}
	m = press(t, m, tea.KeyMsg{Type: tea.KeyCtrlU})
	m = press(t, m, append(typeText(wrong), keyEnter)...)
	if v := m.View(); m.dialog != d || d.step != enrollCode || !strings.Contains(v, "this enrollment code is not right") {
		t.Fatalf("a wrong code is not refused in the dialog:\n%s", v)
	}
	m = press(t, m, tea.KeyMsg{Type: tea.KeyCtrlU})
	m = press(t, m, append(typeText(strings.ToLower(code)), keyEnter)...)
	if v := m.View(); d.step != enrollScan || !strings.Contains(v, "Scan this with your authenticator app") || !strings.Contains(v, "▀") {
		t.Fatalf("the right code (typed in lower case) does not show the QR code:\n%s", v)
	}
	secret, employee := append(enroll.Secret(nil), d.start.Secret...), d.start.Employee

	m = press(t, m, keys("x"))
	if d.totp.Value() != "" || !strings.Contains(m.View(), "the app's code is 6 digits") {
		t.Errorf("the authenticator's code took a letter (%q)", d.totp.Value())
	}
	m = press(t, m, append(typeText(totpNot(t, secret, enroll.Step(storeNow))), keyEnter)...)
	if v := m.View(); m.dialog != d || d.step != enrollScan || !strings.Contains(v, "this code is not the authenticator's") || strings.Contains(v, "enroll: ") {
		t.Fatalf("a wrong authenticator code is not refused in one line in the dialog:\n%s", v)
	}
	right, err := enroll.CodeAt(secret, enroll.Step(storeNow))
	if err != nil {
		t.Fatal(err)
	}
	m = press(t, m, append(typeText(right), keyEnter)...)
	if v := m.View(); d.step != enrollDone || !strings.Contains(v, "Authenticator enrolled for Person 000000") {
		t.Fatalf("the right authenticator code does not enroll:\n%s", v)
	}
	if len(d.start.Secret) != 0 || d.start.URI != "" || d.typed != "" {
		t.Error("the enrolled screen still holds the secret or the code")
	}
	m = press(t, m, keyEnter)
	if m.dialog != nil || !strings.Contains(footerLine(m), "authenticator enrolled for Person 000000") {
		t.Fatalf("enter did not close the enrolled screen: dialog %v, footer %q", m.dialog, footerLine(m))
	}
	// The service announces the change; the pane and the details follow.
	m = press(t, m, eventMsg{app.DataChanged{What: app.ChangedEmployees | app.ChangedAudit}})
	v := m.View()
	if !strings.Contains(v, "enrolled") || !strings.Contains(v, "authenticator enrolled 2026-11-25 11:58") {
		t.Errorf("the Invitations pane does not show the enrollment:\n%s", v)
	}

	// Now x resets the authenticator (after a warning).
	m = press(t, m, keys("k")) // a key: the footer shows the keys again
	if f := footerLine(m); !strings.Contains(f, "x reset the authenticator") {
		t.Errorf("reset is not offered on an enrolled person: %q", f)
	}
	m = press(t, m, keys("x"))
	if c, ok := m.dialog.(*confirmDialog); !ok || !c.danger || !strings.Contains(m.View(), "Reset the authenticator of Person 000000?") {
		t.Fatalf("x did not warn:\n%s", m.View())
	}
	m = press(t, m, keys("y"))
	if iv, err := svc.InvitationOf(t.Context(), testActor, employee); err != nil || iv == nil || iv.EnrolledAt != nil {
		t.Errorf("after the reset the invitation is %+v (%v), want no authenticator", iv, err)
	}
	if v := m.View(); !strings.Contains(v, "none enrolled") || !strings.Contains(footerLine(m), "is reset") {
		t.Errorf("the reset is not shown:\n%s", v)
	}
}

// TestTheEnrollmentIsAllOffTheUIGoroutine: enter hands the service's work
// to a command, and a refusal for one screen does not land in another.
func TestTheEnrollmentIsAllOffTheUIGoroutine(t *testing.T) {
	svc, sink := mailFixture(t, 5)
	code := inviteCode(t, svc, sink, "user000000@example.com")
	c := newCommon(svc, &Options{Actor: testActor, Renderer: asciiRenderer(), Now: func() time.Time { return fixedNow }, Location: time.UTC})
	d, other := newEnroll(c), newEnroll(c)
	var dd Dialog = d
	d.Init()
	for _, r := range code {
		dd, _ = dd.Update(keys(string(r)))
	}
	_, cmd := dd.Update(keyEnter)
	if cmd == nil || !d.busy || d.step != enrollCode {
		t.Fatal("enter did the service's work in Update")
	}
	if v := d.ViewSized(c, 100, 40); !strings.Contains(v, "checking the code…") {
		t.Errorf("the screen does not say it is working:\n%s", v)
	}
	msg := cmd().(enrollBeganMsg)
	if next, _ := other.Update(msg); next != other || other.step != enrollCode {
		t.Error("another screen took this one's answer")
	}
	dd, _ = dd.Update(msg)
	if dd != d || d.step != enrollScan || len(d.modules) == 0 {
		t.Fatalf("the answer did not show the QR code (step %d)", d.step)
	}
	dd, cmd = dd.Update(keyEsc)
	if dd != nil || len(d.start.Secret) != 0 || cmd == nil || cmd().(noticeMsg).text != "enrollment cancelled" {
		t.Error("esc did not cancel, or the secret stayed")
	}
}
