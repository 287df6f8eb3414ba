package builtinad

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// startT starts a server for one test and closes it at the end.
func startT(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func tlsConfig(t testing.TB, s *Server, rawURL string) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CAPEM()) {
		t.Fatal("CAPEM holds no certificate")
	}
	hostport := rawURL[strings.Index(rawURL, "://")+3:]
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{RootCAs: pool, ServerName: host, MinVersion: tls.VersionTLS12}
}

// connect opens an unbound connection: "ldaps", "starttls" or "plain".
func connect(t testing.TB, s *Server, d *Domain, mode string) *ldap.Conn {
	t.Helper()
	var (
		c   *ldap.Conn
		err error
	)
	switch mode {
	case "ldaps":
		c, err = ldap.DialURL(d.LDAPSURL, ldap.DialWithTLSConfig(tlsConfig(t, s, d.LDAPSURL)))
	case "starttls":
		c, err = ldap.DialURL(d.LDAPURL)
		if err == nil {
			err = c.StartTLS(tlsConfig(t, s, d.LDAPURL))
		}
	case "plain":
		c, err = ldap.DialURL(d.LDAPURL)
	default:
		t.Fatalf("mode %q", mode)
	}
	if err != nil {
		t.Fatalf("connect (%s): %v", mode, err)
	}
	c.SetTimeout(20 * time.Second)
	t.Cleanup(func() { c.Close() })
	return c
}

// bound opens an LDAPS connection bound as user.
func bound(t testing.TB, s *Server, d *Domain, user, password string) *ldap.Conn {
	t.Helper()
	c := connect(t, s, d, "ldaps")
	if err := c.Bind(user, password); err != nil {
		t.Fatalf("bind as %s: %v", user, err)
	}
	return c
}

func admin(t testing.TB, s *Server, d *Domain) *ldap.Conn {
	t.Helper()
	return bound(t, s, d, d.AdminUPN, d.AdminPassword)
}

func search(c *ldap.Conn, base string, scope int, filter string, attrs []string, controls ...ldap.Control) (*ldap.SearchResult, error) {
	return c.Search(ldap.NewSearchRequest(base, scope, ldap.NeverDerefAliases, 0, 0, false, filter, attrs, controls))
}

// sams returns the sAMAccountNames of the entries, sorted.
func sams(es []*ldap.Entry) []string {
	out := make([]string, 0, len(es))
	for _, e := range es {
		out = append(out, e.GetAttributeValue("sAMAccountName"))
	}
	slices.Sort(out)
	return out
}

func mustNoErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustDN(t testing.TB) func(string, error) string {
	return func(dn string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return dn
	}
}

func resultCode(err error) uint16 {
	var le *ldap.Error
	if errors.As(err, &le) {
		return le.ResultCode
	}
	return 0
}

// escapeBytes escapes every byte for a filter, as KeyDesk does for GUIDs.
func escapeBytes(b []byte) string {
	var sb strings.Builder
	for _, c := range b {
		fmt.Fprintf(&sb, `\%02x`, c)
	}
	return sb.String()
}

// policyHints is the LDAP_SERVER_POLICY_HINTS control with flag 1.
func policyHints(critical bool) ldap.Control {
	seq := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "PolicyHintsRequestValue")
	seq.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, 1, "Flags"))
	return ldap.NewControlString("1.2.840.113556.1.4.2239", critical, string(seq.Bytes()))
}

func usnOf(t testing.TB, c *ldap.Conn, dn string) string {
	t.Helper()
	res, err := search(c, dn, ldap.ScopeBaseObject, "(objectClass=*)", []string{"uSNChanged"})
	if err != nil || len(res.Entries) != 1 {
		t.Fatalf("read uSNChanged of %s: %v", dn, err)
	}
	return res.Entries[0].GetAttributeValue("uSNChanged")
}
