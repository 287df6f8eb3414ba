package ui

import (
	"fmt"
	"runtime"
	"slices"
	"testing"

	"keydesk/app"
)

// TestFilterRanksLargeListsInParts: a list large enough to be ranked in
// parts side by side gives the matches a plain scan gives, best rank
// first and in list order within each rank, also when the query narrows
// the previous one and only its result is searched (in parts too).
func TestFilterRanksLargeListsInParts(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4)) // four parts, whatever the machine
	const n = 4*filterPartMin + 123
	views := make([]app.EmployeeView, n)
	for i := range views {
		views[i] = benchEmployee(i)
		switch {
		case i%7 == 0:
			views[i].DisplayName = fmt.Sprintf("Ann Lee %06d", i) // "ann lee" as typed
		case i%5 == 0:
			views[i].DisplayName = fmt.Sprintf("Lee Ann %06d", i) // both words, not as typed
		case i%3 == 0:
			views[i].DisplayName = fmt.Sprintf("Alan Leeds %06d", i) // "aln" only in order
		}
	}
	rows := buildRows(views, nil)
	want := func(query string) ([]int, int) {
		flt, err := app.ParseFilter(query)
		if err != nil {
			t.Fatal(err)
		}
		var ranked [app.MatchPhrase + 1][]int
		for i, r := range rows {
			if rank := flt.Rank(&r.subj); rank != app.NoMatch {
				ranked[rank] = append(ranked[rank], i)
			}
		}
		mixed := 0
		for _, r := range ranked[app.MatchFuzzy:] {
			if len(r) > 0 {
				mixed++
			}
		}
		return slices.Concat(ranked[app.MatchPhrase], ranked[app.MatchWords], ranked[app.MatchFuzzy]), mixed
	}
	var f employeeFilter
	for _, query := range []string{"ann lee", "user", "user ann", "ann", "ann lee 04", "aln lee"} {
		f.apply(rows, query)
		w, ranks := want(query)
		if len(w) == 0 {
			t.Fatalf("query %q matches %d of %d: it tests nothing", query, len(w), n)
		}
		if query == "ann lee" && ranks < 2 {
			t.Fatalf("query %q finds one rank only: the order of parts and ranks goes untested", query)
		}
		if !slices.Equal(f.matches, w) {
			t.Errorf("query %q: %d matches, want %d, or not in the same order", query, len(f.matches), len(w))
		}
	}
}
