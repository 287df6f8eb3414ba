package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	seen  []string // every password the test saw, for the plaintext search
}

// newPWDomain starts a DC and syncs users alice and carol (in the password
// group), bob (not), and dan (in the password group, in a second domain
// section of the test's choosing later). extra is TOML for
// [domain.passwords].
func newPWDomain(t *testing.T, realm, extra string) *pwDomain {
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
func (p *pwDomain) service(t *testing.T, opts ...Option) *Service {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(p.dir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return New(p.cfg, st, append([]Option{WithMasterKey(p.mk), WithTrustedMaker(simtest.Maker(t).Cert())}, opts...)...)
}

// binds reports whether AD accepts the password for the user.
func (p *pwDomain) binds(t *testing.T, sam, pw string) bool {
	t.Helper()
	err := ldapsync.VerifyPassword(context.Background(), p.dom, p.dns[sam], pw)
	if err != nil && !errors.Is(err, ldapsync.ErrWrongPassword) {
		t.Fatalf("bind as %s: %v", sam, err)
	}
	return err == nil
}

// typed is the password key k types for login (its current value), read
// as the key would type it.
func (p *pwDomain) typed(t *testing.T, k *simkey.Key, login string) string {
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
func (p *pwDomain) activeKey(t *testing.T, s *Service, serial, email string) (*simkey.Key, []ChangeResult) {
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
	hay = append(hay, audit.String())
	if len(p.seen) == 0 {
		t.Fatal("no password was seen: the search would prove nothing")
	}
	for _, pw := range p.seen {
		for i, h := range hay {
			if strings.Contains(h, pw) {
				t.Errorf("a password the test saw is in plain text in %s", []string{"the database", "its WAL", "the audit export"}[i])
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
	login := "alice@" + strings.ToLower(p.dc.Domain)
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
