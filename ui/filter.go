package ui

import (
	"slices"
	"strings"
	"unicode/utf8"
)

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
		ordered := slices.Sorted(slices.Values(base))
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
