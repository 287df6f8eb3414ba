package app

import (
	"context"
	"slices"
	"strings"
	"testing"
)

// filterPeople are employees whose names an operator types without
// accents, in another order, or with the comma of "Last, First".
func filterPeople() []EmployeeView {
	email := func(s string) *string { return &s }
	acc := func(domain, sam string) AccountView {
		return AccountView{Domain: domain, SAMAccountName: sam, UPN: sam + "@" + domain + ".example.test"}
	}
	failed := acc("branch", "aahmed")
	failed.Rotation = &AccountRotation{State: RotationFailed}
	waiting := acc("corp", "jweiss")
	waiting.Rotation = &AccountRotation{State: RotationWaitingKey}
	return []EmployeeView{
		{ID: 1, DisplayName: "Anna López", Email: email("anna.lopez@example.com"), Status: "active", Flags: []string{},
			Key: &EmployeeKey{Serial: "KD-1", Status: "reserved"}, Accounts: []AccountView{acc("corp", "alopez")}},
		{ID: 2, DisplayName: "Ahmed, Ayşe", Email: email("ayse.ahmed@example.com"), Status: "active", Flags: []string{},
			Key: &EmployeeKey{Serial: "KD-2", Status: "active"}, Accounts: []AccountView{failed}},
		{ID: 3, DisplayName: "Mads Søndergaard", Email: email("mads@example.com"), Status: "active", Flags: []string{"conflict"},
			Accounts: []AccountView{acc("corp", "msondergaard"), acc("corp", "mads")}},
		{ID: 4, DisplayName: "Anna Smith", Email: email("anna.smith@example.com"), Status: "removed", Flags: []string{},
			Accounts: []AccountView{acc("branch", "asmith")}},
		{ID: 5, DisplayName: "Jürgen Weiß", Email: email("jurgen.weiss@example.com"), Status: "active", Flags: []string{},
			Key: &EmployeeKey{Serial: "KD-5", Status: "active"}, Accounts: []AccountView{waiting}},
		{ID: 6, DisplayName: "Zoë Łukasiewicz", Status: "active", Flags: []string{"no-email"}, Accounts: []AccountView{acc("branch", "zoe")}},
		{ID: 7, DisplayName: "Đorđe Yıldız", Email: email("dj@example.com"), Status: "active", Flags: []string{},
			Accounts: []AccountView{acc("corp", "dyildiz")}},
	}
}

func matching(t *testing.T, f Filter, people []EmployeeView) []string {
	t.Helper()
	var out []string
	for _, p := range people {
		if f.Match(p) {
			out = append(out, p.DisplayName)
		}
	}
	return out
}

func TestFilterFindsPeopleAsTheyAreTyped(t *testing.T) {
	people := filterPeople()
	tests := []struct {
		query string
		want  []string
	}{
		{"lopez", []string{"Anna López"}},
		{"LÓPEZ", []string{"Anna López"}},
		{"anna lopez", []string{"Anna López"}},
		{"lopez anna", []string{"Anna López"}},
		{"  lopez   anna  ", []string{"Anna López"}},
		{"anna", []string{"Anna López", "Anna Smith"}},
		{"anna smith lopez", nil}, // every word must match
		{"ahmed ayse", []string{"Ahmed, Ayşe"}},
		{"ayse ahmed", []string{"Ahmed, Ayşe"}},
		{"ahmed, ayşe", []string{"Ahmed, Ayşe"}},
		{"ahmed,ayse", []string{"Ahmed, Ayşe"}},
		{"sondergaard", []string{"Mads Søndergaard"}},
		{"weiss", []string{"Jürgen Weiß"}},
		{"jurgen", []string{"Jürgen Weiß"}},
		{"lukasiewicz", []string{"Zoë Łukasiewicz"}},
		{"ZOË łukasiewicz", []string{"Zoë Łukasiewicz"}},
		{"dorde yildiz", []string{"Đorđe Yıldız"}},
		{"alopez", []string{"Anna López"}},        // sAMAccountName
		{`corp\alopez`, []string{"Anna López"}},   // DOMAIN\sAMAccountName
		{"ayse.ahmed@", []string{"Ahmed, Ayşe"}},  // email
		{"mads branch", nil},                      // a domain is a field, but Mads is in corp only
		{"anna branch", []string{"Anna Smith"}},   // the domain as a word
		{"sndrgrd", []string{"Mads Søndergaard"}}, // fuzzy within one field
		{"domain:corp", []string{"Anna López", "Mads Søndergaard", "Jürgen Weiß", "Đorđe Yıldız"}},
		{"Domain:CORP", []string{"Anna López", "Mads Søndergaard", "Jürgen Weiß", "Đorđe Yıldız"}},
		{"domain:corp anna", []string{"Anna López"}},
		{"anna domain:branch", []string{"Anna Smith"}},
		{"domain:cor", nil}, // a domain is named whole
		{"domain:corp,branch anna", []string{"Anna López", "Anna Smith"}},
		{"flag:conflict", []string{"Mads Søndergaard"}},
		{"flag:no-email", []string{"Zoë Łukasiewicz"}},
		{"flag:noemail", []string{"Zoë Łukasiewicz"}},
		{"key:reserved", []string{"Anna López"}},
		{"key:res", []string{"Anna López"}},
		{"key:active", []string{"Ahmed, Ayşe", "Jürgen Weiß"}},
		{"key:none", []string{"Mads Søndergaard", "Anna Smith", "Zoë Łukasiewicz", "Đorđe Yıldız"}},
		{"key:reserved,active anna", []string{"Anna López"}},
		{"status:removed", []string{"Anna Smith"}},
		{"status:active anna", []string{"Anna López"}},
		{"rotation:failed", []string{"Ahmed, Ayşe"}},
		{"rotation:waiting-for-key", []string{"Jürgen Weiß"}},
		{"rotation:waiting", []string{"Jürgen Weiß"}},
		{"rotation:failed key:active domain:branch ayse", []string{"Ahmed, Ayşe"}},
		{"", []string{"Anna López", "Ahmed, Ayşe", "Mads Søndergaard", "Anna Smith", "Jürgen Weiß", "Zoë Łukasiewicz", "Đorđe Yıldız"}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			f, err := ParseFilter(tt.query)
			if err != nil {
				t.Fatalf("ParseFilter(%q): %v", tt.query, err)
			}
			if got := matching(t, f, people); !slices.Equal(got, tt.want) {
				t.Errorf("%q matches %q, want %q", tt.query, got, tt.want)
			}
		})
	}
}

func TestFilterErrorsSayWhatIsExpected(t *testing.T) {
	tests := []struct {
		query string
		want  []string
	}{
		{"foo:bar", []string{`unknown field "foo"`, "domain, flag, key, status, rotation"}},
		{"anna colour:red", []string{`unknown field "colour"`, "domain, flag, key, status, rotation"}},
		{"key:lost", []string{`unknown value "lost"`, "reserved, active, locked, suspended, none"}},
		{"flag:vip", []string{`unknown value "vip"`, "no-email, conflict"}},
		{"status:gone", []string{`unknown value "gone"`, "active, removed"}},
		{"rotation:late", []string{`unknown value "late"`, "waiting-for-key", "failed"}},
		{"domain:", []string{"domain: needs a value", "domain:corp"}},
		{"key:,", []string{"key: needs a value"}},
		{"key:-", []string{`unknown value "-"`}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			_, err := ParseFilter(tt.query)
			if err == nil {
				t.Fatalf("ParseFilter(%q) accepted it", tt.query)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	// A colon after something that is not a field name is part of a word.
	if _, err := ParseFilter("12:30 a:b:c"); err == nil {
		t.Error("a:b:c is not a field, yet it was accepted")
	}
	if f, err := ParseFilter("12:30"); err != nil || f.Empty() {
		t.Errorf(`"12:30" is a word: %v, empty %v`, err, f.Empty())
	}
}

// TestFilterRanksWholeMatchesFirst: the console lists the words as typed
// in one field first, then every word found, then fuzzy matches.
func TestFilterRanksWholeMatchesFirst(t *testing.T) {
	people := filterPeople()
	rank := func(query string, id int64) MatchRank {
		f, err := ParseFilter(query)
		if err != nil {
			t.Fatal(err)
		}
		s := NewFilterSubject(&people[id-1])
		return f.Rank(&s)
	}
	tests := []struct {
		query string
		id    int64
		want  MatchRank
	}{
		{"anna lopez", 1, MatchPhrase},
		{"lopez anna", 1, MatchWords},
		{"lopez", 1, MatchPhrase},
		{"anna lpz", 1, MatchFuzzy},
		{"anna lopez", 4, NoMatch},
		{"domain:corp", 1, MatchPhrase},
		{"domain:branch", 1, NoMatch},
	}
	for _, tt := range tests {
		if got := rank(tt.query, tt.id); got != tt.want {
			t.Errorf("rank of %q for %d = %d, want %d", tt.query, tt.id, got, tt.want)
		}
	}
}

// TestFilterNarrows: the console searches only the previous matches when
// the new query can only match fewer; it must never say so wrongly.
func TestFilterNarrows(t *testing.T) {
	tests := []struct {
		prev, next string
		want       bool
	}{
		{"ann", "anna", true},
		{"anna", "anna lo", true},
		{"anna lo", "lopez anna", true},
		{"key:res", "key:reserved", true},
		{"key:reserved,active", "key:reserved", true},
		{"anna", "anna domain:corp", true},
		{"", "anything", true},
		{"anna", "ann", false},
		{"key:reserved", "key:reserved,active", false},
		{"domain:cor", "domain:corp", false},
		{"anna domain:corp", "anna", false},
		{"status:active", "key:active", false},
	}
	for _, tt := range tests {
		prev, err1 := ParseFilter(tt.prev)
		next, err2 := ParseFilter(tt.next)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if got := next.Narrows(prev); got != tt.want {
			t.Errorf("%q narrows %q = %v, want %v", tt.next, tt.prev, got, tt.want)
		}
	}
	// Whenever it says so, the new matches are among the previous ones.
	people := filterPeople()
	queries := []string{"a", "an", "anna", "anna l", "anna lopez", "key:a", "key:active", "key:active a", "domain:corp", "domain:corp anna", "s", "sn", "sndr"}
	for _, p := range queries {
		for _, n := range queries {
			prev, _ := ParseFilter(p)
			next, _ := ParseFilter(n)
			if !next.Narrows(prev) {
				continue
			}
			before := matching(t, prev, people)
			for _, name := range matching(t, next, people) {
				if !slices.Contains(before, name) {
					t.Errorf("%q narrows %q, yet it matches %s, which %q does not", n, p, name, p)
				}
			}
		}
	}
}

func TestFoldText(t *testing.T) {
	for in, want := range map[string]string{
		"López": "lopez", "Ayşe": "ayse", "Søndergaard": "sondergaard", "ÆRØ": "aero", "Łódź": "lodz", "Weiß": "weiss",
		"Đorđe": "dorde", "Yıldız": "yildiz", "İstanbul": "istanbul", "Þór": "thor", "Œuvre": "oeuvre", "col·lecció": "colleccio",
		"O’Brien": "o'brien", "ﬁne": "fine", "ＡＢＣ": "abc", "Zoë": "zoe", "anna.smith@Example.com": "anna.smith@example.com",
	} {
		if got := FoldText(in); got != want {
			t.Errorf("FoldText(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestEmployeesFilter: the listing takes the same query (an unknown field
// is refused), and says when each employee last changed.
func TestEmployeesFilter(t *testing.T) {
	s := newTestService(t, "corp")
	ctx := context.Background()
	for _, p := range [][2]string{{"anna.lopez@example.com", "Anna López"}, {"ayse@example.com", "Ahmed, Ayşe"}, {"anna.smith@example.com", "Anna Smith"}} {
		if _, err := s.AddEmployee(ctx, testAdmin, p[0], p[1]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.RemoveEmployee(ctx, testAdmin, "anna.smith@example.com"); err != nil {
		t.Fatal(err)
	}
	for query, want := range map[string][]string{
		"lopez anna":     {"Anna López"},
		"ahmed ayse":     {"Ahmed, Ayşe"},
		"status:removed": {"Anna Smith"},
		"anna key:none":  {"Anna López", "Anna Smith"},
	} {
		es, err := s.Employees(ctx, testAdmin, query)
		if err != nil {
			t.Fatalf("%q: %v", query, err)
		}
		var got []string
		for _, e := range es {
			got = append(got, e.DisplayName)
			if e.ChangedAt.IsZero() {
				t.Errorf("%s has no changed_at", e.DisplayName)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("Employees(%q) = %q, want %q", query, got, want)
		}
	}
	if _, err := s.Employees(ctx, testAdmin, "colour:red"); err == nil || !strings.Contains(err.Error(), `unknown field "colour"`) {
		t.Errorf("an unknown field: %v", err)
	}
}
