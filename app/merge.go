package app

import (
	"sort"
	"strings"
	"time"

	"keydesk/ldapsync"
	"keydesk/store"
)

// NormalizeEmail is the merge key of employees: trimmed and case-folded.
func NormalizeEmail(s string) string {
	return strings.ToLower(strings.TrimSpace(s))
}

// mergeState is the whole employee/account picture loaded inside the write
// transaction; the merge works on it in memory and marks what to write.
type mergeState struct {
	order        []string // domain order of the configuration
	employees    map[int64]*store.Employee
	byEmail      map[string]*store.Employee
	accounts     map[string]*store.Account // domain|guid
	byEmployee   map[int64][]*store.Account
	dirtyEmp     map[int64]bool
	emailChanged map[int64]bool
	newEmps      []*store.Employee // not yet inserted; ID < 0 until then
	dirtyAcc     map[*store.Account]bool
	newAccs      []*store.Account
	nextTempID   int64
	// removed are the existing employees this merge turned from active to
	// removed (their keys are deactivated).
	removed []int64
}

func accountKey(domain, guid string) string { return strings.ToLower(domain) + "|" + guid }

func newMergeState(order []string, emps []store.Employee, accs []store.Account) *mergeState {
	ms := &mergeState{
		order:        order,
		employees:    make(map[int64]*store.Employee, len(emps)),
		byEmail:      make(map[string]*store.Employee, len(emps)),
		accounts:     make(map[string]*store.Account, len(accs)),
		byEmployee:   make(map[int64][]*store.Account, len(emps)),
		dirtyEmp:     map[int64]bool{},
		emailChanged: map[int64]bool{},
		dirtyAcc:     map[*store.Account]bool{},
		nextTempID:   -1,
	}
	for i := range emps {
		e := &emps[i]
		ms.employees[e.ID] = e
		if e.EmailNorm != "" {
			ms.byEmail[e.EmailNorm] = e
		}
	}
	for i := range accs {
		a := &accs[i]
		ms.accounts[accountKey(a.Domain, a.ObjectGUID)] = a
		ms.byEmployee[a.EmployeeID] = append(ms.byEmployee[a.EmployeeID], a)
	}
	return ms
}

func (ms *mergeState) newEmployee(emailNorm, email string) *store.Employee {
	e := &store.Employee{ID: ms.nextTempID, EmailNorm: emailNorm, Email: email, Status: store.StatusActive, Source: store.SourceAD}
	ms.nextTempID--
	ms.employees[e.ID] = e
	if emailNorm != "" {
		ms.byEmail[emailNorm] = e
	}
	ms.newEmps = append(ms.newEmps, e)
	return e
}

func (ms *mergeState) attach(a *store.Account, e *store.Employee) {
	if a.EmployeeID != 0 {
		old := ms.byEmployee[a.EmployeeID]
		for i, x := range old {
			if x == a {
				ms.byEmployee[a.EmployeeID] = append(old[:i:i], old[i+1:]...)
				break
			}
		}
		ms.dirtyEmp[a.EmployeeID] = true
	}
	a.EmployeeID = e.ID
	ms.byEmployee[e.ID] = append(ms.byEmployee[e.ID], a)
	ms.dirtyEmp[e.ID] = true
	ms.dirtyAcc[a] = true
}

// place finds the employee an account with this email belongs to, creating
// or renaming one as needed; merged reports that the account joined an
// employee that already had someone's account (or was created by hand).
func (ms *mergeState) place(a *store.Account, mail string) (merged bool) {
	norm := NormalizeEmail(mail)
	var cur *store.Employee
	if a.EmployeeID != 0 {
		cur = ms.employees[a.EmployeeID]
	}
	if norm == "" {
		// No email: an employee of its own, never merged.
		if cur != nil && cur.EmailNorm == "" && len(ms.byEmployee[cur.ID]) == 1 {
			return false
		}
		ms.attach(a, ms.newEmployee("", ""))
		return false
	}
	if target := ms.byEmail[norm]; target != nil {
		if cur == target {
			return false
		}
		merged = len(ms.byEmployee[target.ID]) > 0 || target.Source == store.SourceManual
		if target.Source == store.SourceManual {
			target.Source = store.SourceAD // adopted by the AD account
		}
		ms.attach(a, target)
		return merged
	}
	if cur != nil && cur.Source == store.SourceAD && len(ms.byEmployee[cur.ID]) == 1 {
		// The account's email changed and it is the employee's only account:
		// the employee follows it.
		if cur.EmailNorm != "" {
			delete(ms.byEmail, cur.EmailNorm)
		}
		cur.EmailNorm, cur.Email = norm, strings.TrimSpace(mail)
		ms.byEmail[norm] = cur
		ms.dirtyEmp[cur.ID] = true
		ms.emailChanged[cur.ID] = true
		return false
	}
	ms.attach(a, ms.newEmployee(norm, strings.TrimSpace(mail)))
	return false
}

// domainRank orders domains as the configuration lists them.
func (ms *mergeState) domainRank(d string) int {
	for i, x := range ms.order {
		if strings.EqualFold(x, d) {
			return i
		}
	}
	return len(ms.order)
}

// refresh recomputes the derived fields of an employee from its accounts:
// status, and name, email spelling and department from the current member
// account of the first domain in configuration order.
func (ms *mergeState) refresh(e *store.Employee, now time.Time) {
	accs := append([]*store.Account(nil), ms.byEmployee[e.ID]...)
	if len(accs) == 0 {
		if e.Source == store.SourceAD && e.Status == store.StatusActive {
			e.Status, e.RemovedAt = store.StatusRemoved, &now
			ms.noteRemoved(e)
		}
		return
	}
	sort.SliceStable(accs, func(i, j int) bool {
		mi, mj := accs[i].LeftReason == "", accs[j].LeftReason == ""
		if mi != mj {
			return mi
		}
		ri, rj := ms.domainRank(accs[i].Domain), ms.domainRank(accs[j].Domain)
		if ri != rj {
			return ri < rj
		}
		return accs[i].ID < accs[j].ID
	})
	first := func(get func(*store.Account) string) string {
		for _, a := range accs {
			if v := strings.TrimSpace(get(a)); v != "" {
				return v
			}
		}
		return ""
	}
	e.DisplayName = first(accountName)
	e.Department = first(func(a *store.Account) string { return a.Department })
	if e.EmailNorm != "" {
		for _, a := range accs {
			if NormalizeEmail(a.Mail) == e.EmailNorm {
				e.Email = strings.TrimSpace(a.Mail)
				break
			}
		}
	}
	if accs[0].LeftReason == "" {
		e.Status, e.RemovedAt = store.StatusActive, nil
	} else if e.Status != store.StatusRemoved {
		e.Status, e.RemovedAt = store.StatusRemoved, &now
		ms.noteRemoved(e)
	}
}

func (ms *mergeState) noteRemoved(e *store.Employee) {
	if e.ID > 0 {
		ms.removed = append(ms.removed, e.ID)
	}
}

func accountName(a *store.Account) string {
	if a.DisplayName != "" {
		return a.DisplayName
	}
	if n := strings.TrimSpace(a.GivenName + " " + a.SN); n != "" {
		return n
	}
	return a.SAMAccountName
}

// fill copies what AD says into the account and reports whether anything a
// person would see changed.
func fill(a *store.Account, u *ldapsync.User) bool {
	before := *a
	a.ObjectSID = u.ObjectSID
	a.SAMAccountName = u.SAMAccountName
	a.UPN = u.UserPrincipalName
	a.Mail = u.Mail
	a.GivenName = u.GivenName
	a.SN = u.SN
	a.DisplayName = u.DisplayName
	a.Department = u.Department
	a.Title = u.Title
	a.Company = u.Company
	a.Telephone = u.Telephone
	a.DN = u.DN
	a.Enabled = !u.Disabled
	a.PwdLastSet = u.PwdLastSet
	a.USNChanged = u.USNChanged
	return before.ObjectSID != a.ObjectSID || before.SAMAccountName != a.SAMAccountName ||
		before.UPN != a.UPN || before.Mail != a.Mail || before.GivenName != a.GivenName ||
		before.SN != a.SN || before.DisplayName != a.DisplayName || before.Department != a.Department ||
		before.Title != a.Title || before.Company != a.Company || before.Telephone != a.Telephone ||
		before.DN != a.DN || before.Enabled != a.Enabled || !sameTime(before.PwdLastSet, a.PwdLastSet)
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(*b)
}

// domainPlan is the outcome of merging one domain's snapshot.
type domainPlan struct {
	Added, Updated, Merged, Removed, Unchanged int
	Held                                       []store.HeldRemoval
	RemovedGUIDs                               []string
}

// guard is the accident guard's setting.
type guard struct {
	share   float64
	minimum int
	allow   bool
}

// mergeDomain applies one domain's snapshot to the state. gone gives the
// reason for every stored member that is no longer in the group.
//
// The state may hold only the accounts the snapshot changes (and those of
// their employees): activeBefore is the domain's current members before
// the sync, counted by the caller.
func (ms *mergeState) mergeDomain(domain string, snap *ldapsync.Snapshot, gone map[string]string, g guard, now time.Time, activeBefore int) domainPlan {
	var p domainPlan
	seen := make(map[string]bool, snap.MemberCount())
	// Accounts disabled since the last sync: leavers like those that left
	// the group, decided with them by the accident guard below.
	var disabled []*store.Account
	for i := range snap.Fetched {
		u := &snap.Fetched[i]
		seen[u.ObjectGUID] = true
		key := accountKey(domain, u.ObjectGUID)
		a := ms.accounts[key]
		isNew := a == nil
		if isNew {
			a = &store.Account{Domain: domain, ObjectGUID: u.ObjectGUID, InSyncGroup: true}
			ms.accounts[key] = a
			ms.newAccs = append(ms.newAccs, a)
		}
		oldMail := NormalizeEmail(a.Mail)
		changed := fill(a, u)
		wasLeft := a.LeftReason
		a.InSyncGroup = true
		if u.Disabled {
			switch {
			case wasLeft == "" && !isNew:
				disabled = append(disabled, a)
			case a.LeftReason != store.LeftDisabled:
				a.LeftReason, a.LeftAt = store.LeftDisabled, &now
			}
		} else if a.LeftReason != "" {
			a.LeftReason, a.LeftAt = "", nil
		}
		rot := snap.PasswordGUIDs[u.ObjectGUID]
		if rot != a.PasswordRotation {
			a.PasswordRotation = rot
			changed = true
		}
		changed = changed || wasLeft != a.LeftReason
		merged := false
		if isNew || NormalizeEmail(u.Mail) != oldMail {
			merged = ms.place(a, u.Mail)
		}
		switch {
		case isNew:
			p.Added++
		case changed:
			p.Updated++
		default:
			p.Unchanged++
		}
		if merged {
			p.Merged++
		}
		if isNew || changed {
			ms.dirtyEmp[a.EmployeeID] = true
		}
		// Read whole, so not the same as stored (ReadOptions.Same): written
		// even when nothing a person sees changed (its uSNChanged, its
		// ADHash).
		ms.dirtyAcc[a] = true
	}
	for _, guid := range snap.Unchanged {
		seen[guid] = true
		a := ms.accounts[accountKey(domain, guid)]
		if a == nil {
			// Not read: nothing of it changes.
			p.Unchanged++
			continue
		}
		if !a.Enabled && a.LeftReason == "" {
			// Disabled, its removal held before: decided again below.
			disabled = append(disabled, a)
		}
		if rot := snap.PasswordGUIDs[guid]; rot != a.PasswordRotation {
			a.PasswordRotation = rot
			ms.dirtyAcc[a] = true
			p.Updated++
		} else {
			p.Unchanged++
		}
	}
	// Members that are no longer in the group (of a Partial snapshot,
	// only those it lists as having left: it does not list the others).
	var left map[string]bool
	if snap.Partial {
		left = make(map[string]bool, len(snap.Left))
		for _, guid := range snap.Left {
			left[guid] = true
		}
	}
	var leavers []*store.Account
	for _, a := range ms.accounts {
		if !strings.EqualFold(a.Domain, domain) || seen[a.ObjectGUID] || !a.InSyncGroup || snap.Partial && !left[a.ObjectGUID] {
			continue
		}
		leavers = append(leavers, a)
	}
	sort.Slice(leavers, func(i, j int) bool { return leavers[i].ObjectGUID < leavers[j].ObjectGUID })
	newlyLeft := len(disabled)
	for _, a := range leavers {
		if a.LeftReason == "" {
			newlyLeft++
		}
	}
	hold := !g.allow && newlyLeft >= g.minimum && float64(newlyLeft) > g.share*float64(activeBefore)
	sort.Slice(disabled, func(i, j int) bool { return disabled[i].ObjectGUID < disabled[j].ObjectGUID })
	for _, a := range disabled {
		if hold {
			p.Held = append(p.Held, store.HeldRemoval{Domain: domain, ObjectGUID: a.ObjectGUID, Reason: store.LeftDisabled, DetectedAt: now})
			continue
		}
		a.LeftReason, a.LeftAt = store.LeftDisabled, &now
		p.Removed++
		p.RemovedGUIDs = append(p.RemovedGUIDs, a.ObjectGUID)
		ms.dirtyAcc[a] = true
		ms.dirtyEmp[a.EmployeeID] = true
	}
	for _, a := range leavers {
		reason := store.LeftGroup
		if gone[a.ObjectGUID] == ldapsync.ReasonDeleted {
			reason = store.LeftDeleted
		}
		if hold && a.LeftReason == "" {
			p.Held = append(p.Held, store.HeldRemoval{Domain: domain, ObjectGUID: a.ObjectGUID, Reason: reason, DetectedAt: now})
			continue
		}
		if a.LeftReason == "" {
			p.Removed++
			p.RemovedGUIDs = append(p.RemovedGUIDs, a.ObjectGUID)
			a.LeftAt = &now
		}
		a.InSyncGroup = false
		if reason == store.LeftDeleted || a.LeftReason == "" {
			a.LeftReason = reason
		}
		a.PasswordRotation = false
		ms.dirtyAcc[a] = true
		ms.dirtyEmp[a.EmployeeID] = true
	}
	for id := range ms.dirtyEmp {
		if e := ms.employees[id]; e != nil {
			ms.refresh(e, now)
		}
	}
	return p
}
