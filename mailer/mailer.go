// Package mailer sends KeyDesk's email (invitations) through an SMTP
// server, with STARTTLS or implicit TLS and authentication, and renders
// the messages from templates an admin can override. It holds no state:
// the application layer keeps the durable outbox and decides when to send.
package mailer

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"regexp"
	"time"

	"github.com/wneessen/go-mail"

	"keydesk/config"
)

// Message is one email to send.
type Message struct {
	To        string
	Subject   string
	Text      string // the plain-text part
	HTML      string // the HTML part ("" = none)
	MessageID string // stable across retries (without the angle brackets)
}

// Sender sends a message; package app uses it for the outbox.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// SMTP sends through the configured server.
type SMTP struct {
	cfg config.Mail
}

// New checks the settings once (the password is read at each send, so a
// rotated one is picked up).
func New(cfg config.Mail) (*SMTP, error) {
	if !cfg.Configured() {
		return nil, errors.New("no mail server is configured: set [mail] host, from and security")
	}
	if _, err := tlsConfig(cfg); err != nil {
		return nil, err
	}
	return &SMTP{cfg: cfg}, nil
}

func tlsConfig(cfg config.Mail) (*tls.Config, error) {
	tc := &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pool, err := config.CAPool("mail.ca_file", cfg.CAFile)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// Send delivers m to the server. An error the server gave for this message
// for good (a 5xx reply to the recipient or the content) is Permanent;
// anything else (the server unreachable, busy, a 4xx reply, a login
// refused) may pass on a later try.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	c, err := s.client()
	if err != nil {
		return err
	}
	msg, err := compose(s.cfg.From, m)
	if err != nil {
		return err
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return s.explain(m.To, err)
	}
	return nil
}

var smtpReply = regexp.MustCompile(`(\d{3}) "([^"]*)"`)

// explain says in a line what went wrong, the server's reply first (the
// useful part of go-mail's long error): refused for good (a 5xx to this
// message), answered with a 4xx (try later), or not reached.
func (s *SMTP) explain(to string, err error) error {
	where := fmt.Sprintf("%s:%d", s.cfg.Host, s.cfg.Port)
	reply := ""
	if m := smtpReply.FindAllStringSubmatch(err.Error(), -1); len(m) > 0 {
		last := m[len(m)-1]
		reply = last[1] + " " + last[2]
	}
	var se *mail.SendError
	var op *net.OpError
	switch {
	case errors.As(err, &se) && !se.IsTemp() && se.ErrorCode() >= 500 && se.ErrorCode() < 600 && aboutTheMessage(se.Reason):
		return &PermanentError{Err: fmt.Errorf("%s refused the message to %s for good: %s", where, to, orText(reply, err))}
	case reply != "":
		return fmt.Errorf("%s answered %s", where, reply)
	case errors.As(err, &op):
		return fmt.Errorf("cannot reach %s: %v", where, op.Err)
	}
	return fmt.Errorf("send through %s: %w", where, err)
}

// aboutTheMessage reports whether a refusal at this step is about the one
// message (its recipient, its content), not about KeyDesk's settings (a
// 5xx to MAIL FROM: the sender refused, relaying or login needed), which
// every message would meet until an admin mends them.
func aboutTheMessage(r mail.SendErrReason) bool {
	switch r {
	case mail.ErrSMTPRcptTo, mail.ErrSMTPData, mail.ErrSMTPDataClose:
		return true
	}
	return false
}

func orText(reply string, err error) string {
	if reply != "" {
		return reply
	}
	return err.Error()
}

// Check connects, starts TLS and logs in as a send would, and sends
// nothing (keydesk doctor).
func (s *SMTP) Check(ctx context.Context) error {
	c, err := s.client()
	if err != nil {
		return err
	}
	sc, err := c.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return fmt.Errorf("connect to %s:%d: %w", s.cfg.Host, s.cfg.Port, err)
	}
	return c.CloseWithSMTPClient(sc)
}

// client is a go-mail client for the settings (the password read now).
func (s *SMTP) client() (*mail.Client, error) {
	tc, err := tlsConfig(s.cfg)
	if err != nil {
		return nil, err
	}
	opts := []mail.Option{mail.WithPort(s.cfg.Port), mail.WithTimeout(s.cfg.Timeout.Duration), mail.WithTLSConfig(tc)}
	switch s.cfg.Security {
	case config.MailTLS:
		opts = append(opts, mail.WithSSL())
	case config.MailNone:
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	}
	if s.cfg.Username != "" {
		pw, err := s.cfg.Password()
		if err != nil {
			return nil, err
		}
		// PLAIN, which go-mail sends only over TLS (or to localhost).
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthPlain), mail.WithUsername(s.cfg.Username), mail.WithPassword(pw))
	}
	c, err := mail.NewClient(s.cfg.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("mail server %s: %w", s.cfg.Host, err)
	}
	return c, nil
}

// compose builds the MIME message.
func compose(from string, m Message) (*mail.Msg, error) {
	msg := mail.NewMsg()
	if err := msg.From(from); err != nil {
		return nil, fmt.Errorf("mail.from %q: %w", from, err)
	}
	if err := msg.To(m.To); err != nil {
		return nil, &PermanentError{Err: fmt.Errorf("the address %q: %w", m.To, err)}
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	if m.MessageID != "" {
		msg.SetMessageIDWithValue(m.MessageID)
	}
	msg.SetBodyString(mail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(mail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}

// PermanentError is a send that no retry will mend.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent reports whether err is a send that no retry will mend.
func Permanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// Backoff is how long to wait before attempt n+1 after n failed ones: one
// minute, doubling, at most six hours.
func Backoff(n int) time.Duration {
	d := time.Minute
	for i := 1; i < n && d < 6*time.Hour; i++ {
		d *= 2
	}
	return min(d, 6*time.Hour)
}

// MaxAttempts is how many times a message is tried before it is given up
// (about three days with Backoff).
const MaxAttempts = 20
