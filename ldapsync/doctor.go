package ldapsync

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"keydesk/config"
	"keydesk/rotation"
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

	if d.CAFile != "" {
		if _, err := os.ReadFile(d.CAFile); err != nil {
			add(Check{Name: "CA file", Status: CheckFail, Detail: "ca_file: " + err.Error(),
				Fix: fmt.Sprintf("put the PEM file of the CA that issued the DCs' certificates at %s, or remove ca_file to trust the system's CAs", d.CAFile)})
		}
	}
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

	if c, ok := baseDNProblem(conn, d.BaseDN, rd.DefaultNamingContext); !ok {
		add(c)
		return checks
	}
	add(Check{Name: "base DN", Status: CheckPass, Detail: d.BaseDN + " exists"})

	var member string // a member of the password group, for the reset-right check
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
			userFilter(inChain(dn)), []string{"objectGUID"}, nil), func(e *ldap.Entry) error {
			if n == 0 && g.label == "password group" {
				member = e.DN
			}
			n++
			return nil
		}, nil)
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
	add(policyCheck(ctx, conn, d))
	add(resetRightCheck(ctx, conn, d, member))
	return checks
}

// policyCheck reports the domain's password policy and the rotation period
// it leaves.
func policyCheck(ctx context.Context, conn *Conn, d config.Domain) Check {
	pol, err := conn.DomainPolicy(ctx, d.BaseDN, d.Name)
	if err != nil {
		return Check{Name: "password policy", Status: CheckFail, Detail: err.Error(), Fix: "the service account must be able to read the domain head's minPwdLength, pwdProperties, pwdHistoryLength, minPwdAge and maxPwdAge (Authenticated Users can, by default)"}
	}
	days := func(t time.Duration) string {
		if t == 0 {
			return "none"
		}
		return fmt.Sprintf("%.3gd", t.Hours()/24)
	}
	complexity := "not required"
	if pol.Complexity {
		complexity = "required"
	}
	if d.Passwords.RotationPeriod.Duration == 0 { // not from a parsed file: the defaults
		d.Passwords = config.Passwords{RotationPeriod: config.Duration{Duration: config.DefaultRotationPeriod}, Offline: config.OfflineWait, Length: config.DefaultPasswordLength}
	}
	eff := rotation.Effective(d.Passwords.RotationPeriod.Duration, pol.MinAge, pol.MaxAge)
	c := Check{Name: "password policy", Status: CheckPass, Detail: fmt.Sprintf("minimum length %d, complexity %s, history %d, minimum age %s, maximum age %s; KeyDesk rotates every %s (offline: %s)",
		pol.MinLength, complexity, pol.History, days(pol.MinAge), days(pol.MaxAge), days(eff), d.Passwords.Offline)}
	if eff != d.Passwords.RotationPeriod.Duration {
		c.Status = CheckWarn
		c.Fix = fmt.Sprintf("rotation_period is %s, which the domain's password ages do not allow: KeyDesk uses %s; set [domain.passwords] rotation_period to it to say so", days(d.Passwords.RotationPeriod.Duration), days(eff))
	}
	if d.Passwords.Length < pol.MinLength {
		c.Status = CheckFail
		c.Fix = fmt.Sprintf("[domain.passwords] length %d is below the domain's minimum length %d: raise it", d.Passwords.Length, pol.MinLength)
	}
	return c
}

// resetRightCheck finds out, without changing anything, whether the service
// account may reset the password of a member of the password group: it
// sends a reset whose value can never be a password (not the quoted UTF-16
// AD requires). A DC that refuses it for rights (insufficientAccessRights)
// says the right is missing; one that refuses the value has checked the
// right first (Samba does; Windows DCs may refuse the value before the
// rights, so the check says how to confirm by hand).
func resetRightCheck(ctx context.Context, conn *Conn, d config.Domain, member string) Check {
	byHand := "to confirm by hand: dsacls \"<the users' OU>\" lists \"Reset Password\" for " + d.BindDN
	if member == "" {
		return Check{Name: "reset password right", Status: CheckSkip, Detail: "the password group has no member to check on; " + byHand}
	}
	req := ldap.NewModifyRequest(member, nil)
	req.Replace("unicodePwd", []string{"keydesk doctor: not a password"})
	err := conn.l.Modify(req)
	var le *ldap.Error
	switch {
	case err == nil:
		return Check{Name: "reset password right", Status: CheckWarn, Detail: "the DC accepted a reset with a value that is not a password, on " + member, Fix: "the server does not behave as an AD DC: check urls"}
	case errors.As(err, &le) && le.ResultCode == ldap.LDAPResultInsufficientAccessRights:
		return Check{Name: "reset password right", Status: CheckFail, Detail: "the service account may not reset the password of " + member,
			Fix: "delegate \"Reset password\" on the users' OU to " + d.BindDN + " (Active Directory Users and Computers, Delegate Control), or make it an Account Operator"}
	case errors.As(err, &le):
		return Check{Name: "reset password right", Status: CheckPass, Detail: fmt.Sprintf("a deliberately invalid reset of %s was refused for its value, not for rights (nothing changed); %s", member, byHand)}
	}
	return Check{Name: "reset password right", Status: CheckFail, Detail: err.Error(), Fix: Explain(err)}
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

// baseDNProblem checks base_dn: written as a DN, and an entry the DC has;
// ok is false with the check that says what is wrong, readably.
func baseDNProblem(conn *Conn, baseDN, naming string) (Check, bool) {
	fix := "set base_dn to an existing DN, e.g. the domain's " + orDefault(naming, "DC=corp,DC=example,DC=com")
	if _, err := ldap.ParseDN(baseDN); err != nil {
		return Check{Name: "base DN", Status: CheckFail, Detail: fmt.Sprintf("%q is not written as a DN (a DN is a list of NAME=value parts separated by commas, e.g. DC=corp,DC=example,DC=com)", baseDN), Fix: fix}, false
	}
	res, err := conn.l.Search(ldap.NewSearchRequest(baseDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false, "(objectClass=*)", []string{"distinguishedName"}, nil))
	switch {
	case ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidDNSyntax):
		return Check{Name: "base DN", Status: CheckFail, Detail: fmt.Sprintf("the DC does not read %q as a DN (invalid DN syntax)", baseDN), Fix: fix}, false
	case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) || err == nil && len(res.Entries) == 0:
		return Check{Name: "base DN", Status: CheckFail, Detail: fmt.Sprintf("%s does not exist on this DC", baseDN), Fix: fix}, false
	case err != nil:
		return Check{Name: "base DN", Status: CheckFail, Detail: fmt.Sprintf("read %s: %v", baseDN, err), Fix: orDefault(Explain(err), fix)}, false
	}
	return Check{}, true
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
