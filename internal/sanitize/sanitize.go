// Package sanitize makes untrusted text (anything that came from the
// directory or from a device) safe to print on a terminal and in JSON:
// control characters, escape sequences, bidirectional overrides and every
// other invisible format character become visible, harmless text; runs of
// combining marks are cut short.
package sanitize

import (
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxMarks is how many combining marks one character keeps; the rest of a
// run (a "zalgo" string that would smear over neighbouring lines) is
// replaced by a count.
const MaxMarks = 3

// Text returns s with every character that could move the cursor, change
// colours, reorder text, hide content or spill over other text replaced by
// a visible escape: ESC becomes `\x1b`, a C1 control `\u009b`, a
// right-to-left override `<U+202E>`, a zero-width or tag character its
// code point the same way, invalid UTF-8 U+FFFD, and combining marks past
// MaxMarks on one character `<+N marks>`. Printable text, including
// non-ASCII letters and emoji sequences joined by ZWJ, is kept.
func Text(s string) string {
	if isClean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	prev, marks, dropped := rune(-1), 0, 0
	flush := func() {
		if dropped > 0 {
			fmt.Fprintf(&b, "<+%d marks>", dropped)
		}
		marks, dropped = 0, 0
	}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		next, _ := utf8.DecodeRuneInString(s[i+size:])
		if !isMark(r) {
			flush()
		}
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteRune('\uFFFD')
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r >= 0x80 && r <= 0x9f:
			fmt.Fprintf(&b, `\u%04x`, r)
		case r == zwj && isEmoji(prev) && isEmoji(next):
			b.WriteRune(r) // a family, a profession: one emoji drawn from several
		case Invisible(r):
			fmt.Fprintf(&b, "<U+%04X>", r)
		case isMark(r):
			if marks++; marks <= MaxMarks {
				b.WriteRune(r)
			} else {
				dropped++
			}
		default:
			b.WriteRune(r)
		}
		prev = r
		i += size
	}
	flush()
	return b.String()
}

const zwj = 0x200d

// Invisible reports characters that draw nothing yet change what text
// means or how it reads: Unicode's format characters (bidirectional
// controls, zero-width characters, word joiners, the soft hyphen, tag
// characters, interlinear annotation), line and paragraph separators, and
// the filler characters that render as blanks.
func Invisible(r rune) bool {
	switch {
	case unicode.Is(unicode.Cf, r), unicode.Is(unicode.Zl, r), unicode.Is(unicode.Zp, r):
		return true
	case r == 0x115f, r == 0x1160, r == 0x3164, r == 0xffa0: // Hangul fillers
		return true
	case r >= 0xe0000 && r <= 0xe007f: // tags (some are unassigned, all are invisible)
		return true
	}
	return false
}

func isMark(r rune) bool { return unicode.In(r, unicode.Mn, unicode.Me) }

// isEmoji approximates Extended_Pictographic: the emoji blocks and the
// symbols that emoji sequences join.
func isEmoji(r rune) bool {
	return (r >= 0x1f000 && r <= 0x1faff) || (r >= 0x2600 && r <= 0x27bf) || (r >= 0x2300 && r <= 0x23ff) || r == 0xfe0f
}

func isClean(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// Lines is Text for a message of several lines (an error with its hint):
// line breaks and tabs stay, everything else is made harmless as by Text.
func Lines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		parts := strings.Split(l, "\t")
		for j, p := range parts {
			parts[j] = Text(p)
		}
		lines[i] = strings.Join(parts, "\t")
	}
	return strings.Join(lines, "\n")
}

// JSON escapes, in JSON text that encoding/json produced, the characters it
// passes through but a terminal or a viewer would act on: C1 controls and
// the invisible characters of Invisible become \uXXXX (a surrogate pair
// above U+FFFF). The escape is exact: the JSON decodes to the same strings.
// Such characters can only stand inside strings, where \u escapes are
// allowed, so the result is valid JSON.
func JSON(b []byte) []byte {
	clean := true
	for _, c := range b {
		if c >= 0x80 {
			clean = false
			break
		}
	}
	if clean {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if (r >= 0x80 && r <= 0x9f) || Invisible(r) {
			if r > 0xffff {
				hi, lo := utf16.EncodeRune(r)
				out = fmt.Appendf(out, `\u%04x\u%04x`, hi, lo)
			} else {
				out = fmt.Appendf(out, `\u%04x`, r)
			}
		} else {
			out = append(out, b[i:i+size]...)
		}
		i += size
	}
	return out
}

// JSONWriter writes JSON text through JSON. A character split across two
// writes is held back until it is whole.
func JSONWriter(w io.Writer) io.Writer { return &jsonWriter{w: w} }

type jsonWriter struct {
	w     io.Writer
	carry []byte
}

func (j *jsonWriter) Write(p []byte) (int, error) {
	buf := append(j.carry, p...)
	// Hold back an incomplete character at the end.
	cut := len(buf)
	for k := len(buf) - 1; k >= 0 && k >= len(buf)-utf8.UTFMax; k-- {
		if utf8.RuneStart(buf[k]) {
			if !utf8.FullRune(buf[k:]) {
				cut = k
			}
			break
		}
	}
	j.carry = append([]byte(nil), buf[cut:]...)
	if _, err := j.w.Write(JSON(buf[:cut])); err != nil {
		return 0, err
	}
	return len(p), nil
}
