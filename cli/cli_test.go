package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"keydesk/internal/dbtamper"
	"keydesk/store"
)

// runCLI runs the command line in-process and returns its exit code and
// output.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// isolate points the XDG directories at a temporary home, so that tests
// never read or write the real configuration or data.
func isolate(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(home, "config"))
	t.Setenv("XDG_DATA_HOME", filepath.Join(home, "data"))
	t.Setenv("KEYDESK_CONFIG", "")
	// The tests are the owner of their data, not someone who ran sudo.
	t.Setenv("SUDO_UID", "")
	t.Setenv("SUDO_USER", "")
	return home
}

func TestHelpListsEveryCommand(t *testing.T) {
	isolate(t)
	code, out, _ := runCLI(t, "--help")
	if code != 0 {
		t.Fatalf("--help exited %d", code)
	}
	for _, cmd := range []string{"sync", "employees", "audit", "doctor"} {
		if !strings.Contains(out, "  "+cmd+" ") {
			t.Errorf("--help does not list %s:\n%s", cmd, out)
		}
	}
	for _, args := range [][]string{{"sync", "--help"}, {"employees", "add", "--help"}, {"audit", "verify", "--help"}, {"doctor", "--help"}} {
		if code, out, _ := runCLI(t, args...); code != 0 || !strings.Contains(out, "Usage:") {
			t.Errorf("%v: exit %d, output %q", args, code, out)
		}
	}
}

func TestConfigErrorsNameFileAndField(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	tests := []struct {
		name, content string
		want          []string
	}{
		{"unknown key", "[[domain]]\nname = \"corp\"\nbind_pw = \"x\"\n", []string{"bad.toml", "unknown key", "bind_pw"}},
		{"missing urls", "[[domain]]\nname = \"corp\"\n", []string{"bad.toml", "urls", "required"}},
		{"syntax", "[[domain]\n", []string{"bad.toml", "line ", "expected"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "bad.toml")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			code, _, errOut := runCLI(t, "--config", path, "--data", t.TempDir(), "sync")
			if code == 0 {
				t.Fatal("sync with a broken configuration succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("error %q does not mention %q", errOut, w)
				}
			}
		})
	}
	code, _, errOut := runCLI(t, "--config", filepath.Join(dir, "missing.toml"), "sync")
	if code == 0 || !strings.Contains(errOut, "does not exist") {
		t.Errorf("missing explicit config: exit %d, %q", code, errOut)
	}
	code, _, errOut = runCLI(t, "sync")
	if code == 0 || !strings.Contains(errOut, "no domains are configured") {
		t.Errorf("sync without configuration: exit %d, %q", code, errOut)
	}
}

func TestManualEmployeesAndAudit(t *testing.T) {
	home := isolate(t)
	data := filepath.Join(home, "data", "keydesk")
	if code, out, errOut := runCLI(t, "employees", "add", "--email", "Guard@Example.com", "--name", "Night \x1b[31m\u009bGuard\u202e"); code != 0 {
		t.Fatalf("add: %d %s %s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(data, store.FileName)); err != nil {
		t.Fatalf("the default data directory was not used: %v", err)
	}
	code, _, errOut := runCLI(t, "employees", "add", "--email", "guard@example.com", "--name", "Twice")
	if code == 0 || !strings.Contains(errOut, "already employee") {
		t.Errorf("duplicate add: exit %d, %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, "employees", "add", "--email", "not-an-email", "--name", "X"); code == 0 || !strings.Contains(errOut, "not an address") {
		t.Errorf("bad email: exit %d, %q", code, errOut)
	}
	_, out, _ := runCLI(t, "employees")
	if strings.ContainsAny(out, "\x1b\u009b\u202e") || !strings.Contains(out, `Night \x1b[31m\u009bGuard<U+202E>`) {
		t.Errorf("the table must show the escape sequence as harmless text:\n%q", out)
	}
	_, out, _ = runCLI(t, "employees", "--json")
	if strings.ContainsAny(out, "\x1b\u202e\u009b") || !strings.Contains(out, `\u202e`) || !strings.Contains(out, `\u009b`) {
		t.Errorf("--json passes control or bidi characters through unescaped:\n%q", out)
	}
	var emps []map[string]any
	if err := json.Unmarshal([]byte(out), &emps); err != nil || len(emps) != 1 {
		t.Fatalf("employees --json = %q (%v)", out, err)
	}
	for _, k := range []string{"id", "email", "display_name", "status", "source", "flags", "accounts"} {
		if _, ok := emps[0][k]; !ok {
			t.Errorf("JSON lacks %q: %v", k, emps[0])
		}
	}
	if emps[0]["source"] != "manual" || emps[0]["status"] != "active" {
		t.Errorf("employee %v: want manual, active", emps[0])
	}
	if code, out, _ := runCLI(t, "employees", "remove", "guard@example.com"); code != 0 || !strings.Contains(out, "removed") {
		t.Errorf("remove: %d %q", code, out)
	}
	_, out, _ = runCLI(t, "employees", "--json", "--filter", "guard")
	if !strings.Contains(out, `"status": "removed"`) {
		t.Errorf("the removed employee is not kept as removed: %s", out)
	}

	code, out, _ = runCLI(t, "audit", "verify")
	if code != 0 || !strings.Contains(out, "intact: 3 entries") {
		t.Errorf("audit verify: %d %q", code, out)
	}
	_, out, _ = runCLI(t, "audit", "export")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("audit export gave %d lines, want 3: %q", len(lines), out)
	}
	var genesis, first map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &genesis); err != nil || genesis["action"] != "audit.genesis" || genesis["mac"] == "" {
		t.Errorf("the log does not start with its keyed genesis entry: %q (%v)", lines[0], err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &first); err != nil || first["action"] != "employee.add" || first["hash"] == "" || first["mac"] == "" {
		t.Errorf("first audit line %q (%v)", lines[1], err)
	}

	// Tamper with the database behind KeyDesk's back: verify must notice.
	tamper(t, filepath.Join(data, store.FileName))
	code, out, _ = runCLI(t, "audit", "verify")
	if code == 0 || !strings.Contains(out, "entry 1 was edited") {
		t.Errorf("audit verify after tampering: %d %q", code, out)
	}
}

// tamper edits the first audit entry directly in SQLite, dropping the
// append-only trigger first as an attacker with file access could.
func tamper(t *testing.T, path string) {
	t.Helper()
	dbtamper.Exec(t, path, `DROP TRIGGER audit_log_no_update`, `UPDATE audit_log SET actor = 'someone-else' WHERE seq = 1`)
}

// writeFile writes a test file with an exact mode, whatever the umask.
func writeFile(t *testing.T, path, content string, mode os.FileMode) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestOperatorsAndRefusals configures the OS user running the test as an
// operator of each role and checks what the command line lets them do; a
// refusal says which role is needed and is in the audit log.
func TestOperatorsAndRefusals(t *testing.T) {
	isolate(t)
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir, data := t.TempDir(), t.TempDir()
	conf := func(role string) string {
		return writeFile(t, filepath.Join(dir, role+".toml"), fmt.Sprintf("[[operator]]\nname = \"op-%s\"\nrole = %q\nos_user = %q\n", role, role, me.Username), 0o600)
	}
	admin, helpdesk, auditor := conf("admin"), conf("helpdesk"), conf("auditor")
	as := func(cfg string, args ...string) (int, string, string) {
		return runCLI(t, append([]string{"--config", cfg, "--data", data}, args...)...)
	}
	if code, out, errOut := as(admin, "keys", "add", "K1", "K2"); code != 0 {
		t.Fatalf("admin keys add: %d %s %s", code, out, errOut)
	}
	if code, _, errOut := as(helpdesk, "keys", "add", "K3"); code != 0 {
		t.Errorf("helpdesk keys add: %d %s", code, errOut)
	}
	code, _, errOut := as(helpdesk, "keys", "compromise", "K1", "--reason", "lost", "--confirm", "K1")
	if code == 0 || !strings.Contains(errOut, "op-helpdesk (role helpdesk) may not key.compromise") || !strings.Contains(errOut, "needs the role admin") {
		t.Errorf("helpdesk compromise: exit %d, %q; want a refusal naming the admin role", code, errOut)
	}
	code, _, errOut = as(auditor, "keys", "add", "K4")
	if code == 0 || !strings.Contains(errOut, "may not key.add") || !strings.Contains(errOut, "admin or helpdesk") {
		t.Errorf("auditor keys add: exit %d, %q", code, errOut)
	}
	if code, out, _ := as(auditor, "keys"); code != 0 || !strings.Contains(out, "3 keys") {
		t.Errorf("auditor keys: exit %d, %q; an auditor reads everything", code, out)
	}
	code, out, errOut := as(auditor, "audit", "export")
	if code != 0 {
		t.Fatalf("auditor audit export: %d %s", code, errOut)
	}
	var denied []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("audit export line %q: %v", line, err)
		}
		if e["outcome"] == "denied" {
			denied = append(denied, e)
		}
		if e["action"] == "key.add" && e["outcome"] == "success" && (e["role"] == "" || !strings.Contains(fmt.Sprint(e["auth"]), "uid=")) {
			t.Errorf("entry %v does not record the operator's role and authentication", e)
		}
	}
	if len(denied) != 2 || denied[0]["action"] != "key.compromise" || denied[0]["actor"] != "op-helpdesk" || denied[0]["target"] != "key:K1" ||
		denied[1]["action"] != "key.add" || denied[1]["actor"] != "op-auditor" {
		t.Errorf("audited refusals %v; want helpdesk's compromise of K1, then the auditor's key.add", denied)
	}
	if code, _, errOut := as(helpdesk, "audit", "export"); code == 0 || !strings.Contains(errOut, "may not audit.export") {
		t.Errorf("helpdesk audit export: exit %d, %q", code, errOut)
	}

	// Through sudo -u OWNER, the operator is whoever ran sudo.
	if nobody, err := user.Lookup("nobody"); err == nil {
		t.Setenv("SUDO_UID", nobody.Uid)
		t.Setenv("SUDO_USER", "nobody")
		viaSudo := writeFile(t, filepath.Join(dir, "sudo.toml"), "[[operator]]\nname = \"night-auditor\"\nrole = \"auditor\"\nos_user = \"nobody\"\n", 0o600)
		code, _, errOut := runCLI(t, "--config", viaSudo, "--data", data, "keys", "add", "K9")
		if code == 0 || !strings.Contains(errOut, "night-auditor (role auditor) may not key.add") {
			t.Errorf("through sudo as nobody: exit %d, %q; want the auditor's refusal", code, errOut)
		}
		_, out, _ := runCLI(t, "--config", viaSudo, "--data", data, "audit", "export")
		if !strings.Contains(out, "uid="+nobody.Uid+"(nobody) by sudo as uid=") {
			t.Errorf("the audit log does not record who ran sudo:\n%s", out)
		}
		// A configuration that the person could have written is not believed.
		loose := writeFile(t, filepath.Join(dir, "loose.toml"), "[[operator]]\nname = \"x\"\nrole = \"admin\"\nos_user = \"nobody\"\n", 0o666)
		if code, _, errOut := runCLI(t, "--config", loose, "--data", data, "keys", "add", "K9"); code == 0 || !strings.Contains(errOut, "cannot be believed") {
			t.Errorf("operators from a world-writable configuration: exit %d, %q", code, errOut)
		}
		t.Setenv("SUDO_UID", "")
		t.Setenv("SUDO_USER", "")
	}

	// An OS user who is not listed is refused, and told how to be added.
	other := writeFile(t, filepath.Join(dir, "other.toml"), "[[operator]]\nname = \"someone\"\nrole = \"admin\"\nos_user = \"someone-else\"\n", 0o600)
	code, _, errOut = runCLI(t, "--config", other, "--data", data, "employees")
	if code == 0 || !strings.Contains(errOut, "is not a KeyDesk operator") || !strings.Contains(errOut, "os_user = \""+me.Username+"\"") {
		t.Errorf("unlisted user: exit %d, %q", code, errOut)
	}
}

// TestErrorsAreSanitisedAtExit: an error that carries untrusted text (here
// what was typed, in real life a DC's certificate name or a directory
// string) reaches stderr as harmless text.
func TestErrorsAreSanitisedAtExit(t *testing.T) {
	isolate(t)
	code, _, errOut := runCLI(t, "employees", "remove", "evil\x1b]0;owned\x07\u202e@example.com")
	if code == 0 {
		t.Fatal("removing an unknown employee succeeded")
	}
	if strings.ContainsAny(errOut, "\x1b\x07\u202e") || !strings.Contains(errOut, `evil\x1b]0;owned\x07<U+202E>@example.com`) {
		t.Errorf("stderr carries raw control characters: %q", errOut)
	}
}

// TestAuditLogAttacks plays someone who can write the database file but
// has not the master key: each way they could hide history is refused by
// audit verify, which names what is wrong and exits 1.
func TestAuditLogAttacks(t *testing.T) {
	tests := []struct {
		name   string
		attack func(t *testing.T, data string)
		want   []string
	}{
		{"an entry edited", func(t *testing.T, data string) {
			dbtamper.Exec(t, filepath.Join(data, store.FileName), `DROP TRIGGER audit_log_no_update`, `UPDATE audit_log SET target = 'employee:99' WHERE seq = 2`)
		}, []string{"BROKEN at entry 2", "entry 2 was edited"}},
		{"the end cut off and the database's head moved back", func(t *testing.T, data string) {
			dbtamper.Exec(t, filepath.Join(data, store.FileName), `DROP TRIGGER audit_log_no_delete`,
				`DELETE FROM audit_log WHERE seq = 3`, `UPDATE audit_head SET seq = 2, hash = (SELECT hash FROM audit_log WHERE seq = 2)`)
		}, []string{"the log ends at entry 2 but entry 3 was written"}},
		{"the whole log emptied", func(t *testing.T, data string) {
			dbtamper.Exec(t, filepath.Join(data, store.FileName), `DROP TRIGGER audit_log_no_delete`, `DELETE FROM audit_log`, `DELETE FROM audit_head`)
		}, []string{"the log was emptied"}},
		{"the head outside the database deleted", func(t *testing.T, data string) {
			if err := os.Remove(filepath.Join(data, "audit.head")); err != nil {
				t.Fatal(err)
			}
		}, []string{"audit.head) is missing"}},
		{"the audit key deleted", func(t *testing.T, data string) {
			dbtamper.Exec(t, filepath.Join(data, store.FileName), `DELETE FROM master_state WHERE name = 'audit-key'`)
		}, []string{"no longer in the database (it was deleted or replaced)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			home := isolate(t)
			data := filepath.Join(home, "data", "keydesk")
			for _, email := range []string{"a@example.com", "b@example.com"} {
				if code, _, errOut := runCLI(t, "employees", "add", "--email", email, "--name", "X"); code != 0 {
					t.Fatal(errOut)
				}
			}
			if code, out, _ := runCLI(t, "audit", "verify"); code != 0 || !strings.Contains(out, "intact: 3 entries") {
				t.Fatalf("before the attack: %d %q", code, out)
			}
			tt.attack(t, data)
			code, out, _ := runCLI(t, "audit", "verify")
			if code != 1 {
				t.Errorf("audit verify exited %d after the attack, want 1:\n%s", code, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("audit verify does not say %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestAuditEntriesGoToTheSystemLog: with [audit] syslog, each entry's
// number, hash and MAC reach the system log (here a datagram socket of the
// test's, as syslogd's /dev/log is), and nothing else of the entry.
func TestAuditEntriesGoToTheSystemLog(t *testing.T) {
	isolate(t)
	sock := filepath.Join(t.TempDir(), "log.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cfg := writeFile(t, filepath.Join(t.TempDir(), "k.toml"), fmt.Sprintf("[audit]\nsyslog = true\nsyslog_address = \"unixgram:%s\"\n", sock), 0o600)
	if code, _, errOut := runCLI(t, "--config", cfg, "employees", "add", "--email", "ann@example.com", "--name", "Ann \u202eSecret"); code != 0 {
		t.Fatal(errOut)
	}
	var got []string
	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	for len(got) < 2 {
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("read the system log: %v (got %q)", err, got)
		}
		got = append(got, string(buf[:n]))
	}
	if !strings.Contains(got[0], "audit seq=1 action=audit.genesis") || !strings.Contains(got[1], "audit seq=2 action=employee.add outcome=success hash=") ||
		!strings.Contains(got[1], " mac=") {
		t.Errorf("system log lines %q", got)
	}
	for _, l := range got {
		if strings.Contains(l, "ann@example.com") || strings.Contains(l, "Secret") {
			t.Errorf("the system log got the entry's details: %q", l)
		}
	}
}
