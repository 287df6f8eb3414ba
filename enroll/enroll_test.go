package enroll

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"keydesk/internal/qrtest"
)

// RFC 6238, appendix B: the SHA-1 vectors (8 digits there; the last 6 are
// the 6-digit code).
func TestTOTPMatchesRFC6238(t *testing.T) {
	secret := Secret("12345678901234567890")
	for unix, want := range map[int64]string{
		59:         "287082",
		1111111109: "081804",
		1111111111: "050471",
		1234567890: "005924",
		2000000000: "279037",
	} {
		got, err := CodeAt(secret, Step(time.Unix(unix, 0)))
		if err != nil || got != want {
			t.Errorf("code at %d = %q (%v), want %q", unix, got, err, want)
		}
	}
}

func TestVerifyTOTP(t *testing.T) {
	secret, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 2, 9, 0, 10, 0, time.UTC)
	at := func(d int64) string {
		c, err := CodeAt(secret, Step(now)+d)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name     string
		code     string
		lastStep int64
		want     error
		step     int64
	}{
		{"now", at(0), 0, nil, Step(now)},
		{"one step behind (clock skew)", at(-1), 0, nil, Step(now) - 1},
		{"one step ahead", at(1), 0, nil, Step(now) + 1},
		{"two steps behind", at(-2), 0, ErrWrongTOTP, 0},
		{"two steps ahead", at(2), 0, ErrWrongTOTP, 0},
		{"used already", at(0), Step(now), ErrReusedTOTP, 0},
		{"older than one used", at(-1), Step(now), ErrReusedTOTP, 0},
		{"spaces are fine", at(0)[:3] + " " + at(0)[3:], 0, nil, Step(now)},
		{"too short", "12345", 0, ErrWrongTOTP, 0},
		{"letters", "abcdef", 0, ErrWrongTOTP, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			step, err := VerifyTOTP(secret, tt.code, now, tt.lastStep)
			if !errors.Is(err, tt.want) || (tt.want == nil && step != tt.step) {
				t.Errorf("VerifyTOTP = %d, %v; want %d, %v", step, err, tt.step, tt.want)
			}
		})
	}
}

func TestEnrollmentCodes(t *testing.T) {
	c, err := NewCode()
	if err != nil {
		t.Fatal(err)
	}
	if len(c) != 24 || strings.Count(c.String(), "-") != 5 {
		t.Fatalf("code %q shown as %q: want 24 characters in groups of 4", c, c.String())
	}
	other, _ := NewCode()
	if other == c {
		t.Fatal("two codes are the same")
	}
	typed := strings.ToLower(strings.ReplaceAll(c.String(), "-", " "))
	if p, err := ParseCode(typed); err != nil || p != c {
		t.Errorf("ParseCode(%q) = %q, %v; want %q", typed, p, err, c)
	}
	if p, err := ParseCode("abcd-efgh-ijkl-mn0p-qrs1-uvwx"); err != nil || p != "ABCDEFGHIJKLMNOPQRSIUVWX" {
		t.Errorf("0 and 1 typed for O and I: %q %v", p, err)
	}
	for in, want := range map[string]string{"ABCD-EFGH": "has 24 letters and digits", "ABCD-EFGH-IJKL-MNOP-QRST-UVW8": "not an enrollment code"} {
		if _, err := ParseCode(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseCode(%q) = %v, want an error saying %q", in, err, want)
		}
	}

	pepper := []byte("pepper")
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	used := now.Add(-time.Hour)
	st := CodeState{Hash: Hash(pepper, c), ExpiresAt: now.Add(DefaultCodeTTL)}
	tests := []struct {
		name string
		st   CodeState
		code Code
		at   time.Time
		want error
	}{
		{"right", st, c, now, nil},
		{"wrong", st, other, now, ErrWrongCode},
		{"another pepper", CodeState{Hash: Hash([]byte("other"), c), ExpiresAt: st.ExpiresAt}, c, now, ErrWrongCode},
		{"expired", st, c, now.Add(DefaultCodeTTL), ErrCodeExpired},
		{"used", CodeState{Hash: st.Hash, ExpiresAt: st.ExpiresAt, UsedAt: &used}, c, now, ErrCodeUsed},
		{"replaced", CodeState{Hash: st.Hash, ExpiresAt: st.ExpiresAt, ReplacedAt: &used}, c, now, ErrCodeReplaced},
		{"used beats expired", CodeState{Hash: st.Hash, ExpiresAt: st.ExpiresAt, UsedAt: &used}, c, now.Add(DefaultCodeTTL), ErrCodeUsed},
		{"wrong beats everything", CodeState{Hash: st.Hash, ExpiresAt: now, UsedAt: &used}, other, now.Add(DefaultCodeTTL), ErrWrongCode},
	}
	for _, tt := range tests {
		if err := CheckCode(tt.st, tt.code, pepper, tt.at); !errors.Is(err, tt.want) {
			t.Errorf("%s: CheckCode = %v, want %v", tt.name, err, tt.want)
		}
	}
}

func TestURI(t *testing.T) {
	secret := Secret("12345678901234567890")
	raw, err := URI("KeyDesk", "ann@example.com", secret)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/KeyDesk:ann@example.com" || q.Get("secret") != secret.Base32() ||
		q.Get("issuer") != "KeyDesk" || q.Get("algorithm") != "SHA1" || q.Get("digits") != "6" || q.Get("period") != "30" {
		t.Errorf("URI %s", raw)
	}
	if s := fmt.Sprintf("%v %s %+v", secret, secret, secret); strings.Contains(s, "1234") {
		t.Errorf("a secret printed: %s", s)
	}
}

// TestHalfBlocksDecode draws a URI's QR code as text and reads it back
// with a QR decoder, from the text alone: light text (the blocks) on a dark
// background.
func TestHalfBlocksDecode(t *testing.T) {
	uri, err := URI("Example Corp", "ann@example.com", Secret("12345678901234567890"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := QR(uri)
	if err != nil {
		t.Fatal(err)
	}
	for _, drawLight := range []bool{true, false} {
		lines := HalfBlocks(m, drawLight)
		if len(lines) != (len(m)+1)/2 {
			t.Errorf("%d lines for %d module rows", len(lines), len(m))
		}
		got, err := qrtest.Decode(strings.Join(lines, "\n"), drawLight)
		if err != nil || got != uri {
			t.Errorf("drawing light modules %v: decoded %q (%v), want %q", drawLight, got, err, uri)
		}
		// Read with the opposite convention, it is not a QR code.
		if _, err := qrtest.Decode(strings.Join(lines, "\n"), !drawLight); err == nil {
			t.Errorf("drawing light modules %v: it decodes read the wrong way round too", drawLight)
		}
	}
}
