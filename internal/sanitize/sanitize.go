// Package sanitize makes untrusted text (anything that came from the
// directory) safe to print on a terminal: control characters, escape
// sequences and bidirectional overrides become visible, harmless text.
package sanitize

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Text returns s with every character that could move the cursor, change
// colours, reorder text or hide content replaced by a visible escape: ESC
// becomes `\x1b`, a right-to-left override becomes `<U+202E>`, invalid UTF-8
// becomes U+FFFD. Printable text, including non-ASCII letters, is kept.
func Text(s string) string {
	if isClean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteRune('\uFFFD')
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r >= 0x80 && r <= 0x9f:
			fmt.Fprintf(&b, `\u%04x`, r)
		case isFormatting(r):
			fmt.Fprintf(&b, "<U+%04X>", r)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

// isFormatting reports bidirectional controls and other invisible format
// characters that can make text read differently from what it is.
func isFormatting(r rune) bool {
	switch {
	case r >= 0x202a && r <= 0x202e, // LRE, RLE, PDF, LRO, RLO
		r >= 0x2066 && r <= 0x2069,            // LRI, RLI, FSI, PDI
		r == 0x200e, r == 0x200f, r == 0x061c, // LRM, RLM, ALM
		r == 0x2028, r == 0x2029, // line and paragraph separators
		r == 0x200b, r == 0xfeff: // zero-width space, BOM
		return true
	}
	return false
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
