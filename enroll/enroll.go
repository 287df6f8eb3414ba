// Package enroll holds the pure logic of enrolling an employee without a
// key (issue: import-only employees): the one-time enrollment code an
// invitation carries (random, over 100 bits, single use, expiring, kept
// only as a keyed hash) and the authenticator app's TOTP (RFC 6238: SHA-1,
// 6 digits, 30 seconds, one step of clock skew, no code used twice). No
// I/O: the application layer stores the hashes and the sealed secrets.
package enroll

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
	"github.com/skip2/go-qrcode"
)

// codeBytes is the enrollment code's randomness: 15 bytes, 120 bits.
const codeBytes = 15

// codeChars is its length in base32 (without padding): 24.
const codeChars = codeBytes * 8 / 5

// DefaultCodeTTL is how long an enrollment code is valid.
const DefaultCodeTTL = 7 * 24 * time.Hour

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// Code is an enrollment code (24 base32 characters, 120 bits).
type Code string

// NewCode makes a code from crypto/rand.
func NewCode() (Code, error) {
	b := make([]byte, codeBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make an enrollment code: %w", err)
	}
	return Code(b32.EncodeToString(b)), nil
}

// ParseCode reads a code as a person types it: case, spaces and dashes do
// not matter; 0 and 1, which base32 lacks, are taken for O and I.
func ParseCode(s string) (Code, error) {
	s = strings.Map(func(r rune) rune {
		switch {
		case r == ' ' || r == '-' || r == '\t':
			return -1
		case r == '0':
			return 'O'
		case r == '1':
			return 'I'
		}
		return r
	}, strings.ToUpper(strings.TrimSpace(s)))
	if len(s) != codeChars {
		return "", fmt.Errorf("an enrollment code has %d letters and digits (in groups of 4), this has %d: check the invitation", codeChars, len(s))
	}
	if _, err := b32.DecodeString(s); err != nil {
		return "", errors.New("this is not an enrollment code: it holds letters and digits only from A-Z and 2-7 (check the invitation)")
	}
	return Code(s), nil
}

// String shows the code in groups of 4, as the invitation prints it.
func (c Code) String() string {
	var b strings.Builder
	for i, r := range string(c) {
		if i > 0 && i%4 == 0 {
			b.WriteByte('-')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Hash is the code's keyed hash (the only form it is stored in).
func Hash(pepper []byte, c Code) []byte {
	m := hmac.New(sha256.New, pepper)
	m.Write([]byte("keydesk enrollment code v1\x00"))
	m.Write([]byte(c))
	return m.Sum(nil)
}

// Errors of an enrollment code.
var (
	ErrWrongCode   = errors.New("this enrollment code is not right: check the invitation, or ask for a new one")
	ErrCodeExpired = errors.New("this enrollment code has expired: ask the helpdesk to send a new invitation")
	ErrCodeUsed    = errors.New("this enrollment code was used already: each code enrolls once; ask for a new invitation")
	// ErrCodeReplaced: a newer invitation (a resend, or a reset) took its place.
	ErrCodeReplaced = errors.New("this enrollment code was replaced by a newer invitation: use the code of the latest email")
)

// CodeState is what is stored of an invitation's code.
type CodeState struct {
	Hash      []byte
	ExpiresAt time.Time
	UsedAt    *time.Time
	// ReplacedAt is when a newer invitation took its place (nil: never).
	ReplacedAt *time.Time
}

// CheckCode decides whether c is the stored code and may be used at now.
func CheckCode(st CodeState, c Code, pepper []byte, now time.Time) error {
	if !hmac.Equal(st.Hash, Hash(pepper, c)) {
		return ErrWrongCode
	}
	switch {
	case st.UsedAt != nil:
		return ErrCodeUsed
	case st.ReplacedAt != nil:
		return ErrCodeReplaced
	case !now.Before(st.ExpiresAt):
		return ErrCodeExpired
	}
	return nil
}

// TOTP parameters (what every authenticator app speaks).
const (
	Period = 30 * time.Second
	Digits = 6
	Skew   = 1 // steps either side of now that are accepted
)

var totpOpts = hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// Secret is a TOTP secret (20 random bytes).
type Secret []byte

// NewSecret makes a secret from crypto/rand.
func NewSecret() (Secret, error) {
	s := make(Secret, 20)
	if _, err := rand.Read(s); err != nil {
		return nil, fmt.Errorf("make a TOTP secret: %w", err)
	}
	return s, nil
}

// Format never shows a secret.
func (s Secret) Format(f fmt.State, _ rune) { f.Write([]byte("Secret(redacted)")) }

// Base32 is the secret as an authenticator app takes it typed in (the
// fallback when the QR code cannot be shown).
func (s Secret) Base32() string { return b32.EncodeToString(s) }

// ParseSecret reads a secret in base32, as a URI or an app shows it.
func ParseSecret(s string) (Secret, error) {
	b, err := b32.DecodeString(strings.ToUpper(strings.ReplaceAll(s, " ", "")))
	if err != nil {
		return nil, fmt.Errorf("a TOTP secret is base32 (A-Z, 2-7): %w", err)
	}
	return Secret(b), nil
}

// URI is the otpauth:// URI that the QR code carries.
func URI(issuer, account string, s Secret) (string, error) {
	k, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: account, Secret: s, Period: uint(Period / time.Second), Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return "", fmt.Errorf("make the authenticator URI: %w", err)
	}
	return k.URL(), nil
}

// Step is the TOTP time step of t.
func Step(t time.Time) int64 { return t.Unix() / int64(Period/time.Second) }

// CodeAt is the TOTP code of step.
func CodeAt(s Secret, step int64) (string, error) {
	return hotp.GenerateCodeCustom(s.Base32(), uint64(step), totpOpts)
}

// Errors of a TOTP code.
var (
	ErrWrongTOTP  = errors.New("this code is not the authenticator's: type the 6 digits it shows now")
	ErrReusedTOTP = errors.New("this code was used already: wait for the authenticator's next one")
)

// VerifyTOTP checks code at now, one step of skew either side, and refuses
// a step at or before lastStep (a code used twice, or an older one after a
// newer one). It returns the step the code belongs to (to store as the new
// lastStep).
func VerifyTOTP(s Secret, code string, now time.Time, lastStep int64) (int64, error) {
	code = strings.TrimSpace(strings.ReplaceAll(code, " ", ""))
	if len(code) != Digits {
		return 0, ErrWrongTOTP
	}
	cur := Step(now)
	for _, step := range []int64{cur, cur - 1, cur + 1} {
		want, err := CodeAt(s, step)
		if err != nil {
			return 0, err
		}
		if hmac.Equal([]byte(want), []byte(code)) {
			if step <= lastStep {
				return 0, ErrReusedTOTP
			}
			return step, nil
		}
	}
	return 0, ErrWrongTOTP
}

// QR is the QR code of text (the otpauth URI), as rows of modules (true:
// dark), with the standard quiet zone of 4 light modules around it.
func QR(text string) ([][]bool, error) {
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		return nil, fmt.Errorf("make the QR code: %w", err)
	}
	return q.Bitmap(), nil
}

// HalfBlocks draws QR modules as text: two module rows per line, one
// module per column; ▀ draws the upper module, ▄ the lower, █ both, a space
// neither. drawLight says whether the light modules are drawn (as the text
// colour: right on light text over a dark background) and the dark ones
// left to the background, or the other way round. A last line with one row
// of modules gets a light one under it (more quiet zone).
func HalfBlocks(modules [][]bool, drawLight bool) []string {
	drawn := func(y, x int) bool {
		if y >= len(modules) {
			return drawLight
		}
		return modules[y][x] != drawLight // dark modules are true
	}
	out := make([]string, 0, (len(modules)+1)/2)
	for y := 0; y < len(modules); y += 2 {
		var b strings.Builder
		for x := range modules[y] {
			switch top, bottom := drawn(y, x), drawn(y+1, x); {
			case top && bottom:
				b.WriteRune('█')
			case top:
				b.WriteRune('▀')
			case bottom:
				b.WriteRune('▄')
			default:
				b.WriteByte(' ')
			}
		}
		out = append(out, b.String())
	}
	return out
}
