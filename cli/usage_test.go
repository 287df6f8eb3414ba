package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"keydesk/internal/builtinad"
	"keydesk/ldapsync"
)

// TestUsageErrors: a wrong command line exits 2, says what was wrong, the
// usage line, and what was meant; nothing runs.
func TestUsageErrors(t *testing.T) {
	isolate(t)
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"snyc"}, []string{`unknown command "snyc"`, "did you mean: sync?", "usage: keydesk"}},
		{[]string{"keys", "asign"}, []string{`unknown command "asign" for "keydesk keys"`, "did you mean: assign?"}},
		{[]string{"keys", "assign"}, []string{"keys assign needs 2 arguments, and got none", "usage: keydesk keys assign SERIAL EMPLOYEE"}},
		{[]string{"keys", "assign", "a", "b", "c"}, []string{"keys assign needs 2 arguments, but got 3"}},
		{[]string{"invite"}, []string{"invite needs at least 1 argument, and got none", "usage: keydesk invite [--resend] EMAIL..."}},
		{[]string{"sync", "corp"}, []string{`sync takes no arguments, but got "corp"`, `run "keydesk sync --help" for more`}},
		{[]string{"sync", "--ful"}, []string{"unknown flag: --ful", "usage: keydesk sync"}},
		{[]string{"rotate"}, []string{"name the employees to rotate, or --due"}},
	} {
		code, out, errOut := runCLI(t, tt.args...)
		if code != exitUsage || out != "" {
			t.Errorf("keydesk %s: exit %d, stdout %q; want exit %d and nothing on stdout", strings.Join(tt.args, " "), code, out, exitUsage)
		}
		for _, w := range tt.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("keydesk %s: stderr lacks %q:\n%s", strings.Join(tt.args, " "), w, errOut)
			}
		}
	}
}

func TestVersion(t *testing.T) {
	isolate(t)
	re := regexp.MustCompile(`^keydesk \S+, commit \S+( \(modified\))?, go1\.\d+(\.\d+)? [a-z0-9]+/[a-z0-9]+\n$`)
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, _ := runCLI(t, args...)
		if code != 0 || !re.MatchString(out) {
			t.Errorf("keydesk %s: exit %d, %q", args[0], code, out)
		}
	}
}

// TestSyncExitCodes: 0 when every domain synced, 3 when one of two failed,
// 1 when both did, 4 when removals were held.
func TestSyncExitCodes(t *testing.T) {
	isolate(t)
	ctx := context.Background()
	srv, err := builtinad.Start(ctx, builtinad.Options{Empty: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cfg := "[sync]\nremoval_guard_share = 0.1\nremoval_guard_minimum = 3\n\n"
	dir := t.TempDir()
	for _, d := range srv.Domains() {
		pw := writeFile(t, filepath.Join(dir, d.Name+".pw"), d.AdminPassword, 0o600)
		cfg += fmt.Sprintf("[[domain]]\nname = %q\nurls = [%q]\nbase_dn = %q\nbind_dn = %q\nbind_password_file = %q\nca_file = %q\nconnect_timeout = \"2s\"\n\n",
			d.Name, d.LDAPSURL, d.BaseDN, d.AdminUPN, pw, srv.CAFile())
	}
	corp, branch := srv.Domains()[0], srv.Domains()[1]
	var users []builtinad.User
	for i := range 20 {
		users = append(users, builtinad.User{Sam: fmt.Sprintf("u%02d", i), DisplayName: fmt.Sprintf("User %d", i), Mail: fmt.Sprintf("u%02d@example.com", i)})
	}
	dns, err := corp.AddUsers(ctx, users)
	if err != nil {
		t.Fatal(err)
	}
	if err := corp.AddMembers(ctx, corp.SyncGroupDN, dns...); err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, filepath.Join(dir, "keydesk.toml"), cfg, 0o600)
	sync := func() int {
		code, _, _ := runCLI(t, "--config", path, "--data", dir, "sync")
		return code
	}
	if code := sync(); code != 0 {
		t.Fatalf("a good sync: exit %d", code)
	}
	if err := corp.RemoveMembers(ctx, corp.SyncGroupDN, dns[:5]...); err != nil {
		t.Fatal(err)
	}
	if code := sync(); code != exitHeld {
		t.Errorf("a sync that held removals: exit %d, want %d", code, exitHeld)
	}
	branch.Stop()
	if code := sync(); code != exitPartial {
		t.Errorf("one domain of two failing: exit %d, want %d", code, exitPartial)
	}
	corp.Stop()
	if code := sync(); code != exitFailed {
		t.Errorf("both domains failing: exit %d, want %d", code, exitFailed)
	}
}

// TestReadOnlyCommandsCreateNothing: where there is no database yet, the
// commands that only read say what to run first and leave no file behind.
func TestReadOnlyCommandsCreateNothing(t *testing.T) {
	home := isolate(t)
	for _, args := range [][]string{{"employees"}, {"employees", "--json"}, {"keys"}, {"audit", "verify"}, {"audit", "export"}, {"invitations"}, {"rotations"}, {"doctor"}, {"--help"}, {"keys", "--help"}} {
		code, out, errOut := runCLI(t, args...)
		switch {
		case args[len(args)-1] == "--help":
			if code != 0 {
				t.Errorf("keydesk %s: exit %d", strings.Join(args, " "), code)
			}
		case args[0] == "doctor":
			if !strings.Contains(out, "none yet in") || !strings.Contains(out, "run keydesk sync") {
				t.Errorf("doctor without a database:\n%s", out)
			}
		default:
			if code != exitFailed || !strings.Contains(errOut, "nothing here yet") || !strings.Contains(errOut, "run keydesk sync") {
				t.Errorf("keydesk %s: exit %d\n%s", strings.Join(args, " "), code, errOut)
			}
		}
	}
	var files []string
	filepath.WalkDir(home, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if len(files) != 0 {
		t.Errorf("read-only commands left files: %v", files)
	}
}

func TestInitWritesASampleOnce(t *testing.T) {
	home := isolate(t)
	path := filepath.Join(home, "etc", "keydesk.toml")
	code, out, errOut := runCLI(t, "--config", path, "init")
	if code != 0 || !strings.Contains(out, "wrote "+path) {
		t.Fatalf("init: exit %d\n%s%s", code, out, errOut)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the sample: %v %v", fi, err)
	}
	before, _ := os.ReadFile(path)
	if code, _, errOut := runCLI(t, "--config", path, "init"); code != exitFailed || !strings.Contains(errOut, "exists already") {
		t.Errorf("a second init: exit %d %s", code, errOut)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Error("a second init changed the file")
	}
	// The sample is a configuration doctor reads (its domain is an
	// example, so the domain's checks fail, naming it).
	_, out, _ = runCLI(t, "--config", path, "doctor")
	if !strings.Contains(out, "domain corp") {
		t.Errorf("doctor on the sample:\n%s", out)
	}
}

func TestPlural(t *testing.T) {
	for _, tt := range []struct {
		n    int
		what string
		want string
	}{{0, "key", "0 keys"}, {1, "key", "1 key"}, {2, "entry", "2 entries"}, {1, "entry", "1 entry"}, {3, "key", "3 keys"},
		{2, "address", "2 addresses"}, {2, "operator key", "2 operator keys"}, {5, "removal", "5 removals"}, {2, "employee", "2 employees"}} {
		if got := plural(tt.n, tt.what); got != tt.want {
			t.Errorf("plural(%d, %q) = %q, want %q", tt.n, tt.what, got, tt.want)
		}
	}
}

// TestEveryListingTakesJSON: each command that lists or reports accepts
// --json and prints valid JSON.
func TestEveryListingTakesJSON(t *testing.T) {
	isolate(t)
	mustRun(t, "", "employees", "add", "--email", "ann@example.com", "--name", "Ann")
	for _, args := range [][]string{{"employees"}, {"keys"}, {"invitations"}, {"rotations"}, {"operators"}, {"audit", "verify"}, {"doctor"}} {
		_, out, errOut := runCLI(t, append(args, "--json")...)
		if !json.Valid([]byte(out)) {
			t.Errorf("keydesk %s --json printed no JSON:\n%s%s", strings.Join(args, " "), out, errOut)
		}
	}
}

func TestProgressLine(t *testing.T) {
	ds := map[string]ldapsync.Progress{"corp": {Phase: "membership", Pages: 3, Entries: 1500}, "branch": {Phase: "attributes", Pages: 1, Entries: 1}}
	got := progressLine(ds, 0, 200)
	if want := "⠋ syncing branch: attributes, 1 page, 1 entry · corp: membership, 3 pages, 1500 entries"; got != want {
		t.Errorf("progressLine = %q, want %q", got, want)
	}
	if got := progressLine(ds, 1, 40); len([]rune(got)) > 39 || !strings.HasSuffix(got, "…") {
		t.Errorf("at 40 columns: %q (%d runes)", got, len([]rune(got)))
	}
	// Not a terminal: no progress at all.
	if newSyncProgress(&strings.Builder{}) != nil {
		t.Error("a progress line for a writer that is not a terminal")
	}
}
