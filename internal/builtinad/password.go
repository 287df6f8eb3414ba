package builtinad

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"

	"keydesk/ldapsync"
)

// password holds an account's password as salted hashes only: the current
// one first, then as many previous ones as the domain's history keeps.
type password struct {
	hashes  [][]byte // salt (16 bytes) || SHA-256(salt || password)
	lastSet time.Time
}

const saltLen = 16

func hashPassword(pw string) []byte {
	out := make([]byte, saltLen, saltLen+sha256.Size)
	if _, err := rand.Read(out); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	h := sha256.New()
	h.Write(out)
	h.Write([]byte(pw))
	return h.Sum(out)
}

func hashMatches(stored []byte, pw string) bool {
	if len(stored) != saltLen+sha256.Size {
		return false
	}
	h := sha256.New()
	h.Write(stored[:saltLen])
	h.Write([]byte(pw))
	return subtle.ConstantTimeCompare(h.Sum(nil), stored[saltLen:]) == 1
}

func (p *password) matches(pw string) bool {
	return p != nil && len(p.hashes) > 0 && hashMatches(p.hashes[0], pw)
}

func (p *password) inHistory(pw string, n int) bool {
	if p == nil {
		return false
	}
	for i, h := range p.hashes {
		if i >= n {
			break
		}
		if hashMatches(h, pw) {
			return true
		}
	}
	return false
}

// decodeUnicodePwd reads a unicodePwd value: UTF-16LE of the password in
// double quotes.
func decodeUnicodePwd(v string) (string, bool) {
	b := []byte(v)
	if len(b)%2 != 0 || len(b) < 4 {
		return "", false
	}
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	s := string(utf16.Decode(u))
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return "", false
	}
	return s[1 : len(s)-1], true
}

// EncodePassword returns the unicodePwd value for password: UTF-16LE of the
// password in double quotes.
func EncodePassword(password string) string { return ldapsync.EncodePassword(password) }

// policy is the domain's password policy, read from the domain head.
type policy struct {
	minLength  int
	complexity bool
	history    int
	minAge     time.Duration
}

// passwordExpired reports whether e's password is older than maxPwdAge
// (unless userAccountControl says it never expires). Caller holds d.mu.
func (d *Domain) passwordExpired(e *entry) bool {
	if e.pw == nil || e.pw.lastSet.IsZero() || e.uac()&uacDontExpirePasswd != 0 {
		return false
	}
	v, _ := strconv.ParseInt(d.head.first("maxpwdage"), 10, 64)
	if v < 0 {
		v = -v
	}
	return v > 0 && d.now().Sub(e.pw.lastSet) > time.Duration(v)*100
}

func (d *Domain) policy() policy {
	num := func(key string) int64 {
		v, _ := strconv.ParseInt(d.head.first(key), 10, 64)
		return v
	}
	age := num("minpwdage")
	if age < 0 {
		age = -age
	}
	return policy{
		minLength:  int(num("minpwdlength")),
		complexity: num("pwdproperties")&1 != 0,
		history:    int(num("pwdhistorylength")),
		minAge:     time.Duration(age) * 100,
	}
}

// pwMode says how a password is being set.
type pwMode int

const (
	pwReset        pwMode = iota // administrator reset: no history, no minimum age
	pwResetHistory               // reset with the policy-hints control: history too
	pwChange                     // the user's own change: history and minimum age
	pwInitial                    // the password of a new account
)

// policyError is a refusal under the password policy: AD's diagnostic,
// then the rule that failed (Samba's wording, this double's addition).
func policyError(reason string) *ldap.Error {
	return ldapErr(ldap.LDAPResultConstraintViolation, "%scheck_password_restrictions: %s", diagPolicy, reason)
}

// checkPassword applies the domain policy to a new password for e.
func (d *Domain) checkPassword(e *entry, pw string, mode pwMode) *ldap.Error {
	pol := d.policy()
	if n := len([]rune(pw)); n < pol.minLength {
		return policyError("the password is too short. It should be equal or longer than " + strconv.Itoa(pol.minLength) + " characters!")
	}
	if pol.complexity {
		if !complexEnough(pw) {
			return policyError("the password does not meet the complexity criteria!")
		}
		if containsName(pw, e.first("samaccountname"), e.first("displayname")) {
			return policyError("the password contains the account name or parts of the display name!")
		}
	}
	if mode == pwChange && pol.minAge > 0 && e.pw != nil && !e.pw.lastSet.IsZero() && d.now().Sub(e.pw.lastSet) < pol.minAge {
		return policyError("password is too young to change!")
	}
	if (mode == pwChange || mode == pwResetHistory) && e.pw.inHistory(pw, max(pol.history, 1)) {
		return policyError("the password was already used (in history)!")
	}
	return nil
}

// complexEnough is AD's complexity rule: characters from three of the five
// categories (upper case, lower case, digits, non-alphanumeric, letters
// without case such as CJK).
func complexEnough(pw string) bool {
	var upper, lower, digit, other, caseless bool
	for _, r := range pw {
		switch {
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsLower(r):
			lower = true
		case r >= '0' && r <= '9':
			digit = true
		case unicode.IsLetter(r):
			caseless = true
		default:
			other = true
		}
	}
	n := 0
	for _, b := range []bool{upper, lower, digit, other, caseless} {
		if b {
			n++
		}
	}
	return n >= 3
}

// nameTokens splits a display name like AD's complexity check does.
func nameTokens(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return strings.ContainsRune(",.-_ #\t", r) })
}

// containsName reports whether pw contains the account name (when longer
// than two characters) or a display-name token of three or more
// characters, case-insensitively.
func containsName(pw, sam, display string) bool {
	lp := strings.ToLower(pw)
	if len([]rune(sam)) >= 3 && strings.Contains(lp, strings.ToLower(sam)) {
		return true
	}
	for _, t := range nameTokens(display) {
		if len([]rune(t)) >= 3 && strings.Contains(lp, strings.ToLower(t)) {
			return true
		}
	}
	return false
}

// storePassword sets e's password after the checks passed.
func (d *Domain) storePassword(e *entry, pw string) {
	now := d.now()
	h := hashPassword(pw)
	keep := max(d.policy().history, 1)
	if e.pw == nil {
		e.pw = &password{}
	}
	hashes := append([][]byte{h}, e.pw.hashes...)
	if len(hashes) > keep {
		hashes = hashes[:keep]
	}
	e.pw.hashes = hashes
	e.pw.lastSet = now
	e.set("pwdLastSet", fileTime(now))
	if uac := e.uac(); uac&uacPasswdNotReqd != 0 {
		e.set("userAccountControl", strconv.FormatInt(uac&^uacPasswdNotReqd, 10))
	}
}

// policyHintsValue reads the value of LDAP_SERVER_POLICY_HINTS:
// SEQUENCE { Flags INTEGER }; flag 1 asks for the policy (history) to be
// enforced on a reset.
func policyHintsValue(v string) (bool, error) {
	if v == "" {
		return false, errors.New("no value")
	}
	p, err := ber.DecodePacketErr([]byte(v))
	if err != nil {
		return false, err
	}
	if len(p.Children) < 1 {
		return false, errors.New("empty sequence")
	}
	n, ok := p.Children[0].Value.(int64)
	if !ok {
		return false, errors.New("flags is not an integer")
	}
	return n&1 != 0, nil
}
