package keys

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func testPepper(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func mustParse(t *testing.T, s string) Code {
	t.Helper()
	c, err := ParseCode(s)
	if err != nil {
		t.Fatalf("ParseCode(%q): %v", s, err)
	}
	return c
}

func TestNewCodeDistribution(t *testing.T) {
	const n = 100_000
	var counts [CodeDigits][10]int
	firstZero := 0
	for i := 0; i < n; i++ {
		c, err := NewCode()
		if err != nil {
			t.Fatal(err)
		}
		if len(c.digits) != CodeDigits {
			t.Fatalf("code %d has %d digits, want %d", i, len(c.digits), CodeDigits)
		}
		for p := 0; p < CodeDigits; p++ {
			d := c.digits[p]
			if d < '0' || d > '9' {
				t.Fatalf("code %d has a non-digit at position %d", i, p)
			}
			counts[p][d-'0']++
		}
		if c.digits[0] == '0' {
			firstZero++
		}
	}
	if firstZero == 0 {
		t.Error("no code starts with 0: leading zeros are lost")
	}
	// Each digit appears about n/10 times in each position; the standard
	// deviation is sqrt(n*0.1*0.9) ≈ 95, so 8 deviations is a loose bound
	// that a biased generator (such as one dropping a digit) still fails.
	for p := range counts {
		for d, got := range counts[p] {
			if got < n/10-760 || got > n/10+760 {
				t.Errorf("digit %d appears %d times at position %d, want about %d", d, got, p, n/10)
			}
		}
	}
}

// TestNewCodeRejectsBiasedValues feeds the generator chosen 32-bit values:
// those at or above the last full multiple of 10^6 must be drawn again, so
// every code has the same number of preimages.
func TestNewCodeRejectsBiasedValues(t *testing.T) {
	if codeLimit%codeSpace != 0 || codeLimit > 1<<32 || (1<<32)-codeLimit >= codeSpace {
		t.Fatalf("codeLimit %d is not the largest multiple of %d in 32 bits", codeLimit, codeSpace)
	}
	tests := []struct {
		name   string
		values []uint32
		want   string
	}{
		{"first value used", []uint32{1_234_567}, "234 567"},
		{"zero", []uint32{0}, "000 000"},
		{"last accepted", []uint32{codeLimit - 1}, "999 999"},
		{"limit rejected", []uint32{codeLimit, 42}, "000 042"},
		{"max rejected", []uint32{0xFFFF_FFFF, codeLimit + 5, 7_000_008}, "000 008"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		for _, v := range tt.values {
			binary.Write(&buf, binary.BigEndian, v)
		}
		c, err := newCode(&buf)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if c.String() != tt.want {
			t.Errorf("%s: wrong code drawn", tt.name)
		}
		if buf.Len() != 0 {
			t.Errorf("%s: %d bytes left unread: a value was not drawn or was drawn twice", tt.name, buf.Len())
		}
	}
	// Only rejected values, then the end: an error, not a biased code.
	var buf bytes.Buffer
	binary.Write(&buf, binary.BigEndian, uint32(codeLimit))
	if _, err := newCode(&buf); err == nil {
		t.Error("newCode with only rejected values and then EOF succeeded")
	}
}

func TestCodeString(t *testing.T) {
	if got := mustParse(t, "482913").String(); got != "482 913" {
		t.Errorf("String() = %q, want %q", got, "482 913")
	}
	if got := mustParse(t, "000017").String(); got != "000 017" {
		t.Errorf("String() = %q, want %q", got, "000 017")
	}
	if got := (Code{}).String(); got != "" {
		t.Errorf("zero Code String() = %q, want empty", got)
	}
	if !(Code{}).IsZero() || mustParse(t, "000000").IsZero() {
		t.Error("IsZero wrong")
	}
}

func TestCodeRedacted(t *testing.T) {
	c := mustParse(t, "482913")
	h, err := HashCode(c, testPepper(1), "key 1")
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	opts := &slog.HandlerOptions{ReplaceAttr: noTime} // timestamps hold digits too
	slog.New(slog.NewTextHandler(&logged, opts)).Info("issued", "code", c, "hash", h)
	slog.New(slog.NewJSONHandler(&logged, opts)).Info("issued", "code", c, "hash", h)
	outputs := map[string]string{
		"%#v":      fmt.Sprintf("%#v", c),
		"%#v (in)": fmt.Sprintf("%#v", struct{ C Code }{c}),
		"hash %#v": fmt.Sprintf("%#v", h),
		"slog":     logged.String(),
	}
	for name, out := range outputs {
		for _, secret := range []string{"482", "913", string(h)} {
			if strings.Contains(out, secret) {
				t.Errorf("%s output contains part of the code or its hash", name)
			}
		}
		if !strings.Contains(out, "redacted") {
			t.Errorf("%s output has no redaction marker", name)
		}
	}
}

func noTime(groups []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey && len(groups) == 0 {
		return slog.Attr{}
	}
	return a
}

func TestParseCode(t *testing.T) {
	tests := []struct {
		in      string
		want    string // "" = an error
		errPart string
	}{
		{"482913", "482 913", ""},
		{"482 913", "482 913", ""},
		{"482-913", "482 913", ""},
		{"  482 913\n", "482 913", ""},
		{"\t000000 ", "000 000", ""},
		{"012345", "012 345", ""},
		{"", "", "empty"},
		{"   ", "", "empty"},
		{"48291", "", "5 digits"},
		{"4829134", "", "7 digits"},
		{"482  913", "", "only the digits"},
		{"48 2913", "", "only the digits"},
		{"482_913", "", "only the digits"},
		{"482.913", "", "only the digits"},
		{"4829l3", "", "only the digits"},
		{"-482913", "", "only the digits"},
		{"482 91", "", "5 digits"},
		{"４８２９１３", "", "only the digits"}, // full-width digits
		{"٤٨٢٩١٣", "", "only the digits"}, // Arabic-Indic digits
		{"1234567890", "", "10 digits"},
	}
	for _, tt := range tests {
		c, err := ParseCode(tt.in)
		if tt.want != "" {
			if err != nil || c.String() != tt.want {
				t.Errorf("ParseCode(%q) = %q, %v; want %q", tt.in, c.String(), err, tt.want)
			}
			continue
		}
		if err == nil {
			t.Errorf("ParseCode(%q) succeeded, want an error", tt.in)
			continue
		}
		if !errors.Is(err, ErrCodeFormat) || !strings.Contains(err.Error(), tt.errPart) {
			t.Errorf("ParseCode(%q) error = %q, want ErrCodeFormat mentioning %q", tt.in, err, tt.errPart)
		}
		// The message does not depend on the digits typed: it never
		// repeats them.
		shifted := strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return '0' + (r-'0'+1)%10
			}
			return r
		}, tt.in)
		if _, err2 := ParseCode(shifted); err2 == nil || err2.Error() != err.Error() {
			t.Errorf("ParseCode(%q) error depends on the digits typed: %q vs %v", tt.in, err, err2)
		}
		if !c.IsZero() {
			t.Errorf("ParseCode(%q) returned a code with its error", tt.in)
		}
	}
}

func TestHashCode(t *testing.T) {
	pepper := testPepper(7)
	c := mustParse(t, "482913")
	const bound = "keydesk key 7 YK-7"
	h1, err := HashCode(c, pepper, bound)
	if err != nil {
		t.Fatal(err)
	}
	h2, err := HashCode(c, pepper, bound)
	if err != nil {
		t.Fatal(err)
	}
	if h1 == h2 {
		t.Error("two hashes of the same code are equal: no per-code salt")
	}
	if !strings.HasPrefix(string(h1), "hmac-sha256$v2$") || !h1.Current() {
		t.Errorf("hash format: want the hmac-sha256$v2$ prefix")
	}
	tests := []struct {
		name    string
		hash    CodeHash
		code    Code
		pepper  []byte
		binding string
		want    bool
	}{
		{"right code", h1, c, pepper, bound, true},
		{"right code, second hash", h2, c, pepper, bound, true},
		{"copied to another key", h1, c, pepper, "keydesk key 8 YK-8", false},
		{"same serial, another row", h1, c, pepper, "keydesk key 9 YK-7", false},
		{"no binding", h1, c, pepper, "", false},
		{"wrong code", h1, mustParse(t, "482914"), pepper, bound, false},
		{"swapped halves", h1, mustParse(t, "913482"), pepper, bound, false},
		{"zero code", h1, Code{}, pepper, bound, false},
		{"wrong pepper", h1, c, testPepper(8), bound, false},
		{"short pepper", h1, c, pepper[:16], bound, false},
		{"empty hash", "", c, pepper, bound, false},
		{"other scheme", CodeHash(strings.Replace(string(h1), "hmac-sha256", "plain", 1)), c, pepper, bound, false},
		{"older format", CodeHash(strings.Replace(string(h1), "$v2$", "$v1$", 1)), c, pepper, bound, false},
		{"no mac", CodeHash(string(h1)[:strings.LastIndex(string(h1), "$")]), c, pepper, bound, false},
		{"mac altered", CodeHash(flipLast(string(h1))), c, pepper, bound, false},
		{"salt of another hash", CodeHash(string(h2)[:strings.LastIndex(string(h2), "$")] + string(h1)[strings.LastIndex(string(h1), "$"):]), c, pepper, bound, false},
		{"not base64", CodeHash("hmac-sha256$v2$!!!$???"), c, pepper, bound, false},
		{"non-canonical last character", CodeHash(nonCanonical(string(h1))), c, pepper, bound, false},
	}
	for _, tt := range tests {
		if got := tt.hash.Verify(tt.code, tt.pepper, tt.binding); got != tt.want {
			t.Errorf("%s: Verify = %v, want %v", tt.name, got, tt.want)
		}
	}
	if _, err := HashCode(Code{}, pepper, bound); err == nil {
		t.Error("HashCode of the zero Code succeeded")
	}
	if _, err := HashCode(c, pepper[:31], bound); err == nil {
		t.Error("HashCode with a 31-byte pepper succeeded")
	}
}

// flipLast changes one character of the MAC (not the last one, whose low
// bits carry no data in unpadded base64).
func flipLast(s string) string {
	b := []byte(s)
	i := len(b) - 5
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// nonCanonical respells the MAC's last character with its unused low bits
// set: the same bytes to a lenient decoder, a different stored hash.
func nonCanonical(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	b := []byte(s)
	i := strings.IndexByte(alphabet, b[len(b)-1])
	b[len(b)-1] = alphabet[i|0x3] // 32 bytes = 42 chars + 4 bits: the 2 low bits are unused
	if b[len(b)-1] == s[len(s)-1] {
		b[len(b)-1] = alphabet[i&^0x3|0x1]
	}
	return string(b)
}

// TestHashHidesCode: the stored form contains no trace of the code, for
// many codes, in any of its spellings.
func TestHashHidesCode(t *testing.T) {
	pepper := testPepper(3)
	for i := 0; i < 2000; i++ {
		c, err := NewCode()
		if err != nil {
			t.Fatal(err)
		}
		h, err := HashCode(c, pepper, "key")
		if err != nil {
			t.Fatal(err)
		}
		for _, form := range []string{c.digits, c.String(), c.digits[:3] + "-" + c.digits[3:]} {
			if strings.Contains(string(h), form) {
				t.Fatalf("hash %d contains its code", i)
			}
		}
	}
}

func TestCheckCode(t *testing.T) {
	pepper := testPepper(9)
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	right := mustParse(t, "271828")
	wrong := mustParse(t, "314159")
	const bound = "keydesk key 1 K1"
	h, err := HashCode(right, pepper, bound)
	if err != nil {
		t.Fatal(err)
	}
	old := CodeHash(strings.Replace(string(h), "$v2$", "$v1$", 1))
	valid := now.Add(72 * time.Hour)
	tests := []struct {
		name string
		st   CodeState
		code Code
		want Attempt
	}{
		{"right first time", CodeState{h, valid, 0, bound}, right, Attempt{CodeAccepted, 0, 3}},
		{"right after two wrong", CodeState{h, valid, 2, bound}, right, Attempt{CodeAccepted, 2, 1}},
		{"first wrong", CodeState{h, valid, 0, bound}, wrong, Attempt{CodeWrong, 1, 2}},
		{"second wrong", CodeState{h, valid, 1, bound}, wrong, Attempt{CodeWrong, 2, 1}},
		{"third wrong locks", CodeState{h, valid, 2, bound}, wrong, Attempt{CodeWrongLocked, 3, 0}},
		{"attempts used up", CodeState{h, valid, 3, bound}, right, Attempt{CodeMissing, 3, 0}},
		{"no code", CodeState{"", time.Time{}, 0, bound}, right, Attempt{CodeMissing, 0, 3}},
		{"expired, right code", CodeState{h, now, 0, bound}, right, Attempt{CodeExpired, 0, 3}},
		{"expired, wrong code not counted", CodeState{h, now.Add(-time.Hour), 1, bound}, wrong, Attempt{CodeExpired, 1, 2}},
		{"no expiry fails closed", CodeState{h, time.Time{}, 0, bound}, right, Attempt{CodeExpired, 0, 3}},
		{"last nanosecond", CodeState{h, now.Add(time.Nanosecond), 0, bound}, right, Attempt{CodeAccepted, 0, 3}},
		{"zero code entered", CodeState{h, valid, 0, bound}, Code{}, Attempt{CodeWrong, 1, 2}},
		{"hash of another key", CodeState{h, valid, 0, "keydesk key 2 K2"}, right, Attempt{CodeWrong, 1, 2}},
		{"hash of the older format", CodeState{old, valid, 0, bound}, right, Attempt{CodeMissing, 0, 3}},
	}
	for _, tt := range tests {
		if got := CheckCode(tt.st, tt.code, pepper, now); got != tt.want {
			t.Errorf("%s: CheckCode = %+v, want %+v", tt.name, got, tt.want)
		}
	}
	// Three wrong codes in a row, carrying the count: locked on the third.
	st := CodeState{h, valid, 0, bound}
	var verdicts []Verdict
	for i := 0; i < MaxCodeAttempts; i++ {
		a := CheckCode(st, wrong, pepper, now)
		verdicts = append(verdicts, a.Verdict)
		st.Attempts = a.Attempts
	}
	if fmt.Sprint(verdicts) != fmt.Sprint([]Verdict{CodeWrong, CodeWrong, CodeWrongLocked}) {
		t.Errorf("three wrong codes: %v", verdicts)
	}
}
