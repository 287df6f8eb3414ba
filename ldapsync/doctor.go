package ldapsync

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"keydesk/config"
)

// Check statuses.
const (
	CheckPass = "pass"
	CheckWarn = "warn"
	CheckFail = "fail"
	CheckSkip = "skip"
)

// Check is one diagnosis of a domain's setup.
type Check struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"`
	Fix    string `json:"fix,omitempty"`
}

// certExpiryWarning is how close to expiry a certificate gets a warning.
const certExpiryWarning = 30 * 24 * time.Hour

// Diagnose checks a domain's setup step by step: password, each URL's
// address and TLS certificate, bind, base DN, groups and server controls.
// It never changes anything in the directory.
func Diagnose(ctx context.Context, d config.Domain) []Check {
	var checks []Check
	add := func(c Check) { checks = append(checks, c) }

	pw, err := d.BindPassword()
	switch {
	case errors.Is(err, config.ErrLoosePasswordFile):
		add(Check{Name: "bind password", Status: CheckFail, Detail: err.Error(), Fix: "chmod 600 " + d.BindPasswordFile})
	case err != nil:
		add(Check{Name: "bind password", Status: CheckFail, Detail: err.Error(), Fix: "set bind_password_file to a readable file holding the password (mode 0600), or bind_password_env to a set variable"})
	default:
		add(Check{Name: "bind password", Status: CheckPass, Detail: "readable by its owner only"})
	}

	usable := ""
	for _, u := range d.URLs {
		reach, tlsCheck := diagnoseURL(ctx, d, u)
		add(reach)
		if tlsCheck != nil {
			add(*tlsCheck)
			if tlsCheck.Status != CheckFail && usable == "" {
				usable = u
			}
		}
	}
	if usable == "" {
		add(Check{Name: "bind", Status: CheckSkip, Detail: "no server could be reached over TLS"})
		return checks
	}
	if pw == "" {
		add(Check{Name: "bind", Status: CheckSkip, Detail: "no bind password"})
		return checks
	}
	one := d
	one.URLs = []string{usable}
	conn, err := Dial(ctx, one, pw)
	if err != nil {
		add(Check{Name: "bind", Status: CheckFail, Detail: err.Error(), Fix: Explain(err)})
		return checks
	}
	defer conn.Close()
	add(Check{Name: "bind", Status: CheckPass, Detail: fmt.Sprintf("bound as %s on %s", d.BindDN, usable)})

	rd := conn.RootDSE
	if rd.Supports(OIDPagedResults) {
		add(Check{Name: "paged results", Status: CheckPass, Detail: "the server lists the paged-results control"})
	} else {
		add(Check{Name: "paged results", Status: CheckFail, Detail: "the server does not list the paged-results control (1.2.840.113556.1.4.319)", Fix: "point urls at an Active Directory domain controller; a proxy may hide the control"})
	}
	if rd.Supports(OIDPolicyHints) || rd.Supports(OIDPolicyHintsOld) {
		add(Check{Name: "password policy hints", Status: CheckPass, Detail: "listed: password resets will be checked against password history"})
	} else {
		add(Check{Name: "password policy hints", Status: CheckWarn, Detail: "LDAP_SERVER_POLICY_HINTS is not listed: password resets by KeyDesk will not be checked against password history", Fix: "none needed; Windows Server 2008 R2 or later with the hotfix lists it"})
	}

	res, err := conn.l.Search(ldap.NewSearchRequest(d.BaseDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false, "(objectClass=*)", []string{"distinguishedName"}, nil))
	if err != nil || len(res.Entries) == 0 {
		add(Check{Name: "base DN", Status: CheckFail, Detail: fmt.Sprintf("%s: %v", d.BaseDN, err), Fix: "set base_dn to an existing DN, e.g. the domain's " + orDefault(rd.DefaultNamingContext, "DC=corp,DC=example,DC=com")})
		return checks
	}
	add(Check{Name: "base DN", Status: CheckPass, Detail: d.BaseDN + " exists"})

	for _, g := range []struct{ label, name string }{{"sync group", d.SyncGroup}, {"password group", d.PasswordGroup}} {
		dn, err := conn.FindGroup(ctx, g.name)
		if err != nil {
			st := CheckFail
			if g.label == "password group" && errors.Is(err, ErrGroupNotFound) {
				st = CheckWarn
			}
			add(Check{Name: g.label, Status: st, Detail: err.Error(), Fix: fmt.Sprintf("create the group %q in AD (members may be nested groups), or set %s to the group's name or DN", g.name, strings.ReplaceAll(g.label, " ", "_"))})
			continue
		}
		n := 0
		err = conn.pagedSearch(ctx, ldap.NewSearchRequest(d.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
			userFilter(inChain(dn)), []string{"objectGUID"}, nil), func(*ldap.Entry) error { n++; return nil }, nil)
		if err != nil {
			add(Check{Name: g.label, Status: CheckFail, Detail: fmt.Sprintf("%s: read members: %v", dn, err), Fix: Explain(err)})
			continue
		}
		c := Check{Name: g.label, Status: CheckPass, Detail: fmt.Sprintf("%s: %d members (nested groups included)", dn, n)}
		if n == 0 && g.label == "sync group" {
			c.Status, c.Fix = CheckWarn, "add the users (or groups of users) who should get keys to the group"
		}
		add(c)
	}
	return checks
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// diagnoseURL checks that the URL's address answers and that its TLS
// certificate verifies. tlsCheck is nil when the address cannot be reached.
func diagnoseURL(ctx context.Context, d config.Domain, raw string) (Check, *Check) {
	u, err := url.Parse(raw)
	if err != nil {
		return Check{Name: "address " + raw, Status: CheckFail, Detail: err.Error(), Fix: "write the URL like ldaps://dc1.corp.example.com:636"}, nil
	}
	host := u.Host
	if u.Port() == "" {
		port := "636"
		if u.Scheme == "ldap" {
			port = "389"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	dctx, cancel := context.WithTimeout(ctx, d.ConnectTimeout.Duration)
	defer cancel()
	var dialer net.Dialer
	nc, err := dialer.DialContext(dctx, "tcp", host)
	if err != nil {
		return Check{Name: "address " + raw, Status: CheckFail, Detail: err.Error(), Fix: orDefault(Explain(err), "check the host name, the port and the firewall")}, nil
	}
	nc.Close()
	reach := Check{Name: "address " + raw, Status: CheckPass, Detail: host + " accepts connections"}
	if d.TLS == config.TLSModeNone {
		return reach, &Check{Name: "TLS " + raw, Status: CheckWarn, Detail: "insecure_plaintext: the bind password crosses the network in clear text", Fix: "use tls = \"ldaps\" or \"starttls\""}
	}
	l, err := connect(ctx, d, raw)
	if err == nil {
		defer l.Close()
		c := Check{Name: "TLS " + raw, Status: CheckPass}
		if st, ok := l.TLSConnectionState(); ok && len(st.PeerCertificates) > 0 {
			cert := st.PeerCertificates[0]
			c.Detail = certSummary(cert)
			if left := time.Until(cert.NotAfter); left < certExpiryWarning {
				c.Status, c.Fix = CheckWarn, fmt.Sprintf("the certificate expires in %d days: renew it on the DC", int(left.Hours()/24))
			}
		}
		return reach, &c
	}
	c := Check{Name: "TLS " + raw, Status: CheckFail, Detail: err.Error(), Fix: Explain(err)}
	// Read the certificate the server presents, without trusting it and
	// without sending anything over that connection, to say what is wrong.
	if cert := presentedCert(ctx, d, raw); cert != nil {
		c.Detail += "; the server presents " + certSummary(cert)
	}
	return reach, &c
}

func certSummary(cert *x509.Certificate) string {
	names := append([]string(nil), cert.DNSNames...)
	for _, ip := range cert.IPAddresses {
		names = append(names, ip.String())
	}
	return fmt.Sprintf("certificate for %s (names: %s) issued by %s, valid until %s",
		cert.Subject.CommonName, strings.Join(names, ", "), cert.Issuer.CommonName, cert.NotAfter.UTC().Format("2006-01-02"))
}

func presentedCert(ctx context.Context, d config.Domain, raw string) *x509.Certificate {
	if d.TLS != config.TLSModeLDAPS {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "636")
	}
	dctx, cancel := context.WithTimeout(ctx, d.ConnectTimeout.Duration)
	defer cancel()
	var got *x509.Certificate
	dialer := tls.Dialer{Config: &tls.Config{
		ServerName:         u.Hostname(),
		InsecureSkipVerify: true, // diagnosis only: the connection is closed right after the handshake
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) > 0 {
				got = cs.PeerCertificates[0]
			}
			return nil
		},
	}}
	if c, err := dialer.DialContext(dctx, "tcp", host); err == nil {
		c.Close()
	}
	return got
}
