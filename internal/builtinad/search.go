package builtinad

import (
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Search scopes (RFC 4511).
const (
	scopeBase = 0
	scopeOne  = 1
	scopeSub  = 2
)

// maxPageSize is AD's MaxPageSize: the most entries one page, or one
// search without paging, returns.
const maxPageSize = 1000

// outAttr is one attribute of a result entry.
type outAttr struct {
	name string
	vals []string
}

// attrSel is the attribute list of a search request.
type attrSel struct {
	all    bool
	keys   []string          // lower case, in request order
	names  map[string]string // key -> name as requested (for unknown attributes)
	ranges map[string][2]int // key -> requested value range (hi -1 = *)
	// extendedDN: member values as AD gives them under the extended DN
	// control without a value: <GUID=hex>;<SID=hex>;DN.
	extendedDN bool
}

func parseSel(req []string) attrSel {
	s := attrSel{names: map[string]string{}}
	if len(req) == 0 {
		s.all = true
		return s
	}
	seen := map[string]bool{}
	for _, a := range req {
		switch a {
		case "*":
			s.all = true
			continue
		case "1.1", "+", "":
			continue
		}
		key := strings.ToLower(a)
		if base, opt, ok := strings.Cut(key, ";"); ok {
			key = base
			if r, ok := strings.CutPrefix(opt, "range="); ok {
				lo, hi, _ := strings.Cut(r, "-")
				l, err1 := strconv.Atoi(lo)
				h, err2 := strconv.Atoi(hi)
				if hi == "*" {
					h, err2 = -1, nil
				}
				if err1 == nil && err2 == nil && l >= 0 {
					if s.ranges == nil {
						s.ranges = map[string][2]int{}
					}
					s.ranges[key] = [2]int{l, h}
				}
			}
		}
		if !seen[key] {
			seen[key] = true
			s.keys = append(s.keys, key)
			s.names[key] = a
		}
	}
	return s
}

// render gives the attributes of e a search returns. Caller holds d.mu.
func (d *Domain) render(e *entry, sel attrSel, typesOnly bool) []outAttr {
	var out []outAttr
	add := func(name string, vals []string) {
		if len(vals) == 0 {
			return
		}
		if typesOnly {
			vals = nil
		}
		out = append(out, outAttr{name: name, vals: vals})
	}
	done := map[string]bool{}
	if sel.all {
		for _, a := range e.attrs {
			add(a.name, a.vals)
			done[a.key] = true
		}
		for _, name := range computedOrder {
			key := strings.ToLower(name)
			if key == "member" {
				continue
			}
			add(name, d.values(e, key))
			done[key] = true
		}
		if len(e.members) > 0 {
			name, vals := rangedMembers(e, sel)
			add(name, vals)
		}
		done["member"] = true
	}
	for _, key := range sel.keys {
		if done[key] {
			continue
		}
		done[key] = true
		if key == "member" {
			if len(e.members) > 0 {
				name, vals := rangedMembers(e, sel)
				add(name, vals)
			}
			continue
		}
		if i := e.find(key); i >= 0 {
			add(e.attrs[i].name, e.attrs[i].vals)
			continue
		}
		if isComputed(key) {
			add(canonicalName(key), d.values(e, key))
		}
	}
	return out
}

// rangedMembers returns member, in ranges as AD does past MaxValRange.
func rangedMembers(e *entry, sel attrSel) (string, []string) {
	// Only the range asked for is rendered: a group of 30,000 members is
	// read in 20 ranges, and rendering all of it for each was most of a
	// sync's cost here (a DC does not do that either).
	es := sortedEntries(e.members)
	render := func(es []*entry) []string {
		out := make([]string, len(es))
		for i, x := range es {
			out[i] = x.dn
			if sel.extendedDN {
				out[i] = extendedDN(x)
			}
		}
		return out
	}
	r, asked := sel.ranges["member"]
	if !asked && len(es) <= maxValRange {
		return "member", render(es)
	}
	lo, hi := 0, maxValRange-1
	if asked {
		lo, hi = r[0], r[1]
		if hi < 0 || hi >= lo+maxValRange {
			hi = lo + maxValRange - 1
		}
	}
	if lo >= len(es) {
		return "member;range=" + strconv.Itoa(lo) + "-*", []string{}
	}
	end := "*"
	if hi < len(es)-1 {
		end = strconv.Itoa(hi)
	} else {
		hi = len(es) - 1
	}
	return "member;range=" + strconv.Itoa(lo) + "-" + end, render(es[lo : hi+1])
}

// search finds the entries a request selects, in creation order. Caller
// holds d.mu.
func (d *Domain) search(base string, scope int, filter string, showDeleted bool) ([]*entry, *ldap.Error) {
	b, lerr := d.lookup(base, showDeleted)
	if lerr != nil {
		return nil, lerr
	}
	f, err := d.compileFilter(filter)
	if err != nil {
		return nil, ldapErr(ldap.LDAPResultProtocolError, "00000057: LdapErr: DSID-0C0C0968, comment: Error processing filter, data 0, v4563")
	}
	var out []*entry
	consider := func(e *entry) {
		if e.deleted && !showDeleted {
			return
		}
		switch scope {
		case scopeBase:
			if e != b {
				return
			}
		case scopeOne:
			if e.parent != b {
				return
			}
		default:
			if !e.under(b) {
				return
			}
		}
		if d.match(f, e) {
			out = append(out, e)
		}
	}
	switch {
	case scope == scopeBase:
		consider(b)
	default:
		cands := candidates(f)
		if cands == nil {
			cands = d.all
		}
		for _, e := range cands {
			consider(e)
		}
	}
	return out, nil
}

// still reports whether e still matches a search (for later pages of a
// paged search, after the directory changed). Caller holds d.mu.
func (d *Domain) still(e *entry, b *entry, scope int, f *fnode, showDeleted bool) bool {
	if e.deleted && !showDeleted {
		return false
	}
	switch scope {
	case scopeBase:
		if e != b {
			return false
		}
	case scopeOne:
		if e.parent != b {
			return false
		}
	default:
		if !e.under(b) {
			return false
		}
	}
	return d.match(f, e)
}

// supportedControls is what RootDSE lists: AD's list (Windows Server 2016)
// without VLV and server-side sorting, which the double does not implement
// (a critical request for either gets "Unavailable Critical Extension").
var supportedControls = []string{
	"1.2.840.113556.1.4.319",  // paged results
	"1.2.840.113556.1.4.801",  // SD flags
	"1.2.840.113556.1.4.528",  // notification
	"1.2.840.113556.1.4.417",  // show deleted
	"1.2.840.113556.1.4.619",  // lazy commit
	"1.2.840.113556.1.4.841",  // DirSync
	"1.2.840.113556.1.4.529",  // extended DN
	"1.2.840.113556.1.4.805",  // tree delete
	"1.2.840.113556.1.4.521",  // cross-domain move
	"1.2.840.113556.1.4.970",  // GC verify name
	"1.2.840.113556.1.4.1338", // verify name
	"1.2.840.113556.1.4.1339", // domain scope
	"1.2.840.113556.1.4.1340", // search options
	"1.2.840.113556.1.4.1413", // permissive modify
	"1.2.840.113556.1.4.1504", // attribute scoped query
	"1.2.840.113556.1.4.1852", // quota
	"1.2.840.113556.1.4.802",  // range option
	"1.2.840.113556.1.4.1907", // shutdown notify
	"1.2.840.113556.1.4.1948", // range retrieval no error
	"1.2.840.113556.1.4.1974", // force update
	"1.2.840.113556.1.4.1341", // RODC DCPROMO
	"1.2.840.113556.1.4.2026", // input DN
	"1.2.840.113556.1.4.2064", // show recycled
	"1.2.840.113556.1.4.2065", // show deactivated link
	"1.2.840.113556.1.4.2066", // policy hints (deprecated OID)
	"1.2.840.113556.1.4.2090", // DirSync EX
	"1.2.840.113556.1.4.2205", // update stats
	"1.2.840.113556.1.4.2204", // tree delete EX
	"1.2.840.113556.1.4.2206", // search hints
	"1.2.840.113556.1.4.2211", // expected entry count
	"1.2.840.113556.1.4.2239", // LDAP_SERVER_POLICY_HINTS
	"1.2.840.113556.1.4.2255", // set owner
	"1.2.840.113556.1.4.2256", // bypass quota
	"1.2.840.113556.1.4.2309", // link TTL
	"1.2.840.113556.1.4.2330", // set correlation ID
	"1.2.840.113556.1.4.2354", // thread trace override
}

// ignorableControls are accepted even when critical: they change nothing
// the double models (or, like show deleted and policy hints, are honoured).
var ignorableControls = map[string]bool{
	"1.2.840.113556.1.4.319": true, "1.2.840.113556.1.4.417": true, "1.2.840.113556.1.4.2239": true,
	"1.2.840.113556.1.4.2066": true, "1.2.840.113556.1.4.2064": true, "1.2.840.113556.1.4.2065": true,
	"1.2.840.113556.1.4.801": true, "1.2.840.113556.1.4.619": true, "1.2.840.113556.1.4.1339": true,
	"1.2.840.113556.1.4.1340": true, "1.2.840.113556.1.4.1413": true, "1.2.840.113556.1.4.2206": true,
	"1.2.840.113556.1.4.2330": true, "1.2.840.113556.1.4.2309": true, "1.2.840.113556.1.4.1948": true,
	"1.2.840.113556.1.4.802": true,
}

// rootDSE renders the root entry. Caller holds d.mu.
func (d *Domain) rootDSE(sel attrSel) []outAttr {
	now := time.Now().UTC()
	all := []outAttr{
		{"configurationNamingContext", []string{d.configDN}},
		{"currentTime", []string{now.Format(timeFormat)}},
		{"defaultNamingContext", []string{d.BaseDN}},
		{"dnsHostName", []string{d.HostName}},
		{"domainControllerFunctionality", []string{"7"}},
		{"domainFunctionality", []string{"7"}},
		{"dsServiceName", []string{d.ntds.dn}},
		{"forestFunctionality", []string{"7"}},
		{"highestCommittedUSN", []string{itoa(d.usn)}},
		{"isGlobalCatalogReady", []string{"TRUE"}},
		{"isSynchronized", []string{"TRUE"}},
		{"ldapServiceName", []string{d.DNSName + ":" + strings.ToLower(strings.SplitN(d.HostName, ".", 2)[0]) + "$@" + d.Realm}},
		{"namingContexts", []string{d.BaseDN, d.configDN, d.schemaDN}},
		{"rootDomainNamingContext", []string{d.BaseDN}},
		{"schemaNamingContext", []string{d.schemaDN}},
		{"serverName", []string{d.ntds.parent.dn}},
		{"subschemaSubentry", []string{"CN=Aggregate," + d.schemaDN}},
		{"supportedCapabilities", []string{"1.2.840.113556.1.4.800", "1.2.840.113556.1.4.1670", "1.2.840.113556.1.4.1791",
			"1.2.840.113556.1.4.1935", "1.2.840.113556.1.4.2080", "1.2.840.113556.1.4.2237"}},
		{"supportedControl", supportedControls},
		{"supportedExtension", []string{"1.3.6.1.4.1.1466.20037"}},
		{"supportedLDAPPolicies", []string{"MaxPoolThreads", "MaxPercentDirSyncRequests", "MaxDatagramRecv", "MaxReceiveBuffer",
			"InitRecvTimeout", "MaxConnections", "MaxConnIdleTime", "MaxPageSize", "MaxBatchReturnMessages", "MaxQueryDuration",
			"MaxDirSyncDuration", "MaxTempTableSize", "MaxResultSetSize", "MinResultSets", "MaxResultSetsPerConn",
			"MaxNotificationPerConn", "MaxValRange", "MaxValRangeTransitive", "ThreadMemoryLimit", "SystemMemoryLimitPercent"}},
		{"supportedLDAPVersion", []string{"3", "2"}},
		{"supportedSASLMechanisms", []string{"GSSAPI", "GSS-SPNEGO", "EXTERNAL", "DIGEST-MD5"}},
	}
	if sel.all {
		return all
	}
	var out []outAttr
	for _, a := range all {
		for _, k := range sel.keys {
			if strings.EqualFold(a.name, k) {
				out = append(out, a)
				break
			}
		}
	}
	return out
}
