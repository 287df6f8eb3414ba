package ldapsync

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/go-ldap/ldap/v3"
)

// TestTranslatePasswordError: only the DC's answers are refusals; a write
// whose answer never came (a timeout, a reset connection) is not, since it
// may have happened.
func TestTranslatePasswordError(t *testing.T) {
	const dn = "CN=alice,DC=corp"
	tests := []struct {
		name    string
		err     error
		refusal string // "" = not a refusal
	}{
		{"constraint: too short", ldap.NewError(ldap.LDAPResultConstraintViolation, errors.New("0000052D: Constraint violation - password is too short")), RefusedLength},
		{"unwilling: policy", ldap.NewError(ldap.LDAPResultUnwillingToPerform, errors.New("0000052D: SvcErr")), RefusedPolicy},
		{"rights", ldap.NewError(ldap.LDAPResultInsufficientAccessRights, errors.New("access denied")), RefusedRights},
		{"critical extension", ldap.NewError(ldap.LDAPResultUnavailableCriticalExtension, errors.New("")), RefusedOther},
		{"network: timeout", ldap.NewError(ldap.ErrorNetwork, errors.New("ldap: connection timed out")), ""},
		{"network: closed", ldap.NewError(ldap.ErrorNetwork, io.EOF), ""},
		{"unexpected response", ldap.NewError(ldap.ErrorUnexpectedResponse, errors.New("?")), ""},
		{"not an LDAP error", fmt.Errorf("write: %w", io.ErrUnexpectedEOF), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := translatePasswordError(dn, tt.err)
			var pe *PasswordError
			switch {
			case tt.refusal == "" && errors.As(err, &pe):
				t.Errorf("%v was taken for a refusal (%s): the write may have happened", tt.err, pe.Reason)
			case tt.refusal != "" && (!errors.As(err, &pe) || pe.Reason != tt.refusal):
				t.Errorf("%v: got %v, want a refusal for %s", tt.err, err, tt.refusal)
			}
		})
	}
}

func TestPasswordValid(t *testing.T) {
	for code, want := range map[string]bool{"532": true, "773": true, "52e": false, "775": false, "533": false, "": false} {
		err := &ConnectError{Domain: "corp", Tries: []*URLError{{URL: "ldaps://dc", Err: &BindError{ResultCode: ldap.LDAPResultInvalidCredentials, DataCode: code}}}}
		if got := PasswordValid(fmt.Errorf("bind as x: %w", err)); got != want {
			t.Errorf("PasswordValid(data %q) = %v, want %v", code, got, want)
		}
	}
}
