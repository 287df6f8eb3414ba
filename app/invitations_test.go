package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"keydesk/config"
	"keydesk/enroll"
	"keydesk/internal/simtest"
	"keydesk/internal/smtpsink"
	"keydesk/keys"
	"keydesk/mailer"
	"keydesk/store"
)

// mailDomain is a real SMTP server (STARTTLS, AUTH PLAIN) and the
// configuration that sends to it, for domains corp and lab with
// invitations on in those named.
type mailDomain struct {
	sink *smtpsink.Sink
	conf string
	dir  string
}

func newMailDomain(t *testing.T, invite ...string) *mailDomain {
	t.Helper()
	tc, ca, err := smtpsink.NewCert("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	sink, err := smtpsink.Start(smtpsink.Options{TLS: tc, Username: "keydesk", Password: "mail-pw"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	dir := t.TempDir()
	caFile, pwFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "mail.pw")
	os.WriteFile(caFile, ca, 0o600)
	os.WriteFile(pwFile, []byte("mail-pw"), 0o600)
	conf := fmt.Sprintf("[mail]\nhost = %q\nport = %d\nsecurity = \"starttls\"\nusername = \"keydesk\"\npassword_file = %q\nfrom = \"KeyDesk <keydesk@example.com>\"\nca_file = %q\n\n[invitations]\norganisation = \"Example Corp\"\nwhere = \"to the kiosk at reception\"\n\n",
		sink.Host(), sink.Port(), pwFile, caFile)
	for _, d := range []string{"corp", "lab"} {
		conf += fmt.Sprintf("[[domain]]\nname = %q\nurls = [\"ldaps://dc.%s.test:636\"]\nbase_dn = \"DC=%s,DC=test\"\nbind_dn = \"svc@%s.test\"\nbind_password_env = \"UNUSED_PW\"\n", d, d, d, d)
		if containsStr(invite, d) {
			conf += "[domain.invitations]\nenabled = true\n"
		}
		conf += "\n"
	}
	return &mailDomain{sink: sink, conf: conf, dir: dir}
}

// service is a service over a database in the mail domain's folder (a
// second call opens the same database, as a restarted process does).
func (m *mailDomain) service(t testing.TB, opts ...Option) *Service {
	t.Helper()
	cfg, err := config.Parse(filepath.Join(m.dir, "k.toml"), []byte(m.conf))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), filepath.Join(m.dir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mkFile := filepath.Join(m.dir, "master.key")
	if _, err := os.Stat(mkFile); err != nil {
		var k keys.MasterKey
		rand.Read(k[:])
		if err := keys.WriteMasterKeyFile(mkFile, k); err != nil {
			t.Fatal(err)
		}
	}
	mk, err := UnlockMasterKey(context.Background(), st, MasterKeyFile{Path: mkFile})
	if err != nil {
		t.Fatal(err)
	}
	return New(cfg, st, append([]Option{WithMasterKey(mk), WithTrustedMaker(simtest.Maker(t).Cert())}, opts...)...)
}

var mailedCode = regexp.MustCompile(`[A-Z2-7]{4}(-[A-Z2-7]{4}){5}`)

// mails are the messages the server holds, parsed, by recipient.
func (m *mailDomain) mails(t *testing.T) map[string][]smtpsink.Parsed {
	t.Helper()
	out := map[string][]smtpsink.Parsed{}
	for _, r := range m.sink.Messages() {
		p, err := smtpsink.Parse(r.Data)
		if err != nil {
			t.Fatal(err)
		}
		if m.conf != "" && (!r.TLS || r.AuthUser != "keydesk") {
			t.Errorf("a message to %v came without TLS (%v) or login (%q)", r.To, r.TLS, r.AuthUser)
		}
		out[r.To[0]] = append(out[r.To[0]], p)
	}
	return out
}

// codeIn is the enrollment code of the person's newest invitation.
func (m *mailDomain) codeIn(t *testing.T, email string) string {
	t.Helper()
	got := m.mails(t)[email]
	if len(got) == 0 {
		t.Fatalf("no invitation to %s", email)
	}
	code := mailedCode.FindString(got[len(got)-1].Text)
	if code == "" {
		t.Fatalf("the invitation to %s holds no code:\n%s", email, got[len(got)-1].Text)
	}
	return code
}

func deliver(t *testing.T, s *Service) MailReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := s.DeliverMail(ctx, testHelpdesk)
	if err != nil {
		t.Fatalf("deliver: %v", err)
	}
	return rep
}

func TestSyncInvitesEachNewPersonOnce(t *testing.T) {
	m := newMailDomain(t, "corp", "lab")
	s := m.service(t)
	ctx := context.Background()
	// Ann is in both domains; Ben has no email; Cy holds a key before the
	// sync brings him into lab.
	sum := apply(t, s, "corp", full(user("corp", 1, "ann", "ann@example.com", "Ann <b>Lee</b>"), user("corp", 2, "ben", "", "Ben"),
		user("corp", 3, "cy", "cy@example.com", "Cy")), nil, false)
	if sum.Invited != 2 {
		t.Fatalf("the first corp sync invited %d, want 2 (Ann and Cy)", sum.Invited)
	}
	if sum := apply(t, s, "lab", full(user("lab", 1, "ann2", "ANN@example.com", "Ann"), user("lab", 4, "dee", "dee@example.com", "Dee")), nil, false); sum.Invited != 1 {
		t.Fatalf("the lab sync invited %d, want 1 (Dee: Ann was invited already)", sum.Invited)
	}
	if rep := deliver(t, s); rep.Sent != 3 || rep.Retry+rep.GaveUp != 0 {
		t.Fatalf("delivery: %+v, want 3 sent", rep)
	}
	mails := m.mails(t)
	if len(mails) != 3 || len(mails["ann@example.com"]) != 1 {
		t.Fatalf("mail went to %v, want one each to Ann, Cy and Dee", mails)
	}
	ann := mails["ann@example.com"][0]
	for _, want := range []string{"Hello Ann <b>Lee</b>", "Example Corp", "to the kiosk at reception", "Enroll an authenticator"} {
		if !strings.Contains(ann.Text, want) {
			t.Errorf("the invitation text lacks %q:\n%s", want, ann.Text)
		}
	}
	if strings.Contains(ann.HTML, "<b>Lee</b>") {
		t.Error("the HTML part carries the directory's markup unescaped")
	}
	if ann.Subject != "Example Corp: set up your sign-in code" || !strings.HasPrefix(ann.MessageID, "invitation-") {
		t.Errorf("subject %q, Message-ID %q", ann.Subject, ann.MessageID)
	}

	// Syncing again, however often, sends nothing new.
	for range 2 {
		for _, d := range []string{"corp", "lab"} {
			snap := full(user("corp", 1, "ann", "ann@example.com", "Ann <b>Lee</b>"), user("corp", 2, "ben", "", "Ben"), user("corp", 3, "cy", "cy@example.com", "Cy"))
			if d == "lab" {
				snap = full(user("lab", 1, "ann2", "ANN@example.com", "Ann"), user("lab", 4, "dee", "dee@example.com", "Dee"))
			}
			if sum := apply(t, s, d, snap, nil, false); sum.Invited != 0 {
				t.Errorf("a repeated %s sync invited %d", d, sum.Invited)
			}
		}
	}
	if rep := deliver(t, s); rep.Sent != 0 || len(m.sink.Messages()) != 3 {
		t.Errorf("after repeated syncs: %+v, %d messages", rep, len(m.sink.Messages()))
	}
	// Ben gets an email: he is invited then. The codes differ and never
	// show in the database.
	apply(t, s, "corp", full(user("corp", 1, "ann", "ann@example.com", "Ann"), user("corp", 2, "ben", "ben@example.com", "Ben"), user("corp", 3, "cy", "cy@example.com", "Cy")), nil, false)
	deliver(t, s)
	if len(m.mails(t)["ben@example.com"]) != 1 {
		t.Error("Ben was not invited once he had an email")
	}
	codes := map[string]bool{}
	for _, who := range []string{"ann@example.com", "cy@example.com", "dee@example.com", "ben@example.com"} {
		codes[m.codeIn(t, who)] = true
	}
	if len(codes) != 4 {
		t.Errorf("%d distinct codes for 4 people", len(codes))
	}
	s.st.Close()
	raw, _ := os.ReadFile(filepath.Join(m.dir, store.FileName))
	wal, _ := os.ReadFile(filepath.Join(m.dir, store.FileName+"-wal"))
	for c := range codes {
		for _, form := range []string{c, strings.ReplaceAll(c, "-", "")} {
			if strings.Contains(string(raw)+string(wal), form) {
				t.Errorf("the database holds an enrollment code in plain text (%s)", form)
			}
		}
	}
	_ = ctx
}

func TestAPersonWithAKeyIsNotInvited(t *testing.T) {
	m := newMailDomain(t, "lab")
	s := m.service(t)
	apply(t, s, "corp", full(user("corp", 1, "cy", "cy@example.com", "Cy")), nil, false)
	k := simtest.NewKey(t, "KD-CY")
	plugSim(t, s, k)
	if _, err := s.AssignKey(context.Background(), testAdmin, "KD-CY", "cy@example.com"); err != nil {
		t.Fatal(err)
	}
	if sum := apply(t, s, "lab", full(user("lab", 1, "cy2", "cy@example.com", "Cy")), nil, false); sum.Invited != 0 {
		t.Errorf("Cy, who holds a reserved key, was invited")
	}
	// corp has invitations off: nobody from there is invited by a sync.
	if sum := apply(t, s, "corp", full(user("corp", 1, "cy", "cy@example.com", "Cy"), user("corp", 2, "eve", "eve@example.com", "Eve")), nil, false); sum.Invited != 0 {
		t.Errorf("a domain with invitations off invited %d", sum.Invited)
	}
}

func TestRefusedSendsAreRetriedThenGivenUp(t *testing.T) {
	m := newMailDomain(t)
	s := m.service(t)
	ctx := context.Background()
	if _, err := s.AddEmployee(ctx, testAdmin, "fay@example.com", "Fay"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddEmployee(ctx, testAdmin, "gus@example.com", "Gus"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Invite(ctx, testHelpdesk, []string{"fay@example.com"}, false); err != nil {
		t.Fatal(err)
	}
	m.sink.RefuseNext(451, "mailbox busy, try later")
	if rep := deliver(t, s); rep.Retry != 1 || rep.Sent != 0 || !strings.Contains(strings.Join(rep.Errors, " "), "451") {
		t.Fatalf("a 451: %+v, want one retry naming 451", rep)
	}
	iv, err := s.InvitationOf(ctx, testAdmin, byEmail(t, s, "fay@example.com").ID)
	if err != nil || iv.State != InviteRetrying || !strings.Contains(iv.Detail, "451") || iv.Attempts != 1 {
		t.Fatalf("after a 451 the invitation is %+v (%v), want retrying with the error", iv, err)
	}
	// Not before its backoff...
	if rep := deliver(t, s); rep.Sent != 0 || rep.Pending != 1 {
		t.Errorf("before the backoff: %+v", rep)
	}
	// ...and after it, sent once.
	later := time.Now().Add(mailer.Backoff(1) + time.Second)
	s.st.SetClock(func() time.Time { return later })
	s.now = func() time.Time { return later }
	if rep := deliver(t, s); rep.Sent != 1 {
		t.Fatalf("after the backoff: %+v", rep)
	}
	if iv, _ := s.InvitationOf(ctx, testAdmin, byEmail(t, s, "fay@example.com").ID); iv.State != InviteSent || iv.SentAt == nil {
		t.Errorf("after sending, the invitation is %+v", iv)
	}

	// A recipient refused for good is given up at once, and shown so.
	if _, err := s.Invite(ctx, testAdmin, []string{"gus@example.com"}, false); err != nil {
		t.Fatal(err)
	}
	m.sink.RefuseNext(550, "no such user here")
	if rep := deliver(t, s); rep.GaveUp != 1 {
		t.Fatalf("a 550: %+v, want given up", rep)
	}
	ivs, err := s.Invitations(ctx, testAdmin)
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, v := range ivs {
		states[v.Email] = v.State + " " + v.Detail
	}
	if !strings.HasPrefix(states["gus@example.com"], InviteFailed) || !strings.Contains(states["gus@example.com"], "no such user") || !strings.HasPrefix(states["fay@example.com"], InviteSent) {
		t.Errorf("the invitations view: %v", states)
	}
	if got := auditActions(t, s, "invitation:2"); !containsStr(got, "invitation.mail:failure") {
		t.Errorf("the given-up mail is not audited as a failure: %v", got)
	}
	if n := len(m.sink.Messages()); n != 1 {
		t.Errorf("the server holds %d messages, want 1", n)
	}
}

func TestInviteAndResend(t *testing.T) {
	m := newMailDomain(t)
	s := m.service(t)
	ctx := context.Background()
	s.AddEmployee(ctx, testAdmin, "hal@example.com", "Hal")
	res, err := s.Invite(ctx, testHelpdesk, []string{"hal@example.com", "nobody@example.com"}, false)
	if err == nil || len(res) != 2 || !res[0].Invited || res[1].Invited || !strings.Contains(res[1].Error, "no employee with email nobody@example.com") {
		t.Fatalf("invite: %+v, %v", res, err)
	}
	if _, err := s.Invite(ctx, testHelpdesk, []string{"hal@example.com"}, false); !errors.Is(err, nil) && !strings.Contains(fmt.Sprint(err), "1 of 1") {
		t.Fatal(err)
	}
	res, _ = s.Invite(ctx, testHelpdesk, []string{"hal@example.com"}, false)
	if res[0].Invited || !strings.Contains(res[0].Error, "already invited") || !strings.Contains(res[0].Error, "--resend") {
		t.Errorf("a second invite without resend: %+v", res)
	}
	if _, err := s.Invite(ctx, Actor{Name: "aud", Role: RoleAuditor}, []string{"hal@example.com"}, true); !errors.Is(err, ErrPermission) {
		t.Errorf("an auditor invited: %v", err)
	}
	deliver(t, s)
	first := m.codeIn(t, "hal@example.com")
	if _, err := s.Invite(ctx, testHelpdesk, []string{"hal@example.com"}, true); err != nil {
		t.Fatal(err)
	}
	deliver(t, s)
	second := m.codeIn(t, "hal@example.com")
	if first == second {
		t.Fatal("a resend sent the same code")
	}
	if _, err := s.BeginEnrollment(ctx, testHelpdesk, first); !errors.Is(err, enroll.ErrCodeReplaced) {
		t.Errorf("the first code after a resend: %v, want %v", err, enroll.ErrCodeReplaced)
	}
	if _, err := s.BeginEnrollment(ctx, testHelpdesk, second); err != nil {
		t.Errorf("the resent code: %v", err)
	}
	// A resend before the first went out cancels it: one message, the new
	// code.
	s.AddEmployee(ctx, testAdmin, "ivy@example.com", "Ivy")
	s.Invite(ctx, testHelpdesk, []string{"ivy@example.com"}, false)
	s.Invite(ctx, testHelpdesk, []string{"ivy@example.com"}, true)
	deliver(t, s)
	if got := m.mails(t)["ivy@example.com"]; len(got) != 1 {
		t.Errorf("Ivy got %d messages, want 1", len(got))
	}
}

// A crash after the decision to invite and before the send: the process
// that comes next sends it, once.
func TestACrashBeforeSendingSendsOnceAfterRestart(t *testing.T) {
	m := newMailDomain(t, "corp")
	var calls atomic.Int32
	dead := m.service(t, WithMailer(senderFunc(func(context.Context, mailer.Message) error {
		calls.Add(1)
		return errors.New("the process died")
	})))
	apply(t, dead, "corp", full(user("corp", 1, "jo", "jo@example.com", "Jo")), nil, false)
	dead.st.Close()
	if calls.Load() != 0 || len(m.sink.Messages()) != 0 {
		t.Fatal("something was sent before the restart")
	}

	s := m.service(t)
	if rep := deliver(t, s); rep.Sent != 1 {
		t.Fatalf("after the restart: %+v", rep)
	}
	if rep := deliver(t, s); rep.Sent != 0 {
		t.Errorf("a second pass sent again: %+v", rep)
	}
	apply(t, s, "corp", full(user("corp", 1, "jo", "jo@example.com", "Jo")), nil, false)
	deliver(t, s)
	if n := len(m.mails(t)["jo@example.com"]); n != 1 {
		t.Errorf("Jo got %d invitations, want 1", n)
	}
}

type senderFunc func(context.Context, mailer.Message) error

func (f senderFunc) Send(ctx context.Context, m mailer.Message) error { return f(ctx, m) }

// enrolled invites the person, enrolls them with their code and returns
// the secret.
func enrolledPerson(t *testing.T, m *mailDomain, s *Service, email string) (enroll.Secret, string) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Invite(ctx, testHelpdesk, []string{email}, false); err != nil {
		t.Fatal(err)
	}
	deliver(t, s)
	code := m.codeIn(t, email)
	st, err := s.BeginEnrollment(ctx, kioskActor, code)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	totp, _ := enroll.CodeAt(st.Secret, enroll.Step(now))
	if _, err := s.ConfirmEnrollment(ctx, kioskActor, code, totp); err != nil {
		t.Fatal(err)
	}
	return st.Secret, code
}

var kioskActor = Actor{Name: "kiosk:lobby", Role: RoleKiosk}

func TestEnrollment(t *testing.T) {
	m := newMailDomain(t)
	s := m.service(t)
	ctx := context.Background()
	s.AddEmployee(ctx, testAdmin, "kim@example.com", "Kim")
	s.Invite(ctx, testHelpdesk, []string{"kim@example.com"}, false)
	deliver(t, s)
	code := m.codeIn(t, "kim@example.com")

	// Codes that are not one, or not this one, are refused with what to do.
	for _, tt := range []struct{ typed, want string }{
		{"12345", "has 24 letters and digits"},
		{"AAAA-AAAA-AAAA-AAAA-AAAA-AAA8", "not an enrollment code"},
		{"AAAA-AAAA-AAAA-AAAA-AAAA-AAAA", enroll.ErrWrongCode.Error()},
	} {
		if _, err := s.BeginEnrollment(ctx, kioskActor, tt.typed); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("code %q: %v, want %q", tt.typed, err, tt.want)
		}
	}
	// The right one, typed loosely, shows the QR code's URI.
	st, err := s.BeginEnrollment(ctx, kioskActor, strings.ToLower(strings.ReplaceAll(code, "-", " ")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(st.URI, "otpauth://totp/Example%20Corp:kim@example.com?") || !strings.Contains(st.URI, "secret="+st.Secret.Base32()) || !strings.Contains(st.URI, "issuer=Example%20Corp") {
		t.Errorf("URI %s... (issuer, account or secret wrong)", st.URI[:min(len(st.URI), 40)])
	}
	if fmt.Sprint(st.Secret) != "Secret(redacted)" {
		t.Error("the secret prints")
	}
	now := time.Now()
	wrong, _ := enroll.CodeAt(st.Secret, enroll.Step(now)+5)
	if _, err := s.ConfirmEnrollment(ctx, kioskActor, code, wrong); !errors.Is(err, enroll.ErrWrongTOTP) {
		t.Errorf("a wrong authenticator code: %v", err)
	}
	right, _ := enroll.CodeAt(st.Secret, enroll.Step(now))
	ev, err := s.ConfirmEnrollment(ctx, kioskActor, code, right)
	if err != nil || ev.Email == nil || *ev.Email != "kim@example.com" {
		t.Fatalf("confirm: %+v %v", ev, err)
	}
	// The code enrolls once.
	if _, err := s.BeginEnrollment(ctx, kioskActor, code); !errors.Is(err, enroll.ErrCodeUsed) {
		t.Errorf("a used code: %v", err)
	}
	iv, _ := s.InvitationOf(ctx, testAdmin, ev.ID)
	if iv.State != InviteEnrolled || iv.EnrolledAt == nil {
		t.Errorf("the invitation after enrolling: %+v", iv)
	}
	// The authenticator's code that confirmed cannot be used again; the
	// next step's can, once.
	if err := s.checkAuthenticator(ctx, kioskActor, ev.ID, right, "test"); !errors.Is(err, enroll.ErrReusedTOTP) {
		t.Errorf("a replayed authenticator code: %v", err)
	}
	s.st.SetClock(func() time.Time { return now.Add(enroll.Period) })
	next, _ := enroll.CodeAt(st.Secret, enroll.Step(now)+1)
	if err := s.checkAuthenticator(ctx, kioskActor, ev.ID, next, "test"); err != nil {
		t.Errorf("the next code: %v", err)
	}
	if err := s.checkAuthenticator(ctx, kioskActor, ev.ID, next, "test"); !errors.Is(err, enroll.ErrReusedTOTP) {
		t.Errorf("the next code twice: %v", err)
	}
	if err := s.checkAuthenticator(ctx, kioskActor, ev.ID, "", "test"); !errors.Is(err, ErrNeedAuthenticator) {
		t.Errorf("no code from an enrolled person: %v", err)
	}

	// An expired code is refused as such.
	s.AddEmployee(ctx, testAdmin, "lou@example.com", "Lou")
	s.Invite(ctx, testHelpdesk, []string{"lou@example.com"}, false)
	deliver(t, s)
	s.st.SetClock(func() time.Time { return now.Add(config.DefaultInviteTTL + time.Minute) })
	if _, err := s.BeginEnrollment(ctx, kioskActor, m.codeIn(t, "lou@example.com")); !errors.Is(err, enroll.ErrCodeExpired) {
		t.Errorf("an expired code: %v", err)
	}
	s.now = func() time.Time { return now.Add(config.DefaultInviteTTL + time.Minute) }
	if iv, _ := s.InvitationOf(ctx, testAdmin, byEmail(t, s, "lou@example.com").ID); iv.State != InviteExpired {
		t.Errorf("an expired invitation shows as %q", iv.State)
	}
	for _, a := range []string{"enrollment.begin:failure", "enrollment.confirm:failure", "enrollment.confirm:success"} {
		if got := auditActions(t, s, employeeTarget(ev.ID)); !containsStr(got, a) {
			t.Errorf("no %s in Kim's audit: %v", a, got)
		}
	}
}

func TestResetAndRekeyKeepEnrollmentsRight(t *testing.T) {
	m := newMailDomain(t)
	s := m.service(t)
	ctx := context.Background()
	s.AddEmployee(ctx, testAdmin, "max@example.com", "Max")
	secret, _ := enrolledPerson(t, m, s, "max@example.com")
	id := byEmail(t, s, "max@example.com").ID

	// A rekey re-seals the authenticator: its codes still work.
	if _, err := s.RekeyMasterKey(ctx, testAdmin, MasterKeyFile{Path: filepath.Join(m.dir, "master.key")}); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(enroll.Period)
	s.st.SetClock(func() time.Time { return later })
	code, _ := enroll.CodeAt(secret, enroll.Step(later))
	if err := s.checkAuthenticator(ctx, kioskActor, id, code, "test"); err != nil {
		t.Fatalf("after a rekey: %v", err)
	}

	if _, err := s.ResetEnrollment(ctx, kioskActor, "max@example.com"); !errors.Is(err, ErrPermission) {
		t.Errorf("a kiosk reset an enrollment: %v", err)
	}
	if _, err := s.ResetEnrollment(ctx, testHelpdesk, "max@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := s.checkAuthenticator(ctx, kioskActor, id, "", "test"); err != nil {
		t.Errorf("after a reset the code is still asked: %v", err)
	}
	if iv, _ := s.InvitationOf(ctx, testAdmin, id); iv.State != InviteReset || iv.EnrolledAt != nil {
		t.Errorf("after a reset the invitation shows %q (enrolled %v), want %q", iv.State, iv.EnrolledAt, InviteReset)
	}
	if _, err := s.ResetEnrollment(ctx, testHelpdesk, "max@example.com"); err == nil || !strings.Contains(err.Error(), "nothing to reset") {
		t.Errorf("a second reset: %v", err)
	}
	if got := auditActions(t, s, employeeTarget(id)); !containsStr(got, "enrollment.reset:success") {
		t.Errorf("the reset is not audited: %v", got)
	}
}

// A person who enrolled an authenticator proves it before their own
// password change at their key: without the app's code, or with a wrong
// one, nothing changes on the key or in AD.
func TestSelfServiceAsksTheAuthenticatorAgainstSamba(t *testing.T) {
	sink, err := smtpsink.Start(smtpsink.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	p := newPWDomain(t, "PWTOTP.KEYDESK.TEST", fmt.Sprintf("[mail]\nhost = %q\nport = %d\nsecurity = \"none\"\nfrom = \"k@example.com\"\n", sink.Host(), sink.Port()))
	s := p.s
	ctx := context.Background()
	login := p.login("alice")
	k, _ := p.activeKey(t, s, "SIM-TOTP", "alice@example.com")
	onKey := p.typed(t, k, login)
	if err := p.dc.Modify(ctx, p.dc.BaseDN, map[string][]string{"minPwdAge": {"0"}}); err != nil {
		t.Fatal(err)
	}
	m := &mailDomain{sink: sink}
	secret, _ := enrolledPerson(t, m, s, "alice@example.com")

	const mine = "Totp-Proven-Password-31"
	p.seen = append(p.seen, mine)
	self := func(totp string) (ChangeResult, error) {
		return s.ChangeOwnPassword(ctx, testHelpdesk, SelfChange{Serial: "SIM-TOTP", On: SelfBoth, Current: onKey, New: mine, TOTP: totp})
	}
	later := time.Now().Add(enroll.Period)
	s.st.SetClock(func() time.Time { return later })
	wrong, _ := enroll.CodeAt(secret, enroll.Step(later)+4)
	for _, tt := range []struct {
		totp string
		want error
	}{{"", ErrNeedAuthenticator}, {wrong, enroll.ErrWrongTOTP}} {
		if _, err := self(tt.totp); !errors.Is(err, tt.want) {
			t.Errorf("authenticator code %q: %v, want %v", tt.totp, err, tt.want)
		}
	}
	if p.typed(t, k, login) != onKey || !p.binds(t, "alice", onKey) {
		t.Fatal("a change without the authenticator touched the key or AD")
	}
	right, _ := enroll.CodeAt(secret, enroll.Step(later))
	if r, err := self(right); err != nil || !r.Done() {
		t.Fatalf("with the authenticator's code: %+v %v", r, err)
	}
	if p.typed(t, k, login) != mine || !p.binds(t, "alice", mine) {
		t.Fatal("the change with the authenticator's code did not reach the key and AD")
	}
	if got := auditActions(t, s, "account:corp\\alice"); !containsStr(got, "enrollment.verify:failure") {
		t.Errorf("the wrong authenticator code is not audited: %v", got)
	}
}

func TestAuthenticatorLock(t *testing.T) {
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		n    int
		want time.Duration // 0: not locked
	}{{1, 0}, {4, 0}, {5, time.Minute}, {6, 2 * time.Minute}, {9, 16 * time.Minute}, {20, 24 * time.Hour}, {100, 24 * time.Hour}} {
		got := authenticatorLock(tt.n, now)
		switch {
		case tt.want == 0 && got != nil:
			t.Errorf("after %d wrong codes: locked until %s, want not locked", tt.n, got)
		case tt.want != 0 && (got == nil || got.Sub(now) != tt.want):
			t.Errorf("after %d wrong codes: locked until %v, want for %s", tt.n, got, tt.want)
		}
	}
}

// Guessing the authenticator's code is slowed down: after 5 wrong codes
// in a row even the right one waits; a right code after the lock clears
// the count.
func TestWrongAuthenticatorCodesLockIt(t *testing.T) {
	m := newMailDomain(t)
	s := m.service(t)
	ctx := context.Background()
	s.AddEmployee(ctx, testAdmin, "nia@example.com", "Nia")
	secret, _ := enrolledPerson(t, m, s, "nia@example.com")
	id := byEmail(t, s, "nia@example.com").ID
	now := time.Now().Add(enroll.Period)
	s.st.SetClock(func() time.Time { return now })
	wrong, _ := enroll.CodeAt(secret, enroll.Step(now)+7)
	for i := range authenticatorTries {
		if err := s.checkAuthenticator(ctx, kioskActor, id, wrong, "test"); !errors.Is(err, enroll.ErrWrongTOTP) {
			t.Fatalf("wrong code %d: %v", i+1, err)
		}
	}
	right, _ := enroll.CodeAt(secret, enroll.Step(now))
	if err := s.checkAuthenticator(ctx, kioskActor, id, right, "test"); !errors.Is(err, ErrAuthenticatorLocked) || !strings.Contains(err.Error(), "ask the helpdesk") {
		t.Fatalf("the right code while locked: %v", err)
	}
	later := now.Add(2 * time.Minute)
	s.st.SetClock(func() time.Time { return later })
	right, _ = enroll.CodeAt(secret, enroll.Step(later))
	if err := s.checkAuthenticator(ctx, kioskActor, id, right, "test"); err != nil {
		t.Fatalf("the right code after the lock: %v", err)
	}
	if en, _ := s.st.Enrollment(ctx, id); en.FailedAttempts != 0 || en.LockedUntil != nil {
		t.Errorf("a right code leaves %d failures, locked until %v", en.FailedAttempts, en.LockedUntil)
	}
}

// Mail whose code can no longer be used does not go: a leaver's, an
// expired one's, one to an address the person no longer has; and a new
// address gets a new invitation.
func TestTheOutboxSendsOnlyUsableCodes(t *testing.T) {
	m := newMailDomain(t, "corp")
	s := m.service(t, WithMailer(senderFunc(func(context.Context, mailer.Message) error { return errors.New("451 try later") })))
	ctx := context.Background()
	apply(t, s, "corp", full(user("corp", 1, "oz", "oz@example.com", "Oz"), user("corp", 2, "pia", "pia@example.com", "Pia"), user("corp", 3, "quinn", "quinn@example.com", "Quinn")), nil, false)
	// Oz leaves, Pia's address changes, Quinn stays; nothing has gone yet.
	sum := apply(t, s, "corp", full(user("corp", 2, "pia", "pia.new@example.com", "Pia"), user("corp", 3, "quinn", "quinn@example.com", "Quinn")), map[string]string{guid("corp", 1): "deleted"}, true)
	if sum.Invited != 1 {
		t.Errorf("the sync after Pia's address changed invited %d, want 1 (Pia, at her new address)", sum.Invited)
	}
	s = m.service(t)
	rep := deliver(t, s)
	if rep.Sent != 2 || rep.Pending != 0 {
		t.Fatalf("delivery: %+v, want 2 sent (Quinn, Pia's new address): Oz's mail was cancelled when he left, Pia's old one when she was invited again", rep)
	}
	got := m.mails(t)
	if len(got["oz@example.com"]) != 0 || len(got["pia@example.com"]) != 0 || len(got["pia.new@example.com"]) != 1 || len(got["quinn@example.com"]) != 1 {
		t.Errorf("mail went to %v", got)
	}
	if _, err := s.BeginEnrollment(ctx, kioskActor, m.codeIn(t, "pia.new@example.com")); err != nil {
		t.Errorf("Pia's new code: %v", err)
	}
	// Quinn leaves after his mail went: his code no longer enrolls.
	quinn := m.codeIn(t, "quinn@example.com")
	apply(t, s, "corp", full(user("corp", 2, "pia", "pia.new@example.com", "Pia")), map[string]string{guid("corp", 3): "deleted"}, true)
	if _, err := s.BeginEnrollment(ctx, kioskActor, quinn); err == nil || !strings.Contains(err.Error(), "who was removed") {
		t.Errorf("a leaver's code: %v", err)
	}

	// An invitation whose code expired before its mail could go is not
	// sent; a plain invite replaces it without --resend.
	s.AddEmployee(ctx, testAdmin, "rex@example.com", "Rex")
	if _, err := s.Invite(ctx, testHelpdesk, []string{"rex@example.com"}, false); err != nil {
		t.Fatal(err)
	}
	late := time.Now().Add(config.DefaultInviteTTL + time.Hour)
	s.st.SetClock(func() time.Time { return late })
	if rep := deliver(t, s); rep.Sent != 0 || rep.Cancelled != 1 {
		t.Errorf("an expired invitation's mail: %+v", rep)
	}
	if res, err := s.Invite(ctx, testHelpdesk, []string{"rex@example.com"}, false); err != nil || !res[0].Invited {
		t.Errorf("inviting again after the code expired: %+v %v", res, err)
	}
	if rep := deliver(t, s); rep.Sent != 1 {
		t.Errorf("the new invitation: %+v", rep)
	}
}
