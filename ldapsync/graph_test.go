package ldapsync

import (
	"reflect"
	"sort"
	"testing"
)

// graphOf builds a graph from "node<parent" memberships; groups are the
// names starting with "G" (the roots are GS and GP).
func graphOf(edges ...[2]string) *Graph {
	g := NewGraph("GS", "CN=GS", "GP", "CN=GP")
	for _, e := range edges {
		for _, n := range e {
			if n[0] == 'G' {
				g.Groups[n] = "CN=" + n
			}
		}
		g.Parents[e[0]] = append(g.Parents[e[0]], e[1])
	}
	return g
}

func keys(m map[string]bool) []string {
	out := []string{}
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestGraphMembers(t *testing.T) {
	tests := []struct {
		name           string
		edges          [][2]string
		sync, password []string
	}{
		{"direct", [][2]string{{"ann", "GS"}, {"bob", "GP"}}, []string{"ann"}, []string{"bob"}},
		{"nested three deep", [][2]string{{"G1", "GS"}, {"G2", "G1"}, {"G3", "G2"}, {"carol", "G3"}}, []string{"carol"}, []string{}},
		{"a cycle ends", [][2]string{{"G1", "GS"}, {"G2", "G1"}, {"G1", "G2"}, {"dan", "G2"}}, []string{"dan"}, []string{}},
		{"in both through one group", [][2]string{{"G1", "GS"}, {"G1", "GP"}, {"eve", "G1"}}, []string{"eve"}, []string{"eve"}},
		{"the password group nested in the sync group", [][2]string{{"GP", "GS"}, {"fay", "GP"}}, []string{"fay"}, []string{"fay"}},
		{"a group outside both does not count", [][2]string{{"gus", "GX"}}, []string{}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, p := graphOf(tt.edges...).Members()
			if !reflect.DeepEqual(keys(s), tt.sync) || !reflect.DeepEqual(keys(p), tt.password) {
				t.Errorf("members %v, password %v; want %v, %v", keys(s), keys(p), tt.sync, tt.password)
			}
		})
	}
}

func TestGraphPrune(t *testing.T) {
	// G2 was taken out of G1: it, G3 below it, and their memberships go;
	// ann, also a direct member of GS, stays; bob only in G3 is gone.
	g := graphOf([2]string{"G1", "GS"}, [2]string{"G3", "G2"}, [2]string{"ann", "G2"}, [2]string{"ann", "GS"}, [2]string{"bob", "G3"})
	touched := g.prune()
	if want := []string{"G3", "ann", "bob"}; !reflect.DeepEqual(touched, want) {
		t.Errorf("touched %v, want %v", touched, want)
	}
	if g.IsGroup("G2") || g.IsGroup("G3") || !g.IsGroup("G1") {
		t.Errorf("groups left %v", g.Groups)
	}
	if !reflect.DeepEqual(g.Parents["ann"], []string{"GS"}) || g.Parents["bob"] != nil {
		t.Errorf("parents %v", g.Parents)
	}
	if again := g.prune(); again != nil {
		t.Errorf("a second prune touched %v", again)
	}
}

func TestParentsOfFoldsDNs(t *testing.T) {
	g := graphOf([2]string{"G1", "GS"})
	got := parentsOf([]string{"cn=g1", "CN=Other,DC=x", "CN=GS"}, g.dnIndex())
	if !reflect.DeepEqual(got, []string{"G1", "GS"}) {
		t.Errorf("parentsOf = %v", got)
	}
}

func TestDrift(t *testing.T) {
	snap := func(members []string, pw ...string) *Snapshot {
		s := &Snapshot{PasswordGUIDs: map[string]bool{}}
		for i, m := range members {
			if i%2 == 0 {
				s.Fetched = append(s.Fetched, User{ObjectGUID: m})
			} else {
				s.Unchanged = append(s.Unchanged, m)
			}
		}
		for _, p := range pw {
			s.PasswordGUIDs[p] = true
		}
		return s
	}
	tests := []struct {
		name      string
		inc, full *Snapshot
		want      []string
	}{
		{"none", snap([]string{"a", "b"}, "a"), snap([]string{"b", "a"}, "a"), nil},
		{"missed and extra", snap([]string{"a", "x"}), snap([]string{"a", "b"}), []string{
			"b: a member by the full read, not by the incremental state",
			"x: a member by the incremental state, not by the full read"}},
		{"password group", snap([]string{"a"}), snap([]string{"a"}, "a"), []string{
			"a: in the password group by the full read, not by the incremental state"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Drift(tt.inc, tt.full); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Drift = %q, want %q", got, tt.want)
			}
		})
	}
}
