package ldapsync

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/go-ldap/ldap/v3"
)

// Mark is the high-water mark of a successful sync: valid only on the DC
// (dsServiceName) and database instance (invocationId) that issued it.
type Mark struct {
	DSADN        string
	InvocationID string
	HighestUSN   int64
}

// Progress is reported while a domain is read.
type Progress struct {
	Phase   string // "groups", "members"; "changed groups", "changed groups' members", "changed users", "new members"
	Pages   int    // pages read so far in all phases
	Entries int    // entries read so far in this phase
}

// ReadOptions steer ReadMembers.
type ReadOptions struct {
	// Previous is the mark of the last successful sync; nil forces a full read.
	Previous *Mark
	// Graph is the group graph stored by the last successful sync (nil:
	// none, which forces a full read). ReadMembers updates it in place and
	// returns it in the snapshot.
	Graph *Graph
	// Known are the GUIDs of the accounts stored as current members; only
	// they can be skipped by an incremental read.
	Known map[string]bool
	// KnownPassword are those of them in the password group, as stored.
	KnownPassword map[string]bool
	// LoadEdges, if set, fills Graph's memberships (Parents), which
	// Graph then lacks; with groupsOnly, only how its groups nest. An
	// incremental read that finds nothing changed does without them, and
	// one that finds only users changed needs only the groups'.
	LoadEdges func(g *Graph, groupsOnly bool) error
	// Full forces a full read, for FullReason ("requested" when empty).
	Full       bool
	FullReason string
	// Progress, if set, is called after every page.
	Progress func(Progress)
	// Same, if set, says whether a member read holds what is stored of it
	// already: such a member is kept in Unchanged, by GUID only, rather
	// than in Fetched, so that a read of many members that did not change
	// holds little.
	Same func(*User) bool
	// Prepare, if set, is called as soon as the read knows that it will
	// use Known, KnownPassword or Same: the caller may fill them from then
	// on, while the directory is read, rather than before ReadMembers. It
	// may be called more than once.
	Prepare func()
	// Ready, if set, is called before Known, KnownPassword or Same are
	// first used (after Prepare), and may be called again; it waits for
	// the caller to have filled them. An error it returns ends the read.
	// A read that returns a Partial snapshot (see Stored) calls neither.
	Ready func() error
	// Stored, if set, lets a read in which nothing changed, or only users
	// (no group, nothing deleted), return a Partial snapshot: it is called
	// with the changed users' GUIDs, and Same must then answer for them
	// (Known and KnownPassword are not used, nor are Prepare and Ready
	// called). Without it, every snapshot lists every member.
	Stored func(guids []string) error
}

// Snapshot is everything read from one domain in one sync.
type Snapshot struct {
	Server          string
	Mark            Mark // to remember if this sync succeeds
	Full            bool
	FullReason      string
	SyncGroupDN     string
	PasswordGroupDN string // "" when the password group does not exist
	// Fetched are the members whose attributes were read (all of them in a
	// full read, but for those ReadOptions.Same found the same as stored).
	Fetched []User
	// Unchanged are the GUIDs of known members whose attributes were not
	// read because nothing changed since the mark, or were read and found
	// the same as stored.
	Unchanged []string
	// PasswordGUIDs are the members of the sync group that are members of
	// the password group too.
	PasswordGUIDs map[string]bool
	// Graph is the group graph as this read left it, to store. After a
	// full read all of it is new; after an incremental one only the
	// parents of GraphTouched (users and groups) changed, besides Groups.
	Graph        *Graph
	GraphTouched []string
	// Drift, after a periodic full read, lists how the incremental state
	// differed from it (see Drift).
	Drift []string
	Pages int
	// Partial says that an incremental read lists only what changed
	// since the mark: Fetched and Unchanged hold the changed users that
	// are members, and PasswordGUIDs says which of them are in the
	// password group; Left holds the changed users that are not members
	// (whether they were or not). Every other member as stored is still a
	// member, unchanged, in the password group or not as stored, and the
	// graph is as stored but for GraphTouched. With nothing changed all
	// are empty. Complete lists every member for a caller that needs them.
	Partial bool
	Left    []string
}

// MemberCount is the number of members of the sync group (of those listed,
// when Partial).
func (s *Snapshot) MemberCount() int { return len(s.Fetched) + len(s.Unchanged) }

// Changes is how many users a Partial snapshot lists.
func (s *Snapshot) Changes() int { return len(s.Fetched) + len(s.Unchanged) + len(s.Left) }

// Complete lists every member of a Partial snapshot: the members the
// caller stored, as ReadOptions.Known and KnownPassword give them, that it
// does not list are added to Unchanged (with their password group as
// stored), as a read of every member would have found them. The snapshot
// is then no longer Partial. It does nothing to any other snapshot.
func (s *Snapshot) Complete(known, knownPassword map[string]bool) {
	if !s.Partial {
		return
	}
	s.Partial = false
	listed := make(map[string]bool, s.Changes())
	for _, u := range s.Fetched {
		listed[u.ObjectGUID] = true
	}
	for _, g := range s.Unchanged {
		listed[g] = true
	}
	for _, g := range s.Left {
		listed[g] = true
	}
	s.Left = nil
	for guid := range known {
		if !listed[guid] {
			s.Unchanged = append(s.Unchanged, guid)
			if knownPassword[guid] {
				s.PasswordGUIDs[guid] = true
			}
		}
	}
	sort.Strings(s.Unchanged)
}

// Reasons Classify gives.
const (
	ReasonDeleted   = "deleted"
	ReasonLeftGroup = "left-group"
)

// ErrGroupNotFound is returned when the sync group does not exist.
var ErrGroupNotFound = errors.New("group not found")

// guidBatch is how many GUIDs go into one OR filter.
const guidBatch = 100

// userFilter selects user accounts (not computers) with an extra condition.
func userFilter(cond string) string {
	return "(&(objectClass=user)(!(objectClass=computer))" + cond + ")"
}

func inChain(groupDN string) string {
	return "(memberOf:" + OIDMatchingRuleInCh + ":=" + ldap.EscapeFilter(groupDN) + ")"
}

// FindGroup resolves a group given by name (cn or sAMAccountName) or DN.
func (c *Conn) FindGroup(ctx context.Context, nameOrDN string) (string, error) {
	dn, _, err := c.findGroup(ctx, nameOrDN)
	return dn, err
}

// findGroup resolves a group given by name or DN to its DN and objectGUID.
func (c *Conn) findGroup(ctx context.Context, nameOrDN string) (dn, guid string, err error) {
	attrs := []string{"distinguishedName", "objectGUID"}
	var e *ldap.Entry
	if looksLikeDN(nameOrDN) {
		res, err := c.l.Search(ldap.NewSearchRequest(nameOrDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
			"(objectClass=group)", attrs, nil))
		if err != nil {
			if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
				return "", "", fmt.Errorf("group %s: %w: no object has this DN", nameOrDN, ErrGroupNotFound)
			}
			return "", "", fmt.Errorf("look up group %s: %w", nameOrDN, ctxErr(ctx, err))
		}
		if len(res.Entries) == 0 {
			return "", "", fmt.Errorf("group %s: %w: the object is not a group", nameOrDN, ErrGroupNotFound)
		}
		e = res.Entries[0]
	} else {
		v := ldap.EscapeFilter(nameOrDN)
		res, err := c.l.Search(ldap.NewSearchRequest(c.Domain.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 3, 0, false,
			"(&(objectClass=group)(|(cn="+v+")(sAMAccountName="+v+")))", attrs, nil))
		if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
			return "", "", fmt.Errorf("look up group %q under %s: %w", nameOrDN, c.Domain.BaseDN, ctxErr(ctx, err))
		}
		switch {
		case res == nil || len(res.Entries) == 0:
			return "", "", fmt.Errorf("group %q: %w under %s: create it in AD, or set the group's DN in the configuration", nameOrDN, ErrGroupNotFound, c.Domain.BaseDN)
		case len(res.Entries) > 1:
			return "", "", fmt.Errorf("group %q: %d groups have this name under %s (%s, %s): set the group's DN in the configuration", nameOrDN, len(res.Entries), c.Domain.BaseDN, res.Entries[0].DN, res.Entries[1].DN)
		}
		e = res.Entries[0]
	}
	if guid, err = FormatGUID(e.GetRawAttributeValue("objectGUID")); err != nil {
		return "", "", fmt.Errorf("group %s: %w", e.DN, err)
	}
	return entryDN(e), guid, nil
}

func looksLikeDN(s string) bool {
	return strings.Contains(s, "=") && strings.Contains(s, ",")
}

// pagedSearch runs a search with the paged-results control and calls fn for
// every entry. It never uses VLV or server-side sorting.
func (c *Conn) pagedSearch(ctx context.Context, req *ldap.SearchRequest, fn func(*ldap.Entry) error, onPage func()) error {
	paging := ldap.NewControlPaging(uint32(c.Domain.PageSize))
	req.Controls = append(req.Controls, paging)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		res, err := c.l.Search(req)
		if err != nil {
			return ctxErr(ctx, err)
		}
		for _, e := range res.Entries {
			if err := fn(e); err != nil {
				return err
			}
		}
		if onPage != nil {
			onPage()
		}
		ctrl, _ := ldap.FindControl(res.Controls, ldap.ControlTypePaging).(*ldap.ControlPaging)
		if ctrl == nil || len(ctrl.Cookie) == 0 {
			return nil
		}
		paging.SetCookie(ctrl.Cookie)
	}
}

// ReadMembers reads the members of the sync group (nested groups included)
// and of the password group. A full read asks the DC for the members of
// the sync group's chain with their attributes, and for the groups nested
// in either group: the group graph. With a valid previous mark and graph,
// an incremental read asks only what changed since: the groups of the
// graph whose uSNChanged moved (their direct members are read again), and
// the users whose uSNChanged moved; membership is then worked out locally.
func (c *Conn) ReadMembers(ctx context.Context, opts ReadOptions) (*Snapshot, error) {
	rd := c.RootDSE
	snap := &Snapshot{
		Server:        c.URL,
		Mark:          Mark{DSADN: rd.DSServiceName, InvocationID: rd.InvocationID, HighestUSN: rd.HighestCommittedUSN},
		PasswordGUIDs: map[string]bool{},
	}
	syncGUID, pwGUID := "", ""
	var err error
	if snap.SyncGroupDN, syncGUID, err = c.findGroup(ctx, c.Domain.SyncGroup); err != nil {
		return nil, fmt.Errorf("find sync group: %w", err)
	}
	switch dn, guid, err := c.findGroup(ctx, c.Domain.PasswordGroup); {
	case errors.Is(err, ErrGroupNotFound):
		// No password group: nobody gets automatic rotation.
	case err != nil:
		return nil, fmt.Errorf("find password group: %w", err)
	default:
		snap.PasswordGroupDN, pwGUID = dn, guid
	}
	reason := fullReason(opts.Previous, rd, opts.Full)
	if opts.Full && opts.FullReason != "" {
		reason = opts.FullReason
	}
	switch g := opts.Graph; {
	case reason != "":
	case g == nil || g.SyncRoot == "":
		reason = "no group graph stored yet"
	case g.SyncRoot != syncGUID:
		reason = "the sync group is another group than at the last sync"
	case g.PasswordRoot != pwGUID:
		reason = "the password group is another group than at the last sync (or was created or deleted)"
	}
	snap.Full, snap.FullReason = reason != "", reason
	r := &reader{c: c, snap: snap, opts: opts}
	if !snap.Full {
		opts.Graph.Groups[syncGUID] = snap.SyncGroupDN
		if pwGUID != "" {
			opts.Graph.Groups[pwGUID] = snap.PasswordGroupDN
		}
		err = r.incremental(ctx, opts.Graph)
		var nf needFull
		if !errors.As(err, &nf) {
			return snap, err
		}
		// What changed cannot be followed: read everything instead.
		*snap = Snapshot{Server: snap.Server, Mark: snap.Mark, SyncGroupDN: snap.SyncGroupDN, PasswordGroupDN: snap.PasswordGroupDN,
			PasswordGUIDs: map[string]bool{}, Full: true, FullReason: nf.reason}
		r = &reader{c: c, snap: snap, opts: opts}
	}
	if err := r.full(ctx, NewGraph(syncGUID, snap.SyncGroupDN, pwGUID, snap.PasswordGroupDN)); err != nil {
		return nil, err
	}
	return snap, nil
}

// changedUsersOnly finishes, as a Partial snapshot, an incremental read
// in which only users changed: the groups nest as stored, and only the
// changed users are placed (by their memberOf) and compared with what is
// stored of them (ReadOptions.Stored if set, then Same). Its cost follows
// the changes, not the number of members.
func (r *reader) changedUsersOnly(g *Graph, changedUsers []*ldap.Entry, inBase func(string) (bool, error)) error {
	snap := r.snap
	if err := r.opts.LoadEdges(g, true); err != nil {
		return err
	}
	ch := g.children()
	inSync, inPassword := under(g.SyncRoot, ch, g.IsGroup), under(g.PasswordRoot, ch, g.IsGroup)
	anyIn := func(ps []string, groups map[string]bool) bool {
		for _, p := range ps {
			if groups[p] {
				return true
			}
		}
		return false
	}
	type placed struct {
		u  User
		ps []string
	}
	users := make([]placed, 0, len(changedUsers))
	guids := make([]string, 0, len(changedUsers))
	ix := g.dnIndex()
	for _, e := range changedUsers {
		u, ps, err := placeUser(e, ix, inBase)
		if err != nil {
			return err
		}
		users = append(users, placed{u, ps})
		guids = append(guids, u.ObjectGUID)
	}
	if r.opts.Stored != nil {
		if err := r.opts.Stored(guids); err != nil {
			return err
		}
	}
	for _, p := range users {
		guid := p.u.ObjectGUID
		g.setParents(guid, p.ps)
		snap.GraphTouched = append(snap.GraphTouched, guid)
		if !anyIn(p.ps, inSync) {
			snap.Left = append(snap.Left, guid)
			r.prog.Entries++
			continue
		}
		r.fetched(p.u) // counts it
		if anyIn(p.ps, inPassword) {
			snap.PasswordGUIDs[guid] = true
		}
	}
	sort.Slice(snap.Fetched, func(i, j int) bool { return snap.Fetched[i].ObjectGUID < snap.Fetched[j].ObjectGUID })
	sort.Strings(snap.Unchanged)
	sort.Strings(snap.Left)
	sort.Strings(snap.GraphTouched)
	snap.Partial, snap.Graph = true, g
	return nil
}

// placeUser reads a changed user's entry and the groups of the graph it
// is a direct member of (ix: the graph's DN index); a user outside the base
// DN is a member of none.
func placeUser(e *ldap.Entry, ix map[string]string, inBase func(string) (bool, error)) (User, []string, error) {
	u, err := userFromEntry(e)
	if err != nil {
		return u, nil, err
	}
	if in, err := inBase(u.DN); err != nil || !in {
		return u, nil, err // moved out of the base DN: no longer a member
	}
	return u, parentsOf(e.GetAttributeValues("memberOf"), ix), nil
}

// readErr is err as an incremental read returns it: a needFull as it is,
// any other error wrapped with what was being read (format and args).
func readErr(err error, format string, args ...any) error {
	var nf needFull
	if errors.As(err, &nf) {
		return nf
	}
	if err != nil {
		return fmt.Errorf(format+": %w", append(args, err)...)
	}
	return nil
}

// needFull is returned by an incremental read that met a change it cannot
// follow: the read is made again in full, for reason.
type needFull struct{ reason string }

func (e needFull) Error() string { return "a full read is needed: " + e.reason }

// reader is one ReadMembers call under way.
type reader struct {
	c        *Conn
	snap     *Snapshot
	opts     ReadOptions
	prog     Progress
	prepared bool // opts.Prepare was called
}

// page returns what counts a page of phase.
func (r *reader) page(phase string) func() {
	return func() {
		r.prog.Pages++
		r.snap.Pages = r.prog.Pages
		if r.opts.Progress != nil {
			p := r.prog
			p.Phase = phase
			r.opts.Progress(p)
		}
	}
}

// prepare says that what the caller knows of the members will be needed
// (ReadOptions.Prepare), once per reader.
func (r *reader) prepare() {
	if !r.prepared && r.opts.Prepare != nil {
		r.prepared = true
		r.opts.Prepare()
	}
}

// ready waits for what the caller knows of the members (ReadOptions.Ready).
func (r *reader) ready() error {
	r.prepare()
	if r.opts.Ready == nil {
		return nil
	}
	return r.opts.Ready()
}

// fetched keeps a member whose attributes were read: whole, or by GUID
// when it is the same as stored.
func (r *reader) fetched(u User) {
	if r.opts.Same != nil && r.opts.Same(&u) {
		r.snap.Unchanged = append(r.snap.Unchanged, u.ObjectGUID)
	} else {
		r.snap.Fetched = append(r.snap.Fetched, u)
	}
	r.prog.Entries++
}

// domainRoot is where groups are looked for: the whole domain, since a
// group nested in the sync group may be anywhere in it.
func (c *Conn) domainRoot() string {
	if c.RootDSE.DefaultNamingContext != "" {
		return c.RootDSE.DefaultNamingContext
	}
	return c.Domain.BaseDN
}

// graphAttributes are read of each user and group to place it in the graph.
var graphAttributes = []string{"objectGUID", "objectClass", "distinguishedName", "memberOf"}

// full reads every member of the sync group's chain and the whole graph.
func (r *reader) full(ctx context.Context, g *Graph) error {
	c, snap := r.c, r.snap
	r.prepare() // Same is needed from the first page of members
	// The groups first: the roots and every group nested in either.
	var sb strings.Builder
	sb.WriteString("(&(objectClass=group)(|" + inChain(snap.SyncGroupDN))
	for guid, dn := range g.Groups {
		v, err := GUIDFilterValue(guid)
		if err != nil {
			return fmt.Errorf("group %s: %w", dn, err)
		}
		sb.WriteString("(objectGUID=" + v + ")")
	}
	if snap.PasswordGroupDN != "" {
		sb.WriteString(inChain(snap.PasswordGroupDN))
	}
	sb.WriteString("))")
	type group struct {
		guid     string
		memberOf []string
	}
	var groups []group
	err := c.pagedSearch(ctx, ldap.NewSearchRequest(c.domainRoot(), ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, sb.String(), graphAttributes, nil),
		func(e *ldap.Entry) error {
			guid, err := FormatGUID(e.GetRawAttributeValue("objectGUID"))
			if err != nil {
				return fmt.Errorf("entry %s: %w", e.DN, err)
			}
			g.Groups[guid] = entryDN(e)
			groups = append(groups, group{guid, e.GetAttributeValues("memberOf")})
			return nil
		}, r.page("groups"))
	if err != nil {
		return fmt.Errorf("read the groups nested in %s: %w", snap.SyncGroupDN, err)
	}
	ix := g.dnIndex()
	for _, gr := range groups {
		g.setParents(gr.guid, parentsOf(gr.memberOf, ix))
	}
	r.prog.Entries = 0
	if err := r.ready(); err != nil {
		return err
	}
	err = c.pagedSearch(ctx, ldap.NewSearchRequest(c.Domain.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		userFilter(inChain(snap.SyncGroupDN)), UserAttributes, nil),
		func(e *ldap.Entry) error {
			u, err := userFromEntry(e)
			if err != nil {
				return err
			}
			g.setParents(u.ObjectGUID, parentsOf(e.GetAttributeValues("memberOf"), ix))
			r.fetched(u)
			return nil
		}, r.page("members"))
	if err != nil {
		return fmt.Errorf("read members of %s: %w", snap.SyncGroupDN, err)
	}
	members, password := g.Members()
	r.finish(g, members, password)
	return nil
}

// finish keeps the password group's members among the sync group's (as
// g.Members gave them) and the graph in the snapshot.
func (r *reader) finish(g *Graph, members, password map[string]bool) {
	for guid := range password {
		if members[guid] {
			r.snap.PasswordGUIDs[guid] = true
		}
	}
	r.snap.Graph = g
}

// incremental reads what changed since the mark and updates g.
func (r *reader) incremental(ctx context.Context, g *Graph) error {
	c, snap := r.c, r.snap
	since := fmt.Sprintf("(uSNChanged>=%d)", r.opts.Previous.HighestUSN+1)
	base, err := ldap.ParseDN(c.Domain.BaseDN)
	if err != nil {
		return fmt.Errorf("base_dn %q: %w", c.Domain.BaseDN, err)
	}
	inBase := func(dn string) (bool, error) {
		d, err := ldap.ParseDN(dn)
		if err != nil {
			return false, needFull{fmt.Sprintf("the DN %q could not be read (%v)", dn, err)}
		}
		return base.EqualFold(d) || base.AncestorOfFold(d), nil
	}
	// An OU or container renamed or moved changes the DNs of everything
	// below it without changing their uSNChanged: that cannot be followed.
	err = c.pagedSearch(ctx, ldap.NewSearchRequest(c.domainRoot(), ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 1, 0, false,
		fmt.Sprintf("(&(|(objectClass=organizationalUnit)(objectClass=container))%s(uSNCreated<=%d))", since, r.opts.Previous.HighestUSN),
		[]string{"distinguishedName"}, nil),
		func(e *ldap.Entry) error {
			return needFull{"an OU or container was changed (renamed or moved?): " + entryDN(e)}
		}, r.page("changed OUs"))
	if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		return readErr(err, "read the OUs changed since USN %d", r.opts.Previous.HighestUSN)
	}
	touched := map[string]bool{}
	// The groups of the graph that changed: renamed, or their members.
	var dirty []string
	err = c.pagedSearch(ctx, ldap.NewSearchRequest(c.domainRoot(), ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(&(objectClass=group)"+since+")", []string{"objectGUID", "distinguishedName"}, nil),
		func(e *ldap.Entry) error {
			guid, err := FormatGUID(e.GetRawAttributeValue("objectGUID"))
			if err == nil && g.IsGroup(guid) {
				g.Groups[guid] = entryDN(e)
				dirty = append(dirty, guid)
			}
			return nil
		}, r.page("changed groups"))
	if err != nil {
		return fmt.Errorf("read the groups changed since USN %d: %w", r.opts.Previous.HighestUSN, err)
	}
	if len(dirty) > 0 {
		r.prepare()
	}
	// Groups changed: the stored memberships are needed below, and are
	// read from the store while the directory is asked what else changed
	// (the searches below do not touch g).
	var edges chan error
	if len(dirty) > 0 && r.opts.LoadEdges != nil {
		edges = make(chan error, 1)
		go func() { edges <- r.opts.LoadEdges(g, false) }()
		defer func() {
			if edges != nil {
				<-edges // never return with the store still being read into g
			}
		}()
	}
	// Users and groups deleted since: out of the graph (their groups'
	// member links may go without the group's uSNChanged moving, as with
	// AD's recycle bin).
	var deleted []string
	err = c.pagedSearch(ctx, ldap.NewSearchRequest(c.domainRoot(), ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(&(isDeleted=TRUE)(|(objectClass=user)(objectClass=group))"+since+")", []string{"objectGUID"},
		[]ldap.Control{ldap.NewControlString(OIDShowDeleted, true, "")}),
		func(e *ldap.Entry) error {
			if guid, err := FormatGUID(e.GetRawAttributeValue("objectGUID")); err == nil {
				deleted = append(deleted, guid)
				r.prepare()
			}
			return nil
		}, r.page("deleted"))
	if err != nil {
		return fmt.Errorf("read the objects deleted since USN %d: %w", r.opts.Previous.HighestUSN, err)
	}
	// The users that changed, wherever they are now (one that moved out of
	// the base DN is no longer a member): read now, placed below.
	var changedUsers []*ldap.Entry
	err = c.pagedSearch(ctx, ldap.NewSearchRequest(c.domainRoot(), ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		userFilter(since), UserAttributes, nil),
		func(e *ldap.Entry) error {
			changedUsers = append(changedUsers, e)
			if r.opts.Stored == nil || len(dirty) > 0 || len(deleted) > 0 || r.opts.LoadEdges == nil {
				r.prepare() // not a Partial read: every member as stored is needed
			}
			return nil
		}, r.page("changed users"))
	if err != nil {
		return fmt.Errorf("read the users changed since USN %d: %w", r.opts.Previous.HighestUSN, err)
	}
	if len(dirty) == 0 && len(deleted) == 0 && len(changedUsers) == 0 {
		// Nothing changed: the members and the graph are as stored, and
		// what the caller knows of them is not needed (a caller that takes
		// no Partial snapshot gets them listed).
		snap.Partial, snap.Graph = true, g
		if r.opts.Stored == nil {
			if err := r.ready(); err != nil {
				return err
			}
			snap.Complete(r.opts.Known, r.opts.KnownPassword)
		}
		return nil
	}
	if len(dirty) == 0 && len(deleted) == 0 && r.opts.LoadEdges != nil {
		// Only users changed.
		if r.opts.Stored != nil {
			return r.changedUsersOnly(g, changedUsers, inBase)
		}
		if err := r.ready(); err != nil {
			return err
		}
		if err := r.changedUsersOnly(g, changedUsers, inBase); err != nil {
			return err
		}
		snap.Complete(r.opts.Known, r.opts.KnownPassword)
		return nil
	}
	if err := r.ready(); err != nil {
		return err
	}
	switch {
	case edges != nil:
		err := <-edges
		edges = nil
		if err != nil {
			return err
		}
	case r.opts.LoadEdges != nil:
		if err := r.opts.LoadEdges(g, false); err != nil {
			return err
		}
	}
	var kidsOf map[string][]string
	for _, guid := range deleted {
		if g.IsGroup(guid) && guid != g.SyncRoot && guid != g.PasswordRoot {
			// A group deleted: out of the graph with its memberships.
			if kidsOf == nil {
				kidsOf = g.children()
			}
			for _, k := range kidsOf[guid] {
				g.setParents(k, without(g.Parents[k], guid))
				touched[k] = true
			}
			delete(g.Groups, guid)
		}
		if g.setParents(guid, nil) {
			touched[guid] = true
		}
	}
	// Their direct members, read as GUIDs (the member attribute under the
	// extended DN control) and compared with the graph's: only members
	// that joined are looked up, and a group newly nested is read in turn.
	ch := g.children()
	for len(dirty) > 0 {
		batch := dirty
		dirty = nil
		joined := map[string][]string{} // a node not in the graph -> the groups it joined
		var unknown []string
		dns := make([]string, len(batch))
		for i, grp := range batch {
			dns[i] = g.Groups[grp]
		}
		members, errs := c.membersOf(ctx, dns)
		for i, grp := range batch {
			kids := members[i]
			if err := readErr(errs[i], "read the members of %s", g.Groups[grp]); err != nil {
				return err
			}
			r.page("changed groups' members")()
			now := make(map[string]bool, len(kids))
			for _, k := range kids {
				now[k] = true
			}
			was := make(map[string]bool, len(ch[grp]))
			for _, k := range ch[grp] {
				was[k] = true
				if !now[k] {
					g.setParents(k, without(g.Parents[k], grp))
					touched[k] = true
				}
			}
			for _, k := range kids {
				switch {
				case was[k]:
				case g.IsGroup(k) || g.Parents[k] != nil:
					g.setParents(k, withParent(g.Parents[k], grp))
					touched[k] = true
				default:
					if joined[k] == nil {
						unknown = append(unknown, k)
					}
					joined[k] = append(joined[k], grp)
				}
			}
		}
		// What the newcomers are: groups join the graph (and are read in
		// turn), users under the base DN join it, anything else does not.
		err := c.searchGUIDs(ctx, c.domainRoot(), unknown, []string{"objectGUID", "objectClass", "distinguishedName"}, false,
			func(e *ldap.Entry) error {
				guid, err := FormatGUID(e.GetRawAttributeValue("objectGUID"))
				if err != nil {
					return fmt.Errorf("entry %s: %w", e.DN, err)
				}
				classes := e.GetAttributeValues("objectClass")
				if hasFold(classes, "group") {
					g.Groups[guid] = entryDN(e)
					dirty = append(dirty, guid)
				} else if !hasFold(classes, "user") || hasFold(classes, "computer") {
					return nil // not an account KeyDesk syncs
				} else if in, err := inBase(entryDN(e)); err != nil {
					return err
				} else if !in {
					return nil // outside the base DN, as the full read's search
				}
				ps := append([]string(nil), joined[guid]...)
				sort.Strings(ps)
				g.setParents(guid, ps)
				touched[guid] = true
				return nil
			}, r.page("changed groups' new members"))
		if err := readErr(err, "look up %d new members of changed groups", len(unknown)); err != nil {
			return err
		}
	}
	for _, n := range g.prune() {
		touched[n] = true
	}
	// The changed users, placed by their memberOf.
	ix := g.dnIndex()
	changed := map[string]*User{}
	for _, e := range changedUsers {
		u, ps, err := placeUser(e, ix, inBase)
		if err != nil {
			return err
		}
		if g.setParents(u.ObjectGUID, ps) {
			touched[u.ObjectGUID] = true
		}
		if len(ps) > 0 {
			changed[u.ObjectGUID] = &u
		}
		r.prog.Entries++
	}
	members, password := g.Members()
	var need []string
	for guid := range members {
		switch u := changed[guid]; {
		case u != nil:
			r.fetched(*u)
		case r.opts.Known[guid]:
			snap.Unchanged = append(snap.Unchanged, guid)
		default:
			// A member by a group's change whose own entry did not change.
			need = append(need, guid)
		}
	}
	sort.Strings(need)
	found := make(map[string]bool, len(need))
	err = c.searchGUIDs(ctx, c.Domain.BaseDN, need, UserAttributes, false, func(e *ldap.Entry) error {
		u, err := userFromEntry(e)
		if err != nil {
			return err
		}
		found[u.ObjectGUID] = true
		r.fetched(u)
		return nil
	}, r.page("new members"))
	if err != nil {
		return fmt.Errorf("read the new members of %s: %w", snap.SyncGroupDN, err)
	}
	// A member the search by GUID did not find is gone, or outside the
	// base DN: not a member.
	for _, guid := range need {
		if !found[guid] {
			g.setParents(guid, nil)
			touched[guid] = true
			delete(members, guid)
			delete(password, guid)
		}
	}
	sort.Slice(snap.Fetched, func(i, j int) bool { return snap.Fetched[i].ObjectGUID < snap.Fetched[j].ObjectGUID })
	sort.Strings(snap.Unchanged)
	for n := range touched {
		snap.GraphTouched = append(snap.GraphTouched, n)
	}
	sort.Strings(snap.GraphTouched)
	r.finish(g, members, password)
	return nil
}

// withParent adds grp to parents, which stay sorted.
func withParent(parents []string, grp string) []string {
	out := append(append([]string(nil), parents...), grp)
	sort.Strings(out)
	return out
}

// parallelReads is how many groups' members are read at once, over one
// connection: a sync that follows random changes re-reads dozens of groups,
// and one at a time it waits for each round trip (and for the DC to answer
// each) in turn. AD answers several requests of a connection at once.
const parallelReads = 4

// membersOf reads the direct members of each group (memberGUIDs), a few
// at a time; out[i] and errs[i] are dns[i]'s.
func (c *Conn) membersOf(ctx context.Context, dns []string) (out [][]string, errs []error) {
	out, errs = make([][]string, len(dns)), make([]error, len(dns))
	sem := make(chan struct{}, parallelReads)
	var wg sync.WaitGroup
	for i, dn := range dns {
		if ctx.Err() != nil {
			errs[i] = ctx.Err()
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i], errs[i] = c.memberGUIDs(ctx, dn)
		}()
	}
	wg.Wait()
	return out, errs
}

// memberGUIDs reads the direct members of the group at dn as objectGUIDs:
// its member attribute under the extended DN control, in ranges as AD
// gives a large one (member;range=0-1499, then from 1500 on).
func (c *Conn) memberGUIDs(ctx context.Context, dn string) ([]string, error) {
	var out []string
	for lo := 0; ; {
		attr := "member"
		if lo > 0 {
			attr = fmt.Sprintf("member;range=%d-*", lo)
		}
		res, err := c.l.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false, "(objectClass=*)",
			[]string{attr}, []ldap.Control{ldap.NewControlString(OIDExtendedDN, false, "")}))
		if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
			return nil, nil // deleted since: no members
		}
		if err != nil {
			return nil, ctxErr(ctx, err)
		}
		if len(res.Entries) == 0 {
			return out, nil
		}
		end := "*"
		var vals []string
		for _, a := range res.Entries[0].Attributes {
			name := strings.ToLower(a.Name)
			if name == "member" {
				vals = a.Values
			} else if r, ok := strings.CutPrefix(name, "member;range="); ok {
				vals = a.Values
				_, end, _ = strings.Cut(r, "-")
			}
		}
		for _, v := range vals {
			guid, err := extendedDNGUID(v)
			if err != nil {
				// The DC ignored the (non-critical) control.
				return nil, needFull{"the DC does not give the members' GUIDs (extended DN control): " + err.Error()}
			}
			out = append(out, guid)
		}
		if end == "*" {
			return out, nil
		}
		hi, err := strconv.Atoi(end)
		if err != nil || hi < lo {
			return nil, fmt.Errorf("the DC gave the member range %q after %d", end, lo)
		}
		lo = hi + 1
	}
}

// extendedDNGUID reads the objectGUID of an extended DN value,
// <GUID=hex>;<SID=hex>;DN.
func extendedDNGUID(v string) (string, error) {
	rest, ok := strings.CutPrefix(v, "<GUID=")
	hexGUID, _, ok2 := strings.Cut(rest, ">")
	if !ok || !ok2 {
		return "", fmt.Errorf("member value %q is not in the extended DN form <GUID=...>;DN", v)
	}
	var raw [16]byte
	if len(hexGUID) != 2*len(raw) {
		return "", fmt.Errorf("member value %q: its GUID is not 32 hex digits", v)
	}
	if _, err := hex.Decode(raw[:], []byte(hexGUID)); err != nil {
		return "", fmt.Errorf("member value %q: its GUID is not hex: %w", v, err)
	}
	return FormatGUID(raw[:])
}

func without(xs []string, x string) []string {
	var out []string
	for _, v := range xs {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}

func hasFold(xs []string, x string) bool {
	for _, v := range xs {
		if strings.EqualFold(v, x) {
			return true
		}
	}
	return false
}

// entryDN is the entry's distinguishedName as the DC spells it.
func entryDN(e *ldap.Entry) string {
	if dn := e.GetAttributeValue("distinguishedName"); dn != "" {
		return dn
	}
	return e.DN
}

// fullReason says why a sync must read everything ("" = an incremental
// read is valid): the mark is only meaningful on the DC and database
// instance that issued it.
func fullReason(prev *Mark, rd RootDSE, forced bool) string {
	switch {
	case forced:
		return "requested"
	case prev == nil || prev.HighestUSN == 0:
		return "first sync"
	case prev.DSADN != rd.DSServiceName:
		return "another domain controller answered"
	case prev.InvocationID != rd.InvocationID || rd.InvocationID == "":
		return "the domain controller's invocationId changed (restored?)"
	case rd.HighestCommittedUSN < prev.HighestUSN:
		return "the domain controller's USN went back"
	}
	return ""
}

// searchGUIDs looks objects up by GUID, guidBatch per search, anywhere in the
// domain; with deleted set, tombstones are included.
func (c *Conn) searchGUIDs(ctx context.Context, base string, guids []string, attrs []string, deleted bool, fn func(*ldap.Entry) error, onPage func()) error {
	var controls []ldap.Control
	if deleted {
		controls = append(controls, ldap.NewControlString(OIDShowDeleted, true, ""))
	}
	for start := 0; start < len(guids); start += guidBatch {
		end := min(start+guidBatch, len(guids))
		var sb strings.Builder
		sb.WriteString("(|")
		for _, g := range guids[start:end] {
			v, err := GUIDFilterValue(g)
			if err != nil {
				return err
			}
			sb.WriteString("(objectGUID=" + v + ")")
		}
		sb.WriteString(")")
		req := ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, sb.String(), attrs, append([]ldap.Control(nil), controls...))
		if err := c.pagedSearch(ctx, req, fn, onPage); err != nil {
			return err
		}
	}
	return nil
}

// Classify finds out why accounts are no longer members: "deleted" when the
// object is a tombstone or gone, "left-group" when it still exists. It reads
// guidBatch accounts per search.
func (c *Conn) Classify(ctx context.Context, guids []string) (map[string]string, error) {
	out := make(map[string]string, len(guids))
	for _, g := range guids {
		out[g] = ReasonDeleted
	}
	err := c.searchGUIDs(ctx, c.domainRoot(), guids, []string{"objectGUID", "isDeleted"}, true, func(e *ldap.Entry) error {
		guid, err := FormatGUID(e.GetRawAttributeValue("objectGUID"))
		if err != nil {
			return nil
		}
		if strings.EqualFold(e.GetAttributeValue("isDeleted"), "TRUE") {
			out[guid] = ReasonDeleted
		} else {
			out[guid] = ReasonLeftGroup
		}
		return nil
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("look up %d former members: %w", len(guids), err)
	}
	return out, nil
}
