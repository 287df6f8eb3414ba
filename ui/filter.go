package ui

import (
	"slices"

	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"

	"keydesk/app"
)

// employeeFilter narrows the rows to those matching a query (app.Filter:
// words in any order and across fields, accents folded, field filters such
// as domain:corp), keeping list order within each rank: rows holding the
// words as typed come first, then rows holding every word, then fuzzy
// matches. A query that can only match fewer than the previous one
// searches only the previous result. A query that does not parse leaves
// the result as it was, with the error to show.
type employeeFilter struct {
	query   string     // the last query that parsed
	filter  app.Filter // its filter
	matches []int      // indexes into rows; nil = no filter
	err     error      // why the query typed last does not parse
}

func (f *employeeFilter) apply(rows []*empRow, query string) {
	flt, err := app.ParseFilter(query)
	f.err = err
	if err != nil {
		return
	}
	if flt.Empty() {
		f.query, f.filter, f.matches = "", app.Filter{}, nil
		return
	}
	var base []int
	if f.matches != nil && flt.Narrows(f.filter) {
		base = f.matches
	}
	var ranked [app.MatchPhrase + 1][]int
	check := func(i int) {
		if r := flt.Rank(&rows[i].subj); r != app.NoMatch {
			ranked[r] = append(ranked[r], i)
		}
	}
	if base != nil {
		// The previous result is ranked; restore list order so that the
		// new ranks are in list order too.
		for _, i := range slices.Sorted(slices.Values(base)) {
			check(i)
		}
	} else {
		for i := range rows {
			check(i)
		}
	}
	f.query, f.filter = query, flt
	f.matches = make([]int, 0, len(ranked[app.MatchPhrase])+len(ranked[app.MatchWords])+len(ranked[app.MatchFuzzy]))
	for r := app.MatchPhrase; r > app.NoMatch; r-- {
		f.matches = append(f.matches, ranked[r]...)
	}
}

// filterInput handles a key while a pane's filter input is open: esc
// closes and clears it, enter closes it keeping the query, and esc with a
// key right after it (read together as alt+key) is the esc, then the key
// (given to again); any other key edits the query, and changed runs when
// it did.
func filterInput(msg tea.KeyMsg, in *textinput.Model, closeIt func(clear bool), again func(tea.Msg) tea.Cmd, changed func()) tea.Cmd {
	if msg.Alt && msg.Type == tea.KeyRunes {
		closeIt(true)
		plain := msg
		plain.Alt = false
		return again(plain)
	}
	switch msg.Type {
	case tea.KeyEsc:
		closeIt(true)
		return nil
	case tea.KeyEnter:
		closeIt(false)
		return nil
	}
	before := in.Value()
	var cmd tea.Cmd
	*in, cmd = in.Update(msg)
	if in.Value() != before {
		changed()
	}
	return cmd
}
