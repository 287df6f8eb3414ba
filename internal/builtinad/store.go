package builtinad

import (
	"cmp"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// kind is what an entry is, for the rules that differ by class.
type kind uint8

const (
	kindOther kind = iota
	kindUser
	kindComputer
	kindGroup
	kindOU
	kindContainer
	kindDomain
)

// Well-known values.
const (
	uacAccountDisable   = 0x2
	uacPasswdNotReqd    = 0x20
	uacNormalAccount    = 0x200
	uacDontExpirePasswd = 0x10000
	groupTypeGlobalSec  = "-2147483646"
	groupTypeBuiltinLoc = "-2147483643"
	samTypeUser         = "805306368"
	samTypeGroup        = "268435456"
	samTypeAlias        = "536870912"
	samTypeMachine      = "805306369"
	neverExpires        = "9223372036854775807"
	timeFormat          = "20060102150405.0Z"
	// fileTimeEpochOffset is 1601-01-01 to 1970-01-01 in 100 ns intervals.
	fileTimeEpochOffset = 116444736000000000
	// maxValRange is AD's MaxValRange: larger multi-valued attributes come
	// back in ranges (member;range=0-1499).
	maxValRange = 1500
)

func fileTime(t time.Time) string {
	return strconv.FormatInt(t.UnixNano()/100+fileTimeEpochOffset, 10)
}

// attr is a stored attribute. vals is never changed in place: a change
// stores a new slice, so readers may keep a reference after unlocking.
type attr struct {
	name string // as the schema spells it
	key  string // lower case
	vals []string
}

// entry is one directory object.
type entry struct {
	id       int // creation order; results come back in this order
	rdnType  string
	rdnValue string
	dn, ndn  string
	parent   *entry
	kind     kind
	deleted  bool
	attrs    []attr

	usnCreated, usnChanged   int64
	whenCreated, whenChanged time.Time

	guid string // 16 raw bytes

	pw *password // users with a password

	members  map[*entry]struct{} // groups: direct members
	memberOf map[*entry]struct{} // direct groups (the backlink)
}

func (e *entry) find(key string) int {
	for i := range e.attrs {
		if e.attrs[i].key == key {
			return i
		}
	}
	return -1
}

// get returns the stored values of an attribute (nil when absent).
func (e *entry) get(key string) []string {
	if i := e.find(key); i >= 0 {
		return e.attrs[i].vals
	}
	return nil
}

func (e *entry) first(key string) string {
	if v := e.get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// set replaces an attribute; no values deletes it.
func (e *entry) set(name string, vals ...string) {
	key, known := schemaKeys[name]
	if !known {
		key = strings.ToLower(name)
	}
	i := e.find(key)
	switch {
	case len(vals) == 0 && i >= 0:
		e.attrs = slices.Delete(e.attrs, i, i+1)
	case len(vals) == 0:
	case i >= 0:
		e.attrs[i].vals = vals
	case known:
		e.attrs = append(e.attrs, attr{name: name, key: key, vals: vals})
	default:
		e.attrs = append(e.attrs, attr{name: canonicalName(name), key: key, vals: vals})
	}
}

func (e *entry) uac() int64 {
	v, _ := strconv.ParseInt(e.first("useraccountcontrol"), 10, 64)
	return v
}

func (e *entry) isAccount() bool { return e.kind == kindUser || e.kind == kindComputer }

func (e *entry) under(base *entry) bool {
	for x := e; x != nil; x = x.parent {
		if x == base {
			return true
		}
	}
	return false
}

// schemaNames spells the attributes KeyDesk and the tests use as AD's
// schema does, whatever case a request uses.
var schemaNames = func() map[string]string {
	m := map[string]string{}
	for _, n := range []string{
		"objectClass", "objectCategory", "objectGUID", "objectSid", "sAMAccountName", "userPrincipalName",
		"mail", "givenName", "sn", "displayName", "department", "title", "company", "telephoneNumber",
		"userAccountControl", "pwdLastSet", "distinguishedName", "uSNChanged", "uSNCreated", "whenChanged",
		"whenCreated", "memberOf", "member", "isDeleted", "lastKnownParent", "invocationId", "cn", "name", "ou", "dc",
		"groupType", "sAMAccountType", "primaryGroupID", "instanceType", "accountExpires", "minPwdLength",
		"pwdProperties", "pwdHistoryLength", "maxPwdAge", "minPwdAge", "lockoutThreshold", "lockoutDuration",
		"lockOutObservationWindow", "dNSHostName", "manager", "description", "physicalDeliveryOfficeName",
		"mobile", "employeeID", "employeeNumber", "l", "co", "c", "st", "streetAddress", "postalCode",
		"unicodePwd", "msDS-Behavior-Version", "nTMixedDomain", "options", "serverReference", "systemFlags",
		"badPwdCount", "logonCount", "lastLogonTimestamp", "codePage", "countryCode", "initials",
		"wWWHomePage", "info", "showInAdvancedViewOnly", "isCriticalSystemObject", "adminCount",
	} {
		m[strings.ToLower(n)] = n
	}
	return m
}()

// schemaKeys gives the key (lower case) of each attribute name of the
// schema as it is spelled there: entry.set, called a million times by
// the generator of a large directory, then lowers no string.
var schemaKeys = func() map[string]string {
	m := make(map[string]string, len(schemaNames))
	for key, name := range schemaNames {
		m[name] = key
	}
	return m
}()

func canonicalName(name string) string {
	if n, ok := schemaNames[strings.ToLower(name)]; ok {
		return n
	}
	return name
}

// Attribute syntaxes that matter for matching.
var (
	binaryAttrs = map[string]bool{"objectguid": true, "objectsid": true, "invocationid": true, "unicodepwd": true,
		"ntsecuritydescriptor": true, "thumbnailphoto": true, "jpegphoto": true, "usercertificate": true, "msexchmailboxguid": true}
	dnAttrs = map[string]bool{"distinguishedname": true, "member": true, "memberof": true, "objectcategory": true,
		"manager": true, "directreports": true, "lastknownparent": true, "serverreference": true, "managedby": true}
	// systemOnly are attributes no modify may touch.
	systemOnly = map[string]bool{"objectguid": true, "objectsid": true, "distinguishedname": true, "usnchanged": true,
		"usncreated": true, "whenchanged": true, "whencreated": true, "memberof": true, "isdeleted": true,
		"objectcategory": true, "instancetype": true, "samaccounttype": true, "name": true, "objectclass": true,
		"lastknownparent": true, "invocationid": true}
	// computed are attributes derived from the entry's fields, not stored.
	computedOrder = []string{"distinguishedName", "whenCreated", "whenChanged", "uSNCreated", "uSNChanged", "memberOf", "member"}
)

func isComputed(key string) bool {
	switch key {
	case "distinguishedname", "whencreated", "whenchanged", "usncreated", "usnchanged", "memberof", "member":
		return true
	}
	return false
}

// values returns the values of an attribute, computed ones included.
// Caller holds d.mu (read or write).
func (d *Domain) values(e *entry, key string) []string {
	switch key {
	case "distinguishedname":
		return []string{e.dn}
	case "whencreated":
		return []string{e.whenCreated.UTC().Format(timeFormat)}
	case "whenchanged":
		return []string{e.whenChanged.UTC().Format(timeFormat)}
	case "usncreated":
		return []string{strconv.FormatInt(e.usnCreated, 10)}
	case "usnchanged":
		return []string{strconv.FormatInt(e.usnChanged, 10)}
	case "memberof":
		return dnList(e.memberOf)
	case "member":
		return dnList(e.members)
	}
	return e.get(key)
}

// extendedDN is x's DN in the extended DN form (<GUID=hex>;DN; the
// extended DN control's flag 1), made with one allocation.
func extendedDN(x *entry) string {
	var b strings.Builder
	b.Grow(len("<GUID=>;") + 2*len(x.guid) + len(x.dn))
	b.WriteString("<GUID=")
	var h [32]byte
	b.Write(hex.AppendEncode(h[:0], []byte(x.guid)))
	b.WriteString(">;")
	b.WriteString(x.dn)
	return b.String()
}

// dnList gives the DNs of a set of entries in creation order.
func dnList(set map[*entry]struct{}) []string {
	if len(set) == 0 {
		return nil
	}
	es := sortedEntries(set)
	out := make([]string, len(es))
	for i, x := range es {
		out[i] = x.dn
	}
	return out
}

func sortedEntries(set map[*entry]struct{}) []*entry {
	es := make([]*entry, 0, len(set))
	for x := range set {
		es = append(es, x)
	}
	slices.SortFunc(es, func(a, b *entry) int { return a.id - b.id })
	return es
}

// ldapErr builds the error the core returns; the LDAP handlers send its
// code and text, the Go API wraps it.
func ldapErr(code uint16, format string, args ...any) *ldap.Error {
	return &ldap.Error{ResultCode: code, Err: fmt.Errorf(format, args...)}
}

// AD's diagnostic messages.
const (
	diagNeedBind        = "000004DC: LdapErr: DSID-0C090A5C, comment: In order to perform this operation a successful bind must be completed on the connection., data 0, v4563"
	diagStrongAuth      = `00002028: LdapErr: DSID-0C090259, comment: The server requires binds to turn on integrity checking if SSL\TLS are not already active on the connection, data 0, v4563`
	diagBindFmt         = "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data %s, v4563"
	diagWillNotPerform  = "0000001F: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM), data 0"
	diagInsuffRights    = "00000005: SecErr: DSID-031A11F8, problem 4003 (INSUFF_ACCESS_RIGHTS), data 0"
	diagWrongOldPwd     = "00000056: AtrErr: DSID-03190F80, #1:\n\t0: 00000056: DSID-03190F80, problem 1005 (CONSTRAINT_ATT_TYPE), data 0, Att 9005a (unicodePwd)\n"
	diagPolicy          = "0000052D: AtrErr: DSID-03191083, #1:\n\t0: 0000052D: DSID-03191083, problem 1005 (CONSTRAINT_ATT_TYPE), data 0, Att 9005a (unicodePwd)\n"
	diagUnavailCritical = "00002040: SvcErr: DSID-03140594, problem 5010 (UNAVAIL_EXTENSION), data 0"
	diagNoObjectFmt     = "0000208D: NameErr: DSID-03100241, problem 2001 (NO_OBJECT), data 0, best match of:\n\t'%s'\n"
	diagBadName         = "00002081: NameErr: DSID-03050F42, problem 2003 (BAD_NAME), data 8350, best match of:\n\t'%s'\n"
	diagEntryExists     = "00000524: UpdErr: DSID-031A11E0, problem 6005 (ENTRY_EXISTS), data 0"
	diagMemberExists    = "00000562: UpdErr: DSID-031A11E2, problem 6005 (ENTRY_EXISTS), data 0"
	diagNotMember       = "00000561: SvcErr: DSID-031A1256, problem 5003 (WILL_NOT_PERFORM), data 0"
	diagNotLeaf         = "0000208C: UpdErr: DSID-030A0AAF, problem 6003 (CANT_ON_NON_LEAF), data 0"
	diagSystemOnly      = "0000209A: SvcErr: DSID-031A1021, problem 5003 (WILL_NOT_PERFORM), data 0"
	diagNotOnRDN        = "00000057: LdapErr: DSID-0C090E85, comment: Error in attribute conversion operation, data 0, v4563"
	diagNoAttr          = "00002083: AtrErr: DSID-03151F86, #1:\n\t0: 00002083: DSID-03151F86, problem 1001 (NO_ATTRIBUTE_OR_VAL), data 0, Att %s\n"
	diagAttrExists      = "00002083: AtrErr: DSID-03151E6F, #1:\n\t0: 00002083: DSID-03151E6F, problem 1006 (ATT_OR_VALUE_EXISTS), data 0, Att %s\n"
	diagSamExists       = "00000523: SysErr: DSID-031A1202, problem 22 (Invalid argument), data 0"
	diagOnlyAPI         = "00002035: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM), data 0 (the built-in directory takes adds, deletes and renames through its Go API only)"
)

func errNoObject(matched string) *ldap.Error {
	e := ldapErr(ldap.LDAPResultNoSuchObject, diagNoObjectFmt, matched)
	e.MatchedDN = matched
	return e
}

// lookup resolves a DN (or <GUID=...>) to an entry. Tombstones are found
// only with showDeleted.
func (d *Domain) lookup(dn string, showDeleted bool) (*entry, *ldap.Error) {
	if strings.HasPrefix(dn, "<") {
		if v, ok := strings.CutPrefix(dn, "<GUID="); ok && strings.HasSuffix(v, ">") {
			raw, ok := parseGUIDRef(strings.TrimSuffix(v, ">"))
			if !ok {
				return nil, ldapErr(ldap.LDAPResultInvalidDNSyntax, diagBadName, "")
			}
			e := d.byGUID[string(raw)]
			if e == nil || (e.deleted && !showDeleted) {
				return nil, errNoObject(d.BaseDN)
			}
			return e, nil
		}
		return nil, ldapErr(ldap.LDAPResultInvalidDNSyntax, diagBadName, "")
	}
	p, err := parseDN(dn)
	if err != nil {
		return nil, ldapErr(ldap.LDAPResultInvalidDNSyntax, diagBadName, "")
	}
	for i := range p {
		e := d.byNDN[p.suffix(i)]
		if e == nil || (e.deleted && !showDeleted) {
			continue
		}
		if i == 0 {
			return e, nil
		}
		return nil, errNoObject(e.dn)
	}
	return nil, errNoObject("")
}

// now is the clock of the directory.
func (d *Domain) now() time.Time { return time.Now().UTC() }

// touch records a change of e: a new USN from the domain's counter.
func (d *Domain) touch(e *entry) {
	d.usn++
	e.usnChanged = d.usn
	e.whenChanged = d.now()
	d.changes.add(e)
}

// usnLog indexes entries by uSNChanged, as AD indexes it: a search for
// what changed since a USN (every incremental sync makes three) reads the
// entries that did, not the whole directory. It is the entries in the
// order they last changed: each change appends one, and leaves the
// entry's earlier place stale until the log is compacted.
type usnLog struct {
	refs  []usnRef // usn ascending
	stale int
}

type usnRef struct {
	usn int64
	e   *entry
}

// add records that e changed, at its uSNChanged (the highest USN yet).
func (l *usnLog) add(e *entry) {
	if e.usnCreated != e.usnChanged {
		l.stale++ // its earlier place
	}
	l.refs = append(l.refs, usnRef{e.usnChanged, e})
	if l.stale > 1024 && l.stale > len(l.refs)/2 {
		live := l.refs[:0]
		for _, r := range l.refs {
			if r.e.usnChanged == r.usn {
				live = append(live, r)
			}
		}
		clear(l.refs[len(live):])
		l.refs, l.stale = live, 0
	}
}

// since returns the entries whose uSNChanged is at least usn, in creation
// order (as a search returns them).
func (l *usnLog) since(usn int64) []*entry {
	i, _ := slices.BinarySearchFunc(l.refs, usn, func(r usnRef, usn int64) int { return cmp.Compare(r.usn, usn) })
	out := []*entry{}
	for _, r := range l.refs[i:] {
		if r.e.usnChanged == r.usn {
			out = append(out, r.e)
		}
	}
	slices.SortFunc(out, func(a, b *entry) int { return a.id - b.id })
	return out
}

// newGUID draws a GUID from the domain's seeded generator.
func (d *Domain) newGUID() string {
	var b [16]byte
	for {
		for i := 0; i < 16; i += 8 {
			v := d.rng.Uint64()
			for j := 0; j < 8; j++ {
				b[i+j] = byte(v >> (8 * j))
			}
		}
		b[7] = b[7]&0x0f | 0x40 // version 4
		b[8] = b[8]&0x3f | 0x80
		if _, dup := d.byGUID[string(b[:])]; !dup {
			return string(b[:])
		}
	}
}

func (d *Domain) newSID() string {
	d.nextRID++
	return string(sidBytes(21, d.sidSub[0], d.sidSub[1], d.sidSub[2], d.nextRID))
}

// category is the objectCategory DN of a class of the schema.
func (d *Domain) category(cn string) string { return "CN=" + cn + "," + d.schemaDN }

// newEntry creates an object under parent (nil for a naming context head)
// with the attributes every object has. Caller holds d.mu for writing.
func (d *Domain) newEntry(parent *entry, rdnType, rdnValue string, k kind, classes []string, category string, when time.Time) (*entry, *ldap.Error) {
	dn := rdnType + "=" + escapeRDNValue(rdnValue)
	ndn := normRDN(rdnType, rdnValue)
	if parent != nil {
		if parent.deleted {
			return nil, errNoObject(d.BaseDN)
		}
		dn += "," + parent.dn
		ndn += "," + parent.ndn
	}
	if _, dup := d.byNDN[ndn]; dup {
		return nil, ldapErr(ldap.LDAPResultEntryAlreadyExists, diagEntryExists)
	}
	d.usn++
	e := &entry{
		id: len(d.all), rdnType: rdnType, rdnValue: rdnValue, dn: dn, ndn: ndn, parent: parent, kind: k,
		usnCreated: d.usn, usnChanged: d.usn, whenCreated: when, whenChanged: when,
		guid: d.newGUID(),
	}
	e.attrs = make([]attr, 0, 24)
	e.set("objectClass", classes...)
	e.set(strings.ToLower(rdnType), rdnValue)
	e.set("name", rdnValue)
	e.set("instanceType", "4")
	e.set("objectGUID", e.guid)
	if category != "" {
		e.set("objectCategory", d.category(category))
	}
	d.all = append(d.all, e)
	d.changes.add(e)
	d.byNDN[ndn] = e
	d.byGUID[e.guid] = e
	return e, nil
}

// rename gives e a new RDN value under the same parent.
func (d *Domain) rename(e *entry, value string) *ldap.Error {
	ndn := normRDN(e.rdnType, value) + "," + e.parent.ndn
	if x, dup := d.byNDN[ndn]; dup && x != e {
		return ldapErr(ldap.LDAPResultEntryAlreadyExists, diagEntryExists)
	}
	for _, x := range d.all {
		if x.parent == e {
			return ldapErr(ldap.LDAPResultNotAllowedOnNonLeaf, diagNotLeaf)
		}
	}
	delete(d.byNDN, e.ndn)
	e.rdnValue = value
	e.dn = e.rdnType + "=" + escapeRDNValue(value) + "," + e.parent.dn
	e.ndn = ndn
	d.byNDN[ndn] = e
	e.set(strings.ToLower(e.rdnType), value)
	e.set("name", value)
	return nil
}

// link makes m a direct member of g.
func (d *Domain) link(g, m *entry) {
	if g.members == nil {
		g.members = map[*entry]struct{}{}
	}
	if m.memberOf == nil {
		m.memberOf = map[*entry]struct{}{}
	}
	g.members[m] = struct{}{}
	m.memberOf[g] = struct{}{}
	d.invalidateChains()
}

func (d *Domain) unlink(g, m *entry) {
	delete(g.members, m)
	delete(m.memberOf, g)
	d.invalidateChains()
}

// chain is the transitive membership of a group: everything that reaches it
// through member links, nested groups included.
type chain struct {
	set  map[*entry]struct{}
	list []*entry // in creation order
}

// chainOf returns the cached transitive membership of g. It is computed
// once per group and dropped on any membership change, so an in-chain
// search costs one lookup per entry. Caller holds d.mu (read or write).
func (d *Domain) chainOf(g *entry) *chain {
	d.cacheMu.Lock()
	c := d.chains[g]
	d.cacheMu.Unlock()
	if c != nil {
		return c
	}
	set := map[*entry]struct{}{}
	stack := []*entry{g}
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for m := range x.members {
			if _, seen := set[m]; seen {
				continue
			}
			set[m] = struct{}{}
			if m.kind == kindGroup {
				stack = append(stack, m)
			}
		}
	}
	c = &chain{set: set, list: sortedEntries(set)}
	d.cacheMu.Lock()
	if d.chains == nil {
		d.chains = map[*entry]*chain{}
	}
	d.chains[g] = c
	d.cacheMu.Unlock()
	return c
}

// ancestors are the groups x belongs to, directly or through nesting.
func ancestors(x *entry) map[*entry]struct{} {
	set := map[*entry]struct{}{}
	stack := []*entry{x}
	for len(stack) > 0 {
		y := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for g := range y.memberOf {
			if _, seen := set[g]; !seen {
				set[g] = struct{}{}
				stack = append(stack, g)
			}
		}
	}
	return set
}

// invalidateChains drops the cached memberships; caller holds d.mu for
// writing.
func (d *Domain) invalidateChains() {
	d.cacheMu.Lock()
	d.chains = nil
	d.cacheMu.Unlock()
}

// tombstone turns e into a deleted object as AD does: its links are
// removed, it moves under CN=Deleted Objects with "\0ADEL:<guid>" in its
// name, keeps its objectGUID, objectSid and sAMAccountName, and loses most
// other attributes.
func (d *Domain) tombstone(e *entry) *ldap.Error {
	if e.deleted {
		return errNoObject(d.BaseDN)
	}
	if e.parent == nil || e == d.users || e == d.deletedObjects || e.kind == kindDomain {
		return ldapErr(ldap.LDAPResultUnwillingToPerform, diagSystemOnly)
	}
	for _, x := range d.all {
		if x.parent == e && !x.deleted {
			return ldapErr(ldap.LDAPResultNotAllowedOnNonLeaf, diagNotLeaf)
		}
	}
	for g := range e.memberOf {
		d.unlink(g, e)
		d.touch(g)
	}
	for m := range e.members {
		d.unlink(e, m)
	}
	lastParent := e.parent.dn
	delete(d.byNDN, e.ndn)
	if sam := e.first("samaccountname"); sam != "" && d.bySam[strings.ToLower(sam)] == e {
		delete(d.bySam, strings.ToLower(sam))
	}
	if upn := e.first("userprincipalname"); upn != "" && d.byUPN[strings.ToLower(upn)] == e {
		delete(d.byUPN, strings.ToLower(upn))
	}
	keep := map[string]bool{"objectclass": true, "cn": true, "name": true, "objectguid": true, "objectsid": true,
		"samaccountname": true, "instancetype": true, "samaccounttype": true, "useraccountcontrol": true, "ou": true}
	kept := e.attrs[:0:0]
	for _, a := range e.attrs {
		if keep[a.key] {
			kept = append(kept, a)
		}
	}
	e.attrs = kept
	e.pw = nil
	e.deleted = true
	e.parent = d.deletedObjects
	value := e.rdnValue + "\nDEL:" + guidString([]byte(e.guid))
	e.rdnValue = value
	e.dn = e.rdnType + "=" + escapeRDNValue(value) + "," + d.deletedObjects.dn
	e.ndn = normRDN(e.rdnType, value) + "," + d.deletedObjects.ndn
	d.byNDN[e.ndn] = e
	e.set(strings.ToLower(e.rdnType), value)
	e.set("name", value)
	e.set("isDeleted", "TRUE")
	e.set("lastKnownParent", lastParent)
	d.touch(e)
	return nil
}

var errClosed = errors.New("builtinad: the server is closed")
