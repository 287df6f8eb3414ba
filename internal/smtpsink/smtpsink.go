// Package smtpsink is a small SMTP server (github.com/emersion/go-smtp)
// that keeps every message it accepts: the demo's local mail sink, whose
// messages the console shows, and the real server the tests send to, with
// STARTTLS or implicit TLS, AUTH PLAIN and refusals on demand.
package smtpsink

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options configure a sink.
type Options struct {
	// TLS, when set, is offered with STARTTLS, or from the first byte when
	// Implicit; a sink with TLS refuses mail sent without it.
	TLS      *tls.Config
	Implicit bool
	// Username and Password, when set, must log in (AUTH PLAIN) before
	// mail is accepted.
	Username, Password string
	// Dir, when set, gets each accepted message as a .eml file.
	Dir string
}

// Received is one accepted message.
type Received struct {
	From     string
	To       []string
	Data     []byte
	TLS      bool
	AuthUser string
	At       time.Time
}

// Sink is a running server.
type Sink struct {
	opts Options
	srv  *smtp.Server
	ln   net.Listener

	mu      sync.Mutex
	msgs    []Received
	refuse  []*smtp.SMTPError
	arrived chan struct{}
}

// Start listens on a free loopback port.
func Start(opts Options) (*Sink, error) {
	s := &Sink{opts: opts, arrived: make(chan struct{}, 1)}
	srv := smtp.NewServer(s)
	srv.Domain = "localhost"
	srv.ReadTimeout, srv.WriteTimeout = time.Minute, time.Minute
	srv.MaxMessageBytes = 1 << 20
	srv.ErrorLog = discard{}
	var ln net.Listener
	var err error
	if opts.TLS != nil && opts.Implicit {
		ln, err = tls.Listen("tcp", "127.0.0.1:0", opts.TLS)
	} else {
		srv.TLSConfig = opts.TLS
		ln, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		return nil, fmt.Errorf("start the mail sink: %w", err)
	}
	if opts.Dir != "" {
		if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
			ln.Close()
			return nil, fmt.Errorf("start the mail sink: %w", err)
		}
	}
	s.srv, s.ln = srv, ln
	go srv.Serve(ln)
	return s, nil
}

type discard struct{}

func (discard) Printf(string, ...any) {}
func (discard) Println(...any)        {}

// Host and Port are where the sink listens.
func (s *Sink) Host() string { return "127.0.0.1" }

// Port is the sink's TCP port.
func (s *Sink) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Addr is host:port.
func (s *Sink) Addr() string { return net.JoinHostPort(s.Host(), strconv.Itoa(s.Port())) }

// Close stops the sink. The listener is closed here too: the server may not
// have taken it up yet (Serve runs in its own goroutine), and a sink closed
// must refuse connections at once.
func (s *Sink) Close() error {
	err := s.srv.Close()
	if lerr := s.ln.Close(); err == nil && !errors.Is(lerr, net.ErrClosed) {
		err = lerr
	}
	return err
}

// Messages are the messages accepted so far, oldest first.
func (s *Sink) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.msgs...)
}

// RefuseNext makes the sink refuse the next message's content with this
// reply (4xx: try again later; 5xx: for good).
func (s *Sink) RefuseNext(code int, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	class := code / 100
	s.refuse = append(s.refuse, &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{class, 0, 0}, Message: message})
}

// Wait waits until the sink holds at least n messages.
func (s *Sink) Wait(ctx context.Context, n int) ([]Received, error) {
	for {
		if m := s.Messages(); len(m) >= n {
			return m, nil
		}
		select {
		case <-ctx.Done():
			return s.Messages(), fmt.Errorf("waiting for %d messages: %w", n, ctx.Err())
		case <-s.arrived:
		}
	}
}

// NewSession is the go-smtp backend.
func (s *Sink) NewSession(c *smtp.Conn) (smtp.Session, error) {
	_, tlsOn := c.TLSConnectionState()
	return &session{sink: s, conn: c, tls: tlsOn}, nil
}

type session struct {
	sink *Sink
	conn *smtp.Conn
	tls  bool
	user string
	from string
	to   []string
}

var errAuthFirst = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
var errTLSFirst = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Must issue a STARTTLS command first"}

func (ss *session) AuthMechanisms() []string {
	if ss.sink.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		o := ss.sink.opts
		if user != o.Username || pass != o.Password {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}
		}
		ss.user = user
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	_, ss.tls = ss.conn.TLSConnectionState()
	switch {
	case ss.sink.opts.TLS != nil && !ss.tls:
		return errTLSFirst
	case ss.sink.opts.Username != "" && ss.user == "":
		return errAuthFirst
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s := ss.sink
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.refuse) > 0 {
		e := s.refuse[0]
		s.refuse = s.refuse[1:]
		return e
	}
	m := Received{From: ss.from, To: append([]string(nil), ss.to...), Data: b, TLS: ss.tls, AuthUser: ss.user, At: time.Now()}
	if s.opts.Dir != "" {
		name := filepath.Join(s.opts.Dir, fmt.Sprintf("%s-%04d.eml", m.At.UTC().Format("20060102T150405"), len(s.msgs)+1))
		if err := os.WriteFile(name, b, 0o600); err != nil {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "cannot keep the message"}
		}
	}
	s.msgs = append(s.msgs, m)
	select {
	case s.arrived <- struct{}{}:
	default:
	}
	return nil
}

func (ss *session) Reset()        { ss.from, ss.to = "", nil }
func (ss *session) Logout() error { return nil }

// NewCert makes a self-signed certificate for the hosts (names or IPs),
// valid for a day: the TLS configuration for a sink and the PEM that a
// client trusts (mail.ca_file).
func NewCert(hosts ...string) (*tls.Config, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "keydesk test mail server"},
		NotBefore:    time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
	if err != nil {
		return nil, nil, errors.Join(errors.New("make a test certificate"), err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, certPEM, nil
}

// Parsed is a message's headers and parts, decoded.
type Parsed struct {
	From, To, Subject, MessageID string
	Text, HTML                   string
}

// Parse reads a message as the sink stored it: its headers (decoded) and
// its text and HTML parts (quoted-printable or base64 decoded).
func Parse(data []byte) (Parsed, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		return Parsed{}, fmt.Errorf("read the message: %w", err)
	}
	dec := new(mime.WordDecoder)
	head := func(name string) string {
		v := msg.Header.Get(name)
		if d, err := dec.DecodeHeader(v); err == nil {
			return d
		}
		return v
	}
	p := Parsed{From: head("From"), To: head("To"), Subject: head("Subject"), MessageID: strings.Trim(head("Message-Id"), "<>")}
	err = walk(textproto.MIMEHeader(msg.Header), msg.Body, &p)
	return p, err
}

func walk(h textproto.MIMEHeader, body io.Reader, p *Parsed) error {
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "text/plain"
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Errorf("content type %q: %w", ct, err)
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			part, err := mr.NextRawPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("read a part: %w", err)
			}
			if err := walk(part.Header, part, p); err != nil {
				return err
			}
		}
	}
	var r io.Reader = body
	switch strings.ToLower(h.Get("Content-Transfer-Encoding")) {
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, body)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("decode a %s part: %w", mt, err)
	}
	switch mt {
	case "text/plain":
		p.Text += strings.ReplaceAll(string(b), "\r\n", "\n")
	case "text/html":
		p.HTML += string(b)
	}
	return nil
}
