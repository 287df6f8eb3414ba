package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"keydesk/config"
	"keydesk/keys"
	"keydesk/ldapsync"
	"keydesk/store"
)

// ErrSyncRunning is returned when a domain is already being synced.
var ErrSyncRunning = errors.New("a sync of this domain is already running")

// SyncRequest asks for a sync of some or all domains.
type SyncRequest struct {
	Actor   Actor
	Domains []string // empty = all, in configuration order
	Full    bool     // ignore the high-water mark
	// AllowRemovals applies removals that the accident guard would hold.
	AllowRemovals bool
	// Progress, if set, is called from the domain's goroutine as pages arrive.
	Progress func(domain string, p ldapsync.Progress)
	// Trigger says who started the sync, for the events ("manual" when empty).
	Trigger string
}

// DomainSummary is the result of syncing one domain.
type DomainSummary struct {
	Domain           string `json:"domain"`
	OK               bool   `json:"ok"`
	Error            string `json:"error,omitempty"`
	Hint             string `json:"hint,omitempty"`
	Server           string `json:"server,omitempty"`
	Mode             string `json:"mode,omitempty"` // "full" or "incremental"
	FullReason       string `json:"full_reason,omitempty"`
	Members          int    `json:"members"`
	Fetched          int    `json:"fetched"` // members whose attributes were read
	Added            int    `json:"added"`
	Updated          int    `json:"updated"`
	Merged           int    `json:"merged"`
	Removed          int    `json:"removed"`
	Held             int    `json:"held"`
	Unchanged        int    `json:"unchanged"`
	PasswordRotation int    `json:"password_rotation"`
	KeysDeactivated  int    `json:"keys_deactivated"`
	Invited          int    `json:"invited"` // newly imported people sent an invitation
	// Drift counts the differences a periodic full read found between the
	// incremental state and the directory (0: none; it was applied).
	Drift      int   `json:"drift,omitempty"`
	Pages      int   `json:"pages"`
	DurationMS int64 `json:"duration_ms"`
	// ReadMS is the time spent reading the directory (and the state the
	// read compares with); WriteMS, merging and writing what it found.
	ReadMS   int64         `json:"read_ms"`
	WriteMS  int64         `json:"write_ms"`
	Duration time.Duration `json:"-"`
	Err      error         `json:"-"`
}

// SyncReport is the result of a sync of several domains.
type SyncReport struct {
	Domains []DomainSummary `json:"domains"`
}

// Failed lists the domains that failed.
func (r SyncReport) Failed() []DomainSummary {
	var out []DomainSummary
	for _, d := range r.Domains {
		if !d.OK {
			out = append(out, d)
		}
	}
	return out
}

// Sync syncs the requested domains concurrently. One domain failing does not
// stop the others; each domain's result is in the report. The error is
// non-nil only when the request itself is wrong (unknown domain, no right).
func (s *Service) Sync(ctx context.Context, req SyncRequest) (SyncReport, error) {
	target := "domains:all"
	if len(req.Domains) > 0 {
		target = "domain:" + strings.Join(req.Domains, ",")
	}
	if err := s.authorize(ctx, req.Actor, PermSync, target); err != nil {
		return SyncReport{}, err
	}
	if req.AllowRemovals {
		if err := s.authorize(ctx, req.Actor, PermRemovalsApply, target); err != nil {
			return SyncReport{}, err
		}
	}
	domains, err := s.cfg.Select(req.Domains)
	if err != nil {
		return SyncReport{}, err
	}
	if len(domains) == 0 {
		return SyncReport{}, fmt.Errorf("no domains are configured in %s: add a [[domain]] section (see the README)", s.cfg.Path)
	}
	rep := SyncReport{Domains: make([]DomainSummary, len(domains))}
	var wg sync.WaitGroup
	for i, d := range domains {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep.Domains[i] = s.syncDomain(ctx, d, req)
		}()
	}
	wg.Wait()
	return rep, nil
}

func (s *Service) syncDomain(ctx context.Context, d config.Domain, req SyncRequest) DomainSummary {
	start := s.now()
	sum := DomainSummary{Domain: d.Name}
	finish := func(err error) DomainSummary {
		sum.Duration = s.now().Sub(start)
		sum.DurationMS = sum.Duration.Milliseconds()
		if err != nil {
			sum.OK, sum.Err, sum.Error, sum.Hint = false, err, err.Error(), ldapsync.Explain(err)
			s.log.Warn("sync failed", "domain", d.Name, "err", err)
			if rerr := s.recordFailure(context.WithoutCancel(ctx), d.Name, req.Actor, sum); rerr != nil {
				s.log.Error("record sync failure", "domain", d.Name, "err", rerr)
			}
		} else {
			sum.OK = true
			if req.Trigger != "schedule" {
				// Synced by a person: the periodic sync counts from now.
				select {
				case s.resyncCh(d.Name) <- struct{}{}:
				default:
				}
			}
		}
		return sum
	}
	if !s.claim(d.Name) {
		return finish(fmt.Errorf("sync %s: %w", d.Name, ErrSyncRunning))
	}
	trigger := req.Trigger
	if trigger == "" {
		trigger = "manual"
	}
	s.publish(SyncStarted{Domain: d.Name, Trigger: trigger, At: start})
	defer func() {
		// Released first: a reload these events cause sees the domain idle.
		s.release(d.Name)
		s.publish(SyncFinished{Domain: d.Name, Summary: sum})
		s.publish(DataChanged{What: ChangedAll})
	}()
	userProgress := req.Progress
	req.Progress = func(domain string, p ldapsync.Progress) {
		s.publish(SyncProgressed{Domain: domain, Progress: p})
		if userProgress != nil {
			userProgress(domain, p)
		}
	}

	snap, gone, stored, err := s.readDomain(ctx, d, req)
	sum.ReadMS = s.now().Sub(start).Milliseconds()
	if err != nil {
		return finish(err)
	}
	sum.Server, sum.Fetched, sum.Pages = snap.Server, len(snap.Fetched), snap.Pages
	if !snap.Partial { // a Partial snapshot lists only what changed: writeDomain counts
		sum.Members, sum.PasswordRotation = snap.MemberCount(), len(snap.PasswordGUIDs)
	}
	sum.Mode = "incremental"
	if snap.Full {
		sum.Mode, sum.FullReason = "full", snap.FullReason
	}
	wrote := s.now()
	err = s.writeDomain(ctx, d, req, snap, gone, stored, &sum, start)
	sum.WriteMS = s.now().Sub(wrote).Milliseconds()
	if err != nil {
		return finish(fmt.Errorf("save sync of %s: %w", d.Name, err))
	}
	return finish(nil)
}

// readDomain does every directory read of a sync before anything is written.
// It returns the snapshot, why each member gone is gone, and the members
// as stored when the read began.
func (s *Service) readDomain(ctx context.Context, d config.Domain, req SyncRequest) (*ldapsync.Snapshot, map[string]string, map[string]store.Member, error) {
	pw, err := d.BindPassword()
	if err != nil {
		return nil, nil, nil, err
	}
	prev, err := s.st.SyncState(ctx, d.Name)
	if err != nil {
		return nil, nil, nil, err
	}
	// The members as stored (disabled ones too: re-enabling raises
	// uSNChanged) are read from the store once the read finds that
	// something changed (Prepare), while it goes on asking the directory
	// what; ReadMembers waits for them (Ready). A sync that finds nothing
	// changed does without them.
	var (
		stored          map[string]store.Member
		known, password = map[string]bool{}, map[string]bool{}
		loaded          = make(chan struct{})
		loadErr         error
		loading         bool
	)
	load := sync.OnceFunc(func() {
		loading = true
		go func() {
			defer close(loaded)
			if stored, loadErr = s.st.DomainMembers(ctx, d.Name); loadErr != nil {
				return
			}
			// Members whose leaving the guard holds are members as stored,
			// but no longer by the group graph: an incremental read that
			// finds nothing changed takes the members as known, so they
			// are not.
			held, err := s.st.HeldRemovals(ctx, d.Name)
			if err != nil {
				loadErr = err
				return
			}
			leaving := map[string]bool{}
			for _, h := range held {
				if h.Reason != store.LeftDisabled {
					leaving[h.ObjectGUID] = true
				}
			}
			for guid, m := range stored {
				if !leaving[guid] {
					known[guid] = true
				}
				if m.PasswordRotation {
					password[guid] = true
				}
			}
		}()
	})
	ready := func() error { load(); <-loaded; return loadErr }
	defer func() { // never return with the store still being read
		if loading {
			<-loaded
		}
	}()
	conn, err := ldapsync.Dial(ctx, d, pw)
	if err != nil {
		return nil, nil, nil, err
	}
	defer conn.Close()
	graph, edges, err := s.loadGraph(ctx, d.Name)
	if err != nil {
		return nil, nil, nil, err
	}
	opts := ldapsync.ReadOptions{Known: known, KnownPassword: password, Full: req.Full, Graph: graph, LoadEdges: edges, Same: func(u *ldapsync.User) bool {
		// A disabled member not yet marked as left is merged again (its
		// removal may be held, and then applied).
		m, ok := stored[u.ObjectGUID]
		return ok && m.ADHash == adHash(u) && !(u.Disabled && m.Current)
	}, Prepare: load, Ready: ready, Stored: func(guids []string) (err error) {
		// Only these users changed: only they are read from the store.
		stored, err = s.st.MembersByGUID(ctx, d.Name, guids)
		return err
	}}
	if prev.LastSuccessAt != nil {
		opts.Previous = &ldapsync.Mark{DSADN: prev.DSADN, InvocationID: prev.InvocationID, HighestUSN: prev.HighestUSN}
	}
	if req.Progress != nil {
		opts.Progress = func(p ldapsync.Progress) { req.Progress(d.Name, p) }
	}
	// Now and then a sync reads everything, and first what the incremental
	// state says, to report any drift between them.
	snap, err := conn.ReadMembers(ctx, opts)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("sync %s from %s: %w", d.Name, conn.URL, err)
	}
	periodic := !snap.Full && (prev.LastFullAt == nil || s.now().Sub(*prev.LastFullAt) >= s.cfg.Sync.FullReadEvery.Duration)
	if snap.Partial && !periodic {
		// Only some users changed, or none. Unless removals are held
		// (decided again by every sync), the other members as stored are
		// not needed: the changed ones that left are classified, and
		// writeDomain merges only the changes.
		held, err := s.st.HeldRemovals(ctx, d.Name)
		if err != nil {
			return nil, nil, nil, err
		}
		if len(held) == 0 {
			var left []string
			for _, guid := range snap.Left {
				if _, ok := stored[guid]; ok {
					left = append(left, guid)
				}
			}
			gone := map[string]string{}
			if len(left) > 0 {
				if gone, err = conn.Classify(ctx, left); err != nil {
					return nil, nil, nil, fmt.Errorf("sync %s from %s: %w", d.Name, conn.URL, err)
				}
			}
			return snap, gone, stored, nil
		}
	}
	if snap.Partial {
		if err := ready(); err != nil {
			return nil, nil, nil, err
		}
		snap.Complete(known, password)
	}
	if periodic {
		incremental := snap
		opts.Full, opts.FullReason, opts.Graph = true, "the periodic full read (sync.full_read_every)", nil
		if snap, err = conn.ReadMembers(ctx, opts); err != nil {
			return nil, nil, nil, fmt.Errorf("sync %s from %s: %w", d.Name, conn.URL, err)
		}
		snap.Drift = ldapsync.Drift(incremental, snap)
	}
	if err := ready(); err != nil { // ReadMembers waited for it already
		return nil, nil, nil, err
	}
	members := make(map[string]bool, snap.MemberCount())
	for _, u := range snap.Fetched {
		members[u.ObjectGUID] = true
	}
	for _, g := range snap.Unchanged {
		members[g] = true
	}
	var missing []string
	for guid := range stored {
		if !members[guid] {
			missing = append(missing, guid)
		}
	}
	sort.Strings(missing)
	gone := map[string]string{}
	if len(missing) > 0 {
		if gone, err = conn.Classify(ctx, missing); err != nil {
			return nil, nil, nil, fmt.Errorf("sync %s from %s: %w", d.Name, conn.URL, err)
		}
	}
	return snap, gone, stored, nil
}

// writeDomain merges the snapshot and writes it, the new mark and the audit
// entry in one transaction.
//
// stored are the members as readDomain found them (nil: read them here).
// Another sync that wrote since is refused below, so they are still right.
func (s *Service) writeDomain(ctx context.Context, d config.Domain, req SyncRequest, snap *ldapsync.Snapshot, gone map[string]string, stored map[string]store.Member, sum *DomainSummary, start time.Time) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return s.st.Update(ctx, func(tx *store.Tx) error {
		now := tx.Now()
		// Another KeyDesk process (a second console, a cron job) may have
		// synced this domain while this one was reading: its result is
		// newer, so this one writes nothing rather than go back in time.
		cur, err := tx.SyncState(ctx, d.Name)
		if err != nil {
			return err
		} else if cur.LastSuccessAt != nil && cur.LastSuccessAt.After(start) {
			return fmt.Errorf("%w: another sync of %s finished at %s while this one was reading; nothing was written", ErrSyncRunning, d.Name, cur.LastSuccessAt.Format(time.RFC3339))
		}
		activeBefore, err := tx.CountMembers(ctx, d.Name)
		if err != nil {
			return err
		}
		var (
			plan      domainPlan
			removed   []int64
			invitable []*store.Employee
		)
		if snap.Partial && snap.Changes() == 0 {
			// Nothing changed and no removal is held (readDomain): every
			// member stays as stored.
			var members int
			if members, sum.PasswordRotation, err = tx.MemberCounts(ctx, d.Name); err != nil {
				return err
			}
			plan.Unchanged = members
		} else {
			// The members a Partial snapshot does not list are unchanged.
			unlisted := 0
			if snap.Partial {
				if unlisted, _, err = tx.MemberCounts(ctx, d.Name); err != nil {
					return err
				}
				unlisted -= listedStored(snap, stored)
			}
			emps, accs, err := loadForMerge(ctx, tx, d.Name, snap, stored)
			if err != nil {
				return err
			}
			ms := newMergeState(s.cfg.DomainNames(), emps, accs)
			g := guard{share: s.cfg.Sync.RemovalGuardShare, minimum: s.cfg.Sync.RemovalGuardMinimum, allow: req.AllowRemovals}
			plan = ms.mergeDomain(d.Name, snap, gone, g, now, activeBefore)
			if err := ms.write(ctx, tx); err != nil {
				return err
			}
			if err := tx.ReplaceHeldRemovals(ctx, d.Name, plan.Held); err != nil {
				return err
			}
			removed, invitable = ms.removed, ms.invitable(d.Name)
			sort.Slice(removed, func(i, j int) bool { return removed[i] < removed[j] })
			if snap.Partial {
				plan.Unchanged += unlisted
				if _, sum.PasswordRotation, err = tx.MemberCounts(ctx, d.Name); err != nil {
					return err
				}
				// A leaver whose removal the guard holds is still in the
				// group as stored, but not a member by the directory (a
				// disabled one still is), as a full read counts them.
				for _, h := range plan.Held {
					if a := ms.accounts[accountKey(d.Name, h.ObjectGUID)]; h.Reason != store.LeftDisabled && a != nil && a.PasswordRotation {
						sum.PasswordRotation--
					}
				}
			}
		}
		if sum.KeysDeactivated, err = s.deactivateLeaversKeys(ctx, tx, req.Actor, removed, keys.ReasonLeftSyncGroup); err != nil {
			return err
		}
		// Members as the Domains pane counts them: the domain's accounts
		// that are current after this sync (held removals still are).
		sum.Members = activeBefore
		if !snap.Partial || snap.Changes() > 0 {
			if sum.Members, err = tx.CountMembers(ctx, d.Name); err != nil {
				return err
			}
		}
		invited, err := s.inviteNewlyImported(ctx, tx, req.Actor, d.Name, invitable)
		if err != nil {
			return err
		}
		sum.Invited = len(invited)
		sum.Added, sum.Updated, sum.Merged, sum.Removed, sum.Unchanged, sum.Held =
			plan.Added, plan.Updated, plan.Merged, plan.Removed, plan.Unchanged, len(plan.Held)
		sum.Duration = s.now().Sub(start)
		sum.DurationMS = sum.Duration.Milliseconds()
		sum.WriteMS = sum.DurationMS - sum.ReadMS // as far as the summary stored knows
		if err := putGraph(ctx, tx, d.Name, snap); err != nil {
			return err
		}
		lastFull := cur.LastFullAt
		if snap.Full {
			// On the service's clock, which the next sync compares it with.
			at := s.now()
			lastFull = &at
		}
		sum.Drift = len(snap.Drift)
		summaryJSON, _ := json.Marshal(sum)
		if err := tx.PutSyncState(ctx, store.SyncState{
			Domain: d.Name, DSADN: snap.Mark.DSADN, InvocationID: snap.Mark.InvocationID, HighestUSN: snap.Mark.HighestUSN,
			ServerURL: snap.Server, LastSuccessAt: &now, LastAttemptAt: &now, LastSummary: string(summaryJSON), LastFullAt: lastFull,
		}); err != nil {
			return err
		}
		details := map[string]any{
			"server": snap.Server, "mode": sum.Mode, "members": sum.Members,
			"added": sum.Added, "updated": sum.Updated, "merged": sum.Merged, "removed": sum.Removed,
			"held": sum.Held, "unchanged": sum.Unchanged, "allow_removals": req.AllowRemovals, "keys_deactivated": sum.KeysDeactivated, "invited": sum.Invited,
		}
		if sum.FullReason != "" {
			details["full_reason"] = sum.FullReason
		}
		if len(snap.Drift) > 0 {
			details["drift"] = capList(snap.Drift, 100)
			s.log.Warn("sync: the incremental state had drifted from the full read; the full read was applied", "domain", d.Name, "differences", len(snap.Drift))
		}
		if len(invited) > 0 {
			ids := make([]string, len(invited))
			for i, id := range invited {
				ids[i] = employeeTarget(id)
			}
			details["invited_employees"] = capList(ids, 100)
		}
		if len(plan.RemovedGUIDs) > 0 {
			details["removed_guids"] = capList(plan.RemovedGUIDs, 100)
		}
		return s.audit(ctx, tx, req.Actor, "sync", "domain:"+d.Name, store.OutcomeSuccess, details)
	})
}

func capList(xs []string, n int) []string {
	if len(xs) <= n {
		return xs
	}
	return append(append([]string(nil), xs[:n]...), fmt.Sprintf("... and %d more", len(xs)-n))
}

// recordFailure notes a failed sync in the domain's state and the audit log;
// the directory data stays as it was.
func (s *Service) recordFailure(ctx context.Context, domain string, a Actor, sum DomainSummary) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	return s.st.Update(ctx, func(tx *store.Tx) error {
		st, err := tx.SyncState(ctx, domain)
		if err != nil {
			return err
		}
		now := tx.Now()
		st.LastAttemptAt, st.LastError = &now, sum.Error
		if err := tx.PutSyncState(ctx, st); err != nil {
			return err
		}
		details := map[string]any{"error": sum.Error}
		if sum.Hint != "" {
			details["hint"] = sum.Hint
		}
		return s.audit(ctx, tx, a, "sync", "domain:"+domain, store.OutcomeFailure, details)
	})
}

// invitable are the employees (after write) that this merge brought into
// the domain or gave an email: the ones an invitation may be due to.
func (ms *mergeState) invitable(domain string) []*store.Employee {
	if len(ms.newAccs) == 0 && len(ms.emailChanged) == 0 {
		return nil
	}
	byID := make(map[int64]*store.Employee, len(ms.employees))
	for _, e := range ms.employees {
		byID[e.ID] = e
	}
	for _, e := range ms.newEmps {
		byID[e.ID] = e
	}
	seen := map[int64]bool{}
	var out []*store.Employee
	add := func(id int64) {
		if e := byID[id]; e != nil && id > 0 && !seen[id] {
			seen[id] = true
			out = append(out, e)
		}
	}
	for _, a := range ms.newAccs {
		if strings.EqualFold(a.Domain, domain) {
			add(a.EmployeeID)
		}
	}
	for id := range ms.emailChanged {
		add(id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// write stores what the merge changed: new employees first (so accounts can
// point at them), emails cleared before they move, then accounts.
func (ms *mergeState) write(ctx context.Context, tx *store.Tx) error {
	var clear []int64
	for id := range ms.emailChanged {
		if id > 0 {
			clear = append(clear, id)
		}
	}
	sort.Slice(clear, func(i, j int) bool { return clear[i] < clear[j] })
	if err := tx.ClearEmployeeEmails(ctx, clear); err != nil {
		return err
	}
	realID := map[int64]int64{}
	for _, e := range ms.newEmps {
		tmp := e.ID
		if err := tx.InsertEmployee(ctx, e); err != nil {
			return err
		}
		realID[tmp] = e.ID
	}
	ids := make([]int64, 0, len(ms.dirtyEmp))
	for id := range ms.dirtyEmp {
		if id > 0 {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		if err := tx.UpdateEmployee(ctx, ms.employees[id]); err != nil {
			return err
		}
	}
	fix := func(a *store.Account) {
		if a.EmployeeID < 0 {
			a.EmployeeID = realID[a.EmployeeID]
		}
	}
	isNew := make(map[*store.Account]bool, len(ms.newAccs))
	for _, a := range ms.newAccs {
		fix(a)
		isNew[a] = true
		if err := tx.InsertAccount(ctx, a); err != nil {
			return err
		}
	}
	dirty := make([]*store.Account, 0, len(ms.dirtyAcc))
	for a := range ms.dirtyAcc {
		if !isNew[a] {
			dirty = append(dirty, a)
		}
	}
	sort.Slice(dirty, func(i, j int) bool { return dirty[i].ID < dirty[j].ID })
	for _, a := range dirty {
		fix(a)
		if err := tx.UpdateAccount(ctx, a); err != nil {
			return err
		}
	}
	return nil
}

// loadGraph reads the domain's stored group graph (nil: none yet): its
// groups now, its memberships when the read asks for them (with nothing
// changed, it does not).
func (s *Service) loadGraph(ctx context.Context, domain string) (*ldapsync.Graph, func(*ldapsync.Graph, bool) error, error) {
	g := &ldapsync.Graph{Groups: map[string]string{}, Parents: map[string][]string{}}
	guids := map[string]string{} // each group's GUID, to share
	err := s.st.SyncGraphGroups(ctx, domain, func(gr store.GraphGroup) {
		g.Groups[gr.GUID] = gr.DN
		guids[gr.GUID] = gr.GUID
		switch gr.Root {
		case store.RootSync:
			g.SyncRoot = gr.GUID
		case store.RootPassword:
			g.PasswordRoot = gr.GUID
		case store.RootBoth:
			g.SyncRoot, g.PasswordRoot = gr.GUID, gr.GUID
		}
	})
	if err != nil || g.SyncRoot == "" {
		return nil, nil, err
	}
	edges := func(g *ldapsync.Graph, groupsOnly bool) error {
		return s.st.SyncGraphEdges(ctx, domain, groupsOnly, func(node, parent string) {
			// The parent's GUID string is shared with the group's: one
			// copy per group, not per membership.
			if guid, ok := guids[parent]; ok {
				parent = guid
			}
			g.Parents[node] = append(g.Parents[node], parent)
		})
	}
	return g, edges, nil
}

// putGraph stores the group graph the read left: all of it after a full
// read, the memberships that changed after an incremental one.
func putGraph(ctx context.Context, tx *store.Tx, domain string, snap *ldapsync.Snapshot) error {
	g := snap.Graph
	if g == nil {
		return nil
	}
	groups := make([]store.GraphGroup, 0, len(g.Groups))
	for guid, dn := range g.Groups {
		gr := store.GraphGroup{GUID: guid, DN: dn}
		switch {
		case guid == g.SyncRoot && guid == g.PasswordRoot:
			gr.Root = store.RootBoth
		case guid == g.SyncRoot:
			gr.Root = store.RootSync
		case guid == g.PasswordRoot:
			gr.Root = store.RootPassword
		}
		groups = append(groups, gr)
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i].GUID < groups[j].GUID })
	nodes := snap.GraphTouched
	if snap.Full {
		nodes = make([]string, 0, len(g.Parents))
		for n := range g.Parents {
			nodes = append(nodes, n)
		}
		sort.Strings(nodes)
	}
	return tx.PutSyncGraph(ctx, domain, groups, snap.Full, nodes, func(n string) []string { return g.Parents[n] })
}

// loadForMerge reads what merging the snapshot needs: only the employees
// and accounts around the accounts it changes (read, gone, or whose
// password rotation changes) and the employees with the emails read, so
// that a sync with little changed reads and holds little, full or not.
func loadForMerge(ctx context.Context, tx *store.Tx, domain string, snap *ldapsync.Snapshot, stored map[string]store.Member) ([]store.Employee, []store.Account, error) {
	if stored == nil {
		var err error
		if stored, err = tx.DomainMembers(ctx, domain); err != nil {
			return nil, nil, err
		}
	}
	guids := make([]string, 0, len(snap.Fetched))
	var emails []string
	seen := make(map[string]bool, snap.MemberCount())
	for _, u := range snap.Fetched {
		seen[u.ObjectGUID] = true
		guids = append(guids, u.ObjectGUID)
		if n := NormalizeEmail(u.Mail); n != "" {
			emails = append(emails, n)
		}
	}
	for _, guid := range snap.Unchanged {
		seen[guid] = true
		if m := stored[guid]; m.PasswordRotation != snap.PasswordGUIDs[guid] || !m.Enabled && m.Current {
			guids = append(guids, guid) // its rotation changes, or a held removal
		}
	}
	for guid := range stored {
		if !seen[guid] {
			guids = append(guids, guid) // a leaver
		}
	}
	sort.Strings(guids)
	return tx.LoadAround(ctx, domain, guids, emails)
}

// listedStored counts the users a Partial snapshot lists that were
// members as stored.
func listedStored(snap *ldapsync.Snapshot, stored map[string]store.Member) int {
	n := 0
	for _, u := range snap.Fetched {
		if _, ok := stored[u.ObjectGUID]; ok {
			n++
		}
	}
	for _, list := range [][]string{snap.Unchanged, snap.Left} {
		for _, guid := range list {
			if _, ok := stored[guid]; ok {
				n++
			}
		}
	}
	return n
}

// adHash is the ADHash an account would have with what AD says of u.
func adHash(u *ldapsync.User) string {
	var a store.Account
	fill(&a, u)
	return a.ADHash()
}
