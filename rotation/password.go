// Package rotation is KeyDesk's ownership of domain passwords: generating
// a strong password against the policy that applies to an account, and
// checking any password (generated or typed) against that policy first,
// with a message that names the rule that failed. The journal that writes a
// password to a key and to Active Directory without ever locking anyone
// out, and the schedule of rotations, build on it.
//
// The package is pure: no LDAP (package ldapsync reads the policy and
// writes passwords), no SQL (package store), no device I/O.
package rotation

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Length bounds of generated passwords.
const (
	DefaultLength = 24
	MinLength     = 14
	MaxLength     = 64
)

// Character sets. Symbols are the printable ASCII punctuation.
const (
	upper   = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	lower   = "abcdefghijklmnopqrstuvwxyz"
	digits  = "0123456789"
	symbols = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
	// A key types a password as a keyboard would, and the computer reads
	// the keys through its own layout. Layout-safe passwords (US, UK,
	// German, French) leave out the letters that move between QWERTY,
	// QWERTZ and AZERTY (a, m, q, w, y, z) and use only the symbols of the
	// numeric keypad, which every layout maps alike.
	layoutMovedLetters = "amqwyzAMQWYZ"
	layoutSafeSymbols  = "+-*/"
)

// Options say how to generate a password.
type Options struct {
	// Length in characters (0: DefaultLength; MinLength..MaxLength, and at
	// least the policy's minimum length).
	Length int
	// LayoutSafe restricts the characters to those typed alike on US, UK,
	// German and French keyboards.
	LayoutSafe bool
}

// Account is what the policy's name rule looks at.
type Account struct {
	SAMAccountName string
	DisplayName    string
}

// Policy is the password policy that applies to one account: the domain's
// (on the domain head), or the fine-grained one (a PSO) that overrides it.
type Policy struct {
	// Source names where the policy comes from, for messages: "domain
	// corp" or the PSO's name.
	Source     string
	MinLength  int
	Complexity bool // AD's complexity rule (pwdProperties bit 0x1)
	History    int  // passwords remembered
	MinAge     time.Duration
	MaxAge     time.Duration // 0: passwords never expire
}

// Violation is a password that breaks a rule of the policy. Its message
// says which rule and, where it helps, what would satisfy it; it never
// quotes the password.
type Violation struct {
	Rule   string // "length", "complexity", "name"
	Detail string
}

func (v *Violation) Error() string { return "the password breaks the " + v.Rule + " rule: " + v.Detail }

// ErrViolation is wrapped by every Violation.
var ErrViolation = errors.New("the password breaks the password policy")

// Unwrap makes errors.Is(err, ErrViolation) work.
func (v *Violation) Unwrap() error { return ErrViolation }

// Check checks a password against the policy that applies to account a,
// as Active Directory will: its length, and with complexity on, at least
// three kinds of character and no part of the account's name. Password
// history and the minimum age are the domain controller's to enforce (it
// knows the history); Check cannot see them.
func Check(p Policy, a Account, password string) error {
	n := utf8.RuneCountInString(password)
	source := ""
	if p.Source != "" {
		source = " (" + p.Source + ")"
	}
	if n < p.MinLength {
		return &Violation{"length", fmt.Sprintf("%d characters, and the policy%s wants at least %d", n, source, p.MinLength)}
	}
	if !p.Complexity {
		return nil
	}
	if k := kinds(password); k < 3 {
		return &Violation{"complexity", fmt.Sprintf("%d kinds of character (upper case, lower case, digits, symbols, other letters), and the policy%s wants 3", k, source)}
	}
	for _, tok := range nameTokens(a) {
		if strings.Contains(strings.ToLower(password), strings.ToLower(tok)) {
			return &Violation{"name", fmt.Sprintf("it contains a part of the account's name (%d characters of it), which the policy%s forbids", utf8.RuneCountInString(tok), source)}
		}
	}
	return nil
}

// kinds counts AD's character categories present: upper, lower, digit,
// symbol, and letters without case.
func kinds(s string) int {
	var up, lo, di, sy, other bool
	for _, r := range s {
		switch {
		case unicode.IsUpper(r):
			up = true
		case unicode.IsLower(r):
			lo = true
		case unicode.IsDigit(r):
			di = true
		case unicode.IsLetter(r):
			other = true
		default:
			sy = true
		}
	}
	n := 0
	for _, b := range []bool{up, lo, di, sy, other} {
		if b {
			n++
		}
	}
	return n
}

// nameTokens are the parts of the account's names that a password must not
// contain: each name split at AD's delimiters (comma, period, dash,
// underscore, space, pound sign, tab), parts of three characters or more.
// The whole sAMAccountName counts too.
func nameTokens(a Account) []string {
	var out []string
	if utf8.RuneCountInString(a.SAMAccountName) >= 3 {
		out = append(out, a.SAMAccountName)
	}
	for _, name := range []string{a.SAMAccountName, a.DisplayName} {
		for _, tok := range strings.FieldsFunc(name, func(r rune) bool { return strings.ContainsRune(",.-_ #\t", r) }) {
			if utf8.RuneCountInString(tok) >= 3 {
				out = append(out, tok)
			}
		}
	}
	return out
}

// maxTries bounds the draws of Generate: a draw that contains a part of
// the account's name is drawn again, which with names of ordinary length
// almost never happens twice.
const maxTries = 100

// Generate draws a password with crypto/rand: o.Length characters (at
// least the policy's minimum), each of upper case, lower case, digits and
// symbols present, none of the account's name in it, and checked against
// the policy before it is returned.
func Generate(p Policy, a Account, o Options) (string, error) {
	length := o.Length
	if length == 0 {
		length = DefaultLength
	}
	if length < MinLength || length > MaxLength {
		return "", fmt.Errorf("password length %d: use %d to %d", length, MinLength, MaxLength)
	}
	if length < p.MinLength {
		if p.MinLength > MaxLength {
			return "", fmt.Errorf("the policy (%s) wants at least %d characters, more than the %d KeyDesk generates", p.Source, p.MinLength, MaxLength)
		}
		length = p.MinLength
	}
	sets := []string{upper, lower, digits, symbols}
	if o.LayoutSafe {
		sets = []string{without(upper, layoutMovedLetters), without(lower, layoutMovedLetters), digits, layoutSafeSymbols}
	}
	all := strings.Join(sets, "")
	for range maxTries {
		pw := make([]byte, length)
		// One of each set, then any, then shuffled.
		for i, set := range sets {
			pw[i] = set[randInt(len(set))]
		}
		for i := len(sets); i < length; i++ {
			pw[i] = all[randInt(len(all))]
		}
		for i := length - 1; i > 0; i-- {
			j := randInt(i + 1)
			pw[i], pw[j] = pw[j], pw[i]
		}
		s := string(pw)
		err := Check(p, a, s)
		var v *Violation
		if errors.As(err, &v) && v.Rule == "name" {
			continue
		}
		if err != nil {
			return "", err
		}
		return s, nil
	}
	return "", fmt.Errorf("no password without a part of the account's name after %d draws: the names are too long or too many", maxTries)
}

func without(set, drop string) string {
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune(drop, r) {
			return -1
		}
		return r
	}, set)
}

// randInt is a uniform random integer in [0, n) from crypto/rand.
func randInt(n int) int {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		panic("crypto/rand failed: " + err.Error()) // the system's randomness is gone: nothing is safe to generate
	}
	return int(v.Int64())
}
