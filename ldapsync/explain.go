package ldapsync

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"syscall"

	"github.com/go-ldap/ldap/v3"
)

// BindError is a refused bind, with AD's data code when the server gave one.
type BindError struct {
	BindDN     string
	ResultCode uint16
	DataCode   string // e.g. "52e"; "" when none
	Err        error
}

var dataCodeRe = regexp.MustCompile(`data ([0-9a-fA-F]{3,8})`)

func newBindError(bindDN string, err error) error {
	var le *ldap.Error
	if !errors.As(err, &le) || le.ResultCode == ldap.ErrorNetwork {
		return fmt.Errorf("bind as %s: %w", bindDN, unwrapLDAPNetErr(err))
	}
	be := &BindError{BindDN: bindDN, ResultCode: le.ResultCode, Err: err}
	if m := dataCodeRe.FindStringSubmatch(le.Error()); m != nil {
		be.DataCode = strings.ToLower(m[1])
	}
	return be
}

func (e *BindError) Error() string {
	msg := fmt.Sprintf("bind as %s refused", e.BindDN)
	if hint := bindHint(e.ResultCode, e.DataCode); hint != "" {
		msg += ": " + hint
	}
	return msg + " (" + e.Err.Error() + ")"
}

func (e *BindError) Unwrap() error { return e.Err }

// adBindCodes are the data codes AD puts in a result 49 (invalid credentials).
var adBindCodes = map[string]string{
	"525": "no such user: check bind_dn",
	"52e": "wrong password for the bind account: check the password file or variable",
	"530": "the bind account may not log on at this time (logon hours)",
	"531": "the bind account may not log on from this workstation",
	"532": "the bind account's password has expired: set a new one in AD and in the password file",
	"533": "the bind account is disabled: enable it in AD",
	"701": "the bind account has expired: extend accountExpires in AD",
	"773": "the bind account must change its password before it can bind: set a new one in AD",
	"775": "the bind account is locked out: unlock it in AD (too many wrong passwords, probably this very file)",
}

func bindHint(code uint16, data string) string {
	if code == ldap.LDAPResultInvalidCredentials {
		if h, ok := adBindCodes[data]; ok {
			return h
		}
		return "invalid credentials: check bind_dn and the bind password"
	}
	if code == ldap.LDAPResultStrongAuthRequired {
		return strongAuthHint
	}
	return ""
}

const strongAuthHint = "the server requires an encrypted connection (\"Strong(er) authentication required\"): use ldaps:// URLs with tls = \"ldaps\", or tls = \"starttls\""

const criticalExtHint = "the server refused a control marked critical (\"Unavailable Critical Extension\", result 12); KeyDesk sends only paged results, which every AD supports; if a proxy or a non-AD server sits in between, point urls at a domain controller"

// Explain returns advice for an error from this package: what was wrong and
// what to do about it. It returns "" when it has nothing to add.
func Explain(err error) string {
	if err == nil {
		return ""
	}
	var be *BindError
	if errors.As(err, &be) {
		if h := bindHint(be.ResultCode, be.DataCode); h != "" {
			return h
		}
	}
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) {
		return "the server's certificate is not signed by a trusted CA: set ca_file to the CA that issued the domain controller's certificate (export it from AD CS or the DC as PEM)"
	}
	var he x509.HostnameError
	if errors.As(err, &he) {
		return fmt.Sprintf("the server's certificate does not name the host in the URL (%s): use a URL with a name the certificate holds", he.Error())
	}
	var ci x509.CertificateInvalidError
	if errors.As(err, &ci) {
		if ci.Reason == x509.Expired {
			return "the server's certificate has expired or is not valid yet: renew it on the DC (and check this machine's clock)"
		}
		return "the server's certificate is not valid: " + ci.Error()
	}
	if strings.Contains(err.Error(), "negative serial number") {
		return "the server's certificate has a negative serial number, which Go refuses; issue the DC a proper certificate from your CA"
	}
	var le *ldap.Error
	if errors.As(err, &le) {
		switch le.ResultCode {
		case ldap.LDAPResultStrongAuthRequired:
			return strongAuthHint
		case ldap.LDAPResultUnavailableCriticalExtension:
			return criticalExtHint
		case ldap.LDAPResultNoSuchObject:
			return "the object does not exist: check base_dn (and sync_group when it is a DN)"
		case ldap.LDAPResultInsufficientAccessRights:
			return "the bind account lacks the rights for this: reading needs an authenticated domain user; password resets need delegated \"Reset password\""
		case ldap.LDAPResultSizeLimitExceeded:
			return "the server's size limit was hit: lower page_size (AD's MaxPageSize is 1000 by default)"
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "the server did not answer in time: check the address and firewall, or raise timeout / connect_timeout"
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return "nothing listens at that address and port: check the URL (LDAPS is port 636, LDAP 389) and that the DC is running"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "the server did not answer in time: check the address and firewall, or raise timeout / connect_timeout"
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return "the host name does not resolve: check the URL and this machine's DNS"
	}
	var rhe tls.RecordHeaderError
	if errors.As(err, &rhe) || strings.Contains(err.Error(), "first record does not look like a TLS handshake") {
		return "the server does not speak TLS on this port: use ldaps:// on port 636, or tls = \"starttls\" with ldap:// on port 389"
	}
	return ""
}
