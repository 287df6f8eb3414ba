package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"keydesk/config"
	"keydesk/internal/adtest"
	"keydesk/internal/builtinad"
	"keydesk/internal/dbtamper"
	"keydesk/internal/simtest"
	"keydesk/keys"
	"keydesk/keys/proto"
	"keydesk/ldapsync"
	"keydesk/store"

	"github.com/go-ldap/ldap/v3"
)

// directory is what the sync scenario needs of a domain controller; a real
// Samba DC (adtest) and the built-in directory (builtinad) both provide it,
// so that the same scenario runs against both and a difference is noticed.
type directory interface {
	AddUsers(ctx context.Context, us []adtest.User) ([]string, error)
	Group(ctx context.Context, name string) (string, error) // find or create
	AddOU(ctx context.Context, name, parentDN string) (string, error)
	AddMembers(ctx context.Context, groupDN string, memberDNs ...string) error
	RemoveMembers(ctx context.Context, groupDN string, memberDNs ...string) error
	Modify(ctx context.Context, dn string, replace map[string][]string) error
	Delete(ctx context.Context, dn string) error
	// Rename gives the object a new RDN in the same container
	// (errors.ErrUnsupported: the directory cannot rename).
	Rename(ctx context.Context, dn, rdn string) (string, error)
	Stop() error
	Restart(ctx context.Context) error
	Info() dirInfo
}

type dirInfo struct {
	LDAPSURL, LDAPURL, BaseDN, AdminUPN, AdminPassword, CAFile string
}

type sambaDir struct{ *adtest.DC }

func (d sambaDir) Group(ctx context.Context, name string) (string, error) {
	return d.AddGroup(ctx, name, "")
}
func (d sambaDir) Rename(ctx context.Context, dn, rdn string) (string, error) {
	c, err := d.Dial(ctx)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if err := c.ModifyDN(ldap.NewModifyDNRequest(dn, rdn, true, "")); err != nil {
		return "", fmt.Errorf("rename %s to %s: %w", dn, rdn, err)
	}
	_, parent, _ := strings.Cut(dn, ",") // the test's RDNs hold no comma
	return rdn + "," + parent, nil
}

func (d sambaDir) Info() dirInfo {
	return dirInfo{d.LDAPSURL, d.LDAPURL, d.BaseDN, d.AdminUPN, d.AdminPassword, d.CAFile}
}

type builtinDir struct{ *builtinad.Domain }

func (d builtinDir) AddUsers(ctx context.Context, us []adtest.User) ([]string, error) {
	bu := make([]builtinad.User, len(us))
	for i, u := range us {
		bu[i] = builtinad.User(u)
	}
	return d.Domain.AddUsers(ctx, bu)
}

// Group returns the built-in directory's KeyDesk groups, which always exist,
// and creates any other.
func (d builtinDir) Group(ctx context.Context, name string) (string, error) {
	switch name {
	case "Hideez Users Sync":
		return d.SyncGroupDN, nil
	case "Security Key Auto Password Change":
		return d.PasswordGroupDN, nil
	}
	return d.AddGroup(ctx, name, "")
}

// Rename: the built-in directory does not take renames.
func (d builtinDir) Rename(context.Context, string, string) (string, error) {
	return "", errors.ErrUnsupported
}

func (d builtinDir) Info() dirInfo {
	return dirInfo{d.LDAPSURL, d.LDAPURL, d.BaseDN, d.AdminUPN, d.AdminPassword, d.CAFile}
}

// adDomain is a directory seeded for the sync tests, with the DNs the tests
// change later.
type adDomain struct {
	dc      directory
	name    string
	syncDN  string
	pwDN    string
	dns     map[string]string // sam -> DN
	groups  map[string]string // the nested groups: "l1".."l3" -> DN
	bulkDNs []string
}

func (d *adDomain) configBlock(t testing.TB, pwEnv string, urls ...string) string {
	t.Helper()
	info := d.dc.Info()
	if len(urls) == 0 {
		urls = []string{info.LDAPSURL}
	}
	q := make([]string, len(urls))
	for i, u := range urls {
		q[i] = fmt.Sprintf("%q", u)
	}
	return fmt.Sprintf(`[[domain]]
name = %q
urls = [%s]
base_dn = %q
bind_dn = %q
bind_password_env = %q
ca_file = %q
page_size = 1000
connect_timeout = "3s"
timeout = "20s"

`, d.name, strings.Join(q, ", "), info.BaseDN, info.AdminUPN, pwEnv, info.CAFile)
}

// seedCorp builds the corp domain: nested groups three levels deep, users
// outside the group, a disabled user, users without email, two accounts with
// one email, a DN with a comma, non-ASCII names, an escape sequence in a
// display name, and bulk users for paging.
func seedCorp(ctx context.Context, t testing.TB, dc directory, bulk int) *adDomain {
	t.Helper()
	d := &adDomain{dc: dc, name: "corp", dns: map[string]string{}}
	must := func(dn string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatalf("seed corp: %v", err)
		}
		return dn
	}
	d.syncDN = must(dc.Group(ctx, "Hideez Users Sync"))
	d.pwDN = must(dc.Group(ctx, "Security Key Auto Password Change"))
	l1 := must(dc.Group(ctx, "Sync Level 1"))
	l2 := must(dc.Group(ctx, "Sync Level 2 (Sales)"))
	l3 := must(dc.Group(ctx, "Sync Level 3"))
	users := []adtest.User{
		{Sam: "alice", GivenName: "Alice", SN: "Adams", DisplayName: "Alice Adams", Mail: "Alice.Adams@Example.com", Extra: map[string][]string{"department": {"Finance"}}},
		{Sam: "bob", GivenName: "Bob", SN: "Brown", DisplayName: "Bob Brown", Mail: "bob@example.com"},
		{Sam: "carol", GivenName: "Carol", SN: "Deep", DisplayName: "Carol Deep", Mail: "carol@example.com"},
		{Sam: "dave", GivenName: "Dave", SN: "Off", DisplayName: "Dave Off", Mail: "dave@example.com", Disabled: true},
		{Sam: "eve", GivenName: "Eve", SN: "Outside", DisplayName: "Eve Outside", Mail: "eve@example.com"},
		{Sam: "nomail1", DisplayName: "No Mail One"},
		{Sam: "nomail2", DisplayName: "No Mail Two"},
		{Sam: "dup1", DisplayName: "Dup One", Mail: "shared@example.com"},
		{Sam: "dup2", DisplayName: "Dup Two", Mail: "Shared@Example.com"},
		{Sam: "asmith", GivenName: "Anna", SN: "Smith", CN: "Smith, Anna", DisplayName: "Smith, Anna", Mail: "anna.smith@example.com"},
		{Sam: "zoe", GivenName: "Zoë", SN: "Łukasiewicz", DisplayName: "Zoë Łukasiewicz 山田", Mail: "zoe@example.com"},
		{Sam: "evil", DisplayName: "Evil\x1b[2J\x1b[31mName", Mail: "evil@example.com"},
		{Sam: "frank", DisplayName: "Frank Gone", Mail: "frank@example.com"},
		{Sam: "gina", DisplayName: "Gina Moves", Mail: "gina@old.example.com"},
		{Sam: "hank", DisplayName: "Hank Changes", Mail: "hank@example.com", Extra: map[string][]string{"department": {"Ops"}}},
		{Sam: "ivan", DisplayName: "Ivan Later", Mail: "ivan@example.com"},
	}
	dns, err := dc.AddUsers(ctx, users)
	if err != nil {
		t.Fatalf("seed corp users: %v", err)
	}
	for i, u := range users {
		d.dns[u.Sam] = dns[i]
	}
	add := func(group string, members ...string) {
		t.Helper()
		if err := dc.AddMembers(ctx, group, members...); err != nil {
			t.Fatalf("seed corp membership: %v", err)
		}
	}
	add(d.syncDN, l1, d.dns["alice"], d.dns["bob"], d.dns["dave"], d.dns["nomail1"], d.dns["nomail2"], d.dns["dup1"], d.dns["dup2"],
		d.dns["asmith"], d.dns["zoe"], d.dns["evil"], d.dns["frank"], d.dns["gina"], d.dns["hank"])
	d.groups = map[string]string{"l1": l1, "l2": l2, "l3": l3}
	add(l1, l2)
	add(l2, l3)
	add(l3, d.dns["carol"])
	add(d.pwDN, d.dns["alice"], d.dns["carol"])

	if bulk > 0 {
		ou := must(dc.AddOU(ctx, "Bulk", ""))
		bu := make([]adtest.User, bulk)
		for i := range bu {
			bu[i] = adtest.User{Sam: fmt.Sprintf("bulk%05d", i), DisplayName: fmt.Sprintf("Bulk User %05d", i), Mail: fmt.Sprintf("bulk%05d@example.com", i), OU: ou, NoPassword: true}
		}
		if d.bulkDNs, err = dc.AddUsers(ctx, bu); err != nil {
			t.Fatalf("seed bulk users: %v", err)
		}
		add(d.syncDN, d.bulkDNs...)
	}
	return d
}

func seedBranch(ctx context.Context, t testing.TB, dc directory) *adDomain {
	t.Helper()
	d := &adDomain{dc: dc, name: "branch", dns: map[string]string{}}
	var err error
	if d.syncDN, err = dc.Group(ctx, "Hideez Users Sync"); err != nil {
		t.Fatal(err)
	}
	users := []adtest.User{
		{Sam: "aadams", DisplayName: "A. Adams (Branch)", Mail: "  alice.adams@EXAMPLE.COM", Extra: map[string][]string{"department": {"Branch Office"}}},
		{Sam: "walt", DisplayName: "Walt Branch", Mail: "walt@example.com"},
	}
	dns, err := dc.AddUsers(ctx, users)
	if err != nil {
		t.Fatal(err)
	}
	for i, u := range users {
		d.dns[u.Sam] = dns[i]
	}
	if err := dc.AddMembers(ctx, d.syncDN, dns...); err != nil {
		t.Fatal(err)
	}
	return d
}

// startDCs starts two DCs concurrently.
func startDCs(t *testing.T) (*adtest.DC, *adtest.DC) {
	t.Helper()
	adtest.Require(t)
	var corp, branch *adtest.DC
	var wg sync.WaitGroup
	var errs [2]error
	ctx := context.Background()
	wg.Add(2)
	go func() { defer wg.Done(); corp, errs[0] = adtest.Start(ctx, adtest.Options{Realm: "CORP.KEYDESK.TEST"}) }()
	go func() {
		defer wg.Done()
		branch, errs[1] = adtest.Start(ctx, adtest.Options{Realm: "BRANCH.KEYDESK.TEST"})
	}()
	wg.Wait()
	for _, dc := range []*adtest.DC{corp, branch} {
		if dc != nil {
			t.Cleanup(func() { dc.Close() })
		}
	}
	if err := errors.Join(errs[:]...); err != nil {
		t.Fatalf("start domain controllers: %v", err)
	}
	return corp, branch
}

func serviceFor(t testing.TB, cfgText string, dataDir string, opts ...Option) *Service {
	t.Helper()
	cfg, err := config.Parse(filepath.Join(dataDir, "keydesk.toml"), []byte(cfgText))
	if err != nil {
		t.Fatalf("configuration: %v", err)
	}
	st, err := store.Open(context.Background(), filepath.Join(dataDir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var mk keys.MasterKey
	rand.Read(mk[:])
	return New(cfg, st, append([]Option{WithMasterKey(mk), WithTrustedMaker(simtest.Maker(t).Cert())}, opts...)...)
}

func summaryOf(t *testing.T, rep SyncReport, domain string) DomainSummary {
	t.Helper()
	for _, d := range rep.Domains {
		if d.Domain == domain {
			return d
		}
	}
	t.Fatalf("no summary for %s in %+v", domain, rep)
	return DomainSummary{}
}

func mustSync(t testing.TB, s *Service, req SyncRequest) SyncReport {
	t.Helper()
	if req.Actor.Name == "" {
		req.Actor = testAdmin
	}
	rep, err := s.Sync(context.Background(), req)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	for _, d := range rep.Domains {
		if !d.OK {
			t.Fatalf("sync of %s failed: %s (hint: %s)", d.Domain, d.Error, d.Hint)
		}
	}
	return rep
}

func accountOf(e *EmployeeView, domain string) *AccountView {
	for i := range e.Accounts {
		if e.Accounts[i].Domain == domain {
			return &e.Accounts[i]
		}
	}
	return nil
}

func bySAM(t *testing.T, s *Service, sam string) *EmployeeView {
	t.Helper()
	for _, e := range employees(t, s) {
		for _, a := range e.Accounts {
			if a.SAMAccountName == sam {
				return &e
			}
		}
	}
	return nil
}

// TestSyncSamba runs the sync scenario against two real Samba AD domain
// controllers.
func TestSyncSamba(t *testing.T) {
	corp, branch := startDCs(t)
	syncScenario(t, sambaDir{corp}, sambaDir{branch})
}

// TestSyncBuiltin runs the same scenario against the built-in directory.
func TestSyncBuiltin(t *testing.T) {
	srv, err := builtinad.Start(context.Background(), builtinad.Options{Empty: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	syncScenario(t, builtinDir{srv.Domain("corp")}, builtinDir{srv.Domain("branch")})
}

func syncScenario(t *testing.T, corpDC, branchDC directory) {
	ctx := context.Background()
	const bulk = 2100
	start := time.Now()
	corp := seedCorp(ctx, t, corpDC, bulk)
	branch := seedBranch(ctx, t, branchDC)
	t.Logf("seeded corp (%d users) and branch in %s", bulk+16, time.Since(start).Round(time.Millisecond))

	t.Setenv("KD_TEST_CORP_PW", corpDC.Info().AdminPassword)
	t.Setenv("KD_TEST_BRANCH_PW", branchDC.Info().AdminPassword)
	// The first corp URL refuses connections: the sync must fail over.
	cfgText := corp.configBlock(t, "KD_TEST_CORP_PW", "ldaps://127.0.0.1:1", corpDC.Info().LDAPSURL) + branch.configBlock(t, "KD_TEST_BRANCH_PW")
	s := serviceFor(t, cfgText, t.TempDir())

	rep := mustSync(t, s, SyncRequest{})
	sc, sb := summaryOf(t, rep, "corp"), summaryOf(t, rep, "branch")
	wantCorpMembers := bulk + 14 // 13 direct users + carol through three nested groups
	// Dave's account is disabled: added, and at once not a current member
	// (the Domains pane counts members the same way).
	if sc.Mode != "full" || sc.Members != wantCorpMembers-1 || sc.Added != wantCorpMembers || sc.Pages < 3 || sc.Server != corpDC.Info().LDAPSURL {
		t.Errorf("corp summary %+v: want full, %d accounts added of which %d current members, at least 3 pages, server %s", sc, wantCorpMembers, wantCorpMembers-1, corpDC.Info().LDAPSURL)
	}
	// Alice joins across domains (whichever domain wrote second merged her)
	// and dup2 joins dup1 within corp.
	if sb.Members != 2 || sb.Merged+sc.Merged != 2 {
		t.Errorf("branch summary %+v / corp %+v: want 2 members and two merges (Alice, the shared email)", sb, sc)
	}

	t.Run("nested groups count, outsiders do not", func(t *testing.T) {
		if bySAM(t, s, "carol") == nil {
			t.Error("carol, a member through three nested groups, is missing")
		}
		if bySAM(t, s, "eve") != nil || bySAM(t, s, "ivan") != nil {
			t.Error("users outside the group were imported")
		}
	})
	t.Run("same email in both domains merged, corp wins", func(t *testing.T) {
		e := byEmail(t, s, "alice.adams@example.com")
		if e == nil || len(e.Accounts) != 2 || accountOf(e, "corp") == nil || accountOf(e, "branch") == nil {
			t.Fatalf("alice = %+v: want one employee with a corp and a branch account", e)
		}
		if e.DisplayName != "Alice Adams" || e.Department != "Finance" {
			t.Errorf("alice name %q dept %q: want corp's (first in configuration)", e.DisplayName, e.Department)
		}
		if !accountOf(e, "corp").PasswordRotation || accountOf(e, "branch").PasswordRotation {
			t.Errorf("alice rotation flags wrong: %+v", e.Accounts)
		}
		if c := bySAM(t, s, "carol"); !c.Accounts[0].PasswordRotation {
			t.Error("carol is in the password group but password_rotation is false")
		}
	})
	t.Run("disabled, no email, conflict, comma DN, non-ASCII", func(t *testing.T) {
		d := bySAM(t, s, "dave")
		if d == nil || d.Accounts[0].Enabled || d.Accounts[0].LeftReason == nil || *d.Accounts[0].LeftReason != "disabled" || d.Status != "removed" {
			t.Errorf("dave = %+v: want a disabled account marked left (disabled), employee removed", d)
		}
		for _, sam := range []string{"nomail1", "nomail2"} {
			if e := bySAM(t, s, sam); e == nil || e.Email != nil || !hasFlag(*e, "no-email") || len(e.Accounts) != 1 {
				t.Errorf("%s = %+v: want its own employee flagged no-email", sam, e)
			}
		}
		if e := byEmail(t, s, "shared@example.com"); e == nil || len(e.Accounts) != 2 || !hasFlag(*e, "conflict") {
			t.Errorf("shared email = %+v: want two corp accounts flagged conflict", e)
		}
		if e := bySAM(t, s, "asmith"); e == nil || e.DisplayName != "Smith, Anna" || !strings.HasPrefix(e.Accounts[0].DN, `CN=Smith\, Anna,`) {
			t.Errorf("asmith = %+v: want the comma kept in name and DN", e)
		}
		if e := bySAM(t, s, "zoe"); e == nil || e.DisplayName != "Zoë Łukasiewicz 山田" {
			t.Errorf("zoe = %+v: want the non-ASCII name exactly", e)
		}
		if e := bySAM(t, s, "evil"); e == nil || e.DisplayName != "Evil\x1b[2J\x1b[31mName" {
			t.Errorf("evil = %+v: the database keeps the name as AD has it (sanitised only for display)", e)
		}
		a := bySAM(t, s, "alice").Accounts[0]
		if _, err := ldapsync.ParseGUID(a.ObjectGUID); err != nil || !strings.HasPrefix(a.ObjectSID, "S-1-5-21-") || a.PwdLastSet == nil {
			t.Errorf("alice's account %+v: want a canonical GUID, a SID and pwdLastSet", a)
		}
	})

	// Bob gets a key and activates it; he leaves the group below.
	bobKey := simtest.NewKey(t, "SIM-BOB")
	plugSim(t, s, bobKey)
	bobCode, err := s.AssignKey(ctx, testAdmin, "SIM-BOB", "bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.ActivateKey(ctx, testAdmin, "SIM-BOB", bobCode.String()); err != nil {
		t.Fatal(err)
	}
	s.KeyDisconnected("sim:SIM-BOB")

	// Changes in the directory, then an incremental sync.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(corpDC.RemoveMembers(ctx, corp.syncDN, corp.dns["bob"]))
	must(corpDC.Delete(ctx, corp.dns["frank"]))
	must(corpDC.Modify(ctx, corp.dns["gina"], map[string][]string{"mail": {"gina@new.example.com"}}))
	must(corpDC.Modify(ctx, corp.dns["hank"], map[string][]string{"department": {"Research"}, "title": {"Lead"}}))
	must(corpDC.AddMembers(ctx, corp.syncDN, corp.dns["ivan"]))
	ginaBefore := bySAM(t, s, "gina")

	rep = mustSync(t, s, SyncRequest{Domains: []string{"corp"}})
	sc = summaryOf(t, rep, "corp")
	t.Run("incremental picks up exactly the changes", func(t *testing.T) {
		if sc.Mode != "incremental" {
			t.Fatalf("mode %s (%s), want incremental", sc.Mode, sc.FullReason)
		}
		// Two left, one joined; Dave (disabled) is not a member.
		if sc.Added != 1 || sc.Removed != 2 || sc.Updated != 2 || sc.Fetched != 3 || sc.Members != wantCorpMembers-2 {
			t.Errorf("summary %+v: want added 1 (ivan), removed 2 (bob, frank), updated 2 (gina, hank), 3 attribute reads, %d members", sc, wantCorpMembers-2)
		}
		if sc.KeysDeactivated != 1 || keyStatus(t, s, "SIM-BOB").Status != "deactivated" {
			t.Errorf("Bob left the group: keys deactivated %d, his key %+v; want it deactivated", sc.KeysDeactivated, keyStatus(t, s, "SIM-BOB"))
		}
		plugSim(t, s, bobKey) // back at the helpdesk: wiped, in stock again
		if v := keyStatus(t, s, "SIM-BOB"); v.Status != "ready" || v.EmployeeID != nil || simInfo(t, bobKey).State != proto.StateBlank {
			t.Errorf("Bob's key plugged in after he left: %+v, key state %s; want ready and wiped", v, simInfo(t, bobKey).State)
		}
		if e := bySAM(t, s, "bob"); e == nil || *e.Accounts[0].LeftReason != "left-group" || e.Status != "removed" {
			t.Errorf("bob = %+v: want left-group, removed, kept", e)
		}
		if e := bySAM(t, s, "frank"); e == nil || *e.Accounts[0].LeftReason != "deleted" {
			t.Errorf("frank = %+v: want deleted, kept", e)
		}
		if e := bySAM(t, s, "gina"); e == nil || *e.Email != "gina@new.example.com" || e.ID != ginaBefore.ID {
			t.Errorf("gina = %+v: want the same employee renamed to the new email", e)
		}
		if e := bySAM(t, s, "hank"); e == nil || e.Department != "Research" || e.Accounts[0].Title != "Lead" {
			t.Errorf("hank = %+v: want department Research, title Lead", e)
		}
		if bySAM(t, s, "ivan") == nil {
			t.Error("ivan joined the group but was not imported")
		}
	})

	t.Run("a full sync after it finds nothing more", func(t *testing.T) {
		rep := mustSync(t, s, SyncRequest{Domains: []string{"corp"}, Full: true})
		sc := summaryOf(t, rep, "corp")
		if sc.Mode != "full" || sc.Added != 0 || sc.Removed != 0 || sc.Updated != 0 || sc.Unchanged != wantCorpMembers-1 {
			t.Errorf("summary %+v: want everything unchanged", sc)
		}
	})

	t.Run("incremental follows nested groups, renames and the password group", func(t *testing.T) {
		mustDN := func(dn string, err error) string {
			t.Helper()
			must(err)
			return dn
		}
		// Carol leaves through the nesting (Level 3 taken out of Level 2),
		// Eve joins through a new group nested in Level 2, Zoë's password
		// is rotated through a group nested in the password group.
		must(corpDC.RemoveMembers(ctx, corp.groups["l2"], corp.groups["l3"]))
		l4 := mustDN(corpDC.Group(ctx, "Sync Level 4"))
		must(corpDC.AddMembers(ctx, l4, corp.dns["eve"]))
		must(corpDC.AddMembers(ctx, corp.groups["l2"], l4))
		team := mustDN(corpDC.Group(ctx, "Rotation Team"))
		must(corpDC.AddMembers(ctx, team, corp.dns["zoe"]))
		must(corpDC.AddMembers(ctx, corp.pwDN, team))
		// Hank's account and Level 1 are renamed (where the directory can).
		hankDN, err := corpDC.Rename(ctx, corp.dns["hank"], "CN=Hank Renamed")
		canRename := !errors.Is(err, errors.ErrUnsupported)
		if canRename {
			must(err)
			mustDN(corpDC.Rename(ctx, corp.groups["l1"], "CN=Sync Level One"))
		}
		hankBefore := bySAM(t, s, "hank")

		rep := mustSync(t, s, SyncRequest{Domains: []string{"corp"}})
		sc := summaryOf(t, rep, "corp")
		if sc.Mode != "incremental" {
			t.Fatalf("mode %s (%s), want incremental", sc.Mode, sc.FullReason)
		}
		wantUpdated := 1 // zoe's rotation
		if canRename {
			wantUpdated = 2
		}
		if sc.Added != 1 || sc.Removed != 1 || sc.Updated != wantUpdated || sc.Members != wantCorpMembers-2 {
			t.Errorf("summary %+v: want eve added, carol removed, %d updated, %d members", sc, wantUpdated, wantCorpMembers-2)
		}
		if e := bySAM(t, s, "carol"); e == nil || e.Accounts[0].LeftReason == nil || *e.Accounts[0].LeftReason != "left-group" {
			t.Errorf("carol = %+v: want left-group", e)
		}
		if bySAM(t, s, "eve") == nil {
			t.Error("eve joined through a nested group but was not imported")
		}
		if e := bySAM(t, s, "zoe"); e == nil || !e.Accounts[0].PasswordRotation {
			t.Errorf("zoe = %+v: want her password rotated (a nested member of the password group)", e)
		}
		if e := bySAM(t, s, "hank"); canRename && (e == nil || e.ID != hankBefore.ID || e.Accounts[0].DN != hankDN) {
			t.Errorf("hank after the rename = %+v: want the same employee with DN %s", e, hankDN)
		}
		// A full read at the same moment finds nothing more.
		rep = mustSync(t, s, SyncRequest{Domains: []string{"corp"}, Full: true})
		if sc := summaryOf(t, rep, "corp"); sc.Added != 0 || sc.Removed != 0 || sc.Updated != 0 {
			t.Errorf("a full sync after the incremental one changed something: %+v", sc)
		}
		// Level 4 is deleted: Eve, only in it, leaves; deleted members and
		// groups are seen by an incremental sync too.
		must(corpDC.Delete(ctx, l4))
		rep = mustSync(t, s, SyncRequest{Domains: []string{"corp"}})
		if sc := summaryOf(t, rep, "corp"); sc.Mode != "incremental" || sc.Removed != 1 || sc.Added+sc.Updated != 0 {
			t.Errorf("after the nested group was deleted: %+v; want an incremental sync removing Eve", sc)
		}
		if e := bySAM(t, s, "eve"); e == nil || e.Accounts[0].LeftReason == nil || *e.Accounts[0].LeftReason != "left-group" {
			t.Errorf("eve = %+v: want left-group", e)
		}
		// An OU renamed changes the DNs below it and not their uSNChanged:
		// the sync reads everything instead (where the directory renames).
		if canRename {
			// An OU of its own, small: Samba rewrites each DN below an OU
			// renamed, which for the thousands in Bulk can outlast a busy
			// machine's LDAP timeout.
			team := mustDN(corpDC.AddOU(ctx, "Team", ""))
			tu := make([]adtest.User, 3)
			for i := range tu {
				tu[i] = adtest.User{Sam: fmt.Sprintf("team%d", i), DisplayName: fmt.Sprintf("Team User %d", i), Mail: fmt.Sprintf("team%d@example.com", i), OU: team, NoPassword: true}
			}
			tdns, err := corpDC.AddUsers(ctx, tu)
			must(err)
			must(corpDC.AddMembers(ctx, corp.syncDN, tdns...))
			if sc := summaryOf(t, mustSync(t, s, SyncRequest{Domains: []string{"corp"}}), "corp"); sc.Added != len(tdns) {
				t.Fatalf("the team's %d people joined: %+v", len(tdns), sc)
			}
			renamed := mustDN(corpDC.Rename(ctx, team, "OU=Team Renamed"))
			sc := summaryOf(t, mustSync(t, s, SyncRequest{Domains: []string{"corp"}}), "corp")
			if sc.Mode != "full" || !strings.Contains(sc.FullReason, "OU or container") || sc.Updated != len(tdns) {
				t.Errorf("after an OU was renamed: %s (%s), %d updated; want a full read updating the %d DNs below it", sc.Mode, sc.FullReason, sc.Updated, len(tdns))
			}
			for _, e := range employees(t, s) {
				for _, a := range e.Accounts {
					if strings.HasPrefix(a.SAMAccountName, "team") && !strings.HasSuffix(a.DN, ","+renamed) {
						t.Errorf("%s's DN is %q after the rename, want it under %s", a.SAMAccountName, a.DN, renamed)
					}
				}
			}
			// The team goes again (deleted), and its OU.
			for _, dn := range tdns {
				rdn, _, _ := strings.Cut(dn, ",")
				must(corpDC.Delete(ctx, rdn+","+renamed))
			}
			must(corpDC.Delete(ctx, renamed))
			mustSync(t, s, SyncRequest{Domains: []string{"corp"}, AllowRemovals: true})
		}
		// And with nothing changed, an incremental sync reads no one, and
		// counts what a full read then counts.
		rep = mustSync(t, s, SyncRequest{Domains: []string{"corp"}})
		sc = summaryOf(t, rep, "corp")
		if sc.Mode != "incremental" || sc.Fetched != 0 || sc.Added+sc.Removed+sc.Updated != 0 {
			t.Errorf("an incremental sync with nothing changed: %+v; want no member read, nothing changed", sc)
		}
		rep = mustSync(t, s, SyncRequest{Domains: []string{"corp"}, Full: true})
		if fc := summaryOf(t, rep, "corp"); fc.Added+fc.Removed+fc.Updated != 0 || fc.Members != sc.Members || fc.Unchanged != sc.Unchanged || fc.PasswordRotation != sc.PasswordRotation {
			t.Errorf("nothing changed: the incremental sync counted %d members, %d unchanged, %d in the password group; a full read %d, %d, %d",
				sc.Members, sc.Unchanged, sc.PasswordRotation, fc.Members, fc.Unchanged, fc.PasswordRotation)
		}
		// Only a user changed (no group): placed by their memberOf, the
		// others kept as stored; a full read then finds nothing more.
		must(corpDC.Modify(ctx, corp.dns["zoe"], map[string][]string{"title": {"Chief"}}))
		rep = mustSync(t, s, SyncRequest{Domains: []string{"corp"}})
		if sc := summaryOf(t, rep, "corp"); sc.Mode != "incremental" || sc.Fetched != 1 || sc.Updated != 1 || sc.Added+sc.Removed != 0 || sc.Members != wantCorpMembers-3 || sc.PasswordRotation != 2 {
			t.Errorf("an incremental sync after a title changed: %+v; want Zoë read and updated, %d members, 2 in the password group (Alice, Zoë)", sc, wantCorpMembers-3)
		}
		rep = mustSync(t, s, SyncRequest{Domains: []string{"corp"}, Full: true})
		if sc := summaryOf(t, rep, "corp"); sc.Added+sc.Removed+sc.Updated != 0 || sc.PasswordRotation != 2 {
			t.Errorf("a full sync after it: %+v; want nothing more, 2 in the password group", sc)
		}
	})

	t.Run("removal guard holds a mass removal", func(t *testing.T) {
		leave := corp.bulkDNs[:600] // about 28% of the domain
		must(corpDC.RemoveMembers(ctx, corp.syncDN, leave...))
		before := employees(t, s)
		rep := mustSync(t, s, SyncRequest{Domains: []string{"corp"}})
		sc := summaryOf(t, rep, "corp")
		if sc.Held != 600 || sc.Removed != 0 {
			t.Fatalf("summary %+v: want 600 held, 0 removed", sc)
		}
		if after := employees(t, s); !reflect.DeepEqual(statuses(before), statuses(after)) {
			t.Error("held removals changed employees")
		}
		rep = mustSync(t, s, SyncRequest{Domains: []string{"corp"}, AllowRemovals: true})
		if sc := summaryOf(t, rep, "corp"); sc.Removed != 600 || sc.Held != 0 {
			t.Errorf("with allow: summary %+v, want 600 removed", sc)
		}
		if held, _ := s.st.HeldRemovals(ctx, "corp"); len(held) != 0 {
			t.Errorf("%d held removals left after applying them", len(held))
		}
	})

	t.Run("errors are clear and change nothing", func(t *testing.T) {
		otherCA := adtest.WriteUnrelatedCA(t)
		tests := []struct {
			name     string
			cfg      string
			env      string
			envValue string
			want     string // in the error
			hint     string // in the hint
		}{
			{"wrong password", corp.configBlock(t, "KD_BAD_PW"), "KD_BAD_PW", "Wrong-Passw0rd!", "bind as", "wrong password"},
			{"unreachable address", corp.configBlock(t, "KD_TEST_CORP_PW", "ldaps://127.0.0.1:1"), "", "", "connection refused", "nothing listens"},
			{"wrong CA", strings.Replace(corp.configBlock(t, "KD_TEST_CORP_PW"), corpDC.Info().CAFile, otherCA, 1), "", "", "certificate", "ca_file"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if tt.env != "" {
					t.Setenv(tt.env, tt.envValue)
				}
				dir := t.TempDir()
				bad := serviceFor(t, tt.cfg, dir)
				rep, err := bad.Sync(ctx, SyncRequest{Actor: testAdmin})
				if err != nil {
					t.Fatal(err)
				}
				d := rep.Domains[0]
				if d.OK || !strings.Contains(d.Error, tt.want) || !strings.Contains(d.Hint, tt.hint) {
					t.Errorf("result ok=%v error=%q hint=%q; want error with %q and hint with %q", d.OK, d.Error, d.Hint, tt.want, tt.hint)
				}
				if strings.Contains(d.Error, corpDC.Info().AdminPassword) || strings.Contains(d.Error, tt.envValue) && tt.envValue != "" {
					t.Error("the error shows the password")
				}
				if es := employees(t, bad); len(es) != 0 {
					t.Errorf("a failed sync wrote %d employees", len(es))
				}
			})
		}
	})

	t.Run("StartTLS works as well as LDAPS", func(t *testing.T) {
		cfg := strings.Replace(branch.configBlock(t, "KD_TEST_BRANCH_PW", branchDC.Info().LDAPURL), "page_size", "tls = \"starttls\"\npage_size", 1)
		st := serviceFor(t, cfg, t.TempDir())
		rep := mustSync(t, st, SyncRequest{})
		if d := rep.Domains[0]; d.Members != 2 || d.Server != branchDC.Info().LDAPURL {
			t.Errorf("StartTLS sync %+v: want 2 members from %s", d, branchDC.Info().LDAPURL)
		}
	})

	t.Run("one domain failing does not stop the other", func(t *testing.T) {
		t.Setenv("KD_BAD_PW", "Wrong-Passw0rd!")
		mixed := serviceFor(t, corp.configBlock(t, "KD_TEST_CORP_PW")+branch.configBlock(t, "KD_BAD_PW"), t.TempDir())
		rep, err := mixed.Sync(ctx, SyncRequest{Actor: testAdmin})
		if err != nil {
			t.Fatal(err)
		}
		if c, b := summaryOf(t, rep, "corp"), summaryOf(t, rep, "branch"); !c.OK || b.OK || len(rep.Failed()) != 1 {
			t.Errorf("corp ok=%v branch ok=%v: want corp synced and branch failed", c.OK, b.OK)
		}
	})

	t.Run("a DC stopped in the middle of a sync leaves the database as it was", func(t *testing.T) {
		before := employees(t, s)
		stBefore, _ := s.st.SyncState(ctx, "corp")
		var once sync.Once
		rep, err := s.Sync(ctx, SyncRequest{Actor: testAdmin, Domains: []string{"corp"}, Full: true, Progress: func(_ string, p ldapsync.Progress) {
			once.Do(func() {
				if err := corpDC.Stop(); err != nil {
					t.Errorf("stop DC: %v", err)
				}
			})
		}})
		if err != nil {
			t.Fatal(err)
		}
		if d := rep.Domains[0]; d.OK {
			t.Fatalf("the sync succeeded although the DC stopped after the first page: %+v", d)
		}
		if after := employees(t, s); !reflect.DeepEqual(before, after) {
			t.Error("the interrupted sync changed employees")
		}
		stAfter, _ := s.st.SyncState(ctx, "corp")
		if stAfter.HighestUSN != stBefore.HighestUSN || stAfter.LastError == "" {
			t.Errorf("sync state after failure %+v: want the old mark and the error recorded", stAfter)
		}
		if err := corpDC.Restart(ctx); err != nil {
			t.Fatalf("restart DC: %v", err)
		}
		rep = mustSync(t, s, SyncRequest{Domains: []string{"corp"}})
		if sc := summaryOf(t, rep, "corp"); sc.Added+sc.Removed+sc.Updated != 0 {
			t.Errorf("after restart: %+v, want nothing to change", sc)
		}
	})

	t.Run("audit log records every run and stays intact", func(t *testing.T) {
		rep, err := s.VerifyAudit(ctx, testAdmin)
		if err != nil || !rep.OK() {
			t.Fatalf("verify: %v %+v", err, rep)
		}
		var runs, failures int
		err = s.AuditEntries(ctx, testAdmin, store.AuditFilter{}, func(e store.AuditEntry) error {
			if e.Action == "sync" {
				runs++
				if e.Outcome == store.OutcomeFailure {
					failures++
				}
			}
			for _, pw := range []string{corpDC.Info().AdminPassword, branchDC.Info().AdminPassword} {
				if strings.Contains(fmt.Sprint(e.Details), pw) {
					t.Errorf("audit entry %d holds a password", e.Seq)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if runs < 8 || failures != 1 {
			t.Errorf("%d sync entries with %d failures: want every run (at least 8) and the one failure", runs, failures)
		}
	})
}

func statuses(es []EmployeeView) map[int64]string {
	m := map[int64]string{}
	for _, e := range es {
		m[e.ID] = e.Status
	}
	return m
}

// A periodic full read (sync.full_read_every) first asks what the
// incremental state says, applies the full read, and reports how they
// differed: nothing when the state is right; the members it got wrong
// when the stored graph was changed behind KeyDesk's back.
func TestPeriodicFullReadReportsDrift(t *testing.T) {
	ctx := context.Background()
	corp := builtinCorp(t, 0)
	dir := t.TempDir()
	now := time.Now()
	s := serviceFor(t, "[sync]\nfull_read_every = \"2h\"\n"+corp.configBlock(t, "KD_TEST_CORP_PW"), dir, WithClock(func() time.Time { return now }))
	syncCorp := func() DomainSummary {
		t.Helper()
		return summaryOf(t, mustSync(t, s, SyncRequest{Domains: []string{"corp"}}), "corp")
	}
	if sc := syncCorp(); sc.Mode != "full" || sc.Drift != 0 {
		t.Fatalf("first sync %+v: want full, no drift", sc)
	}
	now = now.Add(time.Hour)
	if sc := syncCorp(); sc.Mode != "incremental" {
		t.Fatalf("an hour later: %s (%s), want incremental", sc.Mode, sc.FullReason)
	}
	now = now.Add(2 * time.Hour)
	if sc := syncCorp(); sc.Mode != "full" || !strings.Contains(sc.FullReason, "full_read_every") || sc.Drift != 0 {
		t.Fatalf("three hours later: %+v; want the periodic full read, no drift", sc)
	}

	// Alice's memberships vanish from the stored graph: the incremental
	// state now says she is in neither group.
	alice := bySAM(t, s, "alice").Accounts[0].ObjectGUID
	dbtamper.Exec(t, filepath.Join(dir, store.FileName), "DELETE FROM sync_edges WHERE node = '"+alice+"'")
	// A nested group changes (its description): the incremental read
	// reads the whole graph it tampered with (with nothing changed, or
	// only users, it need not).
	if err := corp.dc.Modify(ctx, corp.groups["l1"], map[string][]string{"description": {"changed"}}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(3 * time.Hour)
	sc := syncCorp()
	if sc.Mode != "full" || sc.Drift != 2 || sc.Removed != 0 {
		t.Fatalf("after the graph was changed: %+v; want the full read applied, 2 differences (member, password group), nobody removed", sc)
	}
	var drift []string
	s.AuditEntries(ctx, testAdmin, store.AuditFilter{}, func(e store.AuditEntry) error {
		if d, ok := e.Details["drift"].([]any); ok && e.Action == "sync" {
			drift = nil
			for _, x := range d {
				drift = append(drift, fmt.Sprint(x))
			}
		}
		return nil
	})
	want := []string{alice + ": a member by the full read, not by the incremental state",
		alice + ": in the password group by the full read, not by the incremental state"}
	if !reflect.DeepEqual(drift, want) {
		t.Errorf("the sync's audit entry says drift %q, want %q", drift, want)
	}
	now = now.Add(time.Hour)
	if sc := syncCorp(); sc.Mode != "incremental" || sc.Added+sc.Removed+sc.Updated != 0 || bySAM(t, s, "alice").Accounts[0].LeftReason != nil {
		t.Errorf("after the repair: %+v; want an incremental sync with nothing to change, Alice a member", sc)
	}
}

// Disabled accounts whose removal the guard holds stay held through the
// following incremental and full syncs, and are removed when allowed,
// although the directory does not change again.
func TestHeldDisabledRemovalsCanBeApplied(t *testing.T) {
	ctx := context.Background()
	corp := builtinCorp(t, 100)
	s := serviceFor(t, corp.configBlock(t, "KD_TEST_CORP_PW"), t.TempDir())
	syncCorp := domainSyncer(t, s, "corp")
	syncCorp(SyncRequest{})
	for _, dn := range corp.bulkDNs[:30] {
		if err := corp.dc.Modify(ctx, dn, map[string][]string{"userAccountControl": {"514"}}); err != nil {
			t.Fatal(err)
		}
	}
	if sc := syncCorp(SyncRequest{}); sc.Held != 30 || sc.Removed != 0 {
		t.Fatalf("30 of 113 disabled at once: %+v; want 30 held", sc)
	}
	for _, req := range []SyncRequest{{}, {Full: true}} {
		if sc := syncCorp(req); sc.Held != 30 || sc.Removed != 0 {
			t.Errorf("sync again (full %v): %+v; want the 30 still held", req.Full, sc)
		}
	}
	if sc := syncCorp(SyncRequest{AllowRemovals: true}); sc.Held != 0 || sc.Removed != 30 {
		t.Errorf("sync allowing removals: %+v; want the 30 removed", sc)
	}
	if sc := syncCorp(SyncRequest{}); sc.Held != 0 || sc.Removed != 0 || sc.Members != 113-30 {
		t.Errorf("sync after: %+v; want nothing held or removed, %d members", sc, 113-30)
	}
}

// domainSyncer syncs one domain of s, and returns its summary.
func domainSyncer(t *testing.T, s *Service, domain string) func(SyncRequest) DomainSummary {
	return func(req SyncRequest) DomainSummary {
		t.Helper()
		req.Domains = []string{domain}
		return summaryOf(t, mustSync(t, s, req), domain)
	}
}

// builtinCorp seeds the corp domain (seedCorp, with bulk users) in a
// built-in directory of its own; its password is in $KD_TEST_CORP_PW.
func builtinCorp(t *testing.T, bulk int) *adDomain {
	t.Helper()
	srv, err := builtinad.Start(context.Background(), builtinad.Options{Empty: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	t.Setenv("KD_TEST_CORP_PW", srv.Domain("corp").AdminPassword)
	return seedCorp(context.Background(), t, builtinDir{srv.Domain("corp")}, bulk)
}

// TestPartialSyncLeavesOthersAlone: a sync that reads only the changed
// users loads the people around them (here, Alice, whose email Bob takes)
// but takes none of those it did not read for a leaver.
func TestPartialSyncLeavesOthersAlone(t *testing.T) {
	ctx := context.Background()
	corp := builtinCorp(t, 20)
	s := serviceFor(t, corp.configBlock(t, "KD_TEST_CORP_PW"), t.TempDir())
	syncCorp := domainSyncer(t, s, "corp")
	before := syncCorp(SyncRequest{})
	if err := corp.dc.Modify(ctx, corp.dns["bob"], map[string][]string{"mail": {"alice.adams@example.com"}}); err != nil {
		t.Fatal(err)
	}
	sc := syncCorp(SyncRequest{})
	if sc.Mode != "incremental" || sc.Fetched != 1 || sc.Removed != 0 || sc.Members != before.Members {
		t.Errorf("Bob took Alice's email: %+v; want Bob alone read, nobody removed, %d members", sc, before.Members)
	}
	for _, sam := range []string{"alice", "bob"} {
		e := bySAM(t, s, sam)
		if e == nil || e.Status != "active" || e.Accounts[0].LeftReason != nil {
			t.Errorf("%s after the sync: %+v; want active, a current member", sam, e)
		}
	}
	if fc := syncCorp(SyncRequest{Full: true}); fc.Added+fc.Updated+fc.Removed+fc.Merged != 0 {
		t.Errorf("a full read after it changed %+v", fc)
	}
}
