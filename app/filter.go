package app

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"

	"keydesk/keys"
	"keydesk/store"
)

// Filter is a parsed employee filter, the one both the console and
// `keydesk employees --filter` use. A query is words and field filters
// separated by spaces:
//
//   - every word must be found in some field of the employee (the name, the
//     email, an account's sAMAccountName, UPN, mail or name, a domain), in
//     any order, with accents and case ignored (lopez finds López,
//     sondergaard Søndergaard); a word that is in no field still matches
//     when its letters appear in order within one field (fuzzy: mlry finds
//     Mallory); commas are ignored ("ahmed, ayse"), and DOMAIN\sam is the
//     words DOMAIN and sam;
//   - a field filter is NAME:VALUE, one of domain:NAME, flag:no-email|conflict,
//     key:reserved|active|locked|suspended|none, status:active|removed and
//     rotation:STATE (ok, due, waiting-for-key, held-for-key, under-way,
//     retrying, failed, no-active-key); a value may be the start of one
//     (key:res) and may list alternatives (key:reserved,active); every
//     field filter must hold.
//
// The zero Filter matches everyone.
type Filter struct {
	words  []string // folded
	phrase string   // the words joined by spaces
	fields []fieldTerm
}

// fieldTerm is one NAME:VALUE of a filter: the field and the values it
// allows (folded; for a field of known values, those it named).
type fieldTerm struct {
	field  string
	values []string
}

// filterField is a field a filter can name.
type filterField struct {
	name    string
	example string   // a value, for messages
	values  []string // the values it knows (nil: any, such as a domain)
}

// filterFields are the fields a filter can name, in the order messages
// list them.
var filterFields = []filterField{
	{name: "domain", example: "corp"},
	{name: "flag", values: []string{store.FlagNoEmail, store.FlagConflict}},
	{name: "key", values: []string{string(keys.StatusReserved), string(keys.StatusActive), string(keys.StatusLocked), string(keys.StatusSuspended), KeyNone}},
	{name: "status", values: []string{store.StatusActive, store.StatusRemoved}},
	{name: "rotation", values: []string{filterValue(RotationOK), filterValue(RotationDue), filterValue(RotationWaitingKey), filterValue(RotationHeld),
		filterValue(RotationUnderWay), filterValue(RotationRetrying), filterValue(RotationFailed), filterValue(RotationNoKey)}},
}

// KeyNone is the key: filter's value for an employee without a key.
const KeyNone = "none"

// FilterFields names the fields a filter knows ("domain", "flag", ...).
func FilterFields() []string {
	out := make([]string, len(filterFields))
	for i, f := range filterFields {
		out[i] = f.name
	}
	return out
}

// filterValue is a state as a filter names it: one word ("waiting for key"
// is waiting-for-key).
func filterValue(s string) string { return strings.ReplaceAll(s, " ", "-") }

// ParseFilter reads a query (see Filter). A field name it does not know, a
// value a field does not take, or a field without a value is an error that
// says what it expects.
func ParseFilter(query string) (Filter, error) {
	var f Filter
	for _, tok := range strings.Fields(query) {
		if name, value, ok := fieldToken(tok); ok {
			t, err := parseFieldTerm(name, value)
			if err != nil {
				return Filter{}, err
			}
			f.fields = append(f.fields, t)
			continue
		}
		// DOMAIN\sam is the domain and the account.
		for _, w := range strings.FieldsFunc(FoldText(tok), func(r rune) bool { return r == ',' || r == ';' || r == '\\' }) {
			if w = strings.Trim(w, `"'()<>[]`); w != "" {
				f.words = append(f.words, w)
			}
		}
	}
	f.phrase = strings.Join(f.words, " ")
	return f, nil
}

// fieldToken splits NAME:VALUE, where NAME is letters only (so that
// "12:30" stays a word).
func fieldToken(tok string) (name, value string, ok bool) {
	i := strings.IndexByte(tok, ':')
	if i <= 0 {
		return "", "", false
	}
	for _, c := range []byte(tok[:i]) {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') {
			return "", "", false
		}
	}
	return strings.ToLower(tok[:i]), tok[i+1:], true
}

func parseFieldTerm(name, value string) (fieldTerm, error) {
	i := slices.IndexFunc(filterFields, func(f filterField) bool { return f.name == name })
	if i < 0 {
		return fieldTerm{}, fmt.Errorf("unknown field %q: the fields are %s", name, strings.Join(FilterFields(), ", "))
	}
	fd := filterFields[i]
	var vals []string
	for _, v := range strings.Split(FoldText(value), ",") {
		if v = strings.TrimSpace(v); v != "" {
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 {
		ex := fd.example
		if ex == "" {
			ex = fd.values[0]
		}
		return fieldTerm{}, fmt.Errorf("%s: needs a value, such as %s:%s", name, name, ex)
	}
	if fd.values == nil {
		return fieldTerm{field: name, values: vals}, nil
	}
	t := fieldTerm{field: name}
	for _, v := range vals {
		known := knownValues(fd.values, v)
		if len(known) == 0 {
			return fieldTerm{}, fmt.Errorf("unknown value %q: %s is one of %s", v, name, strings.Join(fd.values, ", "))
		}
		for _, k := range known {
			if !slices.Contains(t.values, k) {
				t.values = append(t.values, k)
			}
		}
	}
	return t, nil
}

// knownValues are the values v names: the one it is, or else those it is
// the start of; hyphens and underscores do not count (noemail is no-email).
func knownValues(values []string, v string) []string {
	bare := unhyphen.Replace
	bv := bare(v)
	if bv == "" {
		return nil
	}
	for _, k := range values {
		if bare(k) == bv {
			return []string{k}
		}
	}
	var out []string
	for _, k := range values {
		if strings.HasPrefix(bare(k), bv) {
			out = append(out, k)
		}
	}
	return out
}

var unhyphen = strings.NewReplacer("-", "", "_", "")

// Empty reports whether the filter lets everyone through.
func (f Filter) Empty() bool { return len(f.words) == 0 && len(f.fields) == 0 }

// MatchRank says how well an employee matches a filter: the console lists
// better matches first.
type MatchRank int

// The ranks, worst first.
const (
	NoMatch     MatchRank = iota
	MatchFuzzy            // a word matched only as letters in order
	MatchWords            // every word is in a field
	MatchPhrase           // the words, as typed, are in one field (or there are no words)
)

// Match reports whether the employee passes the filter.
func (f Filter) Match(v EmployeeView) bool {
	s := NewFilterSubject(&v)
	return f.Rank(&s) != NoMatch
}

// Rank says how well an employee, prepared once with NewFilterSubject,
// matches.
func (f Filter) Rank(s *FilterSubject) MatchRank {
	for _, t := range f.fields {
		if !t.match(s) {
			return NoMatch
		}
	}
	rank := MatchPhrase
	for _, w := range f.words {
		switch {
		case strings.Contains(s.hay, w):
		case fuzzyField(s.hay, w):
			rank = MatchFuzzy
		default:
			return NoMatch
		}
	}
	if rank == MatchPhrase && len(f.words) > 1 && !strings.Contains(s.hay, f.phrase) {
		rank = MatchWords
	}
	return rank
}

func (t fieldTerm) match(s *FilterSubject) bool {
	switch t.field {
	case "domain":
		return anyIn(s.domains, t.values)
	case "flag":
		return anyIn(s.flags, t.values)
	case "key":
		return slices.Contains(t.values, s.key)
	case "status":
		return slices.Contains(t.values, s.status)
	case "rotation":
		return anyIn(s.rotation, t.values)
	}
	return false
}

func anyIn(have, want []string) bool {
	for _, h := range have {
		if slices.Contains(want, h) {
			return true
		}
	}
	return false
}

// Narrows reports whether everyone f matches is matched by prev too (f
// adds to prev's words or fields, as typing does), so that a search can
// look only among prev's matches. It may say false when that holds.
func (f Filter) Narrows(prev Filter) bool {
	for _, w := range prev.words {
		// A word that contains w is found only where w is.
		if !slices.ContainsFunc(f.words, func(u string) bool { return strings.Contains(u, w) }) {
			return false
		}
	}
	for _, t := range prev.fields {
		if !slices.ContainsFunc(f.fields, func(u fieldTerm) bool {
			return u.field == t.field && !slices.ContainsFunc(u.values, func(v string) bool { return !slices.Contains(t.values, v) })
		}) {
			return false
		}
	}
	return true
}

// FilterSubject is an employee prepared for filtering: the folded text of
// its fields and the values field filters look at, made once per employee
// so that each key typed into the console's filter only compares.
type FilterSubject struct {
	hay      string // folded fields, separated by NUL
	domains  []string
	flags    []string
	key      string
	status   string
	rotation []string
}

// NewFilterSubject prepares an employee for Filter.Rank.
func NewFilterSubject(v *EmployeeView) FilterSubject {
	s := FilterSubject{flags: v.Flags, status: v.Status, key: KeyNone}
	if v.Key != nil {
		s.key = v.Key.Status
	}
	fields := make([]string, 0, 2+5*len(v.Accounts))
	// A field within another (an account name in its UPN) is left out:
	// whatever matches in it, as a word, a phrase or letters in order,
	// matches in the other, and each keystroke searches less.
	add := func(text string) {
		text = FoldText(text)
		if text == "" || slices.ContainsFunc(fields, func(f string) bool { return strings.Contains(f, text) }) {
			return
		}
		fields = slices.DeleteFunc(fields, func(f string) bool { return strings.Contains(text, f) })
		fields = append(fields, text)
	}
	add(v.DisplayName)
	if v.Email != nil {
		add(*v.Email)
	}
	for _, a := range v.Accounts {
		add(a.SAMAccountName)
		add(a.UPN)
		add(a.Mail)
		add(a.DisplayName)
		if d := FoldText(a.Domain); !slices.Contains(s.domains, d) {
			s.domains = append(s.domains, d)
		}
		if a.Rotation != nil {
			if st := filterValue(a.Rotation.State); !slices.Contains(s.rotation, st) {
				s.rotation = append(s.rotation, st)
			}
		}
	}
	fields = append(fields, s.domains...)
	s.hay = strings.Join(fields, "\x00")
	return s
}

// Intern puts in place of the subject's short values that many employees
// share (domains, key, status, rotation states) the equal strings intern
// gives, so that a list of many employees holds each once.
func (s *FilterSubject) Intern(intern func(string) string) {
	for _, vs := range [][]string{s.domains, s.rotation} {
		for i := range vs {
			vs[i] = intern(vs[i])
		}
	}
	s.key, s.status = intern(s.key), intern(s.status)
}

// fuzzyField reports whether q's characters appear in order within one of
// the haystack's fields: across fields almost anything would match.
func fuzzyField(h, q string) bool {
	// One letter in order is the letter, and letters not in order in the
	// whole are in order in no field: most employees are out at once.
	if len(q) <= 1 || !subsequence(h, q) {
		return false
	}
	for len(h) > 0 {
		field := h
		if i := strings.IndexByte(h, 0); i >= 0 {
			field, h = h[:i], h[i+1:]
		} else {
			h = ""
		}
		if len(field) >= len(q) && subsequence(field, q) {
			return true
		}
	}
	return false
}

// subsequence reports whether q's characters appear in h in order.
func subsequence(h, q string) bool {
	if isASCII(q) {
		// Byte by byte, each found with IndexByte (vectorised): every
		// filter keystroke runs this over most employees.
		for j := 0; j < len(q); j++ {
			i := strings.IndexByte(h, q[j])
			if i < 0 {
				return false
			}
			h = h[i+1:]
		}
		return true
	}
	qr := []rune(q)
	j := 0
	for _, r := range h {
		if j < len(qr) && r == qr[j] {
			j++
		}
	}
	return j == len(qr)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// foldTable folds the letters that Unicode decomposition leaves whole, and
// the apostrophes and hyphens a name may be typed with, to what an
// operator types on any keyboard.
var foldTable = map[rune]string{
	'ø': "o", 'æ': "ae", 'œ': "oe", 'ł': "l", 'ß': "ss", 'đ': "d", 'ð': "d", 'þ': "th",
	'ı': "i", 'ħ': "h", 'ŧ': "t", 'ĸ': "k", 'ŋ': "n", 'ƒ': "f", 'ɨ': "i", 'ʉ': "u",
	'ς': "σ", '·': "", // the Catalan l·l (ŀ decomposes to l·)
	'’': "'", '‘': "'", 'ʼ': "'", '‐': "-", '‑': "-", '–': "-",
}

// FoldText is text as filters compare it: lower case, without accents
// (López is lopez), with letters such as ø, æ, ł, ß, đ and ı spelt as on
// an ASCII keyboard (Søndergaard is sondergaard, Weiß is weiss) and
// compatibility forms (ligatures, full-width letters) decomposed.
func FoldText(s string) string {
	if isASCII(s) {
		return strings.ToLower(s)
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r < utf8.RuneSelf:
			b.WriteRune(unicode.ToLower(r))
		case r < rune(len(latinFolds)):
			b.WriteString(latinFolds[r])
		default:
			b.WriteString(foldRuneCached(r))
		}
	}
	return b.String()
}

// latinFolds are the folded forms of the runes below U+0250 (Latin-1 and
// the Latin Extended blocks), made once: names are mostly these.
var latinFolds = func() (t [0x250]string) {
	for r := range t {
		t[r] = foldRune(rune(r))
	}
	return t
}()

var otherFolds sync.Map // rune -> string

func foldRuneCached(r rune) string {
	if f, ok := otherFolds.Load(r); ok {
		return f.(string)
	}
	f := foldRune(r)
	otherFolds.Store(r, f)
	return f
}

// foldRune folds one rune: its compatibility decomposition without the
// marks, lower case, through foldTable.
func foldRune(r rune) string {
	d, _, err := transform.String(transform.Chain(norm.NFKD, runes.Remove(runes.In(unicode.Mn))), string(r))
	if err != nil {
		d = string(r)
	}
	var b strings.Builder
	for _, c := range d {
		c = unicode.ToLower(c)
		if rep, ok := foldTable[c]; ok {
			b.WriteString(rep)
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}
