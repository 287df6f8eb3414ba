package ldapsync

import (
	"context"
	"errors"
	"fmt"
	"strings"

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
	Phase   string // "membership", "attributes", "password group", "leavers"
	Pages   int    // pages read so far in all phases
	Entries int    // entries read so far in this phase
}

// ReadOptions steer ReadMembers.
type ReadOptions struct {
	// Previous is the mark of the last successful sync; nil forces a full read.
	Previous *Mark
	// Known are the GUIDs of the accounts stored as current members; only
	// they can be skipped by an incremental read.
	Known map[string]bool
	// Full forces a full read.
	Full bool
	// Progress, if set, is called after every page.
	Progress func(Progress)
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
	// full read).
	Fetched []User
	// Unchanged are the GUIDs of known members whose attributes were not
	// read because nothing changed since the mark.
	Unchanged []string
	// PasswordGUIDs are the members of the password group.
	PasswordGUIDs map[string]bool
	Pages         int
}

// MemberCount is the number of members of the sync group.
func (s *Snapshot) MemberCount() int { return len(s.Fetched) + len(s.Unchanged) }

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
	if looksLikeDN(nameOrDN) {
		res, err := c.l.Search(ldap.NewSearchRequest(nameOrDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
			"(objectClass=group)", []string{"distinguishedName"}, nil))
		if err != nil {
			if ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject) {
				return "", fmt.Errorf("group %s: %w: no object has this DN", nameOrDN, ErrGroupNotFound)
			}
			return "", fmt.Errorf("look up group %s: %w", nameOrDN, ctxErr(ctx, err))
		}
		if len(res.Entries) == 0 {
			return "", fmt.Errorf("group %s: %w: the object is not a group", nameOrDN, ErrGroupNotFound)
		}
		return res.Entries[0].DN, nil
	}
	v := ldap.EscapeFilter(nameOrDN)
	res, err := c.l.Search(ldap.NewSearchRequest(c.Domain.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 3, 0, false,
		"(&(objectClass=group)(|(cn="+v+")(sAMAccountName="+v+")))", []string{"distinguishedName"}, nil))
	if err != nil && !ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) {
		return "", fmt.Errorf("look up group %q under %s: %w", nameOrDN, c.Domain.BaseDN, ctxErr(ctx, err))
	}
	switch {
	case res == nil || len(res.Entries) == 0:
		return "", fmt.Errorf("group %q: %w under %s: create it in AD, or set the group's DN in the configuration", nameOrDN, ErrGroupNotFound, c.Domain.BaseDN)
	case len(res.Entries) > 1:
		return "", fmt.Errorf("group %q: %d groups have this name under %s (%s, %s): set the group's DN in the configuration", nameOrDN, len(res.Entries), c.Domain.BaseDN, res.Entries[0].DN, res.Entries[1].DN)
	}
	return res.Entries[0].DN, nil
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
// and of the password group. With a valid previous mark it reads membership
// as GUIDs only and fetches attributes just for members that changed since,
// plus newcomers.
func (c *Conn) ReadMembers(ctx context.Context, opts ReadOptions) (*Snapshot, error) {
	rd := c.RootDSE
	snap := &Snapshot{
		Server:        c.URL,
		Mark:          Mark{DSADN: rd.DSServiceName, InvocationID: rd.InvocationID, HighestUSN: rd.HighestCommittedUSN},
		PasswordGUIDs: map[string]bool{},
	}
	if reason := fullReason(opts.Previous, rd, opts.Full); reason != "" {
		snap.Full, snap.FullReason = true, reason
	}
	var err error
	if snap.SyncGroupDN, err = c.FindGroup(ctx, c.Domain.SyncGroup); err != nil {
		return nil, fmt.Errorf("find sync group: %w", err)
	}
	prog := Progress{}
	report := func(phase string) func() {
		return func() {
			prog.Pages++
			snap.Pages = prog.Pages
			if opts.Progress != nil {
				p := prog
				p.Phase = phase
				opts.Progress(p)
			}
		}
	}
	// fetch keeps a member whose attributes were read.
	fetch := func(e *ldap.Entry) error {
		u, err := userFromEntry(e)
		if err != nil {
			return err
		}
		snap.Fetched = append(snap.Fetched, u)
		prog.Entries++
		return nil
	}
	filter := userFilter(inChain(snap.SyncGroupDN))
	base := c.Domain.BaseDN
	if snap.Full {
		prog.Entries = 0
		err := c.pagedSearch(ctx, ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, filter, UserAttributes, nil),
			fetch, report("members"))
		if err != nil {
			return nil, fmt.Errorf("read members of %s: %w", snap.SyncGroupDN, err)
		}
	} else {
		var need []string
		err := c.pagedSearch(ctx, ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, filter, membershipAttributes, nil),
			func(e *ldap.Entry) error {
				guid, err := FormatGUID(e.GetRawAttributeValue("objectGUID"))
				if err != nil {
					return fmt.Errorf("entry %s: %w", e.DN, err)
				}
				// A member whose uSNChanged cannot be read is fetched as
				// changed: reading too much is safe, missing a change is not.
				usn, err := ParseUSN(e.GetAttributeValue("uSNChanged"))
				if err != nil || usn > opts.Previous.HighestUSN || !opts.Known[guid] {
					need = append(need, guid)
				} else {
					snap.Unchanged = append(snap.Unchanged, guid)
				}
				prog.Entries++
				return nil
			}, report("membership"))
		if err != nil {
			return nil, fmt.Errorf("read membership of %s: %w", snap.SyncGroupDN, err)
		}
		prog.Entries = 0
		err = c.searchGUIDs(ctx, need, UserAttributes, false, fetch, report("attributes"))
		if err != nil {
			return nil, fmt.Errorf("read changed members of %s: %w", snap.SyncGroupDN, err)
		}
	}

	switch dn, err := c.FindGroup(ctx, c.Domain.PasswordGroup); {
	case errors.Is(err, ErrGroupNotFound):
		// No password group: nobody gets automatic rotation.
	case err != nil:
		return nil, fmt.Errorf("find password group: %w", err)
	default:
		snap.PasswordGroupDN = dn
		prog.Entries = 0
		err := c.pagedSearch(ctx, ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
			userFilter(inChain(dn)), []string{"objectGUID"}, nil),
			func(e *ldap.Entry) error {
				if guid, err := FormatGUID(e.GetRawAttributeValue("objectGUID")); err == nil {
					snap.PasswordGUIDs[guid] = true
				}
				prog.Entries++
				return nil
			}, report("password group"))
		if err != nil {
			return nil, fmt.Errorf("read members of %s: %w", dn, err)
		}
	}
	return snap, nil
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
func (c *Conn) searchGUIDs(ctx context.Context, guids []string, attrs []string, deleted bool, fn func(*ldap.Entry) error, onPage func()) error {
	base := c.Domain.BaseDN
	var controls []ldap.Control
	if deleted {
		if c.RootDSE.DefaultNamingContext != "" {
			base = c.RootDSE.DefaultNamingContext
		}
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
	err := c.searchGUIDs(ctx, guids, []string{"objectGUID", "isDeleted"}, true, func(e *ldap.Entry) error {
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
