package mailer

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"keydesk/config"
	"keydesk/internal/smtpsink"
)

// sink starts a real SMTP server with TLS (STARTTLS or implicit) and AUTH
// PLAIN, and the configuration that reaches it.
func sink(t *testing.T, security string) (*smtpsink.Sink, config.Mail) {
	t.Helper()
	tc, ca, err := smtpsink.NewCert("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	s, err := smtpsink.Start(smtpsink.Options{TLS: tc, Implicit: security == config.MailTLS, Username: "keydesk", Password: "s3cret-mail"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	dir := t.TempDir()
	caFile, pwFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "smtp.pw")
	if err := os.WriteFile(caFile, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pwFile, []byte("s3cret-mail\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return s, config.Mail{Host: s.Host(), Port: s.Port(), Security: security, Username: "keydesk", PasswordFile: pwFile,
		From: "KeyDesk <keydesk@example.com>", CAFile: caFile, Timeout: config.Duration{Duration: 10 * time.Second}}
}

func send(t *testing.T, cfg config.Mail, m Message) error {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return s.Send(ctx, m)
}

func TestSendThroughARealServer(t *testing.T) {
	for _, security := range []string{config.MailSTARTTLS, config.MailTLS} {
		t.Run(security, func(t *testing.T) {
			s, cfg := sink(t, security)
			m := Message{To: "ann@example.com", Subject: "Hello Ann", Text: "the text part\n", HTML: "<p>the html part</p>", MessageID: "inv-1@keydesk"}
			if err := send(t, cfg, m); err != nil {
				t.Fatalf("send: %v", err)
			}
			got := s.Messages()
			if len(got) != 1 {
				t.Fatalf("the server got %d messages, want 1", len(got))
			}
			r := got[0]
			if !r.TLS || r.AuthUser != "keydesk" || r.From != "keydesk@example.com" || len(r.To) != 1 || r.To[0] != "ann@example.com" {
				t.Errorf("received %+v: want over TLS, logged in as keydesk, from keydesk@example.com to ann@example.com", r)
			}
			p, err := smtpsink.Parse(r.Data)
			if err != nil {
				t.Fatal(err)
			}
			if p.Subject != m.Subject || p.MessageID != m.MessageID || p.Text != m.Text || !strings.Contains(p.HTML, m.HTML) {
				t.Errorf("parsed %+v, want the subject, Message-ID, text and HTML sent", p)
			}
		})
	}
}

func TestSendFailures(t *testing.T) {
	tests := []struct {
		name      string
		prepare   func(s *smtpsink.Sink, cfg *config.Mail)
		permanent bool
		want      string
	}{
		{"busy server (451)", func(s *smtpsink.Sink, _ *config.Mail) { s.RefuseNext(451, "try again later") }, false, "451"},
		{"recipient refused (550)", func(s *smtpsink.Sink, _ *config.Mail) { s.RefuseNext(550, "no such user") }, true, "550"},
		{"wrong password", func(_ *smtpsink.Sink, cfg *config.Mail) {
			os.WriteFile(cfg.PasswordFile, []byte("wrong"), 0o600)
		}, false, "535"},
		{"sender refused without a login (530)", func(_ *smtpsink.Sink, cfg *config.Mail) { cfg.Username = "" }, false, "530"},
		{"untrusted certificate", func(_ *smtpsink.Sink, cfg *config.Mail) { cfg.CAFile = "" }, false, "certificate"},
		{"nobody listening", func(s *smtpsink.Sink, _ *config.Mail) { s.Close() }, false, "connect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, cfg := sink(t, config.MailSTARTTLS)
			tt.prepare(s, &cfg)
			err := send(t, cfg, Message{To: "ann@example.com", Subject: "x", Text: "x"})
			if err == nil {
				t.Fatal("send succeeded, want an error")
			}
			if Permanent(err) != tt.permanent || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v (permanent %v), want one naming %q, permanent %v", err, Permanent(err), tt.want, tt.permanent)
			}
			if n := len(s.Messages()); n != 0 {
				t.Errorf("the server kept %d messages", n)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	for _, tt := range []struct {
		n    int
		want time.Duration
	}{{1, time.Minute}, {2, 2 * time.Minute}, {5, 16 * time.Minute}, {10, 6 * time.Hour}, {MaxAttempts, 6 * time.Hour}} {
		if got := Backoff(tt.n); got != tt.want {
			t.Errorf("Backoff(%d) = %s, want %s", tt.n, got, tt.want)
		}
	}
}

func TestInvitationTemplates(t *testing.T) {
	tpl, err := LoadTemplates("")
	if err != nil {
		t.Fatal(err)
	}
	data := Invitation{Name: "Eve <script>alert(1)</script>\u202egnp.exe", Email: "eve@example.com", Code: "ABCD-EFGH-IJKL-MNOP-QRST-UVWX",
		Expires: "9 Dec 2026 10:00 UTC", Organisation: "Example Corp", Where: "to the kiosk at reception"}
	m, err := tpl.Invitation("id-1@keydesk", data)
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{m.Text, m.HTML} {
		for _, want := range []string{data.Code, data.Expires, data.Where, "Example Corp"} {
			if !strings.Contains(part, want) {
				t.Errorf("a part lacks %q:\n%s", want, part)
			}
		}
		if strings.ContainsRune(part, '\u202e') {
			t.Error("a part keeps a bidi override from the directory")
		}
	}
	if strings.Contains(m.HTML, "<script>") || !strings.Contains(m.HTML, "&lt;script&gt;") {
		t.Errorf("the HTML part does not escape the name:\n%s", m.HTML)
	}
	if m.To != data.Email || m.Subject != "Example Corp: set up your sign-in code" || m.MessageID != "id-1@keydesk" {
		t.Errorf("message %q to %q (%q)", m.Subject, m.To, m.MessageID)
	}

	// An admin's folder replaces the templates it holds, and a broken one
	// is refused when loaded, naming the file.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, SubjectFile), []byte("Welcome to {{.Organisation}}, {{.Name}}"), 0o644)
	tpl, err = LoadTemplates(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := tpl.Invitation("", data); !strings.HasPrefix(m.Subject, "Welcome to Example Corp, Eve") || !strings.Contains(m.Text, data.Code) {
		t.Errorf("overridden subject %q (text kept: %v)", m.Subject, strings.Contains(m.Text, data.Code))
	}
	os.WriteFile(filepath.Join(dir, TextFile), []byte("Your code: {{.Cod}}"), 0o644)
	if _, err := LoadTemplates(dir); err == nil || !strings.Contains(err.Error(), TextFile) {
		t.Errorf("a template naming a missing field: err = %v, want one naming %s", err, TextFile)
	}
	// A template that leaves the code out would send invitations nobody
	// can use: it is refused.
	os.WriteFile(filepath.Join(dir, TextFile), []byte("Welcome, {{.Name}}!"), 0o644)
	if _, err := LoadTemplates(dir); err == nil || !strings.Contains(err.Error(), "{{.Code}}") || !strings.Contains(err.Error(), TextFile) {
		t.Errorf("a template without the code: err = %v", err)
	}
}

func TestCheckLogsInAndSendsNothing(t *testing.T) {
	s, cfg := sink(t, config.MailSTARTTLS)
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Check(t.Context()); err != nil {
		t.Fatalf("check: %v", err)
	}
	os.WriteFile(cfg.PasswordFile, []byte("wrong"), 0o600)
	if err := m.Check(t.Context()); err == nil || !strings.Contains(err.Error(), "535") {
		t.Errorf("check with a wrong password: %v", err)
	}
	if n := len(s.Messages()); n != 0 {
		t.Errorf("check sent %d messages", n)
	}
}
