// Package ldapsync talks to Active Directory: it connects over LDAPS or
// StartTLS with certificate verification, binds, reads RootDSE, and reads the
// members of the sync and password groups with paged, in-chain searches. It
// has no UI and no SQL; the application layer turns what it reads into
// database changes.
package ldapsync

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"keydesk/config"
)

// Conn is a bound connection to one domain controller.
type Conn struct {
	l       *ldap.Conn
	URL     string
	Domain  config.Domain
	RootDSE RootDSE
	stop    func() bool
}

// TLSConfig builds the TLS configuration for a URL of the domain: the
// configured CA (or the system roots) and the host name from the URL.
func TLSConfig(d config.Domain, rawURL string) (*tls.Config, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("parse %q: %w", rawURL, err)
	}
	cfg := &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	if d.CAFile != "" {
		if cfg.RootCAs, err = config.CAPool("ca_file", d.CAFile); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// URLError is the failure of one URL of a domain.
type URLError struct {
	URL string
	Err error
}

func (e *URLError) Error() string { return e.URL + ": " + e.Err.Error() }
func (e *URLError) Unwrap() error { return e.Err }

// ConnectError says that no URL of a domain could be used; it holds each
// URL's failure in order.
type ConnectError struct {
	Domain string
	Tries  []*URLError
}

func (e *ConnectError) Error() string {
	if len(e.Tries) == 1 {
		return fmt.Sprintf("connect to domain %s: %v", e.Domain, e.Tries[0])
	}
	parts := make([]string, len(e.Tries))
	for i, t := range e.Tries {
		parts[i] = t.Error()
	}
	return fmt.Sprintf("connect to domain %s: every server failed: %s", e.Domain, strings.Join(parts, "; "))
}

// Unwrap gives the errors of every try, so errors.As finds, for example, a
// bind error behind any of them.
func (e *ConnectError) Unwrap() []error {
	out := make([]error, len(e.Tries))
	for i, t := range e.Tries {
		out[i] = t
	}
	return out
}

// Dial connects to the first URL of the domain that answers, binds with the
// password and reads RootDSE. Bad credentials are not retried on the other
// URLs, so a wrong password does not count against the account on every DC.
func Dial(ctx context.Context, d config.Domain, password string) (*Conn, error) {
	cerr := &ConnectError{Domain: d.Name}
	for _, u := range d.URLs {
		c, err := dialOne(ctx, d, u, password)
		if err == nil {
			return c, nil
		}
		cerr.Tries = append(cerr.Tries, &URLError{URL: u, Err: err})
		var be *BindError
		if errors.As(err, &be) || ctx.Err() != nil {
			break
		}
	}
	return nil, cerr
}

// DialAnonymous connects and sets up TLS without binding (for diagnosis).
func DialAnonymous(ctx context.Context, d config.Domain, rawURL string) (*ldap.Conn, error) {
	return connect(ctx, d, rawURL)
}

func connect(ctx context.Context, d config.Domain, rawURL string) (*ldap.Conn, error) {
	tlsCfg, err := TLSConfig(d, rawURL)
	if err != nil {
		return nil, err
	}
	dialer := &net.Dialer{Timeout: d.ConnectTimeout.Duration}
	if dl, ok := ctx.Deadline(); ok && (dialer.Timeout == 0 || time.Until(dl) < dialer.Timeout) {
		dialer.Timeout = time.Until(dl)
	}
	opts := []ldap.DialOpt{ldap.DialWithDialer(dialer)}
	if d.TLS == config.TLSModeLDAPS {
		opts = append(opts, ldap.DialWithTLSConfig(tlsCfg))
	}
	l, err := ldap.DialURL(rawURL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", unwrapLDAPNetErr(err))
	}
	l.SetTimeout(d.Timeout.Duration)
	if d.TLS == config.TLSModeStartTLS {
		if err := l.StartTLS(tlsCfg); err != nil {
			l.Close()
			return nil, fmt.Errorf("StartTLS: %w", unwrapLDAPNetErr(err))
		}
	}
	return l, nil
}

func dialOne(ctx context.Context, d config.Domain, rawURL, password string) (*Conn, error) {
	l, err := connect(ctx, d, rawURL)
	if err != nil {
		return nil, err
	}
	// Closing the connection is the only way to interrupt go-ldap, so a
	// cancelled context closes it.
	stop := context.AfterFunc(ctx, func() { l.Close() })
	c := &Conn{l: l, URL: rawURL, Domain: d, stop: stop}
	if err := l.Bind(d.BindDN, password); err != nil {
		c.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, newBindError(d.BindDN, err)
	}
	rd, err := c.ReadRootDSE(ctx)
	if err != nil {
		c.Close()
		return nil, err
	}
	c.RootDSE = rd
	return c, nil
}

// Close ends the connection.
func (c *Conn) Close() error {
	if c.stop != nil {
		c.stop()
	}
	return c.l.Close()
}

// LDAP gives the underlying connection (for writes by other packages).
func (c *Conn) LDAP() *ldap.Conn { return c.l }

// ctxErr prefers the context's error over the closed-connection error that
// cancellation causes.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}

// unwrapLDAPNetErr keeps go-ldap's network errors inspectable.
func unwrapLDAPNetErr(err error) error {
	var le *ldap.Error
	if errors.As(err, &le) && le.Err != nil && le.ResultCode == ldap.ErrorNetwork {
		return le.Err
	}
	return err
}

// RootDSE holds what KeyDesk reads from the server's root entry.
type RootDSE struct {
	DSServiceName        string
	InvocationID         string
	HighestCommittedUSN  int64
	DefaultNamingContext string
	DNSHostName          string
	SupportedControls    []string
}

// Well-known control OIDs.
const (
	OIDPagedResults     = "1.2.840.113556.1.4.319"
	OIDShowDeleted      = "1.2.840.113556.1.4.417"
	OIDExtendedDN       = "1.2.840.113556.1.4.529"
	OIDPolicyHints      = "1.2.840.113556.1.4.2239"
	OIDPolicyHintsOld   = "1.2.840.113556.1.4.2066"
	OIDVirtualListView  = "2.16.840.1.113730.3.4.9"
	OIDMatchingRuleInCh = "1.2.840.113556.1.4.1941"
)

// Supports reports whether RootDSE lists the control.
func (r RootDSE) Supports(oid string) bool {
	for _, c := range r.SupportedControls {
		if c == oid {
			return true
		}
	}
	return false
}

// ReadRootDSE reads RootDSE and the invocationId of the DC's NTDS Settings.
func (c *Conn) ReadRootDSE(ctx context.Context) (RootDSE, error) {
	var rd RootDSE
	res, err := c.l.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", []string{"dsServiceName", "highestCommittedUSN", "defaultNamingContext", "dnsHostName", "supportedControl"}, nil))
	if err != nil {
		return rd, fmt.Errorf("read RootDSE: %w", ctxErr(ctx, err))
	}
	if len(res.Entries) != 1 {
		return rd, fmt.Errorf("read RootDSE: the server returned %d entries", len(res.Entries))
	}
	e := res.Entries[0]
	rd.DSServiceName = e.GetAttributeValue("dsServiceName")
	rd.DefaultNamingContext = e.GetAttributeValue("defaultNamingContext")
	rd.DNSHostName = e.GetAttributeValue("dnsHostName")
	rd.SupportedControls = e.GetAttributeValues("supportedControl")
	if _, err := fmt.Sscan(e.GetAttributeValue("highestCommittedUSN"), &rd.HighestCommittedUSN); err != nil {
		return rd, fmt.Errorf("read RootDSE: highestCommittedUSN %q is not a number; is this an Active Directory server?", e.GetAttributeValue("highestCommittedUSN"))
	}
	if rd.DSServiceName != "" {
		res, err := c.l.Search(ldap.NewSearchRequest(rd.DSServiceName, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
			"(objectClass=*)", []string{"invocationId"}, nil))
		if err != nil {
			return rd, fmt.Errorf("read invocationId of %s: %w", rd.DSServiceName, ctxErr(ctx, err))
		}
		if len(res.Entries) == 1 {
			if id, err := FormatGUID(res.Entries[0].GetRawAttributeValue("invocationId")); err == nil {
				rd.InvocationID = id
			}
		}
	}
	return rd, nil
}
