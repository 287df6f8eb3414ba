package sanitize

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

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
		{"zero-width space", "ad\u200bmin", "ad<U+200B>min"},
		{"word joiner and invisible times", "a\u2060b\u2062c", "a<U+2060>b<U+2062>c"},
		{"soft hyphen", "ad\u00admin", "ad<U+00AD>min"},
		{"tag characters", "hi\U000E0041\U000E007F", "hi<U+E0041><U+E007F>"},
		{"interlinear annotation", "a\ufff9b\ufffbc", "a<U+FFF9>b<U+FFFB>c"},
		{"line separator", "a\u2028b", "a<U+2028>b"},
		{"hangul filler", "a\u3164b", "a<U+3164>b"},
		{"zwj between emoji kept", "\U0001F469\u200d\U0001F4BB", "\U0001F469\u200d\U0001F4BB"},
		{"zwj between letters shown", "a\u200db", "a<U+200D>b"},
		{"a few combining marks kept", "e\u0301\u0323", "e\u0301\u0323"},
		{"a run of combining marks cut", "Z" + strings.Repeat("\u0336", 20) + "a", "Z\u0336\u0336\u0336<+17 marks>a"},
		{"marks at the end", "o" + strings.Repeat("\u0308", 5), "o\u0308\u0308\u0308<+2 marks>"},
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

func TestJSON(t *testing.T) {
	v := map[string]string{"name": "Eve \u202egnp.exe\u0085\u200b\U000E0041 ok é"}
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.ContainsRune(raw, '\u202e') {
		t.Fatal("encoding/json no longer passes bidi controls through: this test tests nothing")
	}
	out := JSON(raw)
	for _, r := range []rune{'\u202e', '\u0085', '\u200b', '\U000E0041'} {
		if bytes.ContainsRune(out, r) {
			t.Errorf("%q left %U in place", out, r)
		}
	}
	for _, esc := range []string{`\u202e`, `\u0085`, `\u200b`, `\udb40\udc41`} {
		if !bytes.Contains(out, []byte(esc)) {
			t.Errorf("%s lacks the escape %s", out, esc)
		}
	}
	var back map[string]string
	if err := json.Unmarshal(out, &back); err != nil || back["name"] != v["name"] {
		t.Errorf("the escaped JSON does not decode to the same string: %q, %v", back["name"], err)
	}
}

func TestJSONWriterHoldsSplitCharacters(t *testing.T) {
	raw, _ := json.Marshal("x\u202ey\u00e9")
	var b bytes.Buffer
	w := JSONWriter(&b)
	// Write one byte at a time: every multi-byte character is split.
	for i := range raw {
		if _, err := w.Write(raw[i : i+1]); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := b.String(), string(JSON(raw)); got != want {
		t.Errorf("written %q, want %q", got, want)
	}
}
