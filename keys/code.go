package keys

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// Activation code rules.
const (
	// CodeDigits is the length of an activation code.
	CodeDigits = 6
	// MaxCodeAttempts wrong codes lock the key (reason invalid activation
	// code).
	MaxCodeAttempts = 3
)

// codeSpace is the number of distinct codes (10^CodeDigits).
const codeSpace = 1_000_000

// codeLimit is the largest multiple of codeSpace that fits in 32 bits: a
// uniform 32-bit value below it, taken modulo codeSpace, is uniform over the
// codes; values at or above it are drawn again (rejection sampling), so no
// code is more likely than another.
const codeLimit = (1 << 32) / codeSpace * codeSpace

// Code is an activation code: CodeDigits decimal digits. The zero Code is
// not a valid code: it cannot be hashed and verifies against nothing.
//
// String shows the code grouped for a person ("482 913"); GoString and
// LogValue redact it, so %#v and log/slog never print it.
type Code struct {
	digits string
}

// NewCode draws a code uniformly from crypto/rand.
func NewCode() (Code, error) { return newCode(rand.Reader) }

func newCode(r io.Reader) (Code, error) {
	var b [4]byte
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return Code{}, fmt.Errorf("generate activation code: %w", err)
		}
		v := binary.BigEndian.Uint32(b[:])
		if v >= codeLimit {
			continue
		}
		return Code{digits: fmt.Sprintf("%06d", v%codeSpace)}, nil
	}
}

// String is the code in two groups of three digits, "482 913", for the
// screen that hands it to the employee; "" for the zero Code.
func (c Code) String() string {
	if c.digits == "" {
		return ""
	}
	return c.digits[:3] + " " + c.digits[3:]
}

// GoString redacts the code (%#v, test failure output).
func (c Code) GoString() string { return "keys.Code{redacted}" }

// LogValue redacts the code in log/slog.
func (c Code) LogValue() slog.Value { return slog.StringValue("[redacted activation code]") }

// IsZero reports whether c is the zero Code.
func (c Code) IsZero() bool { return c.digits == "" }

// ErrCodeFormat is wrapped by ParseCode's errors.
var ErrCodeFormat = errors.New("not an activation code")

// ParseCode reads a code as a person types it: six digits, optionally split
// in the middle by one space or hyphen ("482913", "482 913", "482-913"),
// with spaces around ignored. The error says what is wrong without repeating
// what was typed (it may be nearly the right code).
func ParseCode(s string) (Code, error) {
	s = strings.TrimSpace(s)
	if len(s) > 3 && (s[3] == ' ' || s[3] == '-') {
		s = s[:3] + s[4:]
	}
	digits := 0
	for i := 0; i < len(s); i++ {
		if s[i] >= '0' && s[i] <= '9' {
			digits++
		}
	}
	switch {
	case s == "":
		return Code{}, fmt.Errorf("%w: it is empty; type the 6 digits, such as 482 913", ErrCodeFormat)
	case digits != len(s):
		return Code{}, fmt.Errorf("%w: use only the digits 0-9, optionally split as 482 913 or 482-913", ErrCodeFormat)
	case digits != CodeDigits:
		return Code{}, fmt.Errorf("%w: it has %d digits, want %d, such as 482 913", ErrCodeFormat, digits, CodeDigits)
	}
	return Code{digits: s}, nil
}

// CodeHash is what is stored for a code instead of the code: a random salt
// and HMAC-SHA256 keyed with the pepper over the salt, the code and the
// key's binding (its id and serial, SecretBinding), encoded as
// "hmac-sha256$v2$<salt>$<mac>" (unpadded base64url). The binding makes a
// stored hash worthless on any other key: copied to another row it verifies
// nothing. Hashes of the first format (v1, unbound) verify nothing either.
//
// Why a keyed hash rather than a slow password hash: a code has only 10^6
// values, so any unkeyed hash, however slow, falls to an offline search by
// whoever reads the database. The pepper (a sub-key of the master key, see
// MasterKey.Derive) is not in the database, so the stored hash is useless
// without it. Whoever also holds the master key can open the master secrets
// themselves, which is worth more than a code that expires within days, so
// a slow hash would protect nothing more there.
type CodeHash string

const (
	hashPrefix = "hmac-sha256$v2$"
	saltLen    = 16
	// MinPepperLen is the shortest pepper HashCode accepts.
	MinPepperLen = 32
	// codeMACLabel separates this use of HMAC from any other.
	codeMACLabel = "keydesk activation code v2\x00"
)

// HashCode hashes c for the key of binding (SecretBinding of its id and
// serial) with a new random salt, keyed with pepper (use
// MasterKey.Derive(PurposeCodePepper)).
func HashCode(c Code, pepper []byte, binding string) (CodeHash, error) {
	if c.IsZero() {
		return "", errors.New("hash activation code: the code is empty")
	}
	if len(pepper) < MinPepperLen {
		return "", fmt.Errorf("hash activation code: the pepper has %d bytes, want at least %d", len(pepper), MinPepperLen)
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash activation code: salt: %w", err)
	}
	enc := base64.RawURLEncoding
	return CodeHash(hashPrefix + enc.EncodeToString(salt) + "$" + enc.EncodeToString(codeMAC(c, pepper, salt, binding))), nil
}

func codeMAC(c Code, pepper, salt []byte, binding string) []byte {
	m := hmac.New(sha256.New, pepper)
	m.Write([]byte(codeMACLabel))
	m.Write(salt)
	// The binding's length first: no binding can end where another's
	// digits begin.
	m.Write(fmt.Appendf(nil, "%d:%s", len(binding), binding))
	m.Write([]byte(c.digits))
	return m.Sum(nil)
}

// Verify reports whether c is the code h was made from for the key of
// binding, comparing in constant time. A malformed hash, a hash of another
// key, a zero Code or a short pepper verify as false.
func (h CodeHash) Verify(c Code, pepper []byte, binding string) bool {
	if c.IsZero() || len(pepper) < MinPepperLen {
		return false
	}
	rest, ok := strings.CutPrefix(string(h), hashPrefix)
	if !ok {
		return false
	}
	saltEnc, macEnc, ok := strings.Cut(rest, "$")
	if !ok {
		return false
	}
	// Strict: a stored hash has exactly one spelling (unused bits zero).
	enc := base64.RawURLEncoding.Strict()
	salt, err := enc.DecodeString(saltEnc)
	if err != nil || len(salt) != saltLen {
		return false
	}
	mac, err := enc.DecodeString(macEnc)
	if err != nil || len(mac) != sha256.Size {
		return false
	}
	return hmac.Equal(mac, codeMAC(c, pepper, salt, binding))
}

// Current reports whether h is of the current format (a hash of an older
// one can verify nothing: the key needs a new code).
func (h CodeHash) Current() bool { return strings.HasPrefix(string(h), hashPrefix) }

// GoString and LogValue keep even the hash out of logs: it is not the code,
// but there is no reason to spread it.
func (h CodeHash) GoString() string { return "keys.CodeHash{redacted}" }

// LogValue redacts the hash in log/slog.
func (h CodeHash) LogValue() slog.Value { return slog.StringValue("[redacted code hash]") }

// CodeState is what a key stores about its current activation code.
type CodeState struct {
	Hash      CodeHash  // "" when the key has no code
	ExpiresAt time.Time // the code is refused from this instant on
	Attempts  int       // wrong codes entered so far
	Binding   string    // the key's SecretBinding: the hash is for this key only
}

// Verdict is the outcome of one activation attempt.
type Verdict int

// The verdicts.
const (
	// CodeAccepted: the code is right and valid: apply ActionActivate.
	CodeAccepted Verdict = iota + 1
	// CodeWrong: a wrong code; store the new attempt count, the key stays
	// Reserved.
	CodeWrong
	// CodeWrongLocked: a wrong code and the last allowed one: store the
	// count and apply ActionFailCodeLock.
	CodeWrongLocked
	// CodeExpired: the code has expired; nothing is counted (no code can
	// succeed, so there is nothing to guess): an admin renews the code.
	CodeExpired
	// CodeMissing: the key has no code (or has used up its attempts
	// already, or holds a hash of an older format): nothing is counted.
	CodeMissing
)

func (v Verdict) String() string {
	switch v {
	case CodeAccepted:
		return "accepted"
	case CodeWrong:
		return "wrong code"
	case CodeWrongLocked:
		return "wrong code, key locked"
	case CodeExpired:
		return "code expired"
	case CodeMissing:
		return "no activation code"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// Attempt is the result of CheckCode.
type Attempt struct {
	Verdict  Verdict
	Attempts int // the attempt count to store
	Left     int // wrong codes still allowed before the key locks
}

// CheckCode decides one activation attempt: the three-attempt rule in one
// place. It does not change anything; the caller stores Attempt.Attempts
// and applies the transition the verdict names, in the same store
// transaction that read st, and writes the audit entry for every attempt.
//
// That transaction must commit also when the code is wrong: return nil from
// the store.Update function and report the wrong code afterwards, or the
// rollback would forget the attempt.
func CheckCode(st CodeState, entered Code, pepper []byte, now time.Time) Attempt {
	left := func(n int) int { return max(0, MaxCodeAttempts-n) }
	switch {
	case st.Hash == "" || !st.Hash.Current() || st.Attempts >= MaxCodeAttempts:
		return Attempt{Verdict: CodeMissing, Attempts: st.Attempts, Left: left(st.Attempts)}
	case st.ExpiresAt.IsZero() || !now.Before(st.ExpiresAt):
		return Attempt{Verdict: CodeExpired, Attempts: st.Attempts, Left: left(st.Attempts)}
	case st.Hash.Verify(entered, pepper, st.Binding):
		return Attempt{Verdict: CodeAccepted, Attempts: st.Attempts, Left: left(st.Attempts)}
	}
	n := st.Attempts + 1
	if n >= MaxCodeAttempts {
		return Attempt{Verdict: CodeWrongLocked, Attempts: n, Left: 0}
	}
	return Attempt{Verdict: CodeWrong, Attempts: n, Left: left(n)}
}
