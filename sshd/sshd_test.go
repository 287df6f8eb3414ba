package sshd_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/ssh"
	"github.com/charmbracelet/wish"
	"github.com/charmbracelet/x/ansi"
	gossh "golang.org/x/crypto/ssh"

	"keydesk/app"
	"keydesk/config"
	"keydesk/internal/builtinad"
	"keydesk/internal/simtest"
	"keydesk/keys"
	"keydesk/keys/device"
	"keydesk/keys/proto"
	"keydesk/sshd"
	"keydesk/store"
	"keydesk/ui"
)

// newKey is a fresh ed25519 key: its signer and its authorized_keys line.
func newKey(t *testing.T, comment string) (gossh.Signer, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return signer, strings.TrimSpace(string(gossh.MarshalAuthorizedKey(signer.PublicKey()))) + " " + comment
}

func TestParseOperators(t *testing.T) {
	_, annKey := newKey(t, "ann@laptop")
	_, bobKey := newKey(t, "bob@desk")
	_, shared := newKey(t, "shared")
	ops := []config.Operator{
		{Name: "ann", Role: "admin", AuthorizedKeys: []string{annKey, "ssh-ed25519 not-base64!"}},
		{Name: "bob", Role: "helpdesk", AuthorizedKeys: []string{`from="10.0.0.1" ` + bobKey, bobKey, shared}},
		{Name: "eve", Role: "auditor", AuthorizedKeys: []string{shared}},
	}
	keys, problems := sshd.ParseOperators(ops)
	var got []string
	for _, k := range keys {
		got = append(got, k.Operator.Name+":"+k.Comment)
	}
	if strings.Join(got, ",") != "ann:ann@laptop,bob:bob@desk" {
		t.Errorf("keys %v; want ann's and bob's good keys only (the shared one belongs to neither)", got)
	}
	want := []string{
		`operator "ann": authorized_keys line 2: not an OpenSSH public key`,
		`operator "bob": authorized_keys line 1: options (from="10.0.0.1") are not supported`,
		`operator "eve": authorized_keys line 1: key SHA256:`,
	}
	if len(problems) != len(want) {
		t.Fatalf("problems %v; want %d", problems, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(problems[i].Error(), w) {
			t.Errorf("problem %d: %q; want it to start %q", i+1, problems[i].Error(), w)
		}
	}
}

func TestHostKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, sshd.HostKeyFile)
	pem1, fp1, err := sshd.LoadOrCreateHostKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("host key mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	pem2, fp2, err := sshd.LoadOrCreateHostKey(path)
	if err != nil || fp2 != fp1 || string(pem2) != string(pem1) || !strings.HasPrefix(fp1, "SHA256:") {
		t.Fatalf("the host key was not reused: %s then %s (%v)", fp1, fp2, err)
	}
	os.Chmod(path, 0o644)
	if _, _, err := sshd.LoadOrCreateHostKey(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a host key others can read: %v", err)
	}
	link := filepath.Join(dir, "link")
	os.Symlink(path, link)
	if _, _, err := sshd.LoadOrCreateHostKey(link); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a symlink as host key: %v", err)
	}
}

// testService is an application layer on a fresh database, with a master
// key and no domains.
func testService(t *testing.T) (*app.Service, *store.Store) {
	t.Helper()
	return testServiceWith(t)
}

// testServiceWith is testService with more options.
func testServiceWith(t *testing.T, opts ...app.Option) (*app.Service, *store.Store) {
	t.Helper()
	cfg, err := config.Parse("test.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var mk keys.MasterKey
	rand.Read(mk[:])
	return app.New(cfg, st, append([]app.Option{app.WithMasterKey(mk)}, opts...)...), st
}

// testServerWith serves svc's kiosks (their keys) to the given operators,
// with no console, and returns its address.
func testServerWith(t *testing.T, ops []config.Operator, svc *app.Service) string {
	t.Helper()
	return serve(t, ops, 4, func(next ssh.Handler) ssh.Handler { return next }, svc)
}

// testServer serves a handler (instead of the console) on loopback to the
// given operators, and returns its address.
func testServer(t *testing.T, ops []config.Operator, maxSessions int, console wish.Middleware) string {
	t.Helper()
	return serve(t, ops, maxSessions, console, nil)
}

func serve(t *testing.T, ops []config.Operator, maxSessions int, console wish.Middleware, sink device.Sink) string {
	t.Helper()
	keys, problems := sshd.ParseOperators(ops)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	hostKey, _, err := sshd.LoadOrCreateHostKey(filepath.Join(t.TempDir(), sshd.HostKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.SSH{Listen: "127.0.0.1:0", IdleTimeout: config.Duration{Duration: time.Minute}, MaxTimeout: config.Duration{Duration: time.Hour}, MaxSessions: maxSessions}
	srv, err := sshd.New(sshd.Options{Config: cfg, HostKey: hostKey, Keys: keys, Console: console, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ctx, l, 0) }()
	t.Cleanup(func() { cancel(); <-done })
	return l.Addr().String()
}

// dial connects with auth and opens a session with a pty; out collects
// what the server writes.
func dial(addr string, auth ...gossh.AuthMethod) (*gossh.Client, *gossh.Session, error) {
	c, err := gossh.Dial("tcp", addr, &gossh.ClientConfig{User: "x", Auth: auth, HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second})
	if err != nil {
		return nil, nil, err
	}
	s, err := c.NewSession()
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	if err := s.RequestPty("xterm-256color", 40, 120, gossh.TerminalModes{}); err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, s, nil
}

// TestTheRoleComesFromTheProvenKey: each operator's key gives that
// operator, with their role, the key's fingerprint and the session in the
// audit's authentication; a key of no operator and a password get nothing.
// (A client that offers one key and proves another is tested with OpenSSH,
// in cli's TestServeOverSSHInTmux.)
func TestTheRoleComesFromTheProvenKey(t *testing.T) {
	admin, adminLine := newKey(t, "ann")
	hd, hdLine := newKey(t, "bob")
	stranger, _ := newKey(t, "eve")
	ops := []config.Operator{{Name: "ann", Role: "admin", AuthorizedKeys: []string{adminLine}}, {Name: "bob", Role: "helpdesk", AuthorizedKeys: []string{hdLine}}}
	addr := testServer(t, ops, 4, func(next ssh.Handler) ssh.Handler {
		return func(sess ssh.Session) {
			a, ok := sshd.ActorOf(sess)
			fmt.Fprintf(sess, "actor=%s role=%s ok=%v auth=%s\n", a.Name, a.Role, ok, a.Auth)
			next(sess)
		}
	})
	who := func(auth ...gossh.AuthMethod) (string, error) {
		c, s, err := dial(addr, auth...)
		if err != nil {
			return "", err
		}
		defer c.Close()
		out, err := s.CombinedOutput("")
		return string(out), err
	}
	out, err := who(gossh.PublicKeys(hd))
	if err != nil || !strings.Contains(out, "actor=bob role=helpdesk ok=true auth=ssh-key "+gossh.FingerprintSHA256(hd.PublicKey())+" via ssh 127.0.0.1:") {
		t.Errorf("bob's key: %q %v", out, err)
	}
	out, err = who(gossh.PublicKeys(admin))
	if err != nil || !strings.Contains(out, "actor=ann role=admin ok=true") {
		t.Errorf("the admin's key: %q %v", out, err)
	}
	if _, err := who(gossh.PublicKeys(stranger)); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Errorf("a key of no operator: %v", err)
	}
	if _, err := who(gossh.Password("hunter2")); err == nil {
		t.Error("a password was accepted")
	}
}

func TestSessionLimit(t *testing.T) {
	k, line := newKey(t, "ann")
	hold := make(chan struct{})
	addr := testServer(t, []config.Operator{{Name: "ann", Role: "admin", AuthorizedKeys: []string{line}}}, 1, func(next ssh.Handler) ssh.Handler {
		return func(sess ssh.Session) {
			io.WriteString(sess, "in")
			<-hold
		}
	})
	c1, s1, err := dial(addr, gossh.PublicKeys(k))
	if err != nil {
		t.Fatal(err)
	}
	defer c1.Close()
	out1, _ := s1.StdoutPipe()
	if err := s1.Shell(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(out1, buf); err != nil || string(buf) != "in" {
		t.Fatalf("first session: %q %v", buf, err)
	}
	c2, s2, err := dial(addr, gossh.PublicKeys(k))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	out, _ := s2.CombinedOutput("")
	if !strings.Contains(string(out), "too many sessions") {
		t.Errorf("a session beyond the limit got %q", out)
	}
	close(hold)
}

// TestManyConsoleSessionsLeaveNothingBehind opens and closes 200 console
// sessions (the real console, over a real SSH connection) and counts the
// goroutines before and after.
func TestManyConsoleSessionsLeaveNothingBehind(t *testing.T) {
	if testing.Short() {
		t.Skip("200 SSH sessions: not in -short")
	}
	k, line := newKey(t, "ann")
	ops := []config.Operator{{Name: "ann", Role: "admin", AuthorizedKeys: []string{line}}}
	svc, _ := testService(t)
	addr := testServer(t, ops, 8, ui.SSHMiddleware(svc, sshd.ActorOf))
	session := func() error {
		c, s, err := dial(addr, gossh.PublicKeys(k))
		if err != nil {
			return err
		}
		defer c.Close()
		out, err := s.StdoutPipe()
		if err != nil {
			return err
		}
		if err := s.Shell(); err != nil {
			return err
		}
		buf := make([]byte, 4096)
		var seen strings.Builder
		for !strings.Contains(seen.String(), "Employees") {
			n, err := out.Read(buf)
			if err != nil {
				return fmt.Errorf("read the console: %w (got %q)", err, seen.String())
			}
			seen.Write(buf[:n])
		}
		return nil
	}
	if err := session(); err != nil { // warm up: pools, the store
		t.Fatal(err)
	}
	settle := func() int {
		time.Sleep(200 * time.Millisecond)
		return runtime.NumGoroutine()
	}
	before := settle()
	for i := range 200 {
		if err := session(); err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
	}
	var after int
	// A leak never ends; a busy machine (race detector, CI) may take a
	// while to finish the loads that 200 closed consoles started.
	for deadline := time.Now().Add(45 * time.Second); time.Now().Before(deadline); {
		if after = settle(); after <= before+2 {
			break
		}
	}
	if after > before+2 {
		buf := make([]byte, 1<<20)
		n := runtime.Stack(buf, true)
		t.Fatalf("%d goroutines before 200 sessions, %d after:\n%s", before, after, buf[:n])
	}
}

// TestAHelpdeskSessionIsRefusedByTheApplicationLayer: whatever a helpdesk
// session asks for, the application layer checks its role: marking a key
// compromised or revealing a password is refused, and each refusal is
// audited with the operator, the key's fingerprint and the session.
func TestAHelpdeskSessionIsRefusedByTheApplicationLayer(t *testing.T) {
	hd, hdLine := newKey(t, "bob")
	svc, st := testService(t)
	ops := []config.Operator{{Name: "hd.bob", Role: "helpdesk", AuthorizedKeys: []string{hdLine}}}
	addr := testServer(t, ops, 4, func(next ssh.Handler) ssh.Handler {
		return func(sess ssh.Session) {
			a, _ := sshd.ActorOf(sess)
			ctx := sess.Context()
			err1 := svc.CompromiseKey(ctx, a, "K1", keys.ReasonStolen, "")
			_, err2 := svc.RevealPassword(ctx, a, "ann@example.com", "")
			fmt.Fprintf(sess, "compromise: %v\nreveal: %v\n", errors.Is(err1, app.ErrPermission), errors.Is(err2, app.ErrPermission))
			next(sess)
		}
	})
	c, s, err := dial(addr, gossh.PublicKeys(hd))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out, _ := s.CombinedOutput("")
	if !strings.Contains(string(out), "compromise: true") || !strings.Contains(string(out), "reveal: true") {
		t.Fatalf("a helpdesk session: %q; want both refused for permission", out)
	}
	var denied []string
	fp := gossh.FingerprintSHA256(hd.PublicKey())
	st.AuditEntries(context.Background(), store.AuditFilter{}, func(e store.AuditEntry) error {
		if e.Outcome == store.OutcomeDenied && e.Actor == "hd.bob" && e.Role == "helpdesk" && strings.HasPrefix(e.Auth, "ssh-key "+fp+" via ssh 127.0.0.1:") {
			denied = append(denied, e.Action)
		}
		return nil
	})
	if strings.Join(denied, ",") != "key.compromise,password.reveal" {
		t.Errorf("audited refusals %v; want key.compromise and password.reveal, naming hd.bob, his key and his session", denied)
	}
}

// TestAKioskKeyGetsTheKioskScreen: the session of a kiosk's key shows the
// kiosk ("Plug in your key."), not the console, and names no one.
func TestAKioskKeyGetsTheKioskScreen(t *testing.T) {
	kiosk, kioskLine := newKey(t, "kiosk-lobby")
	svc, _ := testService(t)
	if _, err := svc.AddEmployee(context.Background(), app.Actor{Name: "t", Role: app.RoleAdmin}, "ann@example.com", "Ann Elsewhere"); err != nil {
		t.Fatal(err)
	}
	ops := []config.Operator{{Name: "lobby", Role: "kiosk", AuthorizedKeys: []string{kioskLine}}}
	addr := testServer(t, ops, 4, ui.SSHMiddleware(svc, sshd.ActorOf))
	c, s, err := dial(addr, gossh.PublicKeys(kiosk))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out, err := s.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	var seen strings.Builder
	buf := make([]byte, 4096)
	for !strings.Contains(seen.String(), "Plug in your key.") {
		n, err := out.Read(buf)
		if err != nil {
			t.Fatalf("read the kiosk: %v (got %q)", err, seen.String())
		}
		seen.Write(buf[:n])
	}
	if strings.Contains(seen.String(), "Ann Elsewhere") || strings.Contains(seen.String(), "Employees") {
		t.Errorf("the kiosk's session shows the console or an employee: %q", seen.String())
	}
}

// screenReader collects what a console session draws.
type screenReader struct {
	mu   sync.Mutex
	seen strings.Builder
}

func (r *screenReader) run(out io.Reader) {
	buf := make([]byte, 4096)
	for {
		n, err := out.Read(buf)
		r.mu.Lock()
		r.seen.Write(buf[:n])
		r.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// waitFor waits for what to show on the screen. A loaded CI run (the race
// detector, the ui package's consoles alongside) once took more than 20 s
// for a 200-person sync to show, so it waits a minute; a sync that failed
// fails at once, and a timeout shows the screen's last text.
func (r *screenReader) waitFor(t *testing.T, what string) {
	t.Helper()
	var seen string
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		r.mu.Lock()
		seen = r.seen.String()
		r.mu.Unlock()
		if strings.Contains(seen, what) {
			return
		}
		if i := strings.Index(seen, "✗ failed"); i >= 0 {
			t.Fatalf("waiting for %q, the screen shows a failure: %q", what, tail(ansi.Strip(seen[i:]), 300))
		}
	}
	t.Fatalf("timed out waiting for %q on the screen; its last text: %q", what, tail(ansi.Strip(seen), 600))
}

// tail is s's last n bytes at most.
func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestTwoAdminsSeeEachOthersSync: two console sessions over SSH on one
// server; a sync one admin starts (S) shows in the other's console.
func TestTwoAdminsSeeEachOthersSync(t *testing.T) {
	dir, err := builtinad.Start(context.Background(), builtinad.Options{Users: 200})
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	var cfgText strings.Builder
	for _, d := range dir.Domains() {
		pw := filepath.Join(t.TempDir(), d.Name+".pw")
		if err := os.WriteFile(pw, []byte(d.AdminPassword), 0o600); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&cfgText, "[[domain]]\nname = %q\nurls = [%q]\nbase_dn = %q\nbind_dn = %q\nbind_password_file = %q\nca_file = %q\n\n",
			d.Name, d.LDAPSURL, d.BaseDN, d.AdminUPN, pw, dir.CAFile())
	}
	cfg, err := config.Parse(filepath.Join(t.TempDir(), "k.toml"), []byte(cfgText.String()))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc := app.New(cfg, st)
	ann, annLine := newKey(t, "ann")
	cid, cidLine := newKey(t, "cid")
	ops := []config.Operator{{Name: "ann", Role: "admin", AuthorizedKeys: []string{annLine}}, {Name: "cid", Role: "admin", AuthorizedKeys: []string{cidLine}}}
	addr := testServer(t, ops, 4, ui.SSHMiddleware(svc, sshd.ActorOf))
	open := func(k gossh.Signer) (io.Writer, *screenReader) {
		c, s, err := dial(addr, gossh.PublicKeys(k))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		out, _ := s.StdoutPipe()
		in, _ := s.StdinPipe()
		if err := s.Shell(); err != nil {
			t.Fatal(err)
		}
		r := &screenReader{}
		go r.run(out)
		r.waitFor(t, "Employees (0)")
		return in, r
	}
	_, annScreen := open(ann)
	cidKeys, cidScreen := open(cid)
	io.WriteString(cidKeys, "S")
	// The sync cid started shows in ann's console: its result, and its
	// entry under cid's name in the activity log. (Whether a frame shows it
	// running depends on how fast it runs.)
	annScreen.waitFor(t, "● ok")
	annScreen.waitFor(t, "cid sync")
	cidScreen.waitFor(t, "● ok")
}

// TestKeysCrossOnlyAKiosksConnection: a kiosk's connection carries a
// simulated key plugged in at it to the server, which proves it (its
// attestation, over the channel) and sees it plugged in at that kiosk's
// place, and unplugged when the channel closes; an admin's connection may
// not open a key channel.
func TestKeysCrossOnlyAKiosksConnection(t *testing.T) {
	kiosk, kioskLine := newKey(t, "lobby")
	admin, adminLine := newKey(t, "ann")
	svc, _ := testServiceWith(t, app.WithTrustedMaker(simtest.Maker(t).Cert()))
	ops := []config.Operator{{Name: "lobby", Role: "kiosk", AuthorizedKeys: []string{kioskLine}}, {Name: "ann", Role: "admin", AuthorizedKeys: []string{adminLine}}}
	addr := testServerWith(t, ops, svc)

	connect := func(k gossh.Signer) *gossh.Client {
		c, err := gossh.Dial("tcp", addr, &gossh.ClientConfig{User: "x", Auth: []gossh.AuthMethod{gossh.PublicKeys(k)}, HostKeyCallback: gossh.InsecureIgnoreHostKey()})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	adminConn := connect(admin)
	defer adminConn.Close()
	if _, _, err := adminConn.OpenChannel(sshd.KeyChannel, nil); err == nil || !strings.Contains(err.Error(), "only a kiosk's key may carry keys") {
		t.Errorf("an admin's connection opened a key channel: %v", err)
	}

	kioskConn := connect(kiosk)
	defer kioskConn.Close()
	fwd := &sshd.Forwarder{Conn: kioskConn}
	sk := simtest.NewKey(t, "SIM-AT-KIOSK")
	plug := device.Plug{ID: "sim:1", Kind: "simulated", Place: device.PlaceLocal, Open: func() (proto.Transport, error) { return sk.Plug(), nil }}
	if _, err := fwd.KeyConnected(context.Background(), plug); err != nil {
		t.Fatal(err)
	}
	reader := app.Actor{Name: "t", Role: app.RoleAdmin}
	waitKiosk := func(want bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			// Plugged in, and handled: registered with what it proved.
			v, err := svc.Key(context.Background(), reader, "SIM-AT-KIOSK")
			if err == nil && v.PluggedIn == want && (!want || v.Attestation != "") {
				return
			}
		}
		t.Fatalf("the key at the kiosk: plugged in %v never came", want)
	}
	waitKiosk(true)
	v, err := svc.Key(context.Background(), reader, "SIM-AT-KIOSK")
	if err != nil || v.Attestation != "verified" {
		t.Errorf("the key at the kiosk was not proved over the channel: %+v %v", v, err)
	}
	fwd.KeyDisconnected("sim:1")
	waitKiosk(false)
}

// TestAKioskDroppedMidActivation: the kiosk's connection drops while the
// server is giving its key its secret; the key stays reserved with its
// code valid, and plugged in again through a new connection the same code
// activates it, as after a local unplug.
func TestAKioskDroppedMidActivation(t *testing.T) {
	kiosk, kioskLine := newKey(t, "lobby")
	svc, _ := testServiceWith(t, app.WithTrustedMaker(simtest.Maker(t).Cert()))
	admin := app.Actor{Name: "t", Role: app.RoleAdmin}
	ctx := context.Background()
	if _, err := svc.AddEmployee(ctx, admin, "ann@example.com", "Ann"); err != nil {
		t.Fatal(err)
	}
	addr := testServerWith(t, []config.Operator{{Name: "lobby", Role: "kiosk", AuthorizedKeys: []string{kioskLine}}}, svc)
	sk := simtest.NewKey(t, "SIM-DROP")
	plug := device.Plug{ID: "sim:drop", Kind: "simulated", Place: device.PlaceLocal, Open: func() (proto.Transport, error) { return sk.Plug(), nil }}
	connect := func() (*gossh.Client, *sshd.Forwarder) {
		c, err := gossh.Dial("tcp", addr, &gossh.ClientConfig{User: "x", Auth: []gossh.AuthMethod{gossh.PublicKeys(kiosk)}, HostKeyCallback: gossh.InsecureIgnoreHostKey()})
		if err != nil {
			t.Fatal(err)
		}
		f := &sshd.Forwarder{Conn: c}
		if _, err := f.KeyConnected(ctx, plug); err != nil {
			t.Fatal(err)
		}
		// Plugged in, and handled: registered.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if v, err := svc.Key(ctx, admin, "SIM-DROP"); err == nil && v.PluggedIn {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the key at the kiosk never arrived")
			}
		}
		return c, f
	}
	c1, _ := connect()
	code, err := svc.AssignKey(ctx, admin, "SIM-DROP", "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	release := sk.Hold() // the key stops before each command: the conversation hangs
	done := make(chan error, 1)
	go func() {
		_, err := svc.ActivateKey(ctx, admin, "SIM-DROP", code.String())
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	c1.Close() // the kiosk's connection drops
	release()
	if err := <-done; err == nil || !strings.Contains(err.Error(), "stays reserved") {
		t.Fatalf("activation cut by a dropped kiosk: %v", err)
	}
	v, err := svc.Key(ctx, admin, "SIM-DROP")
	if err != nil || v.Status != "reserved" || v.CodeExpiresAt == nil {
		t.Fatalf("after the drop the key is %+v (%v); want reserved with its code", v, err)
	}
	for deadline := time.Now().Add(10 * time.Second); len(svc.PluggedKeys()) > 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the dropped kiosk's key is still plugged in")
		}
	}
	c2, _ := connect()
	defer c2.Close()
	if res, err := svc.ActivateKey(ctx, admin, "SIM-DROP", code.String()); err != nil || !res.Activated {
		t.Fatalf("the same code through a new connection: %+v %v", res, err)
	}
}
