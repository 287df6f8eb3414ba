package cli

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"keydesk/enroll"
	"keydesk/internal/adtest"
	"keydesk/internal/qrtest"
	"keydesk/internal/smtpsink"
)

// mailConfig starts a real SMTP server (STARTTLS, AUTH PLAIN) and returns
// it with the [mail] section that reaches it.
func mailConfig(t *testing.T) (*smtpsink.Sink, string) {
	t.Helper()
	tc, ca, err := smtpsink.NewCert("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	sink, err := smtpsink.Start(smtpsink.Options{TLS: tc, Username: "keydesk", Password: "mail-secret"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	dir := t.TempDir()
	caFile := writeFile(t, filepath.Join(dir, "ca.pem"), string(ca), 0o600)
	pwFile := writeFile(t, filepath.Join(dir, "mail.pw"), "mail-secret\n", 0o600)
	return sink, fmt.Sprintf("[mail]\nhost = %q\nport = %d\nusername = \"keydesk\"\npassword_file = %q\nfrom = \"KeyDesk <keydesk@example.com>\"\nca_file = %q\n\n[invitations]\norganisation = \"Example Corp\"\n\n",
		sink.Host(), sink.Port(), pwFile, caFile)
}

var inviteCodeRe = regexp.MustCompile(`[A-Z2-7]{4}(-[A-Z2-7]{4}){5}`)

// codeFor is the code of the newest invitation the sink holds for email.
func codeFor(t *testing.T, sink *smtpsink.Sink, email string) string {
	t.Helper()
	code := ""
	for _, r := range sink.Messages() {
		if r.To[0] != email {
			continue
		}
		p, err := smtpsink.Parse(r.Data)
		if err != nil {
			t.Fatal(err)
		}
		code = inviteCodeRe.FindString(p.Text)
	}
	if code == "" {
		t.Fatalf("no invitation with a code to %s", email)
	}
	return code
}

func TestInvitationsAndEnrollmentFromTheCommandLine(t *testing.T) {
	isolate(t)
	sink, mail := mailConfig(t)
	cfg := writeFile(t, filepath.Join(t.TempDir(), "keydesk.toml"), mail, 0o600)
	data := t.TempDir()
	kd := func(stdin string, args ...string) (int, string, string) {
		return runCLIIn(t, stdin, append([]string{"--config", cfg, "--data", data}, args...)...)
	}
	mustKD := func(args ...string) string {
		t.Helper()
		code, out, errOut := kd("", args...)
		if code != 0 {
			t.Fatalf("keydesk %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	mustKD("employees", "add", "--email", "ann@example.com", "--name", "Ann")
	if out := mustKD("invite", "ann@example.com"); !strings.Contains(out, "invited ann@example.com") || !strings.Contains(out, "mail: 1 invitation sent") {
		t.Fatalf("invite printed:\n%s", out)
	}
	if n := len(sink.Messages()); n != 1 {
		t.Fatalf("the mail server got %d messages", n)
	}
	code := codeFor(t, sink, "ann@example.com")
	if exit, _, errOut := kd("", "invite", "ann@example.com"); exit != 1 || !strings.Contains(errOut, "already invited") || !strings.Contains(errOut, "--resend") {
		t.Errorf("a second invite: exit %d, %s", exit, errOut)
	}
	if exit, _, errOut := kd("", "invite", "nobody@example.com"); exit != 1 || !strings.Contains(errOut, "no employee with email nobody@example.com") {
		t.Errorf("inviting a stranger: exit %d, %s", exit, errOut)
	}
	out := mustKD("invitations", "--json")
	var ivs []struct {
		Email, State string
	}
	if err := json.Unmarshal([]byte(out), &ivs); err != nil || len(ivs) != 1 || ivs[0].State != "sent" {
		t.Fatalf("invitations --json: %v\n%s", err, out)
	}
	if strings.Contains(out+mustKD("invitations"), code) {
		t.Error("the invitations list shows the enrollment code")
	}

	// --print-uri prints the URI; with no code on standard input the
	// person is told how to confirm later.
	exit, out, errOut := kd("", "enroll", code, "--print-uri")
	if exit != 1 || !strings.Contains(errOut, "--totp") {
		t.Fatalf("enroll --print-uri without a code typed: exit %d\n%s%s", exit, out, errOut)
	}
	u, err := url.Parse(strings.TrimSpace(out))
	if err != nil || u.Scheme != "otpauth" || u.Query().Get("issuer") != "Example Corp" || !strings.HasSuffix(u.Path, "ann@example.com") {
		t.Fatalf("enroll --print-uri printed no otpauth URI of Example Corp for ann (%v)", err)
	}
	secret, err := enroll.ParseSecret(u.Query().Get("secret"))
	if err != nil {
		t.Fatal(err)
	}
	if exit, _, errOut := kd("", "enroll", code, "--totp", "000000"); exit != 1 || !strings.Contains(errOut, "not the authenticator's") {
		t.Errorf("a wrong authenticator code: exit %d %s", exit, errOut)
	}
	totp, _ := enroll.CodeAt(secret, enroll.Step(time.Now()))
	if out := mustKD("enroll", code, "--totp", totp); !strings.Contains(out, "authenticator enrolled for ann@example.com") {
		t.Errorf("enroll --totp printed %q", out)
	}
	if exit, _, errOut := kd("", "enroll", code); exit != 1 || !strings.Contains(errOut, "used already") {
		t.Errorf("a used code: exit %d %s", exit, errOut)
	}
	if out := mustKD("invitations"); !regexp.MustCompile(`ann@example.com\s+enrolled`).MatchString(out) {
		t.Errorf("invitations after enrolling:\n%s", out)
	}
	if out := mustKD("enrollment", "reset", "ann@example.com"); !strings.Contains(out, "invite --resend ann@example.com") {
		t.Errorf("enrollment reset printed %q", out)
	}
	// The QR code drawn on the terminal carries the same kind of URI.
	mustKD("invite", "--resend", "ann@example.com")
	code = codeFor(t, sink, "ann@example.com")
	_, out, _ = kd("", "enroll", code)
	uri, err := qrtest.Decode(qrPart(out), true)
	if err != nil || !strings.HasPrefix(uri, "otpauth://totp/Example%20Corp:ann@example.com?") {
		t.Errorf("the QR code on the terminal does not read as the enrollment URI (%d characters, %v)", len(uri), err)
	}
}

// qrPart is the lines of half-block characters in out.
func qrPart(out string) string {
	var b strings.Builder
	for _, l := range strings.Split(out, "\n") {
		if strings.ContainsAny(l, "█▀▄") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// A crash after the invitations were committed and before the mail went:
// the next command that sends the outbox sends each exactly once.
func TestACrashBeforeTheMailGoesSendsOnce(t *testing.T) {
	bin := buildBinary(t, "crashhook")
	home := isolate(t)
	sink, mail := mailConfig(t)
	cfg := writeFile(t, filepath.Join(home, "keydesk.toml"), mail, 0o600)
	data := filepath.Join(home, "data")
	run := func(crashAt string, args ...string) (int, string) {
		cmd := exec.Command(bin, append([]string{"--config", cfg, "--data", data}, args...)...)
		cmd.Env = append(os.Environ(), "KEYDESK_CRASH_AT="+crashAt)
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}
	if code, out := run("", "employees", "add", "--email", "bo@example.com", "--name", "Bo"); code != 0 {
		t.Fatal(out)
	}
	if code, out := run("invitations-decided", "invite", "bo@example.com"); code != 97 {
		t.Fatalf("the crash build did not crash: exit %d\n%s", code, out)
	}
	if n := len(sink.Messages()); n != 0 {
		t.Fatalf("%d messages before the restart", n)
	}
	if code, out := run("", "invitations"); code != 0 || !regexp.MustCompile(`bo@example.com\s+queued`).MatchString(out) {
		t.Fatalf("after the crash the invitation is not queued: %s", out)
	}
	for range 2 {
		if code, out := run("", "invitations", "send"); code != 0 {
			t.Fatalf("invitations send: exit %d\n%s", code, out)
		}
	}
	if n := len(sink.Messages()); n != 1 {
		t.Errorf("the server got %d messages, want exactly 1", n)
	}
}

// A sync against a real DC invites the newly imported members of a domain
// with invitations on, once: again after a sync with nothing new, nobody;
// a member who joins through a nested group, once.
func TestSyncInvitesAgainstSamba(t *testing.T) {
	isolate(t)
	d := startCLIDomain(t)
	sink, mail := mailConfig(t)
	cfgPath := d.writeConfig(t, nil)
	domain, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := writeFile(t, cfgPath, mail+string(domain)+"\n[domain.invitations]\nenabled = true\n", 0o600)
	data := t.TempDir()
	kd := func(args ...string) string {
		t.Helper()
		code, out, errOut := runCLI(t, append([]string{"--config", cfg, "--data", data}, args...)...)
		if code != 0 {
			t.Fatalf("keydesk %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	if out := kd("sync"); !strings.Contains(out, "corp: 2 newly imported people invited") || !strings.Contains(out, "mail: 2 invitations sent") {
		t.Fatalf("the first sync printed:\n%s", out)
	}
	got := map[string]smtpsink.Parsed{}
	for _, r := range sink.Messages() {
		p, err := smtpsink.Parse(r.Data)
		if err != nil {
			t.Fatal(err)
		}
		got[r.To[0]] = p
	}
	if len(got) != 2 || got["alice@example.com"].Subject == "" || got["bob@example.com"].Subject == "" {
		t.Fatalf("invitations went to %v, want alice and bob", got)
	}
	if strings.ContainsRune(got["bob@example.com"].Text, '\u202e') || !strings.Contains(got["bob@example.com"].Text, "Hello Bob") {
		t.Errorf("Bob's invitation carries the directory's bidi override, or not his name:\n%s", got["bob@example.com"].Text)
	}
	if out := kd("sync"); strings.Contains(out, "invited") || len(sink.Messages()) != 2 {
		t.Errorf("a second sync invited again (%d messages):\n%s", len(sink.Messages()), out)
	}
	// Carol joins through a nested group.
	ctx := t.Context()
	nested, err := d.dc.AddGroup(ctx, "Helpdesk Team", "")
	if err != nil {
		t.Fatal(err)
	}
	carol, err := d.dc.AddUser(ctx, adtest.User{Sam: "carol", DisplayName: "Carol Chen", Mail: "carol@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.dc.AddMembers(ctx, nested, carol); err != nil {
		t.Fatal(err)
	}
	if err := d.dc.AddMembers(ctx, d.syncDN, nested); err != nil {
		t.Fatal(err)
	}
	if out := kd("sync"); !strings.Contains(out, "corp: 1 newly imported person invited") {
		t.Errorf("the sync after Carol joined printed:\n%s", out)
	}
	if n := len(sink.Messages()); n != 3 || sink.Messages()[2].To[0] != "carol@example.com" {
		t.Errorf("%d messages, want a third to Carol", n)
	}
}

func TestDoctorChecksTheMailServer(t *testing.T) {
	isolate(t)
	_, mail := mailConfig(t)
	cfg := writeFile(t, filepath.Join(t.TempDir(), "keydesk.toml"), mail, 0o600)
	_, out, _ := runCLI(t, "--config", cfg, "--data", t.TempDir(), "doctor")
	if !regexp.MustCompile(`(?m)server.*127\.0\.0\.1:\d+ \(starttls\): connected, logged in as keydesk`).MatchString(out) || !strings.Contains(out, "templates") {
		t.Errorf("doctor with a working mail server:\n%s", out)
	}
	pw := regexp.MustCompile(`password_file = "([^"]+)"`).FindStringSubmatch(mail)[1]
	writeFile(t, pw, "wrong\n", 0o600)
	_, out, _ = runCLI(t, "--config", cfg, "--data", t.TempDir(), "doctor")
	if !strings.Contains(out, "535") || !strings.Contains(out, "username and password") {
		t.Errorf("doctor with a wrong mail password:\n%s", out)
	}
}
