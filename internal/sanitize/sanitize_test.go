package sanitize

import "testing"

func TestText(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain ascii", "Anna Smith", "Anna Smith"},
		{"non-ascii kept", "Zoë Łukasiewicz 山田", "Zoë Łukasiewicz 山田"},
		{"escape sequence", "Evil\x1b[2J\x1b[31mName", `Evil\x1b[2J\x1b[31mName`},
		{"newline and tab", "a\nb\tc", `a\x0ab\x09c`},
		{"bidi override", "abc\u202Etxt.exe", "abc<U+202E>txt.exe"},
		{"isolates", "\u2066x\u2069", "<U+2066>x<U+2069>"},
		{"c1 control", "a\u009bb", `a\u009bb`},
		{"invalid utf8", "a\xffb", "a\uFFFDb"},
		{"delete", "a\x7fb", `a\x7fb`},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Text(tt.in); got != tt.want {
				t.Errorf("Text(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestLines(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"keeps line breaks and tabs", "error: x\n\tfix: y", "error: x\n\tfix: y"},
		{"escapes inside lines", "name \x1b[31mRed\nnext \u202Eline\r", "name \\x1b[31mRed\nnext <U+202E>line\\x0d"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Lines(tt.in); got != tt.want {
				t.Errorf("Lines(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
