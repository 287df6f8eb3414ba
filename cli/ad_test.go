package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"keydesk/internal/adtest"
)

type cliDomain struct {
	dc       *adtest.DC
	pwFile   string
	syncDN   string
	aliceDN  string
	outsider string
}

func startCLIDomain(t *testing.T) *cliDomain {
	t.Helper()
	dc := adtest.StartT(t, adtest.Options{Realm: "CLI.KEYDESK.TEST"})
	ctx := context.Background()
	d := &cliDomain{dc: dc}
	var err error
	if d.syncDN, err = dc.AddGroup(ctx, "Hideez Users Sync", ""); err != nil {
		t.Fatal(err)
	}
	pwGroup, err := dc.AddGroup(ctx, "Security Key Auto Password Change", "")
	if err != nil {
		t.Fatal(err)
	}
	dns, err := dc.AddUsers(ctx, []adtest.User{
		{Sam: "alice", DisplayName: "Alice Adams", Mail: "alice@example.com"},
		{Sam: "bob", DisplayName: "Bob \u202eBrown", Mail: "bob@example.com"},
		{Sam: "eve", DisplayName: "Eve Outside", Mail: "eve@example.com"},
	})
	if err != nil {
		t.Fatal(err)
	}
	d.aliceDN, d.outsider = dns[0], dns[2]
	if err := dc.AddMembers(ctx, d.syncDN, dns[0], dns[1]); err != nil {
		t.Fatal(err)
	}
	if err := dc.AddMembers(ctx, pwGroup, dns[0]); err != nil {
		t.Fatal(err)
	}
	d.pwFile = filepath.Join(t.TempDir(), "corp.pw")
	if err := os.WriteFile(d.pwFile, []byte(dc.AdminPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return d
}

// writeConfig writes a configuration file for the domain with the given
// overrides of the domain's keys.
func (d *cliDomain) writeConfig(t *testing.T, over map[string]string) string {
	t.Helper()
	keys := map[string]string{
		"name":               `"corp"`,
		"urls":               fmt.Sprintf("[%q]", d.dc.LDAPSURL),
		"base_dn":            fmt.Sprintf("%q", d.dc.BaseDN),
		"bind_dn":            fmt.Sprintf("%q", d.dc.AdminUPN),
		"bind_password_file": fmt.Sprintf("%q", d.pwFile),
		"ca_file":            fmt.Sprintf("%q", d.dc.CAFile),
		"tls":                `"ldaps"`,
		"connect_timeout":    `"3s"`,
	}
	for k, v := range over {
		if v == "" {
			delete(keys, k)
		} else {
			keys[k] = v
		}
	}
	var sb strings.Builder
	sb.WriteString("[[domain]]\n")
	for _, k := range []string{"name", "urls", "base_dn", "bind_dn", "bind_password_file", "ca_file", "tls", "insecure_plaintext", "sync_group", "connect_timeout"} {
		if v, ok := keys[k]; ok {
			fmt.Fprintf(&sb, "%s = %s\n", k, v)
		}
	}
	path := filepath.Join(t.TempDir(), "keydesk.toml")
	if err := os.WriteFile(path, []byte(sb.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCLIAgainstSamba(t *testing.T) {
	isolate(t)
	d := startCLIDomain(t)
	cfg := d.writeConfig(t, nil)
	data := t.TempDir()

	code, out, errOut := runCLI(t, "--config", cfg, "--data", data, "sync")
	if code != 0 || !strings.Contains(out, "corp") || !strings.Contains(out, "full") {
		t.Fatalf("sync: exit %d\n%s\n%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, d.dc.AdminPassword) {
		t.Fatal("sync output shows the bind password")
	}

	_, out, _ = runCLI(t, "--config", cfg, "--data", data, "employees", "--json")
	var emps []struct {
		Email    *string `json:"email"`
		Name     string  `json:"display_name"`
		Accounts []struct {
			Domain           string  `json:"domain"`
			ObjectGUID       string  `json:"object_guid"`
			SAM              string  `json:"sam_account_name"`
			DN               string  `json:"dn"`
			Enabled          bool    `json:"enabled"`
			InSyncGroup      bool    `json:"in_sync_group"`
			PasswordRotation bool    `json:"password_rotation"`
			LeftReason       *string `json:"left_reason"`
		} `json:"accounts"`
	}
	if err := json.Unmarshal([]byte(out), &emps); err != nil {
		t.Fatalf("employees --json: %v\n%s", err, out)
	}
	if len(emps) != 2 {
		t.Fatalf("%d employees, want alice and bob: %s", len(emps), out)
	}
	alice := emps[0]
	if a := alice.Accounts[0]; alice.Name != "Alice Adams" || a.Domain != "corp" || a.SAM != "alice" || a.DN != d.aliceDN ||
		!a.Enabled || !a.InSyncGroup || !a.PasswordRotation || a.LeftReason != nil || len(a.ObjectGUID) != 36 {
		t.Errorf("alice = %+v", alice)
	}
	_, out, _ = runCLI(t, "--config", cfg, "--data", data, "employees")
	if strings.Contains(out, "\u202e") || !strings.Contains(out, "Bob <U+202E>Brown") {
		t.Errorf("the bidi override in Bob's name reached the terminal:\n%s", out)
	}

	code, out, _ = runCLI(t, "--config", cfg, "--data", data, "doctor")
	if code != 0 {
		t.Errorf("doctor on a good setup exited %d:\n%s", code, out)
	}
	for _, want := range []string{"[PASS] bind password", "[PASS] address " + d.dc.LDAPSURL, "[PASS] TLS " + d.dc.LDAPSURL, "[PASS] bind:", "[PASS] paged results",
		"[PASS] base DN", "[PASS] sync group: CN=Hideez Users Sync", "2 members", "[PASS] password group", "[WARN] password policy hints",
		"[PASS] password policy: minimum length 7, complexity required, history 24, minimum age 1d, maximum age 42d; KeyDesk rotates every 28d (offline: wait)",
		"[PASS] reset password right: a deliberately invalid reset of " + d.aliceDN, "[PASS] integrity", "[PASS] audit log"} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}

	badPW := writeFile(t, filepath.Join(t.TempDir(), "bad.pw"), "Wrong-Passw0rd!", 0o600)
	// World-readable on purpose (it is refused), whatever the umask.
	loosePW := writeFile(t, filepath.Join(t.TempDir(), "loose.pw"), d.dc.AdminPassword, 0o644)
	plainURL := fmt.Sprintf("[%q]", d.dc.LDAPURL)
	// Bob is an ordinary user: he may read the directory, not reset
	// passwords.
	bobPW := writeFile(t, filepath.Join(t.TempDir(), "bob.pw"), d.dc.PasswordFor(adtest.User{Sam: "bob"}), 0o600)
	bobUPN := fmt.Sprintf("%q", "bob@"+d.dc.Domain)
	tests := []struct {
		name string
		over map[string]string
		want []string
	}{
		{"wrong password", map[string]string{"bind_password_file": fmt.Sprintf("%q", badPW)},
			[]string{"[FAIL] bind", "wrong password", "[PASS] bind password"}},
		{"password file others can read", map[string]string{"bind_password_file": fmt.Sprintf("%q", loosePW)},
			[]string{"[FAIL] bind password", "mode 0644", "fix: chmod 600 " + loosePW}},
		{"wrong CA", map[string]string{"ca_file": fmt.Sprintf("%q", adtest.WriteUnrelatedCA(t))},
			[]string{"[FAIL] TLS", "not signed by a trusted CA", "the server presents certificate for"}},
		{"unreachable", map[string]string{"urls": `["ldaps://127.0.0.1:1"]`},
			[]string{"[FAIL] address ldaps://127.0.0.1:1", "nothing listens"}},
		{"plain LDAP refused", map[string]string{"urls": plainURL, "tls": `"none"`, "insecure_plaintext": "true"},
			[]string{"[FAIL] bind", "Strong(er) authentication required", "use ldaps://"}},
		{"missing sync group", map[string]string{"sync_group": `"No Such Group"`},
			[]string{"[PASS] base DN", "[FAIL] sync group", `create the group "No Such Group"`}},
		{"service account without the reset right", map[string]string{"bind_dn": bobUPN, "bind_password_file": fmt.Sprintf("%q", bobPW)},
			[]string{"[PASS] bind", "[FAIL] reset password right: the service account may not reset the password of " + d.aliceDN, `delegate "Reset password"`}},
		{"wrong base DN", map[string]string{"base_dn": `"OU=Nowhere,DC=nowhere,DC=test"`},
			[]string{"[FAIL] base DN: OU=Nowhere,DC=nowhere,DC=test does not exist on this DC", "set base_dn"}},
		{"malformed base DN", map[string]string{"base_dn": `"DC=corp,,DC=test"`},
			[]string{`[FAIL] base DN: "DC=corp,,DC=test" is not written as a DN`, "set base_dn"}},
		{"missing CA file", map[string]string{"ca_file": `"/nonexistent/corp-ca.pem"`},
			[]string{"[FAIL] CA file: ca_file: open /nonexistent/corp-ca.pem", "fix: put the PEM file of the CA that issued the DCs' certificates at /nonexistent/corp-ca.pem"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := d.writeConfig(t, tt.over)
			code, out, _ := runCLI(t, "--config", c, "--data", t.TempDir(), "doctor")
			if code == 0 {
				t.Errorf("doctor exited 0 on a broken setup:\n%s", out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("doctor output lacks %q:\n%s", w, out)
				}
			}
			// No advice is given twice.
			seen := map[string]bool{}
			for _, l := range strings.Split(out, "\n") {
				if fix, ok := strings.CutPrefix(strings.TrimSpace(l), "fix: "); ok && fix != "as above" {
					if seen[fix] {
						t.Errorf("doctor gives the same advice twice: %q\n%s", fix, out)
					}
					seen[fix] = true
				}
			}
		})
	}

	t.Run("sync refuses a password file others can read", func(t *testing.T) {
		c := d.writeConfig(t, map[string]string{"bind_password_file": fmt.Sprintf("%q", loosePW)})
		code, out, _ := runCLI(t, "--config", c, "--data", t.TempDir(), "sync")
		if code == 0 || !strings.Contains(out, "chmod 600 "+loosePW) || !strings.Contains(out, "nothing was changed") {
			t.Errorf("sync with a loose password file: exit %d\n%s", code, out)
		}
		if strings.Contains(out, d.dc.AdminPassword) {
			t.Error("the output shows the password")
		}
	})

	t.Run("sync --json reports a failed domain and exits 1", func(t *testing.T) {
		c := d.writeConfig(t, map[string]string{"bind_password_file": fmt.Sprintf("%q", badPW)})
		code, out, _ := runCLI(t, "--config", c, "--data", t.TempDir(), "sync", "--json")
		var rep struct {
			Domains []struct {
				OK    bool   `json:"ok"`
				Error string `json:"error"`
				Hint  string `json:"hint"`
			} `json:"domains"`
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("sync --json: %v\n%s", err, out)
		}
		if code != 1 || len(rep.Domains) != 1 || rep.Domains[0].OK || !strings.Contains(rep.Domains[0].Hint, "wrong password") {
			t.Errorf("exit %d, report %+v", code, rep)
		}
	})
}

// TestPasswordsFromTheCommandLineAgainstSamba: a script activates a
// simulated key for alice (in the password group), logs in as alice with
// what the key types, rotates, sets and generates her password, and reads
// the schedule; the old password never binds, and no password shows in the
// audit export.
func TestPasswordsFromTheCommandLineAgainstSamba(t *testing.T) {
	isolate(t)
	d := startCLIDomain(t)
	cfg := d.writeConfig(t, nil)
	data, dir := t.TempDir(), t.TempDir()
	run := func(stdin string, args ...string) string {
		t.Helper()
		return mustRun(t, stdin, append([]string{"--config", cfg, "--data", data, "--sim-keys", dir}, args...)...)
	}
	binds := func(login, pw string) bool {
		t.Helper()
		l, err := d.dc.DialAs(context.Background(), login, pw)
		if err != nil {
			return false
		}
		l.Close()
		return true
	}
	typed := func(serial string) (string, string) {
		t.Helper()
		out := strings.TrimSpace(run("", "keys", "simulate", "type", serial, "--dir", dir))
		f := strings.Split(out, "\t")
		if len(f) != 3 || f[0] != "0" {
			t.Fatalf("simulate type printed %q; want one slot: 0, login, password", out)
		}
		return f[1], f[2]
	}
	run("", "sync")
	serial := strings.TrimSpace(run("", "keys", "simulate", "new", "--dir", dir))
	run("", "keys") // plugged in: registered
	m := codeRe.FindStringSubmatch(run("", "keys", "assign", serial, "alice@example.com"))
	if m == nil {
		t.Fatal("assign printed no code")
	}
	if out := run(m[1]+"\n", "keys", "activate", serial); !strings.Contains(out, "is active") || !strings.Contains(out, `corp\alice: new password on the key and in AD`) {
		t.Fatalf("activate:\n%s", out)
	}
	login, pw1 := typed(serial)
	if !binds(login, pw1) || binds(login, d.dc.PasswordFor(adtest.User{Sam: "alice"})) {
		t.Fatal("after activation, the key's password must bind and the one before must not")
	}
	if out := run("", "rotate", "alice@example.com"); !strings.Contains(out, `corp\alice: new password on the key and in AD`) {
		t.Fatalf("rotate:\n%s", out)
	}
	_, pw2 := typed(serial)
	if pw2 == pw1 || !binds(login, pw2) || binds(login, pw1) {
		t.Fatal("after rotate, the key's new password must bind and the previous must not")
	}
	const set = "Typed-By-An-Admin-42!"
	run(set+"\n", "password", "set", "alice@example.com")
	if _, pw := typed(serial); pw != set || !binds(login, set) {
		t.Fatal("password set did not put the typed password on the key and in AD")
	}
	if rc, _, errOut := runCLIIn(t, "short\n", "--config", cfg, "--data", data, "--sim-keys", dir, "password", "set", "alice@example.com"); rc == 0 || !strings.Contains(errOut, "nothing was changed") {
		t.Errorf("a password the policy refuses: exit %d %q", rc, errOut)
	}
	out := run("", "password", "generate", "alice@example.com", "--reveal")
	_, pw3 := typed(serial)
	if !strings.Contains(out, pw3) || !binds(login, pw3) {
		t.Fatalf("generate --reveal did not show the key's new password:\n%s", out)
	}
	var rep struct {
		Accounts []struct {
			Account string `json:"account"`
			State   string `json:"state"`
			NextDue string `json:"next_due"`
		} `json:"accounts"`
		Recent []struct {
			Kind string `json:"kind"`
			Step string `json:"step"`
		} `json:"recent"`
	}
	if err := json.Unmarshal([]byte(run("", "rotations", "--json")), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Accounts) != 1 || rep.Accounts[0].Account != `corp\alice` || rep.Accounts[0].State != "ok" || len(rep.Recent) != 4 {
		t.Errorf("rotations --json: %+v", rep)
	}
	if out := run("", "rotate", "--due"); !strings.Contains(out, "no rotation is due") {
		t.Errorf("rotate --due with nothing due:\n%s", out)
	}
	audit := run("", "audit", "export")
	for _, pw := range []string{pw1, pw2, set, pw3} {
		if strings.Contains(audit, pw) {
			t.Error("the audit export holds a password")
		}
	}
	if !strings.Contains(audit, "password.reveal") {
		t.Error("the reveal is not in the audit log")
	}
}

// TestAKilledRotationConvergesAgainstSamba kills keydesk (a binary built
// with the tests' crash hook) at each point of a rotation: after each
// recorded step, and after each effect on the key or AD before its step
// is recorded. The next keydesk run that sees the key finishes the change:
// the key's password binds and the one before does not.
func TestAKilledRotationConvergesAgainstSamba(t *testing.T) {
	bin := buildBinary(t, "crashhook")
	isolate(t)
	d := startCLIDomain(t)
	cfg := d.writeConfig(t, nil)
	data, dir := t.TempDir(), t.TempDir()
	base := []string{"--config", cfg, "--data", data, "--sim-keys", dir}
	run := func(stdin string, args ...string) string {
		t.Helper()
		return mustRun(t, stdin, append(base, args...)...)
	}
	run("", "sync")
	serial := strings.TrimSpace(run("", "keys", "simulate", "new", "--dir", dir))
	run("", "keys")
	m := codeRe.FindStringSubmatch(run("", "keys", "assign", serial, "alice@example.com"))
	run(m[1]+"\n", "keys", "activate", serial)
	typed := func() string {
		t.Helper()
		f := strings.Split(strings.TrimSpace(run("", "keys", "simulate", "type", serial, "--dir", dir)), "\t")
		return f[2]
	}
	login := "alice@" + d.dc.Domain
	binds := func(pw string) bool {
		l, err := d.dc.DialAs(context.Background(), login, pw)
		if err == nil {
			l.Close()
		}
		return err == nil
	}
	for _, point := range []string{"planned", "key-written", "key-pending", "ad-sending", "ad-sent", "ad-written", "key-committed"} {
		t.Run(point, func(t *testing.T) {
			before := typed()
			cmd := exec.Command(bin, append(base, "rotate", "alice@example.com")...)
			cmd.Env = append(os.Environ(), "KEYDESK_CRASH_AT="+point)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 97 {
				t.Fatalf("keydesk was not killed at %s: %v\n%s", point, err, out)
			}
			// The next run that sees the key plugged in takes the change up.
			run("", "keys")
			after := typed()
			if after == before || !binds(after) || binds(before) {
				t.Fatalf("killed at %s, then run again: the key's password must be new and bind, and the one before must not", point)
			}
			var rep struct {
				Accounts []struct{ State string } `json:"accounts"`
			}
			if err := json.Unmarshal([]byte(run("", "rotations", "--json")), &rep); err != nil || len(rep.Accounts) != 1 || rep.Accounts[0].State != "ok" {
				t.Errorf("rotations after the recovery: %+v %v", rep, err)
			}
		})
	}
}
