package ui

import (
	"runtime"
	"sync"

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
	// The rows to look at, in list order: the previous result (marked,
	// rather than sorted), or every row (nil).
	var cand []int
	if base != nil {
		in := make([]bool, len(rows))
		for _, i := range base {
			in[i] = true
		}
		cand = make([]int, 0, len(base))
		for i, ok := range in {
			if ok {
				cand = append(cand, i)
			}
		}
	}
	n := len(rows)
	if cand != nil {
		n = len(cand)
	}
	// Large lists are ranked in parts side by side, one per CPU: each part
	// keeps list order, and the parts are joined in order.
	parts := max(1, min(runtime.GOMAXPROCS(0), n/filterPartMin))
	ranked := make([][app.MatchPhrase + 1][]int, parts)
	var wg sync.WaitGroup
	for p := range parts {
		lo, hi := p*n/parts, (p+1)*n/parts
		wg.Go(func() {
			for k := lo; k < hi; k++ {
				i := k
				if cand != nil {
					i = cand[k]
				}
				if r := flt.Rank(&rows[i].subj); r != app.NoMatch {
					ranked[p][r] = append(ranked[p][r], i)
				}
			}
		})
	}
	wg.Wait()
	f.query, f.filter = query, flt
	total := 0
	for p := range ranked {
		for _, m := range ranked[p] {
			total += len(m)
		}
	}
	f.matches = make([]int, 0, total)
	for r := app.MatchPhrase; r > app.NoMatch; r-- {
		for p := range ranked {
			f.matches = append(f.matches, ranked[p][r]...)
		}
	}
}

// filterPartMin is the fewest rows worth a goroutine of their own when the
// filter ranks the list.
const filterPartMin = 20000

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
