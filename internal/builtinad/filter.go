package builtinad

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
)

// Matching rules AD implements that the double evaluates.
const (
	ruleInChain = "1.2.840.113556.1.4.1941"
	ruleBitAnd  = "1.2.840.113556.1.4.803"
	ruleBitOr   = "1.2.840.113556.1.4.804"
)

type fop uint8

const (
	fAnd fop = iota
	fOr
	fNot
	fEq
	fSub
	fGE
	fLE
	fPresent
	fNever     // cannot match (e.g. memberOf of a DN that does not exist)
	fInSet     // the entry is in set (in-chain, direct member, ancestor group)
	fBits      // bitwise rules on an integer attribute
	fHasMember // memberOf equality: the entry's direct groups hold g
)

// fnode is a compiled filter. DNs in assertions are resolved to entries
// at compile time, so evaluation costs no DN parsing.
type fnode struct {
	op    fop
	kids  []*fnode
	key   string // lower-case attribute
	val   string // assertion as sent
	lval  string // lower case
	num   int64
	isNum bool
	// substrings, lower case
	initial, final string
	any            []string
	// fInSet: membership; cands: the same in creation order (for planning),
	// or for fEq and fGE those of an index (nil: none)
	set   map[*entry]struct{}
	cands []*entry
	g     *entry // fHasMember
	bits  int64
	all   bool // fBits: all bits (803) or any (804)
}

// compileFilter parses a filter string (as gldap passes it) and resolves
// it against the directory. Caller holds d.mu.
func (d *Domain) compileFilter(s string) (*fnode, error) {
	p, err := ldap.CompileFilter(s)
	if err != nil {
		return nil, err
	}
	return d.compile(p)
}

func str(p *ber.Packet) string { return p.Data.String() }

func (d *Domain) compile(p *ber.Packet) (*fnode, error) {
	switch p.Tag {
	case ldap.FilterAnd, ldap.FilterOr:
		n := &fnode{op: fAnd}
		if p.Tag == ldap.FilterOr {
			n.op = fOr
		}
		for _, c := range p.Children {
			k, err := d.compile(c)
			if err != nil {
				return nil, err
			}
			n.kids = append(n.kids, k)
		}
		return n, nil
	case ldap.FilterNot:
		if len(p.Children) != 1 {
			return nil, fmt.Errorf("not with %d children", len(p.Children))
		}
		k, err := d.compile(p.Children[0])
		if err != nil {
			return nil, err
		}
		return &fnode{op: fNot, kids: []*fnode{k}}, nil
	case ldap.FilterPresent:
		return &fnode{op: fPresent, key: strings.ToLower(str(p))}, nil
	case ldap.FilterEqualityMatch, ldap.FilterApproxMatch:
		if len(p.Children) != 2 {
			return nil, fmt.Errorf("bad equality")
		}
		return d.compileEq(strings.ToLower(str(p.Children[0])), str(p.Children[1])), nil
	case ldap.FilterGreaterOrEqual, ldap.FilterLessOrEqual:
		if len(p.Children) != 2 {
			return nil, fmt.Errorf("bad ordering")
		}
		n := &fnode{op: fGE, key: strings.ToLower(str(p.Children[0])), val: str(p.Children[1])}
		if p.Tag == ldap.FilterLessOrEqual {
			n.op = fLE
		}
		n.lval = strings.ToLower(n.val)
		n.num, n.isNum = parseInt(n.val)
		if n.op == fGE && n.key == "usnchanged" && n.isNum {
			n.cands = d.changes.since(n.num)
		}
		return n, nil
	case ldap.FilterSubstrings:
		if len(p.Children) != 2 {
			return nil, fmt.Errorf("bad substrings")
		}
		n := &fnode{op: fSub, key: strings.ToLower(str(p.Children[0]))}
		for _, c := range p.Children[1].Children {
			v := strings.ToLower(str(c))
			switch c.Tag {
			case ldap.FilterSubstringsInitial:
				n.initial = v
			case ldap.FilterSubstringsFinal:
				n.final = v
			default:
				n.any = append(n.any, v)
			}
		}
		return n, nil
	case ldap.FilterExtensibleMatch:
		var rule, typ, val string
		for _, c := range p.Children {
			switch c.Tag {
			case ldap.MatchingRuleAssertionMatchingRule:
				rule = str(c)
			case ldap.MatchingRuleAssertionType:
				typ = strings.ToLower(str(c))
			case ldap.MatchingRuleAssertionMatchValue:
				val = str(c)
			}
		}
		return d.compileExt(rule, typ, val), nil
	}
	return nil, fmt.Errorf("unknown filter type %d", p.Tag)
}

// categoryAliases maps the class names AD accepts in objectCategory
// filters to the default category of the class.
var categoryAliases = map[string]string{
	"person": "Person", "user": "Person", "group": "Group", "computer": "Computer",
	"organizationalunit": "Organizational-Unit", "container": "Container", "domaindns": "Domain-DNS",
	"domain": "Domain-DNS", "ntdsdsa": "NTDS-DSA", "contact": "Person",
}

func (d *Domain) compileEq(key, val string) *fnode {
	n := &fnode{op: fEq, key: key, val: val, lval: strings.ToLower(val)}
	n.num, n.isNum = parseInt(val)
	switch key {
	case "memberof":
		g, _ := d.lookup(val, false)
		if g == nil {
			return &fnode{op: fNever}
		}
		return &fnode{op: fHasMember, g: g, cands: sortedEntries(g.members)}
	case "member":
		x, _ := d.lookup(val, false)
		if x == nil {
			return &fnode{op: fNever}
		}
		return &fnode{op: fInSet, set: x.memberOf, cands: sortedEntries(x.memberOf)}
	case "objectcategory":
		if !strings.Contains(val, "=") {
			c, ok := categoryAliases[strings.ToLower(val)]
			if !ok {
				c = val
			}
			val = d.category(c)
		}
		nd, ok := normDN(val)
		if !ok {
			return &fnode{op: fNever}
		}
		n.lval = nd
	case "distinguishedname", "lastknownparent", "manager":
		nd, ok := normDN(val)
		if !ok {
			return &fnode{op: fNever}
		}
		n.lval = nd
		if key == "distinguishedname" {
			if e := d.byNDN[nd]; e != nil {
				n.cands = []*entry{e}
			} else {
				n.cands = []*entry{}
			}
		}
	case "objectguid":
		if e := d.byGUID[val]; e != nil {
			n.cands = []*entry{e}
		} else {
			n.cands = []*entry{}
		}
	case "samaccountname":
		if e := d.bySam[n.lval]; e != nil {
			n.cands = []*entry{e}
		}
	case "userprincipalname":
		if e := d.byUPN[n.lval]; e != nil {
			n.cands = []*entry{e}
		}
	}
	return n
}

func (d *Domain) compileExt(rule, key, val string) *fnode {
	switch rule {
	case ruleInChain:
		switch key {
		case "memberof":
			g, _ := d.lookup(val, false)
			if g == nil {
				return &fnode{op: fNever}
			}
			c := d.chainOf(g)
			return &fnode{op: fInSet, set: c.set, cands: c.list}
		case "member":
			x, _ := d.lookup(val, false)
			if x == nil {
				return &fnode{op: fNever}
			}
			set := ancestors(x)
			return &fnode{op: fInSet, set: set, cands: sortedEntries(set)}
		}
		return d.compileEq(key, val)
	case ruleBitAnd, ruleBitOr:
		b, ok := parseInt(val)
		if !ok {
			return &fnode{op: fNever}
		}
		return &fnode{op: fBits, key: key, bits: b, all: rule == ruleBitAnd}
	case "":
		return d.compileEq(key, val)
	}
	// A matching rule the double does not know matches nothing.
	return &fnode{op: fNever}
}

func parseInt(s string) (int64, bool) {
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return v, err == nil
}

// match evaluates a compiled filter on e. Caller holds d.mu.
func (d *Domain) match(n *fnode, e *entry) bool {
	switch n.op {
	case fAnd:
		for _, k := range n.kids {
			if !d.match(k, e) {
				return false
			}
		}
		return true
	case fOr:
		for _, k := range n.kids {
			if d.match(k, e) {
				return true
			}
		}
		return false
	case fNot:
		return !d.match(n.kids[0], e)
	case fNever:
		return false
	case fInSet:
		_, ok := n.set[e]
		return ok
	case fHasMember:
		_, ok := e.memberOf[n.g]
		return ok
	case fPresent:
		if n.key == "objectclass" {
			return true
		}
		switch n.key {
		case "memberof":
			return len(e.memberOf) > 0
		case "member":
			return len(e.members) > 0
		}
		return len(d.values(e, n.key)) > 0
	case fBits:
		for _, v := range d.values(e, n.key) {
			x, ok := parseInt(v)
			if !ok {
				continue
			}
			if n.all && x&n.bits == n.bits || !n.all && x&n.bits != 0 {
				return true
			}
		}
		return false
	case fEq:
		vals := d.values(e, n.key)
		switch {
		case binaryAttrs[n.key]:
			return slices.Contains(vals, n.val)
		case n.key == "objectcategory":
			// Stored categories are plain DNs: lower case is their normal form.
			for _, v := range vals {
				if strings.ToLower(v) == n.lval {
					return true
				}
			}
			return false
		case dnAttrs[n.key]:
			for _, v := range vals {
				if nd, ok := normDN(v); ok && nd == n.lval {
					return true
				}
			}
			return false
		}
		for _, v := range vals {
			if strings.EqualFold(v, n.val) {
				return true
			}
			if n.isNum {
				if x, ok := parseInt(v); ok && x == n.num {
					return true
				}
			}
		}
		return false
	case fGE, fLE:
		for _, v := range d.values(e, n.key) {
			var c int
			if x, ok := parseInt(v); ok && n.isNum {
				c = cmpInt(x, n.num)
			} else {
				c = strings.Compare(strings.ToLower(v), n.lval)
			}
			if n.op == fGE && c >= 0 || n.op == fLE && c <= 0 {
				return true
			}
		}
		return false
	case fSub:
		for _, v := range d.values(e, n.key) {
			if subMatch(strings.ToLower(v), n) {
				return true
			}
		}
		return false
	}
	return false
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func subMatch(v string, n *fnode) bool {
	if !strings.HasPrefix(v, n.initial) {
		return false
	}
	v = v[len(n.initial):]
	for _, a := range n.any {
		i := strings.Index(v, a)
		if i < 0 {
			return false
		}
		v = v[i+len(a):]
	}
	return strings.HasSuffix(v, n.final)
}

// candidates narrows a search to the entries an index gives for the filter
// (GUID, sAMAccountName, DN, group membership); nil means "scan all".
// The result is in creation order.
func candidates(n *fnode) []*entry {
	switch n.op {
	case fEq, fInSet, fHasMember, fGE:
		return n.cands
	case fNever:
		return []*entry{}
	case fAnd:
		var best []*entry
		found := false
		for _, k := range n.kids {
			if c := candidates(k); c != nil && (!found || len(c) < len(best)) {
				best, found = c, true
			}
		}
		if found {
			return best
		}
	case fOr:
		var all []*entry
		for _, k := range n.kids {
			c := candidates(k)
			if c == nil {
				return nil
			}
			all = append(all, c...)
		}
		if all == nil {
			return []*entry{}
		}
		slices.SortFunc(all, func(a, b *entry) int { return a.id - b.id })
		return slices.Compact(all)
	}
	return nil
}
