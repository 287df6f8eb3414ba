package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"keydesk/config"
	"keydesk/internal/adtest"
	"keydesk/internal/simtest"
	"keydesk/keys"
	"keydesk/keys/proto"
	"keydesk/keys/simkey"
	"keydesk/ldapsync"
	"keydesk/rotation"
	"keydesk/store"
)

// pwDomain is a Samba domain with KeyDesk's groups and a few users, synced
// into a service with a master key.
type pwDomain struct {
	dc    *adtest.DC
	dom   config.Domain
	s     *Service
	mk    keys.MasterKey
	cfg   *config.Config
	dir   string
	dns   map[string]string // sam -> DN
	users map[string]adtest.User
	// syncDN and pwDN are the domain's sync and password groups.
	syncDN, pwDN string
	seen         []string     // every password the test saw, for the plaintext search
	logs         lockedBuffer // every service's log, at debug level
}

// lockedBuffer is a log destination shared by goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newPWDomain starts a DC and syncs users alice and carol (in the password
// group), bob (not), and dan (in the password group, in a second domain
// section of the test's choosing later). extra is TOML for
// [domain.passwords].
func newPWDomain(t testing.TB, realm, extra string) *pwDomain {
	t.Helper()
	ctx := context.Background()
	dc := adtest.StartT(t, adtest.Options{Realm: realm})
	p := &pwDomain{dc: dc, dir: t.TempDir(), dns: map[string]string{}, users: map[string]adtest.User{}}
	syncDN, err := dc.AddGroup(ctx, "Hideez Users Sync", "")
	if err != nil {
		t.Fatal(err)
	}
	pwDN, err := dc.AddGroup(ctx, "Security Key Auto Password Change", "")
	if err != nil {
		t.Fatal(err)
	}
	p.syncDN, p.pwDN = syncDN, pwDN
	for _, u := range []adtest.User{
		{Sam: "alice", GivenName: "Alice", SN: "Liddell", DisplayName: "Alice Liddell", Mail: "alice@example.com"},
		{Sam: "bob", DisplayName: "Bob Brown", Mail: "bob@example.com"},
		{Sam: "carol", DisplayName: "Carol Deep", Mail: "carol@example.com"},
	} {
		dn, err := dc.AddUser(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		p.dns[u.Sam], p.users[u.Sam] = dn, u
		if err := dc.AddMembers(ctx, syncDN, dn); err != nil {
			t.Fatal(err)
		}
		if u.Sam != "bob" {
			if err := dc.AddMembers(ctx, pwDN, dn); err != nil {
				t.Fatal(err)
			}
		}
	}
	pwFile := filepath.Join(p.dir, "bind.pw")
	if err := os.WriteFile(pwFile, []byte(dc.AdminPassword), 0o600); err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf(`[[domain]]
name = "corp"
urls = [%q]
base_dn = %q
bind_dn = %q
bind_password_file = %q
ca_file = %q
connect_timeout = "3s"
timeout = "20s"
%s
`, dc.LDAPSURL, dc.BaseDN, dc.AdminUPN, pwFile, dc.CAFile, extra)
	if p.cfg, err = config.Parse(filepath.Join(p.dir, "keydesk.toml"), []byte(text)); err != nil {
		t.Fatal(err)
	}
	p.dom = p.cfg.Domains[0]
	rand.Read(p.mk[:])
	p.s = p.service(t)
	mustSync(t, p.s, SyncRequest{})
	return p
}

// service opens (again) a service on the domain's database: a restart.
func (p *pwDomain) service(t testing.TB, opts ...Option) *Service {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(p.dir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	log := slog.New(slog.NewTextHandler(&p.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return New(p.cfg, st, append([]Option{WithMasterKey(p.mk), WithTrustedMaker(simtest.Maker(t).Cert()), WithLogger(log)}, opts...)...)
}

// managedUsers adds n users (prefix000, prefix001, ...) to the domain's
// sync and password groups, syncs, and activates a key for each; it returns
// their DNs and keys.
func (p *pwDomain) managedUsers(t testing.TB, prefix string, n int) ([]string, []*simkey.Key) {
	t.Helper()
	ctx := context.Background()
	us := make([]adtest.User, n)
	for i := range us {
		us[i] = adtest.User{Sam: fmt.Sprintf("%s%03d", prefix, i), DisplayName: fmt.Sprintf("Managed %s %03d", prefix, i), Mail: fmt.Sprintf("%s%03d@example.com", prefix, i)}
	}
	dns, err := p.dc.AddUsers(ctx, us)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{p.syncDN, p.pwDN} {
		if err := p.dc.AddMembers(ctx, g, dns...); err != nil {
			t.Fatal(err)
		}
	}
	mustSync(t, p.s, SyncRequest{})
	keys := make([]*simkey.Key, n)
	for i := range n {
		keys[i], _ = p.activeKey(t, p.s, fmt.Sprintf("SIM-%s-%03d", strings.ToUpper(prefix), i), us[i].Mail)
	}
	return dns, keys
}

// login is what the key types as the user's login: their UPN.
func (p *pwDomain) login(sam string) string { return sam + "@" + strings.ToLower(p.dc.Domain) }

// binds reports whether AD accepts the password for the user.
func (p *pwDomain) binds(t testing.TB, sam, pw string) bool {
	t.Helper()
	err := ldapsync.VerifyPassword(context.Background(), p.dom, p.dns[sam], pw)
	if err != nil && !errors.Is(err, ldapsync.ErrWrongPassword) {
		t.Fatalf("bind as %s: %v", sam, err)
	}
	return err == nil
}

// typed is the password key k types for login (its current value), read
// as the key would type it.
func (p *pwDomain) typed(t testing.TB, k *simkey.Key, login string) string {
	t.Helper()
	creds, err := k.Type("")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range creds {
		if c.Login == login {
			p.seen = append(p.seen, c.Password)
			return c.Password
		}
	}
	t.Fatalf("the key types nothing for %s (it types %d credentials)", login, len(creds))
	return ""
}

// slots is what the key's slots hold (LIST, through KeyDesk's secret).
func slotsOf(t *testing.T, s *Service, k *simkey.Key) []proto.SlotInfo {
	t.Helper()
	row := keyRow(t, s, k.Serial())
	_, sess := simSession(t, k, secretOf(t, s, row, row.SecretSealed))
	list, err := sess.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// activeKey plugs in a new key, assigns it to the employee and activates
// it, returning the key and the activation's password results.
func (p *pwDomain) activeKey(t testing.TB, s *Service, serial, email string) (*simkey.Key, []ChangeResult) {
	t.Helper()
	ctx := context.Background()
	k := simtest.NewKey(t, serial)
	plugSim(t, s, k)
	code, err := s.AssignKey(ctx, testAdmin, serial, email)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.ActivateKey(ctx, testAdmin, serial, code.String())
	if err != nil || !res.Activated {
		t.Fatalf("activate %s: %+v %v", serial, res, err)
	}
	return k, res.Passwords
}

// noPlaintext searches the database file, its WAL and the audit export for
// every password the test saw.
func (p *pwDomain) noPlaintext(t *testing.T, s *Service) {
	t.Helper()
	var hay []string
	for _, f := range []string{store.FileName, store.FileName + "-wal"} {
		b, err := os.ReadFile(filepath.Join(p.dir, f))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		hay = append(hay, string(b))
	}
	var audit strings.Builder
	if err := s.ExportAudit(context.Background(), testAdmin, func(e store.AuditEntry) error {
		fmt.Fprintf(&audit, "%+v\n", e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	hay = append(hay, audit.String(), p.logs.String())
	if len(p.seen) == 0 {
		t.Fatal("no password was seen: the search would prove nothing")
	}
	for _, pw := range p.seen {
		for i, h := range hay {
			if strings.Contains(h, pw) {
				t.Errorf("a password the test saw is in plain text in %s", []string{"the database", "its WAL", "the audit export", "the log"}[i])
			}
		}
	}
}

// TestPasswordsOnKeyAndADAgainstSamba: activation ends with a new password
// on the key and in AD (the old one stops working); rotate, set and
// generate each replace it, checked against the policy first; only an
// admin may, and a reveal is audited; no password is ever in the database,
// its WAL or the audit log in plain text.
func TestPasswordsOnKeyAndADAgainstSamba(t *testing.T) {
	ctx := context.Background()
	p := newPWDomain(t, "PWAPP.KEYDESK.TEST", "")
	s := p.s
	login := p.login("alice")
	first := p.dc.PasswordFor(p.users["alice"])
	p.seen = append(p.seen, first)

	k, rs := p.activeKey(t, s, "SIM-PW-1", "alice@example.com")
	if len(rs) != 1 || !rs[0].Done() || rs[0].Kind != KindActivation {
		t.Fatalf("activation's passwords: %+v; want one done", rs)
	}
	onKey := p.typed(t, k, login)
	if !p.binds(t, "alice", onKey) {
		t.Fatal("the key's password does not bind after activation")
	}
	if p.binds(t, "alice", first) {
		t.Fatal("the password from before activation still binds")
	}
	if l := slotsOf(t, s, k); len(l) != 1 || !l[0].Current || l[0].Pending {
		t.Fatalf("the key's slots after activation: %+v; want one current, nothing pending", l)
	}

	// Rotate now.
	prev := onKey
	rs, err := s.RotatePasswords(ctx, testAdmin, "alice@example.com", "")
	if err != nil || len(rs) != 1 || !rs[0].Done() {
		t.Fatalf("rotate: %+v %v", rs, err)
	}
	onKey = p.typed(t, k, login)
	if onKey == prev || !p.binds(t, "alice", onKey) || p.binds(t, "alice", prev) {
		t.Fatal("after a rotation the key's new password must bind and the previous one must not")
	}

	// A typed password that breaks the policy changes nothing.
	for pw, rule := range map[string]string{"Ab1!x": "length", "alllowercaseletters-only": "complexity", "Liddell-Secret-2026!": "name"} {
		_, err := s.SetPassword(ctx, testAdmin, "alice@example.com", "", pw)
		var v *rotation.Violation
		if !errors.As(err, &v) || v.Rule != rule || !strings.Contains(err.Error(), "nothing was changed") {
			t.Errorf("set a password breaking %s: %v", rule, err)
		}
	}
	if got := p.typed(t, k, login); got != onKey || !p.binds(t, "alice", onKey) {
		t.Fatal("a refused password changed the key or AD")
	}
	// A good one is set.
	const typedPW = "Kq7#vW2!pZ9rTx4m-Set"
	p.seen = append(p.seen, typedPW)
	if r, err := s.SetPassword(ctx, testAdmin, "alice@example.com", "", typedPW); err != nil || !r.Done() {
		t.Fatalf("set: %+v %v", r, err)
	}
	if p.typed(t, k, login) != typedPW || !p.binds(t, "alice", typedPW) || p.binds(t, "alice", onKey) {
		t.Fatal("the set password is not the key's and AD's")
	}

	// Generate, revealed.
	r, shown, err := s.GeneratePassword(ctx, testAdmin, "alice@example.com", "corp", true)
	if err != nil || !r.Done() || shown == "" {
		t.Fatalf("generate: %+v %v", r, err)
	}
	p.seen = append(p.seen, shown)
	if p.typed(t, k, login) != shown || !p.binds(t, "alice", shown) {
		t.Fatal("the revealed password is not the one on the key and in AD")
	}

	// Helpdesk may not; bob is not managed.
	if _, err := s.RotatePasswords(ctx, testHelpdesk, "alice@example.com", ""); !errors.Is(err, ErrPermission) {
		t.Errorf("helpdesk rotated: %v", err)
	}
	if _, err := s.RotatePasswords(ctx, testAdmin, "bob@example.com", ""); !errors.Is(err, ErrNotManaged) || !strings.Contains(err.Error(), "password group") {
		t.Errorf("rotate an account outside the password group: %v", err)
	}
	acts := auditActions(t, s, "account:corp\\alice")
	for _, want := range []string{"password.planned:success", "password.key-pending:success", "password.ad-sending:success", "password.ad-written:success", "password.done:success", "password.reveal:success"} {
		if !containsStr(acts, want) {
			t.Errorf("the audit log of alice's account lacks %s: %v", want, acts)
		}
	}
	p.noPlaintext(t, s)
}

func containsStr(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// pendingOf reads the key's pending value for the slot (through KeyDesk's
// secret): "" when there is none.
func (p *pwDomain) pendingOf(t *testing.T, s *Service, k *simkey.Key, slot int) string {
	t.Helper()
	row := keyRow(t, s, k.Serial())
	_, sess := simSession(t, k, secretOf(t, s, row, row.SecretSealed))
	c, err := sess.ReadPending(context.Background(), slot)
	if errors.Is(err, &proto.KeyError{Code: proto.CodeNotFound}) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	p.seen = append(p.seen, c.Password)
	return c.Password
}

var errTestCrash = errors.New("test crash")

// TestACrashAtEveryPointOfARotationConverges stops a rotation, as a crash
// would, after each recorded step and after each effect before its step is
// recorded; a restarted KeyDesk first recovers without the key (the
// password AD accepts must then be the key's, current or pending), then
// the key is plugged in: the rotation finishes, the key's password binds
// and the one before does not.
func TestACrashAtEveryPointOfARotationConverges(t *testing.T) {
	ctx := context.Background()
	p := newPWDomain(t, "PWCRASH.KEYDESK.TEST", "")
	login := p.login("alice")
	k, _ := p.activeKey(t, p.s, "SIM-CRASH", "alice@example.com")
	for _, point := range []string{"planned", "key-written", "key-pending", "ad-sending", "ad-sent", "ad-written", "key-committed"} {
		t.Run(point, func(t *testing.T) {
			before := p.typed(t, k, login)
			s1 := p.service(t, WithJournalHook(func(_ int64, at string) error {
				if at == point {
					return errTestCrash
				}
				return nil
			}))
			plugSim(t, s1, k)
			if _, err := s1.RotatePasswords(ctx, testAdmin, "alice@example.com", ""); !errors.Is(err, errTestCrash) {
				t.Fatalf("the rotation did not stop at %s: %v", point, err)
			}
			// Restarted, the key not plugged in.
			s2 := p.service(t)
			if _, err := s2.RecoverPasswordChanges(ctx); err != nil {
				t.Fatalf("recovery without the key: %v", err)
			}
			cur, pend := p.typed(t, k, login), p.pendingOf(t, s2, k, 0)
			if !p.binds(t, "alice", cur) && (pend == "" || !p.binds(t, "alice", pend)) {
				t.Fatalf("after a crash at %s and recovery, AD accepts neither the key's current nor its pending password", point)
			}
			plugSim(t, s2, k)
			after := p.typed(t, k, login)
			if after == before || !p.binds(t, "alice", after) || p.binds(t, "alice", before) {
				t.Fatalf("after a crash at %s, a restart and the key plugged in: the key's password must be new and bind, and the previous one must not", point)
			}
			open, err := s2.st.UnfinishedPasswordChanges(ctx, 0)
			if err != nil || len(open) != 0 {
				t.Fatalf("changes left open: %+v %v", open, err)
			}
			if l := slotsOf(t, s2, k); len(l) != 1 || l[0].Pending {
				t.Fatalf("the key's slots: %+v; want nothing pending", l)
			}
		})
	}
	p.noPlaintext(t, p.s)
}

// cutAt is a key connection that is pulled out as a command's request is
// sent.
type cutAt struct {
	proto.Transport
	cmd proto.Command
}

func (c *cutAt) WriteReport(r []byte) error {
	if len(r) > 4 && r[4] == byte(c.cmd)|0x80 {
		return errCut
	}
	return c.Transport.WriteReport(r)
}

// TestAKeyPulledOutOrADownDCMidRotation: the key pulled out between WRITE
// and COMMIT leaves AD with the new password and the key with it pending;
// plugged in again, the key commits it. The DC stopped between the key's
// WRITE and the AD write leaves AD untouched and the change waiting; when
// the DC is back, rotate finishes the change under way.
func TestAKeyPulledOutOrADownDCMidRotation(t *testing.T) {
	ctx := context.Background()
	p := newPWDomain(t, "PWCUT.KEYDESK.TEST", "")
	s := p.s
	login := p.login("alice")
	k, _ := p.activeKey(t, s, "SIM-CUT-PW", "alice@example.com")

	t.Run("key pulled out before COMMIT", func(t *testing.T) {
		before := p.typed(t, k, login)
		s.KeyDisconnected("sim:SIM-CUT-PW")
		if _, err := s.KeyConnected(ctx, Plug{ID: "sim:cut", Kind: "simulated", Open: func() (proto.Transport, error) {
			return &cutAt{Transport: k.Plug(), cmd: proto.CmdCommit}, nil
		}}); err != nil {
			t.Fatal(err)
		}
		rs, err := s.RotatePasswords(ctx, testAdmin, "alice@example.com", "")
		if err == nil || len(rs) != 1 || rs[0].Step != string(rotation.StepADWritten) {
			t.Fatalf("rotation with the key pulled out at COMMIT: %+v %v", rs, err)
		}
		pend := p.pendingOf(t, s, k, 0)
		if p.typed(t, k, login) != before || pend == "" || !p.binds(t, "alice", pend) || p.binds(t, "alice", before) {
			t.Fatal("after the cut, AD must have the key's pending password and the key must still type the old one")
		}
		s.KeyDisconnected("sim:cut")
		plugSim(t, s, k)
		if got := p.typed(t, k, login); got != pend || !p.binds(t, "alice", got) {
			t.Fatal("plugged in again, the key did not commit the password AD has")
		}
	})

	t.Run("DC down before the AD write", func(t *testing.T) {
		before := p.typed(t, k, login)
		s1 := p.service(t, WithJournalHook(func(_ int64, at string) error {
			if at == string(rotation.StepKeyPending) {
				return p.dc.Stop()
			}
			return nil
		}))
		plugSim(t, s1, k)
		rs, err := s1.RotatePasswords(ctx, testAdmin, "alice@example.com", "")
		if err == nil || len(rs) != 1 || rs[0].Step != string(rotation.StepKeyPending) || !strings.Contains(rs[0].Waiting, "DC") {
			t.Fatalf("rotation with the DC down: %+v %v", rs, err)
		}
		if err := p.dc.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		if p.typed(t, k, login) != before || !p.binds(t, "alice", before) {
			t.Fatal("with the DC down, the key's current password or AD changed")
		}
		rs, err = s.RotatePasswords(ctx, testAdmin, "alice@example.com", "")
		if err != nil || len(rs) != 1 || !rs[0].Done() || rs[0].ID == 0 {
			t.Fatalf("rotate once the DC is back: %+v %v", rs, err)
		}
		if got := p.typed(t, k, login); got == before || !p.binds(t, "alice", got) || p.binds(t, "alice", before) {
			t.Fatal("once the DC is back, the key's new password must bind and the old one must not")
		}
	})
	p.noPlaintext(t, s)
}

// TestOfflinePolicies: with the key away, a rotation waits for it by
// default (AD untouched) and runs when it is plugged in; with offline =
// "rotate-and-hold" AD is changed at once and the password is held for the
// key, revealable by an admin only (audited), and given to the key when it
// is plugged in.
func TestOfflinePolicies(t *testing.T) {
	ctx := context.Background()
	p := newPWDomain(t, "PWHOLD.KEYDESK.TEST", "")
	s := p.s
	login := p.login("alice")
	k, _ := p.activeKey(t, s, "SIM-AWAY", "alice@example.com")

	t.Run("wait", func(t *testing.T) {
		before := p.typed(t, k, login)
		s.KeyDisconnected("sim:SIM-AWAY")
		rs, err := s.RotatePasswords(ctx, testAdmin, "alice@example.com", "")
		if err != nil || len(rs) != 1 || rs[0].Step != string(rotation.StepPlanned) || !strings.Contains(rs[0].Waiting, "plugged in") {
			t.Fatalf("rotation with the key away: %+v %v", rs, err)
		}
		if !p.binds(t, "alice", before) {
			t.Fatal("a rotation waiting for the key changed AD")
		}
		if _, err := s.RevealPassword(ctx, testAdmin, "alice@example.com", ""); err == nil || !strings.Contains(err.Error(), "no password is held") {
			t.Errorf("reveal of a change that AD does not have: %v", err)
		}
		plugSim(t, s, k)
		if got := p.typed(t, k, login); got == before || !p.binds(t, "alice", got) || p.binds(t, "alice", before) {
			t.Fatal("plugged in, the waiting rotation did not finish")
		}
	})

	t.Run("rotate-and-hold", func(t *testing.T) {
		p.cfg.Domains[0].Passwords.Offline = config.OfflineRotateAndHold
		before := p.typed(t, k, login)
		s.KeyDisconnected("sim:SIM-AWAY")
		rs, err := s.RotatePasswords(ctx, testAdmin, "alice@example.com", "")
		if err != nil || len(rs) != 1 || rs[0].Step != string(rotation.StepADWritten) || rs[0].Order != string(rotation.ADFirst) {
			t.Fatalf("rotate and hold: %+v %v", rs, err)
		}
		if p.binds(t, "alice", before) {
			t.Fatal("rotate and hold left AD with the old password")
		}
		if _, err := s.RevealPassword(ctx, testHelpdesk, "alice@example.com", ""); !errors.Is(err, ErrPermission) {
			t.Errorf("helpdesk revealed a held password: %v", err)
		}
		held, err := s.RevealPassword(ctx, testAdmin, "alice@example.com", "")
		if err != nil || !p.binds(t, "alice", held) {
			t.Fatalf("reveal of the held password: %v", err)
		}
		p.seen = append(p.seen, held)
		plugSim(t, s, k)
		if got := p.typed(t, k, login); got != held {
			t.Fatal("plugged in, the key did not get the held password")
		}
		if _, err := s.RevealPassword(ctx, testAdmin, "alice@example.com", ""); err == nil {
			t.Error("a password is still revealable after the key got it")
		}
		var reveals int
		s.AuditEntries(ctx, testAdmin, store.AuditFilter{}, func(e store.AuditEntry) error {
			if e.Action == "password.reveal" && e.Outcome == store.OutcomeSuccess && e.Actor == testAdmin.Name {
				reveals++
			}
			return nil
		})
		if reveals != 1 {
			t.Errorf("%d successful reveals audited, want 1", reveals)
		}
	})

	t.Run("held for a key that is then replaced", func(t *testing.T) {
		s.KeyDisconnected("sim:SIM-AWAY")
		rs, err := s.RotatePasswords(ctx, testAdmin, "alice@example.com", "")
		if err != nil || len(rs) != 1 || rs[0].Step != string(rotation.StepADWritten) {
			t.Fatalf("rotate and hold: %+v %v", rs, err)
		}
		held, err := s.RevealPassword(ctx, testAdmin, "alice@example.com", "")
		if err != nil {
			t.Fatal(err)
		}
		p.seen = append(p.seen, held)
		// The key is lost before it got the password; alice gets a new one.
		if err := s.WithdrawKey(ctx, testAdmin, "SIM-AWAY", "lost on a train"); err != nil {
			t.Fatal(err)
		}
		k2, rs := p.activeKey(t, s, "SIM-AWAY-2", "alice@example.com")
		if len(rs) != 1 || !rs[0].Done() || rs[0].Order != string(rotation.ADFirst) {
			t.Fatalf("activation of the new key: %+v; want the held change carried on", rs)
		}
		if got := p.typed(t, k2, login); got != held || !p.binds(t, "alice", held) {
			t.Fatal("the new key did not get the password AD has")
		}
		if acts := auditActions(t, s, `account:corp\alice`); !containsStr(acts, "password.moved:success") {
			t.Errorf("moving the held password is not audited: %v", acts)
		}
	})
	p.noPlaintext(t, s)
}

// TestScheduledRotationsAgainstSamba: a rotation falls due after the
// rotation period, never before the domain's minimum password age (here 3
// days, with a 1-day period); a due rotation whose key is away waits for
// it; the report says so; and of two processes on one database exactly one
// is the scheduler, the other taking over when it stops.
func TestScheduledRotationsAgainstSamba(t *testing.T) {
	ctx := context.Background()
	p := newPWDomain(t, "PWSCHED.KEYDESK.TEST", "[domain.passwords]\nrotation_period = \"1d\"\n")
	const day = 24 * time.Hour
	if err := p.dc.Modify(ctx, p.dc.BaseDN, map[string][]string{"minPwdAge": {fmt.Sprint(-3 * int64(day/100))}}); err != nil {
		t.Fatal(err)
	}
	login := p.login("alice")
	k, _ := p.activeKey(t, p.s, "SIM-SCHED", "alice@example.com")
	first := p.typed(t, k, login)

	at := func(d time.Duration) *Service {
		s := p.service(t, WithClock(func() time.Time { return time.Now().Add(d) }))
		plugSim(t, s, k)
		return s
	}
	// Two days on: the period has passed, the minimum age not.
	s := at(2 * day)
	rs, err := s.RotateDue(ctx, testAdmin, "")
	if err != nil || len(rs) != 0 {
		t.Fatalf("before the minimum age: %+v %v", rs, err)
	}
	rep, err := s.Rotations(ctx, testAdmin)
	if err != nil || len(rep.Accounts) != 2 {
		t.Fatalf("rotations: %+v %v", rep, err)
	}
	if c := rotationFor(t, rep, `corp\carol`); c.State != RotationNoKey {
		t.Errorf("carol, in the password group without a key: %+v", c)
	}
	if a := rotationFor(t, rep, `corp\alice`); a.State != RotationOK || !strings.Contains(a.DueWhy, "minimum password age") || a.NextDue.Before(time.Now().Add(3*day-time.Minute)) {
		t.Errorf("before the minimum age the report says %+v", a)
	}
	if got := p.typed(t, k, login); got != first {
		t.Fatal("a scheduled rotation ran before the minimum age")
	}

	// Three days and a bit on: due, and done with the key at hand.
	s = at(3*day + time.Hour)
	rs, err = s.RotateDue(ctx, testAdmin, "")
	if err != nil || len(rs) != 1 || !rs[0].Done() || rs[0].Kind != KindScheduled {
		t.Fatalf("a due rotation: %+v %v", rs, err)
	}
	second := p.typed(t, k, login)
	if second == first || !p.binds(t, "alice", second) || p.binds(t, "alice", first) {
		t.Fatal("the scheduled rotation did not replace the password")
	}

	// Due with the key away: it waits for the key, and the report says so.
	s = p.service(t, WithClock(func() time.Time { return time.Now().Add(7 * day) }))
	if rs, err = s.RotateDue(ctx, testAdmin, ""); err != nil || len(rs) != 1 || rs[0].Step != string(rotation.StepPlanned) {
		t.Fatalf("a due rotation with the key away: %+v %v", rs, err)
	}
	rep, _ = s.Rotations(ctx, testAdmin)
	if a := rotationFor(t, rep, `corp\alice`); a.State != RotationWaitingKey || a.Since == nil || !strings.Contains(a.Detail, "SIM-SCHED") {
		t.Errorf("the report of a rotation waiting for the key: %+v", a)
	}
	if !p.binds(t, "alice", second) {
		t.Fatal("a rotation waiting for the key changed AD")
	}
	plugSim(t, s, k)
	if got := p.typed(t, k, login); got == second || !p.binds(t, "alice", got) {
		t.Fatal("plugged in, the waiting rotation did not run")
	}

	// Two processes, one scheduler.
	s1 := p.service(t, WithSchedule(600*time.Millisecond, time.Hour))
	s2 := p.service(t, WithSchedule(600*time.Millisecond, time.Hour))
	ctx1, stop1 := context.WithCancel(ctx)
	ctx2, stop2 := context.WithCancel(ctx)
	defer stop2()
	done1 := make(chan struct{})
	go func() { defer close(done1); s1.RunScheduler(ctx1) }()
	holder := func() string {
		h, _, err := p.s.st.LeaseHolder(ctx, schedulerLease)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}
	waitFor("the first scheduler", func() bool { return holder() != "" })
	h1 := holder()
	go s2.RunScheduler(ctx2)
	time.Sleep(time.Second) // more than a lease's time: s2 tried, and s1 renewed
	if h := holder(); h != h1 {
		t.Fatalf("the lease moved from %q to %q while its holder ran", h1, h)
	}
	stop1()
	<-done1
	waitFor("the second scheduler to take over", func() bool { h := holder(); return h != "" && h != h1 })
}

func rotationFor(t *testing.T, rep RotationReport, account string) AccountRotation {
	t.Helper()
	for _, a := range rep.Accounts {
		if a.Account == account {
			return a
		}
	}
	t.Fatalf("no %s in the rotation report %+v", account, rep.Accounts)
	return AccountRotation{}
}

// TestSelfServiceAgainstSamba: a person at their key changes their own
// password. On the key only: a password AD does not have is refused and
// the key untouched; the one AD has (changed at a workstation) goes onto
// the key. On both: before the domain's minimum age AD refuses it, the
// refusal is translated and the key untouched; once the age allows it, the
// key and AD both have it. A key with a PIN needs it.
func TestSelfServiceAgainstSamba(t *testing.T) {
	ctx := context.Background()
	p := newPWDomain(t, "PWSELF.KEYDESK.TEST", "")
	s := p.s
	login := p.login("alice")
	k, _ := p.activeKey(t, s, "SIM-SELF", "alice@example.com")
	onKey := p.typed(t, k, login)

	// Alice changed her password at a workstation: AD has another one now.
	const atWorkstation = "Changed-At-A-Workstation-7"
	p.seen = append(p.seen, atWorkstation)
	if err := p.dc.SetPassword(ctx, p.dns["alice"], atWorkstation); err != nil {
		t.Fatal(err)
	}
	self := func(on, current, pin, newPW string) (ChangeResult, error) {
		return s.ChangeOwnPassword(ctx, testHelpdesk, SelfChange{Serial: "SIM-SELF", On: on, Current: current, PIN: pin, New: newPW})
	}
	if _, err := self(SelfKeyOnly, onKey, "", "Not-What-AD-Has-9"); !errors.Is(err, ldapsync.ErrWrongPassword) || !strings.Contains(err.Error(), "the key is untouched") {
		t.Errorf("key only, a password AD does not have: %v", err)
	}
	if _, err := self(SelfKeyOnly, "wrong current", "", atWorkstation); !errors.Is(err, ErrNotYou) {
		t.Errorf("key only, the wrong current password: %v", err)
	}
	if p.typed(t, k, login) != onKey {
		t.Fatal("a refused change touched the key")
	}
	if r, err := self(SelfKeyOnly, onKey, "", atWorkstation); err != nil || !r.Done() || r.Kind != KindSelfKey {
		t.Fatalf("key only: %+v %v", r, err)
	}
	if p.typed(t, k, login) != atWorkstation {
		t.Fatal("the key does not hold the password AD has")
	}

	// On both, before the minimum age (Samba's default, one day, since the
	// workstation change).
	const mine = "My-Own-New-Password-42"
	p.seen = append(p.seen, mine)
	_, err := self(SelfBoth, atWorkstation, "", mine)
	var pe *ldapsync.PasswordError
	if !errors.As(err, &pe) || pe.Reason != ldapsync.RefusedTooYoung || !strings.Contains(err.Error(), "minimum password age") {
		t.Fatalf("both, before the minimum age: %v; want the refusal translated", err)
	}
	if p.typed(t, k, login) != atWorkstation || !p.binds(t, "alice", atWorkstation) {
		t.Fatal("a change AD refused touched the key or AD")
	}
	if l := slotsOf(t, s, k); len(l) != 1 || l[0].Pending {
		t.Fatalf("a change AD refused left a pending password on the key: %+v", l)
	}
	if err := p.dc.Modify(ctx, p.dc.BaseDN, map[string][]string{"minPwdAge": {"0"}}); err != nil {
		t.Fatal(err)
	}
	if r, err := self(SelfBoth, atWorkstation, "", mine); err != nil || !r.Done() {
		t.Fatalf("both: %+v %v", r, err)
	}
	if p.typed(t, k, login) != mine || !p.binds(t, "alice", mine) || p.binds(t, "alice", atWorkstation) {
		t.Fatal("after a change on both, the key and AD must have the new password, and the old must not bind")
	}

	// A key with a PIN: the PIN, not the password.
	row := keyRow(t, s, "SIM-SELF")
	_, sess := simSession(t, k, secretOf(t, s, row, row.SecretSealed))
	if err := sess.SetPIN(ctx, "2468"); err != nil {
		t.Fatal(err)
	}
	if _, err := self(SelfKeyOnly, mine, "", mine); !errors.Is(err, ErrNotYou) || !strings.Contains(err.Error(), "PIN") {
		t.Errorf("a key with a PIN, without it: %v", err)
	}
	if _, err := self(SelfKeyOnly, "", "1357", mine); !errors.Is(err, ErrNotYou) {
		t.Errorf("a wrong PIN: %v", err)
	}
	if info := simInfo(t, k); info.PINRetries != proto.MaxPINRetries-1 {
		t.Errorf("a wrong PIN left %d retries, want %d", info.PINRetries, proto.MaxPINRetries-1)
	}
	if r, err := self(SelfKeyOnly, "", "2468", mine); err != nil || !r.Done() {
		t.Fatalf("the right PIN: %+v %v", r, err)
	}
	if _, err := k.Type("2468"); err != nil {
		t.Fatal(err)
	}
	// While a person's change is under way, neither another drive in this
	// process nor the scheduler of another one takes it over.
	var other []ChangeResult
	var checked bool
	s1 := p.service(t, WithJournalHook(func(id int64, at string) error {
		if at != string(rotation.StepKeyPending) || checked {
			return nil
		}
		checked = true
		r, err := p.s.driveChange(ctx, rotationActor, id, changeInput{})
		if err != nil || r.Step != string(rotation.StepKeyPending) {
			return fmt.Errorf("another process drove the change under way: %+v %v", r, err)
		}
		other, err = p.service(t).RotateDue(ctx, testAdmin, "")
		return err
	}))
	plugSim(t, s1, k)
	const later = "Later-Own-Password-77"
	p.seen = append(p.seen, later)
	if r, err := s1.ChangeOwnPassword(ctx, testHelpdesk, SelfChange{Serial: "SIM-SELF", On: SelfBoth, PIN: "2468", New: later}); err != nil || !r.Done() || !checked {
		t.Fatalf("a change on both with the scheduler of another process running: %+v %v (hook ran: %v)", r, err, checked)
	}
	if len(other) != 0 {
		t.Errorf("the scheduler of another process took part in a person's change: %+v", other)
	}
	if !p.binds(t, "alice", later) {
		t.Fatal("the change on both did not reach AD")
	}
	if acts := auditActions(t, s, `account:corp\alice`); !containsStr(acts, "password.self:failure") {
		t.Errorf("refused self-service changes are not audited: %v", acts)
	}
	p.noPlaintext(t, s)
}

// TestAFineGrainedPolicyIsObeyed: a PSO with a 40-character minimum applies
// to carol: her generated passwords are that long (longer than the domain's
// default of 24 that KeyDesk generates), and a typed one that is shorter is
// refused, naming the PSO, before anything is written.
func TestAFineGrainedPolicyIsObeyed(t *testing.T) {
	ctx := context.Background()
	p := newPWDomain(t, "PWPSO.KEYDESK.TEST", "")
	if _, err := p.dc.AddPSO(ctx, adtest.PSO{Name: "Very Long", MinLength: 40, History: 5, MaxAge: 1000 * 24 * time.Hour, AppliesTo: []string{p.dns["carol"]}}); err != nil {
		t.Fatalf("add a PSO: %v", err)
	}
	login := p.login("carol")
	k, rs := p.activeKey(t, p.s, "SIM-PSO", "carol@example.com")
	if len(rs) != 1 || !rs[0].Done() {
		t.Fatalf("activation under the PSO: %+v", rs)
	}
	pw := p.typed(t, k, login)
	if len(pw) < 40 || !p.binds(t, "carol", pw) {
		t.Fatalf("under a 40-character PSO the generated password has %d characters", len(pw))
	}
	short := "Thirty-Characters-Long-Pass-1!"
	_, err := p.s.SetPassword(ctx, testAdmin, "carol@example.com", "", short)
	var v *rotation.Violation
	if !errors.As(err, &v) || v.Rule != "length" || !strings.Contains(err.Error(), "Very Long") {
		t.Fatalf("a password shorter than the PSO allows: %v", err)
	}
	if p.typed(t, k, login) != pw || !p.binds(t, "carol", pw) {
		t.Fatal("a refused password changed the key or AD")
	}
	p.noPlaintext(t, p.s)
}

// TestOneSlotPerAccountAcrossDomains: an employee with accounts in two
// domains, both in their domain's password group, gets one credential slot
// per account when their key is activated, each with a password its own DC
// accepts.
func TestOneSlotPerAccountAcrossDomains(t *testing.T) {
	ctx := context.Background()
	corp, branch := startDCs(t)
	dir := t.TempDir()
	var conf strings.Builder
	dns := map[string]string{}
	for _, x := range []struct {
		name string
		dc   *adtest.DC
	}{{"corp", corp}, {"branch", branch}} {
		syncDN, err := x.dc.AddGroup(ctx, "Hideez Users Sync", "")
		if err != nil {
			t.Fatal(err)
		}
		pwDN, err := x.dc.AddGroup(ctx, "Security Key Auto Password Change", "")
		if err != nil {
			t.Fatal(err)
		}
		dn, err := x.dc.AddUser(ctx, adtest.User{Sam: "dana", DisplayName: "Dana Two", Mail: "dana@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		dns[x.name] = dn
		for _, g := range []string{syncDN, pwDN} {
			if err := x.dc.AddMembers(ctx, g, dn); err != nil {
				t.Fatal(err)
			}
		}
		pwFile := filepath.Join(dir, x.name+".pw")
		if err := os.WriteFile(pwFile, []byte(x.dc.AdminPassword), 0o600); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&conf, "[[domain]]\nname = %q\nurls = [%q]\nbase_dn = %q\nbind_dn = %q\nbind_password_file = %q\nca_file = %q\n\n",
			x.name, x.dc.LDAPSURL, x.dc.BaseDN, x.dc.AdminUPN, pwFile, x.dc.CAFile)
	}
	s := serviceFor(t, conf.String(), dir)
	mustSync(t, s, SyncRequest{})
	p := &pwDomain{}
	k, rs := p.activeKey(t, s, "SIM-TWO", "dana@example.com")
	if len(rs) != 2 || !rs[0].Done() || !rs[1].Done() {
		t.Fatalf("activation of a key for two managed accounts: %+v", rs)
	}
	creds, err := k.Type("")
	if err != nil || len(creds) != 2 || creds[0].Slot == creds[1].Slot {
		t.Fatalf("the key holds %+v (%v); want two credentials in two slots", creds, err)
	}
	for _, c := range creds {
		name := "corp"
		if strings.Contains(c.Login, strings.ToLower(branch.Domain)) {
			name = "branch"
		}
		d, _ := s.cfg.Domain(name)
		if err := ldapsync.VerifyPassword(ctx, *d, dns[name], c.Password); err != nil {
			t.Errorf("the key's credential for %s (%s) does not bind: %v", name, c.Login, err)
		}
	}
}

// TestAPendingValueThatIsNotTheChangesIsNeverCommitted: a key with a PIN
// does not let KeyDesk read its slots, only list them. A pending value left
// on the key (by a change that was abandoned and never cleaned up) is not
// taken for a new change's own: the rotation writes its password and
// commits that, and the key types a password AD accepts.
func TestAPendingValueThatIsNotTheChangesIsNeverCommitted(t *testing.T) {
	ctx := context.Background()
	p := newPWDomain(t, "PWPIN.KEYDESK.TEST", "")
	k, _ := p.activeKey(t, p.s, "SIM-PIN", "alice@example.com")
	row := keyRow(t, p.s, "SIM-PIN")
	_, sess := simSession(t, k, secretOf(t, p.s, row, row.SecretSealed))
	if err := sess.SetPIN(ctx, "2468"); err != nil {
		t.Fatal(err)
	}
	if err := sess.WriteCredential(ctx, 0, proto.Credential{Login: p.login("alice"), Password: "Stale-Pending-Passw0rd"}); err != nil {
		t.Fatal(err)
	}
	rs, err := p.s.RotatePasswords(ctx, testAdmin, "alice@example.com", "")
	if err != nil || len(rs) != 1 || !rs[0].Done() {
		t.Fatalf("rotation of a key with a PIN and a stale pending value: %+v %v", rs, err)
	}
	creds, err := k.Type("2468")
	if err != nil || len(creds) != 1 {
		t.Fatalf("the key types %d credentials (%v)", len(creds), err)
	}
	p.seen = append(p.seen, creds[0].Password)
	if creds[0].Password == "Stale-Pending-Passw0rd" || !p.binds(t, "alice", creds[0].Password) {
		t.Fatal("the key committed a pending value that was not the rotation's: AD does not accept what it types")
	}
	p.noPlaintext(t, p.s)
}

// TestAKeyOnlyChangeIsCheckedAgainBeforeCommit: the password a person
// typed for their key is checked with AD again just before it is made
// current: if AD's changed meanwhile (a rotation elsewhere), the key keeps
// what it had.
func TestAKeyOnlyChangeIsCheckedAgainBeforeCommit(t *testing.T) {
	ctx := context.Background()
	p := newPWDomain(t, "PWRECHECK.KEYDESK.TEST", "")
	k, _ := p.activeKey(t, p.s, "SIM-RECHECK", "alice@example.com")
	onKey := p.typed(t, k, p.login("alice"))
	const atWorkstation, meanwhile = "Typed-At-A-Workstation-1", "Changed-Meanwhile-Elsewhere-2"
	p.seen = append(p.seen, atWorkstation, meanwhile)
	if err := p.dc.SetPassword(ctx, p.dns["alice"], atWorkstation); err != nil {
		t.Fatal(err)
	}
	s := p.service(t, WithJournalHook(func(_ int64, at string) error {
		if at == string(rotation.StepKeyPending) {
			return p.dc.SetPassword(ctx, p.dns["alice"], meanwhile)
		}
		return nil
	}))
	plugSim(t, s, k)
	_, err := s.ChangeOwnPassword(ctx, testHelpdesk, SelfChange{Serial: "SIM-RECHECK", On: SelfKeyOnly, Current: onKey, New: atWorkstation})
	if err == nil || !strings.Contains(err.Error(), "no longer accepts") {
		t.Fatalf("a key-only change whose password AD no longer has: %v", err)
	}
	if got := p.typed(t, k, p.login("alice")); got != onKey {
		t.Fatal("the key took a password AD no longer accepts")
	}
	if l := slotsOf(t, s, k); len(l) != 1 || l[0].Pending {
		t.Fatalf("the abandoned password is still pending on the key: %+v", l)
	}
}

// TestScheduledRotationsRunBoundedAndIsolated: with concurrency = 2, no
// more than two rotations of the domain are in flight at once (and two
// are); an account whose rotation fails (deleted from AD after the sync)
// does not stop the others, and backs off instead of being retried at once.
func TestScheduledRotationsRunBoundedAndIsolated(t *testing.T) {
	ctx := context.Background()
	p := newPWDomain(t, "PWCONC.KEYDESK.TEST", "[domain.passwords]\nconcurrency = 2\n")
	const n = 6
	dns, keys := p.managedUsers(t, "conc", n)
	// conc000 is deleted from AD: its rotation can only fail.
	if err := p.dc.Delete(ctx, dns[0]); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	inFlight, most := 0, 0
	later := func() time.Time { return time.Now().Add(30 * 24 * time.Hour) }
	s := p.service(t, WithClock(later), WithJournalHook(func(_ int64, at string) error {
		switch at {
		case string(rotation.StepKeyPending):
			mu.Lock()
			inFlight++
			most = max(most, inFlight)
			mu.Unlock()
			// Hold each rotation here until a second one is in flight
			// (or a while has passed: with a limit of one, none comes).
			for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				mu.Lock()
				two := inFlight >= 2
				mu.Unlock()
				if two {
					break
				}
			}
		case string(rotation.StepDone), string(rotation.StepFailed):
			mu.Lock()
			inFlight--
			mu.Unlock()
		}
		return nil
	}))
	for _, k := range keys {
		plugSim(t, s, k)
	}
	rs, err := s.RotateDue(ctx, testAdmin, "")
	done := 0
	for _, r := range rs {
		if r.Done() {
			done++
		}
	}
	if done != n-1 || err == nil || !strings.Contains(err.Error(), `corp\conc000`) {
		t.Fatalf("rotations with one account gone from AD: %d done, err %v; want %d done and conc0's failure", done, err, n-1)
	}
	if most != 2 {
		t.Errorf("at most %d rotations were in flight at once; want exactly the concurrency, 2", most)
	}
	// At once again (the others are due again too, as this service's clock
	// is a month ahead): the failed account backs off.
	rs, err = s.RotateDue(ctx, testAdmin, "")
	if err != nil {
		t.Errorf("right after, the pass tried conc0 again: %v", err)
	}
	for _, r := range rs {
		if r.Account == `corp\conc000` {
			t.Errorf("right after, the pass tried conc0 again: %+v", r)
		}
	}
}
