package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func runCLIIn(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

var codeRe = regexp.MustCompile(`\n    (\d{3} \d{3})\n`)

// mustRun runs keydesk with stdin and returns its output; a non-zero exit
// fails the test.
func mustRun(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	code, out, errOut := runCLIIn(t, stdin, args...)
	if code != 0 {
		t.Fatalf("keydesk %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// TestKeyLifecycleFromTheCommandLine drives every key flow with a simulated
// key from the command line, as a script would.
func TestKeyLifecycleFromTheCommandLine(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	serial := strings.TrimSpace(mustRun(t, "", "keys", "simulate", "new", "--dir", dir))
	if !strings.HasPrefix(serial, "SIM-") {
		t.Fatalf("simulate new printed %q", serial)
	}
	mustRun(t, "", "employees", "add", "--email", "ann@example.com", "--name", "Ann")
	if out := mustRun(t, "", "--sim-keys", dir, "keys"); !regexp.MustCompile(serial + `\s+ready\s+-\s+\S+\s+\S+\s+yes`).MatchString(out) {
		t.Fatalf("the plugged simulated key is not listed as ready and plugged in:\n%s", out)
	}
	out := mustRun(t, "", "keys", "assign", serial, "ann@example.com")
	m := codeRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("assign did not print a code:\n%s", out)
	}
	code := m[1]
	wrong := "000000"
	if strings.ReplaceAll(code, " ", "") == wrong {
		wrong = "000001"
	}
	rc, _, errOut := runCLIIn(t, wrong+"\n", "--sim-keys", dir, "keys", "activate")
	if rc == 0 || !strings.Contains(errOut, "wrong activation code: 2 attempts left") {
		t.Errorf("a wrong code: exit %d, %q", rc, errOut)
	}
	if out := mustRun(t, code+"\n", "--sim-keys", dir, "keys", "activate", serial); !strings.Contains(out, "is active") {
		t.Errorf("activate: %s", out)
	}
	if out := mustRun(t, "", "keys", "simulate", "read", serial, "--dir", dir); !strings.Contains(out, "state:     linked") || !strings.Contains(out, "holds KeyDesk's secret") {
		t.Errorf("simulate read:\n%s", out)
	}
	mustRun(t, "", "keys", "suspend", serial, "--reason", "on leave")
	out = mustRun(t, "", "keys", "unlock", serial)
	if codeRe.FindStringSubmatch(out) == nil {
		t.Errorf("unlock did not print a new code:\n%s", out)
	}
	if rc, _, errOut := runCLIIn(t, "", "keys", "compromise", serial, "--reason", "stolen"); rc == 0 || !strings.Contains(errOut, "--confirm "+serial) {
		t.Errorf("compromise without confirmation: exit %d %q", rc, errOut)
	}
	if out := mustRun(t, "", "keys", "compromise", serial, "--reason", "stolen", "--confirm", serial); !strings.Contains(out, "compromised (stolen)") {
		t.Errorf("compromise: %s", out)
	}
	if rc, _, errOut := runCLIIn(t, "", "keys", "unlock", serial); rc == 0 || !strings.Contains(errOut, "compromised is final") {
		t.Errorf("unlock of a compromised key: exit %d %q", rc, errOut)
	}
	out = mustRun(t, "", "audit", "export")
	for _, action := range []string{"key.register", "key.assign", `"outcome":"failure"`, "key.activate", "key.suspend", "key.unlock", "key.compromise"} {
		if !strings.Contains(out, action) {
			t.Errorf("the audit log lacks %s", action)
		}
	}
	if strings.Contains(out, code) || strings.Contains(out, strings.ReplaceAll(code, " ", "")) {
		t.Error("the audit log holds the activation code")
	}
	if out := mustRun(t, "", "audit", "verify"); !strings.Contains(out, "intact") {
		t.Errorf("audit verify: %s", out)
	}
}

// TestRekeyFromTheCommandLine: keydesk admin rekey re-seals everything, a
// code issued before still works, and a master key file swapped behind
// KeyDesk's back is refused rather than replaced.
func TestRekeyFromTheCommandLine(t *testing.T) {
	home := isolate(t)
	data := filepath.Join(home, "data", "keydesk")
	dir := t.TempDir()
	serial := strings.TrimSpace(mustRun(t, "", "keys", "simulate", "new", "--dir", dir))
	mustRun(t, "", "employees", "add", "--email", "ann@example.com", "--name", "Ann")
	mustRun(t, "", "--sim-keys", dir, "keys")
	code := codeRe.FindStringSubmatch(mustRun(t, "", "keys", "assign", serial, "ann@example.com"))[1]

	out := mustRun(t, "", "admin", "rekey")
	if !strings.Contains(out, "under a new master key") || !strings.Contains(out, "master.key.") {
		t.Errorf("admin rekey said:\n%s", out)
	}
	if out := mustRun(t, code+"\n", "--sim-keys", dir, "keys", "activate", serial); !strings.Contains(out, "is active") {
		t.Errorf("a code issued before the rekey: %s", out)
	}

	// Someone replaces the key file: KeyDesk refuses instead of going on.
	os.Remove(filepath.Join(data, "master.key"))
	rc, _, errOut := runCLIIn(t, "", "keys")
	if rc == 0 || !strings.Contains(errOut, "is missing") || !strings.Contains(errOut, "restore the file from backup") {
		t.Errorf("with the key file gone: exit %d, %q", rc, errOut)
	}
	if _, err := os.Stat(filepath.Join(data, "master.key")); err == nil {
		t.Error("a new master key was created")
	}
}

// TestACloneIsRefusedFromTheCommandLine: a script makes a clone that claims
// a real key's serial (keys simulate new --claim-serial); plugged in, it is
// listed, in JSON too, and audited as an unverified device, and the real key
// is untouched. doctor says which makers are trusted and is loud about
// attestation not being required.
func TestACloneIsRefusedFromTheCommandLine(t *testing.T) {
	home := isolate(t)
	dir := t.TempDir()
	real := strings.TrimSpace(mustRun(t, "", "keys", "simulate", "new", "--dir", dir))
	mustRun(t, "", "--sim-keys", dir, "keys") // registers and pins the real key
	os.Rename(filepath.Join(dir, real+".simkey"), filepath.Join(dir, real+".simkey.unplugged"))
	out := mustRun(t, "", "keys", "simulate", "new", "--dir", dir, "--claim-serial", real)
	m := regexp.MustCompile(`^(SIM-\S+) \(claims serial ` + real + `\)\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("simulate new --claim-serial printed %q", out)
	}
	clone := m[1]
	code, out, errOut := runCLIIn(t, "", "--sim-keys", dir, "keys")
	if code != 0 {
		t.Fatalf("keys: exit %d\n%s", code, errOut)
	}
	why := "it claims serial " + real + ", but its attestation certificate names " + clone
	if !strings.Contains(out, "UNVERIFIED DEVICE plugged in, claiming serial "+real+": "+why) || !strings.Contains(errOut, "did not prove it") {
		t.Errorf("keys does not show the clone as unverified:\n%s\n%s", out, errOut)
	}
	if !regexp.MustCompile(real + `\s+ready\s+-\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+verified [0-9a-f]{16}\n`).MatchString(out) {
		t.Errorf("the real key is not listed ready, unplugged and verified:\n%s", out)
	}
	out = mustRun(t, "", "--sim-keys", dir, "keys", "--json")
	var ks []map[string]any
	if err := json.Unmarshal([]byte(out), &ks); err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, k := range ks {
		if k["status"] == "unverified-device" && k["serial"] == real && strings.Contains(k["unverified"].(string), why) {
			found = true
		}
		if k["status"] == "ready" && k["serial"] == real && (k["plugged_in"] != false || k["attestation"] != "verified") {
			t.Errorf("the real key in JSON: %v", k)
		}
	}
	if !found {
		t.Errorf("keys --json does not list the unverified device:\n%s", out)
	}
	if out := mustRun(t, "", "audit", "export"); !strings.Contains(out, `"action":"key.unverified-device"`) || !strings.Contains(out, clone) {
		t.Errorf("the audit log does not record the unverified device")
	}

	// doctor: the makers trusted, and attestation not required, loudly.
	cfg := filepath.Join(home, "keydesk.toml")
	writeFile(t, cfg, "[keys]\nrequire_attestation = false\ntrusted_makers = [\""+filepath.Join(dir, "maker-ca.pem")+"\"]\n", 0o600)
	_, out, _ = runCLIIn(t, "", "--config", cfg, "doctor")
	for _, want := range []string{"KeyDesk Simulation Maker CA", "NOT REQUIRED ([keys] require_attestation = false)"} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor does not say %q:\n%s", want, out)
		}
	}
	writeFile(t, cfg, "[keys]\ntrusted_makers = [\""+filepath.Join(dir, "missing.pem")+"\"]\n", 0o600)
	if code, _, errOut := runCLIIn(t, "", "--config", cfg, "keys"); code == 0 || !strings.Contains(errOut, "trusted_makers") || !strings.Contains(errOut, "missing.pem") {
		t.Errorf("a missing maker file: exit %d, %q", code, errOut)
	}
}
