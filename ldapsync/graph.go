package ldapsync

import (
	"sort"
	"strings"
)

// Graph is the nesting under a domain's sync and password groups, as
// KeyDesk keeps it between syncs: the groups in it (the two roots and every
// group nested in them, at any depth) and, for each user or group in it,
// the groups of the graph it is a direct member of. With it, who is a
// member is worked out locally; the DC is only asked what changed.
type Graph struct {
	SyncRoot     string // objectGUID of the sync group
	PasswordRoot string // objectGUID of the password group ("": none)
	// Groups are the groups of the graph: objectGUID -> DN.
	Groups map[string]string
	// Parents are, for each user or group of the graph, the groups of the
	// graph it is a direct member of (objectGUIDs). A user or group with
	// none is not in it.
	Parents map[string][]string
}

// NewGraph returns an empty graph with the given roots.
func NewGraph(syncRoot, syncDN, passwordRoot, passwordDN string) *Graph {
	g := &Graph{SyncRoot: syncRoot, PasswordRoot: passwordRoot, Groups: map[string]string{syncRoot: syncDN}, Parents: map[string][]string{}}
	if passwordRoot != "" {
		g.Groups[passwordRoot] = passwordDN
	}
	return g
}

// IsGroup says whether guid is a group of the graph.
func (g *Graph) IsGroup(guid string) bool { _, ok := g.Groups[guid]; return ok }

// dnIndex maps each group's DN, folded, to its objectGUID.
func (g *Graph) dnIndex() map[string]string {
	ix := make(map[string]string, len(g.Groups))
	for guid, dn := range g.Groups {
		ix[strings.ToLower(dn)] = guid
	}
	return ix
}

// parentsOf picks, among memberOf (DNs), the groups of the graph, as
// objectGUIDs, sorted. The GUID strings are the graph's own, shared.
func parentsOf(memberOf []string, ix map[string]string) []string {
	var out []string
	for _, dn := range memberOf {
		if guid, ok := ix[strings.ToLower(dn)]; ok {
			out = append(out, guid)
		}
	}
	sort.Strings(out)
	return out
}

// setParents records node's parents in the graph; it says whether they
// changed.
func (g *Graph) setParents(node string, parents []string) bool {
	old, had := g.Parents[node]
	if len(parents) == 0 {
		delete(g.Parents, node)
		return had
	}
	g.Parents[node] = parents
	return !had || !equalStrings(old, parents)
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// children indexes the graph downwards: group -> its direct members.
func (g *Graph) children() map[string][]string {
	out := make(map[string][]string, len(g.Groups))
	for node, ps := range g.Parents {
		for _, p := range ps {
			out[p] = append(out[p], node)
		}
	}
	return out
}

// under returns the groups nested in root at any depth, root included.
func under(root string, children map[string][]string, isGroup func(string) bool) map[string]bool {
	seen := map[string]bool{}
	if root == "" {
		return seen
	}
	queue := []string{root}
	seen[root] = true
	for len(queue) > 0 {
		grp := queue[0]
		queue = queue[1:]
		for _, c := range children[grp] {
			if isGroup(c) && !seen[c] {
				seen[c] = true
				queue = append(queue, c)
			}
		}
	}
	return seen
}

// Members returns the users that are members of the sync group and of the
// password group, directly or through nested groups (cycles included).
func (g *Graph) Members() (sync, password map[string]bool) {
	ch := g.children()
	sync, password = map[string]bool{}, map[string]bool{}
	collect := func(groups map[string]bool, into map[string]bool) {
		for grp := range groups {
			for _, c := range ch[grp] {
				if !g.IsGroup(c) {
					into[c] = true
				}
			}
		}
	}
	collect(under(g.SyncRoot, ch, g.IsGroup), sync)
	collect(under(g.PasswordRoot, ch, g.IsGroup), password)
	return sync, password
}

// prune drops the groups no longer nested in either root, and every edge
// into them; it returns the users and groups whose parents changed.
func (g *Graph) prune() []string {
	ch := g.children()
	keep := under(g.SyncRoot, ch, g.IsGroup)
	for grp := range under(g.PasswordRoot, ch, g.IsGroup) {
		keep[grp] = true
	}
	var gone []string
	for grp := range g.Groups {
		if !keep[grp] {
			gone = append(gone, grp)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	touched := map[string]bool{}
	for _, grp := range gone {
		delete(g.Groups, grp)
		if _, ok := g.Parents[grp]; ok {
			touched[grp] = true
		}
		delete(g.Parents, grp)
		for _, c := range ch[grp] {
			touched[c] = true
		}
	}
	var out []string
	for node := range touched {
		if ps, ok := g.Parents[node]; ok {
			var kept []string
			for _, p := range ps {
				if keep[p] {
					kept = append(kept, p)
				}
			}
			g.setParents(node, kept)
		}
		out = append(out, node)
	}
	sort.Strings(out)
	return out
}

// Drift compares what an incremental read found with what a full read made
// at the same moment found: the members, and the password group's members,
// that only one of them has (by objectGUID, sorted). None: no drift.
func Drift(incremental, full *Snapshot) []string {
	inc, all := memberSet(incremental), memberSet(full)
	var out []string
	diff := func(a, b map[string]bool, what string) {
		var d []string
		for guid := range a {
			if !b[guid] {
				d = append(d, guid+": "+what)
			}
		}
		sort.Strings(d)
		out = append(out, d...)
	}
	diff(all, inc, "a member by the full read, not by the incremental state")
	diff(inc, all, "a member by the incremental state, not by the full read")
	diff(full.PasswordGUIDs, incremental.PasswordGUIDs, "in the password group by the full read, not by the incremental state")
	diff(incremental.PasswordGUIDs, full.PasswordGUIDs, "in the password group by the incremental state, not by the full read")
	return out
}

func memberSet(s *Snapshot) map[string]bool {
	m := make(map[string]bool, s.MemberCount())
	for _, u := range s.Fetched {
		m[u.ObjectGUID] = true
	}
	for _, g := range s.Unchanged {
		m[g] = true
	}
	return m
}
