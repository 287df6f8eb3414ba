package ui

import (
	"strings"
	"unicode/utf8"

	"keydesk/app"
	"keydesk/internal/sanitize"
)

// empRow is an employee prepared for drawing: every string that came from
// the directory is sanitised once, when the list is loaded.
type empRow struct {
	view    *app.EmployeeView
	id      int64
	name    string
	email   string
	domains string
	flags   string
	removed bool
	hay     string // lower-cased name, email and sAMAccountNames, for the filter
}

func buildRows(views []app.EmployeeView) []empRow {
	rows := make([]empRow, len(views))
	for i := range views {
		v := &views[i]
		r := empRow{view: v, id: v.ID, name: sanitize.Text(v.DisplayName), removed: v.Status == "removed"}
		if v.Email != nil {
			r.email = sanitize.Text(*v.Email)
		}
		var doms, sams []string
		seen := map[string]bool{}
		for _, a := range v.Accounts {
			if !seen[a.Domain] {
				seen[a.Domain] = true
				doms = append(doms, a.Domain)
			}
			sams = append(sams, a.SAMAccountName)
		}
		r.domains = sanitize.Text(strings.Join(doms, ","))
		flags := append([]string(nil), v.Flags...)
		if v.Key != nil {
			flags = append([]string{"key:" + v.Key.Status}, flags...)
		}
		if r.removed {
			flags = append([]string{"removed"}, flags...)
		}
		if v.Source == "manual" {
			flags = append(flags, "manual")
		}
		r.flags = strings.Join(flags, ",")
		r.hay = strings.ToLower(v.DisplayName + "\x00" + r.email + "\x00" + strings.Join(sams, "\x00"))
		rows[i] = r
	}
	return rows
}

// list is a scrolling cursor over n items that draws only what is visible.
type list struct {
	cursor int
	offset int
}

func (l *list) clamp(n, height int) {
	if height < 1 {
		height = 1
	}
	if l.cursor >= n {
		l.cursor = n - 1
	}
	if l.cursor < 0 {
		l.cursor = 0
	}
	if l.offset > l.cursor {
		l.offset = l.cursor
	}
	if l.cursor >= l.offset+height {
		l.offset = l.cursor - height + 1
	}
	if maxOff := n - height; l.offset > maxOff {
		l.offset = max(0, maxOff)
	}
	if l.offset < 0 {
		l.offset = 0
	}
}

func (l *list) move(delta, n, height int) {
	l.cursor += delta
	l.clamp(n, height)
}

// employeeFilter narrows the rows to those matching a query, keeping list
// order: rows containing the query come first, then rows containing its
// characters in order (fuzzy). A query that extends the previous one only
// searches the previous result.
type employeeFilter struct {
	query   string
	matches []int // indexes into rows; nil = no filter
}

func (f *employeeFilter) apply(rows []empRow, query string) {
	q := strings.ToLower(strings.TrimSpace(query))
	if q == "" {
		f.query, f.matches = "", nil
		return
	}
	var base []int
	if f.matches != nil && f.query != "" && strings.HasPrefix(q, f.query) {
		base = f.matches
	}
	var exact, fuzzy []int
	check := func(i int) {
		h := rows[i].hay
		if strings.Contains(h, q) {
			exact = append(exact, i)
		} else if fuzzyField(h, q) {
			fuzzy = append(fuzzy, i)
		}
	}
	if base != nil {
		// The previous result is exact-then-fuzzy; restore list order so
		// that the new split is in list order too.
		ordered := append([]int(nil), base...)
		sortInts(ordered)
		for _, i := range ordered {
			check(i)
		}
	} else {
		for i := range rows {
			check(i)
		}
	}
	f.query = q
	f.matches = append(exact, fuzzy...)
	if f.matches == nil {
		f.matches = []int{}
	}
}

// fuzzyField reports whether q's characters appear in order within one of
// the haystack's fields (name, email, an account name): across fields almost
// anything would match.
func fuzzyField(h, q string) bool {
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
		j := 0
		for i := 0; i < len(h) && j < len(q); i++ {
			if h[i] == q[j] {
				j++
			}
		}
		return j == len(q)
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

// sortInts sorts ascending; the slices here are already mostly sorted runs.
func sortInts(a []int) {
	// Two sorted runs (exact, then fuzzy): merge them.
	if len(a) < 2 {
		return
	}
	split := 1
	for split < len(a) && a[split-1] < a[split] {
		split++
	}
	if split == len(a) {
		return
	}
	merged := make([]int, 0, len(a))
	i, j := 0, split
	for i < split && j < len(a) {
		if a[i] < a[j] {
			merged = append(merged, a[i])
			i++
		} else {
			merged = append(merged, a[j])
			j++
		}
	}
	merged = append(merged, a[i:split]...)
	merged = append(merged, a[j:]...)
	copy(a, merged)
}
