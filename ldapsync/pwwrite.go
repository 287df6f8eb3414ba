package ldapsync

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"keydesk/config"
)

// Writing passwords. An administrative reset replaces unicodePwd (never
// userPassword) over TLS, with the policy-hints control when the DC lists
// it, so that the DC enforces the password history too. A user's own change
// is a Delete of the old value and an Add of the new one in one modify,
// bound as the user, so that the DC applies history and the minimum age.
// Refusals are translated into what was wrong and what to do.

// policyHintsValue is LDAP_SERVER_POLICY_HINTS' value: SEQUENCE { INTEGER 1 }.
const policyHintsValue = "\x30\x03\x02\x01\x01"

// Why a password write was refused.
const (
	RefusedLength     = "length"
	RefusedComplexity = "complexity"
	RefusedHistory    = "history"
	RefusedTooYoung   = "minimum-age"
	RefusedPolicy     = "policy" // AD did not say which rule
	RefusedRights     = "rights"
	RefusedWrongOld   = "wrong-password"
	RefusedOther      = "other"
)

// PasswordError is a password write AD refused, translated.
type PasswordError struct {
	Account string // the user's DN
	Reason  string // one of the Refused* values
	Hint    string // what was wrong and what to do
	Err     error  // the server's answer
}

func (e *PasswordError) Error() string {
	return fmt.Sprintf("AD refused the password of %s: %s (%v)", e.Account, e.Hint, e.Err)
}

func (e *PasswordError) Unwrap() error { return e.Err }

// ErrNoTLS: passwords are written only over an encrypted connection.
var ErrNoTLS = errors.New("passwords are written only over an encrypted connection: use tls = \"ldaps\" or \"starttls\"")

// ResetPassword sets the password of the user at userDN as an
// administrator (the service account needs the "Reset password" right).
func (c *Conn) ResetPassword(ctx context.Context, userDN, password string) error {
	if c.Domain.TLS == config.TLSModeNone {
		return ErrNoTLS
	}
	var controls []ldap.Control
	for _, oid := range []string{OIDPolicyHints, OIDPolicyHintsOld} {
		if c.RootDSE.Supports(oid) {
			controls = append(controls, ldap.NewControlString(oid, false, policyHintsValue))
			break
		}
	}
	req := ldap.NewModifyRequest(userDN, controls)
	req.Replace("unicodePwd", []string{EncodePassword(password)})
	return c.modifyPassword(ctx, req)
}

// modifyPassword sends a password modify and translates a refusal.
func (c *Conn) modifyPassword(ctx context.Context, req *ldap.ModifyRequest) error {
	if err := c.l.Modify(req); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return translatePasswordError(req.DN, err)
	}
	return nil
}

// ChangeOwnPassword changes the password of the user at userDN as the user
// (bound with the old password), as the user would on a workstation: the
// DC applies the history and the minimum age.
func ChangeOwnPassword(ctx context.Context, d config.Domain, userDN, oldPassword, newPassword string) error {
	if d.TLS == config.TLSModeNone {
		return ErrNoTLS
	}
	c, err := dialAsUser(ctx, d, userDN, oldPassword)
	if err != nil {
		return err
	}
	defer c.Close()
	req := ldap.NewModifyRequest(userDN, nil)
	req.Delete("unicodePwd", []string{EncodePassword(oldPassword)})
	req.Add("unicodePwd", []string{EncodePassword(newPassword)})
	return c.modifyPassword(ctx, req)
}

// PasswordValid reports whether a bind refusal still proves that the
// password is right: AD answers "password expired" (532) and "must change
// the password" (773) only to a bind with the right one.
func PasswordValid(err error) bool {
	var be *BindError
	return errors.As(err, &be) && be.ResultCode == ldap.LDAPResultInvalidCredentials && (be.DataCode == "532" || be.DataCode == "773")
}

// ErrWrongPassword: AD does not accept the password for the user.
var ErrWrongPassword = errors.New("AD does not accept this password for the user")

// VerifyPassword proves that AD accepts password for the user at userDN:
// one bind, on a connection of its own (a failed bind counts toward the
// domain's lockout threshold). A wrong password gives an error wrapping
// ErrWrongPassword; other refusals say why (locked out, expired, ...).
func VerifyPassword(ctx context.Context, d config.Domain, userDN, password string) error {
	c, err := dialAsUser(ctx, d, userDN, password)
	if err != nil {
		return err
	}
	return c.Close()
}

// userBindHints are AD's data codes of a refused user bind.
var userBindHints = map[string]string{
	"525": "no such user",
	"530": "the user may not log on at this time (logon hours)",
	"531": "the user may not log on from this workstation",
	"532": "the user's password has expired",
	"533": "the account is disabled",
	"701": "the account has expired",
	"773": "the user must change the password at next logon",
	"775": "the account is locked out",
}

// dialAsUser binds as the user (on the first DC that answers), reporting
// a refusal in the user's terms rather than the service account's.
func dialAsUser(ctx context.Context, d config.Domain, userDN, password string) (*Conn, error) {
	d.BindDN = userDN
	c, err := Dial(ctx, d, password)
	if err == nil {
		return c, nil
	}
	var be *BindError
	if errors.As(err, &be) && be.ResultCode == ldap.LDAPResultInvalidCredentials {
		if be.DataCode == "" || be.DataCode == "52e" {
			return nil, fmt.Errorf("bind as %s: %w", userDN, ErrWrongPassword)
		}
		if h, ok := userBindHints[be.DataCode]; ok {
			return nil, fmt.Errorf("bind as %s refused: %s (AD data code %s): %w", userDN, h, be.DataCode, err)
		}
	}
	return nil, err
}

// translatePasswordError says why AD refused a password write.
func translatePasswordError(userDN string, err error) error {
	var le *ldap.Error
	if !errors.As(err, &le) || le.ResultCode >= ldap.ErrorNetwork {
		// Not the DC's answer: the connection failed (a timeout, a reset)
		// or the client gave up. The write may or may not have happened.
		return fmt.Errorf("write the password of %s: no answer from the DC: %w", userDN, unwrapLDAPNetErr(err))
	}
	pe := &PasswordError{Account: userDN, Err: err, Reason: RefusedOther}
	diag := strings.ToLower(le.Error())
	switch le.ResultCode {
	case ldap.LDAPResultConstraintViolation, ldap.LDAPResultUnwillingToPerform:
		switch {
		case strings.Contains(diag, "too short"):
			pe.Reason, pe.Hint = RefusedLength, "the password is shorter than the policy allows"
		case strings.Contains(diag, "complexity"):
			pe.Reason, pe.Hint = RefusedComplexity, "the password does not meet the complexity rule (three kinds of character, no part of the user's name)"
		case strings.Contains(diag, "history") || strings.Contains(diag, "already used"):
			pe.Reason, pe.Hint = RefusedHistory, "the password was used before (password history)"
		case strings.Contains(diag, "too young"):
			pe.Reason, pe.Hint = RefusedTooYoung, "the password was changed too recently (the domain's minimum password age): try again later, or have an admin set it"
		case strings.Contains(diag, "0000052d"):
			pe.Reason, pe.Hint = RefusedPolicy, "the password breaks the password policy (length, complexity, history or minimum age)"
		case strings.Contains(diag, "00000056") || strings.Contains(diag, "invalid_password"):
			pe.Reason, pe.Hint = RefusedWrongOld, "the old password is wrong"
		case le.ResultCode == ldap.LDAPResultUnwillingToPerform && strings.Contains(diag, "0000001f"):
			pe.Hint = "the DC will not write passwords on this connection: it must be encrypted (LDAPS or StartTLS)"
		default:
			pe.Hint = "the DC refused the password"
		}
	case ldap.LDAPResultInsufficientAccessRights:
		pe.Reason, pe.Hint = RefusedRights, "the service account may not reset this user's password: delegate \"Reset password\" on the users' OU to it (Active Directory Users and Computers, Delegate Control), or make it an Account Operator"
	case ldap.LDAPResultUnavailableCriticalExtension:
		pe.Hint = "the server refused a control marked critical (\"Unavailable Critical Extension\"): KeyDesk sends the policy-hints control only when RootDSE lists it, never as critical; a proxy or a non-AD server in between is the usual cause"
	default:
		pe.Hint = "the DC refused the write"
	}
	return pe
}
