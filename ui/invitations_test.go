package ui

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"keydesk/app"
	"keydesk/enroll"
	"keydesk/internal/simtest"
	"keydesk/internal/smtpsink"
	"keydesk/keys/proto"
)

// invitationsFixture holds three invitations: Person 000000's sent, Person
// 000001's refused by the mail server for good, Person 000002's not sent
// yet.
func invitationsFixture(t *testing.T) (*app.Service, *smtpsink.Sink) {
	t.Helper()
	svc, sink := mailFixture(t, 5)
	inviteCode(t, svc, sink, "user000000@example.com")
	sink.RefuseNext(550, "5.1.1 mailbox unavailable")
	if _, err := svc.Invite(t.Context(), testActor, []string{"user000001@example.com"}, false); err != nil {
		t.Fatal(err)
	}
	if rep, err := svc.DeliverMail(t.Context(), testActor); err != nil || rep.GaveUp != 1 {
		t.Fatalf("the refused invitation: %+v %v", rep, err)
	}
	if _, err := svc.Invite(t.Context(), testActor, []string{"user000002@example.com"}, false); err != nil {
		t.Fatal(err)
	}
	return svc, sink
}

func (m *Model) invitations() *invitationsPane { return m.mgr.pane(paneInvitations).(*invitationsPane) }

// TestTheInvitationsPane: each invitation's state shows, with why a mail
// failed; helpdesk sends a new code after confirming it; an auditor is
// not offered that, and is refused when they press it anyway.
func TestTheInvitationsPane(t *testing.T) {
	svc, _ := invitationsFixture(t)
	hd := newTestModelAs(t, svc, app.Actor{Name: "hd", Role: app.RoleHelpdesk}, 200, 50)
	hd.mgr.focusName(paneInvitations)
	hd = press(t, hd, keys("j")) // Person 000001, the failed one (the newest come first)
	v := hd.View()
	for _, want := range []string{"Invitations (3, 1 failed)", "queued", "sent", "failed", "refused the message to user000001@example.com", "given up after 1 attempt"} {
		if !strings.Contains(v, want) {
			t.Errorf("the Invitations pane does not show %q:\n%s", want, v)
		}
	}
	p := hd.invitations()
	if cur := p.current(); cur == nil || cur.Name != "Person 000001" || cur.State != app.InviteFailed {
		t.Fatalf("selected %+v, want Person 000001's failed invitation", cur)
	}
	f := footerLine(hd)
	if !strings.Contains(f, "r resend a new code") || strings.Contains(f, "reset the authenticator") || strings.Contains(f, "mail sent") {
		t.Errorf("helpdesk's footer on a failed invitation: %q", f)
	}
	hd = press(t, hd, keys("x"))
	if hd.dialog != nil || !strings.Contains(footerLine(hd), "reset the authenticator: no authenticator is enrolled") {
		t.Errorf("x on someone not enrolled: dialog %v, footer %q", hd.dialog, footerLine(hd))
	}

	hd = press(t, hd, keys("r"))
	if _, ok := hd.dialog.(*confirmDialog); !ok || !strings.Contains(hd.View(), "Send Person 000001 a new enrollment code?") {
		t.Fatalf("r did not ask:\n%s", hd.View())
	}
	hd = press(t, hd, keys("y"))
	if f := footerLine(hd); !strings.Contains(f, "a new enrollment code goes to user000001@example.com") {
		t.Errorf("the resend is not reported: %q", f)
	}
	iv, err := svc.InvitationOf(t.Context(), testActor, p.current().Employee)
	if err != nil || iv.State != app.InviteQueued || iv.InvitedBy != "hd" {
		t.Fatalf("after the resend the invitation is %+v (%v), want a new one from hd, queued", iv, err)
	}
	if cur := p.current(); cur.Name != "Person 000001" || cur.State != app.InviteQueued {
		t.Errorf("the pane shows %+v after the resend, want Person 000001's new invitation", cur)
	}

	aud := newTestModelAs(t, svc, app.Actor{Name: "aud", Role: app.RoleAuditor}, 200, 50)
	aud.mgr.focusName(paneInvitations)
	aud = press(t, aud, keys("j"))
	if f := footerLine(aud); strings.Contains(f, "resend") || strings.Contains(f, "enroll") {
		t.Errorf("the auditor's footer offers sending or enrolling: %q", f)
	}
	aud = press(t, aud, keys("r"))
	if aud.dialog != nil || !strings.Contains(footerLine(aud), "resend a new code: your role (auditor) cannot do this") {
		t.Errorf("r as auditor: dialog %v, footer %q", aud.dialog, footerLine(aud))
	}
}

// TestInvitingFromEmployees: I invites the selected employee; their
// details show the invitation; a second I is refused by the service, in
// one line.
func TestInvitingFromEmployees(t *testing.T) {
	svc, sink := mailFixture(t, 5)
	m := newTestModel(t, svc, 120, 40)
	m = press(t, m, keys("jjjj"))
	if selectedName(m) != "Person 000000" {
		t.Fatalf("selected %q", selectedName(m))
	}
	if strings.Contains(m.View(), "Invite ") {
		t.Errorf("the details of someone never invited show an invitation:\n%s", m.View())
	}
	m = press(t, m, keys("I"))
	if f := footerLine(m); !strings.Contains(f, "invited user000000@example.com") {
		t.Errorf("the invitation is not reported: %q", f)
	}
	v := m.View()
	for _, want := range []string{"Invite    queued", "Invited   2026-11-25 11:58 (1m ago) by test:admin", "Expires   2026-12-02 11:58 (in 7d)", "Auth app  none enrolled"} {
		if !strings.Contains(v, want) {
			t.Errorf("the employee's details do not show %q:\n%s", want, v)
		}
	}
	m = press(t, m, keys("I"))
	if f := footerLine(m); !strings.Contains(f, "invite: user000000@example.com: already invited") {
		t.Errorf("a second invitation is not refused in one line: %q", f)
	}
	// The mail goes; the service says the employees changed.
	deliveredCode(t, svc, sink, "user000000@example.com")
	m = press(t, m, eventMsg{app.DataChanged{What: app.ChangedEmployees | app.ChangedAudit}})
	if v := m.View(); !strings.Contains(v, "Invite    sent") || !strings.Contains(v, "Sent      2026-11-25 11:58 (1m ago), after 1") {
		t.Errorf("the details do not follow the invitation's mail:\n%s", v)
	}
	m = press(t, m, keys("g"), keys("j")) // Bob Gone, removed
	m = press(t, m, keys("I"))
	if f := footerLine(m); !strings.Contains(f, "invite: Bob Gone was removed") {
		t.Errorf("I on a removed employee: %q", f)
	}
}

// TestTheMailboxShowsWhatWasSent: with a mailbox (the demo's), m shows the
// newest message to the selected person; without one, m is no action.
func TestTheMailboxShowsWhatWasSent(t *testing.T) {
	svc, sink := invitationsFixture(t)
	code := deliveredCode(t, svc, sink, "user000000@example.com")
	mailbox := func(ctx context.Context) ([]MailMessage, error) {
		var out []MailMessage
		for _, r := range sink.Messages() {
			p, err := smtpsink.Parse(r.Data)
			if err != nil {
				return nil, err
			}
			out = append(out, MailMessage{To: r.To[0], Subject: p.Subject, Text: p.Text, At: r.At})
		}
		return out, nil
	}
	m := New(svc, Options{Actor: testActor, Renderer: asciiRenderer(), Now: func() time.Time { return fixedNow }, Location: time.UTC, NoEvents: true, Mailbox: mailbox})
	m = update(t, m, tea.WindowSizeMsg{Width: 120, Height: 40})
	m = run(t, m, m.mgr.Init())
	m.mgr.focusName(paneInvitations)
	m = press(t, m, keys("G")) // Person 000000, the oldest
	m = press(t, m, keys("m"))
	d, ok := m.dialog.(*mailDialog)
	v := m.View()
	if !ok || !strings.Contains(v, "Mail to user000000@example.com") || !strings.Contains(v, "Subject") || !strings.Contains(v, code) {
		t.Fatalf("m does not show the message with the code:\n%s", v)
	}
	// A long message scrolls.
	d.msg.Text = strings.Repeat("line\n", 100) + "the end"
	if v := m.View(); strings.Contains(v, "the end") || !strings.Contains(v, "lines 1-") {
		t.Errorf("a long message is not cut to the screen:\n%s", v)
	}
	m = press(t, m, keys("G"))
	if v := m.View(); !strings.Contains(v, "the end") || !strings.Contains(v, "of 101") {
		t.Errorf("G does not scroll to the end:\n%s", v)
	}
	m = press(t, m, keyEsc)
	if m.dialog != nil {
		t.Error("esc did not close the message")
	}
	m = press(t, m, keys("k"), keys("m")) // Person 000001: refused, nothing arrived
	if f := footerLine(m); !strings.Contains(f, "no message to user000001@example.com in the mailbox") {
		t.Errorf("m for someone whose mail never arrived: %q", f)
	}

	plain := newTestModel(t, svc, 120, 40)
	for _, a := range plain.invitations().Actions() {
		if a.Key.Help().Key == "m" {
			t.Error("a console without a mailbox offers to show mail")
		}
	}
}

// TestThePasswordChangeAsksForTheAuthenticator: a person who enrolled an
// authenticator is asked its code in their own password change; the
// screen moves to the field, which takes digits only.
func TestThePasswordChangeAsksForTheAuthenticator(t *testing.T) {
	svc, sink := mailFixture(t, 5)
	sk := simtest.NewKey(t, "KD-0001")
	if _, err := svc.KeyConnected(t.Context(), app.Plug{ID: "sim", Kind: "simulated", Place: app.PlaceLocal, Open: func() (proto.Transport, error) { return sk.Plug(), nil }}); err != nil {
		t.Fatal(err)
	}
	ac, err := svc.AssignKey(t.Context(), testActor, "KD-0001", "user000000@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ActivateKey(t.Context(), testActor, "KD-0001", strings.ReplaceAll(ac.String(), " ", "")); err != nil {
		t.Fatal(err)
	}
	code := inviteCode(t, svc, sink, "user000000@example.com")
	start, err := svc.BeginEnrollment(t.Context(), testActor, code)
	if err != nil {
		t.Fatal(err)
	}
	step := enroll.Step(storeNow)
	now, _ := enroll.CodeAt(start.Secret, step)
	if _, err := svc.ConfirmEnrollment(t.Context(), testActor, code, now); err != nil {
		t.Fatal(err)
	}

	m := newTestModel(t, svc, 100, 40)
	m = press(t, m, keyTab) // Keys: KD-0001, active and plugged in
	m = press(t, m, keys("o"))
	d, ok := m.dialog.(*OwnPassword)
	if !ok || !strings.Contains(m.View(), "Authenticator code (if you enrolled one)") {
		t.Fatalf("o did not open the password change with an authenticator field:\n%s", m.View())
	}
	m = press(t, m, append(typeText("123456"), keyEnter, keyEnter, keyEnter)...)
	m = press(t, m, append(typeText("New-Secret-1"), keyEnter)...)
	if v := m.View(); !strings.Contains(v, "you enrolled an authenticator app: enter the 6-digit code") || d.focus != fieldTOTP {
		t.Fatalf("no authenticator code: focus %d, screen:\n%s", d.focus, v)
	}
	m = press(t, m, keys("a"))
	if d.fields[fieldTOTP].Value() != "" || !strings.Contains(m.View(), "the authenticator's code is 6 digits") {
		t.Errorf("the authenticator field took a letter: %q", d.fields[fieldTOTP].Value())
	}
	m = press(t, m, append(typeText(totpNot(t, start.Secret, step)), keyEnter, keyEnter)...)
	if v := m.View(); !strings.Contains(v, "this code is not the authenticator's") || d.focus != fieldTOTP || d.fields[fieldTOTP].Value() != "" {
		t.Fatalf("a wrong authenticator code: focus %d, screen:\n%s", d.focus, v)
	}
	// The app's next code (this one's step was used to enroll) passes the
	// check; what refuses the change now is the key's PIN, not the app.
	next, _ := enroll.CodeAt(start.Secret, step+1)
	cmd := pressOnly(m, append(typeText(next), keyEnter, keyEnter)...)
	done, ok := cmd().(ownPasswordDoneMsg)
	if !ok || done.err == nil {
		t.Fatalf("the change went through: %+v", done)
	}
	if errors.Is(done.err, app.ErrNeedAuthenticator) || errors.Is(done.err, enroll.ErrWrongTOTP) || errors.Is(done.err, enroll.ErrReusedTOTP) {
		t.Errorf("the right authenticator code was refused: %v", done.err)
	}
}
