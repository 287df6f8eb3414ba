package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"keydesk/enroll"
	"keydesk/internal/qrtest"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"keydesk/config"
	"keydesk/internal/dbtamper"
	"keydesk/keys"
	"keydesk/ldapsync"
	"keydesk/store"
)

// tmux drives a real terminal: the binary runs in a tmux session, keys are
// typed with send-keys and the screen is read with capture-pane.
type tmux struct {
	t      *testing.T
	socket string
	name   string
}

// requireTmux skips without tmux, unless the full suite is required (CI).
func requireTmux(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("KEYDESK_REQUIRE_AD") == "1" || os.Getenv("CI") != "" {
			t.Fatalf("tmux is required for the terminal tests: %v (apt-get install tmux)", err)
		}
		t.Skipf("tmux is not installed: %v", err)
	}
}

// buildBinary builds keydesk for the test. Call it before isolate, which
// moves HOME and with it Go's build and module caches.
func buildBinary(t *testing.T, tags ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "keydesk")
	args := []string{"build", "-o", bin}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	out, err := exec.Command("go", append(args, "keydesk")...).CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func startTmux(t *testing.T, w, h int, env []string, args ...string) *tmux {
	t.Helper()
	tm := &tmux{t: t, socket: fmt.Sprintf("keydesk-test-%d", os.Getpid()), name: fmt.Sprintf("kd%d", time.Now().UnixNano())}
	cmdline := strings.Join(append(append(env, "SUDO_UID=", "SUDO_USER="), args...), " ")
	newSession := []string{"-L", tm.socket, "new-session", "-d", "-s", tm.name, "-x", fmt.Sprint(w), "-y", fmt.Sprint(h), "env TERM=xterm-256color " + cmdline + "; sleep 30"}
	// The previous test's last session killed, its server exits: a new
	// session started meanwhile finds it going ("server exited
	// unexpectedly") and is started again, on a new server.
	for try := 1; ; try++ {
		out, err := exec.Command("tmux", newSession...).CombinedOutput()
		if err == nil {
			break
		}
		if try == 3 || !strings.Contains(string(out), "server exited unexpectedly") {
			t.Fatalf("tmux %v: %v\n%s", newSession, err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Cleanup(func() { exec.Command("tmux", "-L", tm.socket, "kill-session", "-t", tm.name).Run() })
	return tm
}

func (tm *tmux) run(args ...string) string {
	tm.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", tm.socket}, args...)...).CombinedOutput()
	if err != nil {
		tm.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func (tm *tmux) send(keys ...string) {
	tm.t.Helper()
	tm.run(append([]string{"send-keys", "-t", tm.name}, keys...)...)
}

func (tm *tmux) typeLiteral(s string) {
	tm.t.Helper()
	tm.run("send-keys", "-t", tm.name, "-l", s)
}

func (tm *tmux) capture() string {
	tm.t.Helper()
	return tm.run("capture-pane", "-p", "-t", tm.name)
}

// waitFor polls the screen until cond holds.
func (tm *tmux) waitFor(what string, timeout time.Duration, cond func(screen string) bool) string {
	tm.t.Helper()
	deadline := time.Now().Add(timeout)
	var screen string
	for time.Now().Before(deadline) {
		screen = tm.capture()
		if cond(screen) {
			tm.t.Logf("%s after %s", what, time.Since(deadline.Add(-timeout)).Round(time.Millisecond))
			return screen
		}
		time.Sleep(100 * time.Millisecond)
	}
	tm.t.Fatalf("waited %s for %s; the screen shows:\n%s", timeout, what, screen)
	return ""
}

// employeesCount reads the Employees pane's title ("Employees 1/294 ▼",
// "Employees (3 of 294) 1/3"): the number of employees listed.
var employeesCount = regexp.MustCompile(`Employees (?:\(\d+ of \d+\) )?\d+/(\d+)`)

// TestDemoInTmux runs `keydesk demo` in a real terminal: it waits for the
// console, presses the sync key, and checks that employees of both domains
// appear, that the filter narrows the list, and that display names holding
// escape sequences show as harmless text.
func TestDemoInTmux(t *testing.T) {
	requireTmux(t)
	bin := buildBinary(t) // before isolate: the build uses the real Go caches
	isolate(t)
	home := t.TempDir()
	tm := startTmux(t, 120, 40, []string{"HOME=" + home, "XDG_CONFIG_HOME=" + home, "XDG_DATA_HOME=" + home}, bin, "demo", "--users", "300", "--no-churn")

	tm.waitFor("the console", 20*time.Second, func(s string) bool { return strings.Contains(s, "KeyDesk [demo]") })
	screen := tm.waitFor("both domains synced", 30*time.Second, func(s string) bool {
		m := employeesCount.FindStringSubmatch(s)
		return m != nil && m[1] != "0" && strings.Count(s, "● ok") == 2
	})
	if !strings.Contains(screen, "corp") || !strings.Contains(screen, "branch") {
		t.Fatalf("the employees of both domains are not listed:\n%s", screen)
	}
	if strings.ContainsAny(screen, "\x1b\u202e") {
		t.Fatalf("raw control characters on screen:\n%q", screen)
	}

	// The sync key runs a sync now, whoever synced before: the activity log
	// gets the operator's own entries (the demo's operator is the OS user).
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	tm.send("S")
	tm.waitFor("the console's sync in the activity log", 30*time.Second, func(s string) bool {
		return strings.Count(s, " "+me.Username+" sync ") >= 2 && !strings.Contains(s, "syncing")
	})

	tm.send("/")
	tm.typeLiteral("mallory")
	screen = tm.waitFor("the filter to narrow the list", 10*time.Second, func(s string) bool {
		return regexp.MustCompile(`Employees \(\d+ of \d+\)`).MatchString(s)
	})
	if !strings.Contains(screen, `Mallory \x1b[31m`) {
		t.Errorf("the name with an escape sequence does not show as harmless text:\n%s", screen)
	}
	tm.send("Escape")
	// Wait for the filter to close: "Escape" and "q" sent together would
	// reach the program as alt+q.
	tm.waitFor("the filter to close", 10*time.Second, func(s string) bool { return !strings.Contains(s, "esc clear filter") })
	tm.send("q")
	tm.waitFor("the console to close", 10*time.Second, func(s string) bool {
		if strings.Contains(s, "Quit while a sync is running?") {
			tm.send("y")
		}
		return !strings.Contains(s, "KeyDesk [demo]")
	})
}

var shownCode = regexp.MustCompile(`code: (\d{3} \d{3})`)

// TestDemoKeyFlowInTmux plugs a simulated key into the demo from the
// console, assigns it to an employee, and activates it with the code shown,
// through the activation screen that opens when the reserved key is plugged
// in again. Then a script makes a clone of that key in the demo's
// simulated-key directory: the console shows it as an unverified device,
// and the key stays active.
func TestDemoKeyFlowInTmux(t *testing.T) {
	requireTmux(t)
	bin := buildBinary(t)
	isolate(t)
	home, data := t.TempDir(), t.TempDir()
	env := []string{"HOME=" + home, "XDG_CONFIG_HOME=" + home, "XDG_DATA_HOME=" + home}
	tm := startTmux(t, 120, 40, env, bin, "--data", data, "demo", "--users", "50", "--no-churn")
	tm.waitFor("the employees", 20*time.Second, func(s string) bool {
		m := employeesCount.FindStringSubmatch(s)
		return m != nil && m[1] != "0"
	})
	// The first employee is selected; go to Keys and plug a new simulated key.
	tm.send("Tab")
	tm.send("n")
	screen := tm.waitFor("the new key, ready and plugged in", 10*time.Second, func(s string) bool {
		return regexp.MustCompile(`SIM-\S+\s+ready\s+-\s+.*\byes\b`).MatchString(s)
	})
	serial := regexp.MustCompile(`SIM-[0-9A-F]{4}-[0-9A-F]{4}`).FindString(screen)
	tm.send("a")
	tm.waitFor("the assign confirmation", 5*time.Second, func(s string) bool { return strings.Contains(s, "Assign key "+serial) })
	tm.send("y")
	screen = tm.waitFor("the activation code", 10*time.Second, func(s string) bool { return shownCode.MatchString(s) })
	code := shownCode.FindStringSubmatch(screen)[1]
	if !strings.Contains(screen, "███") {
		t.Errorf("the code is not shown large:\n%s", screen)
	}
	tm.send("Enter")
	// Unplug and plug the key: the activation screen opens by itself.
	tm.send("p")
	tm.waitFor("the key unplugged", 10*time.Second, func(s string) bool {
		return regexp.MustCompile(serial+`\s+reserved\s+\S.*?\s+│`).MatchString(s) && !regexp.MustCompile(serial+`.*yes`).MatchString(s)
	})
	tm.send("p")
	tm.waitFor("the activation screen", 10*time.Second, func(s string) bool { return strings.Contains(s, "Activate key "+serial) })
	tm.typeLiteral(strings.ReplaceAll(code, " ", ""))
	tm.send("Enter")
	screen = tm.waitFor("the key active", 10*time.Second, func(s string) bool {
		return regexp.MustCompile(serial + `\s+active`).MatchString(s)
	})
	if strings.Contains(screen, code) {
		t.Errorf("the code is still on screen after activation:\n%s", screen)
	}

	clone := exec.Command(bin, "--data", data, "keys", "simulate", "new", "--dir", filepath.Join(data, "simulated-keys"), "--claim-serial", serial)
	clone.Env = append(os.Environ(), env...)
	if out, err := clone.CombinedOutput(); err != nil || !strings.Contains(string(out), "(claims serial "+serial+")") {
		t.Fatalf("making a clone: %v\n%s", err, out)
	}
	screen = tm.waitFor("the clone shown as an unverified device", 10*time.Second, func(s string) bool {
		return strings.Contains(s, "UNVERIFIED device") && strings.Contains(s, "did not prove it: it is not that key, and nothing")
	})
	if !regexp.MustCompile(serial + `\s+active`).MatchString(screen) {
		t.Errorf("the real key is no longer active:\n%s", screen)
	}
}

// TestCommandLineChangesReachTheOpenConsole runs the demo console in tmux
// and changes its database from the command line, as a second process:
// the console shows each change within about a second, without a sync.
func TestCommandLineChangesReachTheOpenConsole(t *testing.T) {
	requireTmux(t)
	bin := buildBinary(t)
	isolate(t)
	home, data := t.TempDir(), t.TempDir()
	tm := startTmux(t, 120, 40, []string{"HOME=" + home, "XDG_CONFIG_HOME=" + home, "XDG_DATA_HOME=" + home},
		bin, "--data", data, "demo", "--users", "50", "--no-churn")
	tm.waitFor("both domains synced", 30*time.Second, func(s string) bool { return strings.Count(s, "● ok") == 2 })
	cfg := filepath.Join(data, "keydesk.toml")
	cli := func(args ...string) string {
		t.Helper()
		code, out, errOut := runCLI(t, append([]string{"--config", cfg, "--data", data}, args...)...)
		if code != 0 {
			t.Fatalf("keydesk %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	cli("keys", "add", "CLI-KEY-1")
	start := time.Now()
	tm.waitFor("the key added from the command line", 5*time.Second, func(s string) bool {
		return regexp.MustCompile(`CLI-KEY-1\s+ready`).MatchString(s)
	})
	t.Logf("a key added by another process showed after %s", time.Since(start).Round(10*time.Millisecond))

	var emps []struct {
		Email  *string `json:"email"`
		Status string  `json:"status"`
	}
	if err := json.Unmarshal([]byte(cli("employees", "--json")), &emps); err != nil {
		t.Fatal(err)
	}
	var who string
	for _, e := range emps {
		if e.Email != nil && e.Status == "active" {
			who = *e.Email
			break
		}
	}
	cli("keys", "assign", "CLI-KEY-1", who)
	tm.waitFor("the key reserved from the command line", 5*time.Second, func(s string) bool {
		return regexp.MustCompile(`CLI-KEY-1\s+reserved`).MatchString(s)
	})
	tm.send("q")
	tm.waitFor("the console to close", 10*time.Second, func(s string) bool { return !strings.Contains(s, "KeyDesk [demo]") })
}

var managedRow = regexp.MustCompile(`(corp|branch)\\(\S+)\s+○ no active key`)

// TestDemoPasswordsInTmux: in the demo console, a key activated for a
// member of the password group ends with a new domain password on it (the
// activation says so, the Rotation pane shows the account ok); a script
// logs in to the demo directory with what the key types; the person's own
// change on key and AD before the minimum age is refused in the key
// screen, saying why; and "rotate now" from the Rotation pane gives the key
// a new password that logs in while the old one no longer does.
func TestDemoPasswordsInTmux(t *testing.T) {
	requireTmux(t)
	bin := buildBinary(t)
	isolate(t)
	home, data := t.TempDir(), t.TempDir()
	env := []string{"HOME=" + home, "XDG_CONFIG_HOME=" + home, "XDG_DATA_HOME=" + home}
	tm := startTmux(t, 140, 60, env, bin, "--data", data, "demo", "--users", "60", "--no-churn")
	screen := tm.waitFor("a managed account without a key", 30*time.Second, func(s string) bool { return managedRow.MatchString(s) })
	m := managedRow.FindStringSubmatch(screen)
	domain, sam := m[1], m[2]

	// Select that employee, then make, assign and activate a key.
	tm.send("/")
	tm.typeLiteral(sam)
	tm.send("Enter")
	tm.send("Tab")
	tm.send("n")
	screen = tm.waitFor("the new key", 10*time.Second, func(s string) bool {
		return regexp.MustCompile(`SIM-\S+\s+ready`).MatchString(s)
	})
	serial := regexp.MustCompile(`SIM-[0-9A-F]{4}-[0-9A-F]{4}`).FindString(screen)
	tm.send("a")
	tm.waitFor("the assign confirmation", 5*time.Second, func(s string) bool { return strings.Contains(s, "Assign key "+serial) })
	tm.send("y")
	screen = tm.waitFor("the activation code", 10*time.Second, func(s string) bool { return shownCode.MatchString(s) })
	code := strings.ReplaceAll(shownCode.FindStringSubmatch(screen)[1], " ", "")
	tm.send("Enter")
	tm.send("Enter")
	tm.waitFor("the activation screen", 10*time.Second, func(s string) bool { return strings.Contains(s, "Activate key "+serial) })
	tm.typeLiteral(code)
	tm.send("Enter")
	account := domain + `\` + sam
	// An employee with accounts in both domains gets a password for each.
	allSet := regexp.MustCompile(`is active; (\d) of (\d) domain passwords set on it`)
	tm.waitFor("the first password on the key", 20*time.Second, func(s string) bool {
		m := allSet.FindStringSubmatch(s)
		return m != nil && m[1] == m[2]
	})
	tm.waitFor("the password change in the activity log", 10*time.Second, func(s string) bool { return strings.Contains(s, "change the password of") })
	// In the Rotation pane (its first rows, or its last), the account is
	// ok and next due in 28 days.
	okRow := regexp.MustCompile(regexp.QuoteMeta(account) + `\s+● ok · due in 28d`)
	tm.waitFor("the Rotation pane", 10*time.Second, func(s string) bool {
		if strings.Contains(s, "▸Rotation") {
			return true
		}
		tm.send("Tab")
		time.Sleep(150 * time.Millisecond)
		return false
	})
	ends := []string{"g", "G"}
	tm.waitFor("the account's password ok in the Rotation pane", 10*time.Second, func(s string) bool {
		if okRow.MatchString(s) {
			return true
		}
		tm.send(ends[0])
		ends = append(ends[1:], ends[0])
		time.Sleep(150 * time.Millisecond)
		return false
	})
	// Back to the Keys pane, on the key.
	tm.waitFor("the Keys pane", 10*time.Second, func(s string) bool {
		if strings.Contains(s, "▸Keys") {
			return true
		}
		tm.send("Tab")
		time.Sleep(150 * time.Millisecond)
		return false
	})

	typed := func() (string, string) {
		t.Helper()
		cmd := exec.Command(bin, "--data", data, "keys", "simulate", "type", serial, "--dir", filepath.Join(data, "simulated-keys"))
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("keys simulate type: %v %q", err, out)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if f := strings.Split(line, "\t"); len(f) == 3 && strings.HasPrefix(f[1], sam+"@"+domain+".") {
				return f[1], f[2]
			}
		}
		t.Fatalf("the key types nothing for %s:\n%s", account, out)
		return "", ""
	}
	cfg, err := config.Load(filepath.Join(data, "keydesk.toml"))
	if err != nil {
		t.Fatal(err)
	}
	dom, ok := cfg.Domain(domain)
	if !ok {
		t.Fatalf("the demo's configuration has no domain %s", domain)
	}
	logsIn := func(login, pw string) bool {
		t.Helper()
		d := *dom
		d.BindDN = login
		c, err := ldapsync.Dial(context.Background(), d, pw)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	login, first := typed()
	if !logsIn(login, first) {
		t.Fatalf("%s does not log in with what the key types", login)
	}

	// The person's own change on key and AD, before the minimum age.
	tm.send("o")
	tm.waitFor("the key screen's password change", 10*time.Second, func(s string) bool { return strings.Contains(s, "Change your password at key "+serial) })
	tm.send("C-t")
	tm.send("Tab")
	tm.typeLiteral(first)
	tm.send("Tab")
	tm.typeLiteral("Brand-New-Own-Passw0rd-77")
	tm.send("Enter")
	tm.waitFor("the refusal, in the screen", 20*time.Second, func(s string) bool {
		return strings.Contains(s, "minimum") && strings.Contains(s, "Change your password at key")
	})
	if strings.Contains(tm.capture(), first) {
		t.Fatal("the password shows on screen")
	}
	tm.send("Escape")
	tm.waitFor("the screen to close", 10*time.Second, func(s string) bool { return !strings.Contains(s, "Change your password at key") })

	// Rotate now, from the Rotation pane (Keys -> Details -> Rotation).
	tm.send("Tab")
	tm.send("Tab")
	tm.waitFor("the Rotation pane focused", 5*time.Second, func(s string) bool { return strings.Contains(s, "KeyDesk [demo] › Rotation") })
	tm.send("r")
	tm.waitFor("the rotate confirmation", 5*time.Second, func(s string) bool { return strings.Contains(s, "Rotate the password of "+account+" now?") })
	tm.send("y")
	tm.waitFor("the rotation done", 20*time.Second, func(s string) bool { return strings.Contains(s, "1 done: the new password is on the key and in AD") })
	_, second := typed()
	if second == first || !logsIn(login, second) || logsIn(login, first) {
		t.Fatal("after rotate now, the key's new password must log in and the old one must not")
	}
}

var schedulerPID = regexp.MustCompile(` pid (\d+) `)

// TestTwoConsolesOneSchedulerAgainstSamba opens two consoles on one
// database (each in its own terminal): exactly one is the scheduler. Killed
// (SIGKILL: no chance to give up its lease), the other takes over within a
// minute.
func TestTwoConsolesOneSchedulerAgainstSamba(t *testing.T) {
	requireTmux(t)
	bin := buildBinary(t)
	home := isolate(t)
	d := startCLIDomain(t)
	cfg := d.writeConfig(t, nil)
	data := t.TempDir()
	if code, out, errOut := runCLI(t, "--config", cfg, "--data", data, "sync"); code != 0 {
		t.Fatalf("sync: %s%s", out, errOut)
	}
	env := []string{"HOME=" + home, "XDG_CONFIG_HOME=" + home, "XDG_DATA_HOME=" + home}
	scheduler := func() string {
		t.Helper()
		code, out, errOut := runCLI(t, "--config", cfg, "--data", data, "rotations", "--json")
		if code != 0 {
			t.Fatalf("rotations: %s%s", out, errOut)
		}
		var rep struct{ Scheduler string }
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		return rep.Scheduler
	}
	waitScheduler := func(what string, ok func(string) bool) string {
		t.Helper()
		for deadline := time.Now().Add(75 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if h := scheduler(); ok(h) {
				return h
			}
		}
		t.Fatalf("timed out waiting for %s (scheduler: %q)", what, scheduler())
		return ""
	}
	for range 2 {
		tm := startTmux(t, 120, 40, env, bin, "--config", cfg, "--data", data)
		tm.waitFor("the console", 20*time.Second, func(s string) bool { return strings.Contains(s, "KeyDesk › ") })
	}
	first := waitScheduler("a scheduler", func(h string) bool { return h != "" })
	m := schedulerPID.FindStringSubmatch(first)
	if m == nil {
		t.Fatalf("the scheduler %q does not name its process", first)
	}
	var pid int
	fmt.Sscan(m[1], &pid)
	time.Sleep(time.Second)
	if h := scheduler(); h != first {
		t.Fatalf("the scheduler changed from %q to %q with both consoles running", first, h)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill the scheduler's process %d: %v", pid, err)
	}
	start := time.Now()
	second := waitScheduler("the other console to take over", func(h string) bool { return h != "" && h != first })
	if schedulerPID.FindStringSubmatch(second)[1] == m[1] {
		t.Fatalf("the new scheduler %q is the killed process", second)
	}
	t.Logf("the other console took over %.1fs after the kill", time.Since(start).Seconds())
}

// sshKey makes an ed25519 key pair with ssh-keygen and returns the private
// key's path and the public key's line.
func sshKey(t *testing.T, dir, name string) (string, string) {
	t.Helper()
	path := filepath.Join(dir, name)
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name+"@test", "-f", path).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return path, strings.TrimSpace(string(pub))
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestServeOverSSHInTmux runs keydesk serve and connects real OpenSSH
// clients in real terminals: an admin's key gets the console as that
// admin; a client that offers the admin's key but cannot prove it (its
// agent refuses to sign) and then proves the helpdesk operator's key is
// the helpdesk operator; a key of no operator is refused; a key made in
// one session shows in the other at once; the helpdesk session is not
// offered marking a key compromised; the audit log names the operator, the
// key's fingerprint and the session; SIGTERM tells the sessions and stops.
func TestServeOverSSHInTmux(t *testing.T) {
	requireTmux(t)
	for _, tool := range []string{"ssh", "ssh-keygen", "ssh-agent", "ssh-add"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("KEYDESK_REQUIRE_AD") != "" {
				t.Fatalf("%s is required for the SSH tests (apt-get install openssh-client)", tool)
			}
			t.Skipf("%s is not installed", tool)
		}
	}
	bin := buildBinary(t)
	home := isolate(t)
	dir, data, sim := t.TempDir(), t.TempDir(), t.TempDir()
	annKey, annPub := sshKey(t, dir, "ann")
	bobKey, bobPub := sshKey(t, dir, "bob")
	eveKey, _ := sshKey(t, dir, "eve")
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	cfg := writeFile(t, filepath.Join(dir, "keydesk.toml"), fmt.Sprintf(`[ssh]
listen = "127.0.0.1:%d"

[[operator]]
name = "owner"
role = "admin"
os_user = %q

[[operator]]
name = "ann"
role = "admin"
authorized_keys = [%q]

[[operator]]
name = "hd.bob"
role = "helpdesk"
authorized_keys = [%q, "this line is not a key"]
`, port, me.Username, annPub, bobPub), 0o600)
	env := append(os.Environ(), "HOME="+home)
	base := []string{"--config", cfg, "--data", data}

	serve := exec.Command(bin, append(base, "--sim-keys", sim, "serve")...)
	serve.Env = env
	var serveOut syncBuffer
	serve.Stdout, serve.Stderr = &serveOut, &serveOut
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			serve.Process.Kill()
			serve.Wait()
		}
	})
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(serveOut.String(), "operator key"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("keydesk serve did not start:\n%s", serveOut.String())
		}
	}
	fp := exec.Command(bin, append(base, "serve", "--fingerprint")...)
	fp.Env = env
	printed, err := fp.Output()
	if err != nil || !strings.Contains(serveOut.String(), "host key "+strings.TrimSpace(string(printed))) {
		t.Fatalf("serve --fingerprint printed %q (%v); the server said:\n%s", printed, err, serveOut.String())
	}
	if !strings.Contains(serveOut.String(), `operator "hd.bob": authorized_keys line 2: not an OpenSSH public key`) {
		t.Errorf("the malformed key line is not reported with its line:\n%s", serveOut.String())
	}

	sshArgs := func(extra ...string) []string {
		return append([]string{"ssh", "-p", fmt.Sprint(port), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "IdentitiesOnly=yes", "-o", "LogLevel=ERROR"}, extra...)
	}
	// A key of no operator.
	stranger := exec.Command(sshArgs("-o", "BatchMode=yes", "-i", eveKey, "x@127.0.0.1", "true")[0], sshArgs("-o", "BatchMode=yes", "-i", eveKey, "x@127.0.0.1", "true")[1:]...)
	if out, err := stranger.CombinedOutput(); err == nil || !strings.Contains(string(out), "Permission denied (publickey)") {
		t.Errorf("a key of no operator: %v\n%s", err, out)
	}

	// Ann, admin.
	ann := startTmux(t, 120, 40, nil, strings.Join(sshArgs("-tt", "-i", annKey, "ann@127.0.0.1"), " "))
	ann.waitFor("ann's console", 20*time.Second, func(s string) bool { return strings.Contains(s, "ann (admin)") })

	// Bob's client offers ann's key from an agent that refuses to sign with
	// it, then proves his own.
	agent, err := exec.Command("ssh-agent", "-s").Output()
	if err != nil {
		t.Fatal(err)
	}
	sock := regexp.MustCompile(`SSH_AUTH_SOCK=([^;]+);`).FindSubmatch(agent)
	pid := regexp.MustCompile(`SSH_AGENT_PID=(\d+);`).FindSubmatch(agent)
	if sock == nil || pid == nil {
		t.Fatalf("ssh-agent said %q", agent)
	}
	t.Cleanup(func() { exec.Command("kill", string(pid[1])).Run() })
	agentEnv := []string{"SSH_AUTH_SOCK=" + string(sock[1]), "SSH_ASKPASS=/bin/false", "SSH_ASKPASS_REQUIRE=force", "DISPLAY=none"}
	add := exec.Command("ssh-add", "-c", annKey)
	add.Env = append(os.Environ(), agentEnv...)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add -c: %v\n%s", err, out)
	}
	bob := startTmux(t, 120, 40, agentEnv, strings.Join(sshArgs("-tt", "-o", "IdentityFile="+annKey+".pub", "-o", "IdentityFile="+bobKey, "bob@127.0.0.1"), " "))
	screen := bob.waitFor("bob's console", 20*time.Second, func(s string) bool { return strings.Contains(s, "KeyDesk › ") })
	if !strings.Contains(screen, "hd.bob (helpdesk)") {
		t.Fatalf("a client that offered ann's key without proving it, then proved bob's, is not bob:\n%s", screen)
	}

	// Ann makes a simulated key; bob sees it at once.
	ann.send("Tab")
	ann.send("n")
	screen = ann.waitFor("the new key in ann's console", 10*time.Second, func(s string) bool { return strings.Contains(s, "Keys 1/1") })
	serial := regexp.MustCompile(`SIM-[0-9A-F]{4}-[0-9A-F]{4}`).FindString(screen)
	bob.waitFor("the new key in bob's console", 10*time.Second, func(s string) bool { return strings.Contains(s, serial) })
	// Bob cannot mark it compromised.
	bob.send("Tab")
	bob.send("x")
	bob.waitFor("the refusal", 10*time.Second, func(s string) bool { return strings.Contains(s, "your role (helpdesk) cannot do this") })

	code, out, errOut := runCLI(t, append(base, "audit", "export")...)
	if code != 0 {
		t.Fatalf("audit export: %s", errOut)
	}
	annFP := strings.Fields(string(mustOutput(t, "ssh-keygen", "-lf", annKey+".pub")))[1]
	if !regexp.MustCompile(`"actor":"ann","role":"admin","auth":"ssh-key ` + regexp.QuoteMeta(annFP) + ` via ssh 127\.0\.0\.1:\d+ #[0-9a-f]{8}","action":"key\.simulate"`).MatchString(out) {
		t.Errorf("the audit log does not name ann, her key and her session for the simulated key she made:\n%s", out)
	}

	// SIGTERM: the sessions are told, then the server stops.
	serve.Process.Signal(syscall.SIGTERM)
	ann.waitFor("the stop announced", 10*time.Second, func(s string) bool { return strings.Contains(s, "KeyDesk is stopping") })
	done := make(chan error, 1)
	go func() { done <- serve.Wait() }()
	select {
	case err := <-done:
		stopped = true
		if err != nil || !strings.Contains(serveOut.String(), "keydesk stopped") {
			t.Errorf("keydesk serve after SIGTERM: %v\n%s", err, serveOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("keydesk serve did not stop after SIGTERM")
	}

	// The audit log of the mixed session checks; one row edited, it does not.
	if code, out, errOut := runCLI(t, append(base, "audit", "verify")...); code != 0 || !strings.Contains(out, "intact") {
		t.Fatalf("audit verify after the SSH sessions: %d %s%s", code, out, errOut)
	}
	dbtamper.Exec(t, filepath.Join(data, store.FileName), `DROP TRIGGER audit_log_no_update`, `UPDATE audit_log SET actor = 'someone-else' WHERE action = 'key.simulate'`)
	if code, out, _ := runCLI(t, append(base, "audit", "verify")...); code == 0 || strings.Contains(out, "intact") {
		t.Errorf("audit verify after an entry of the SSH session was edited: %d %s", code, out)
	}
}

func mustOutput(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return out
}

// TestKioskInTmux: keydesk kiosk in a real terminal, with a simulated key
// plugged in at it: the operator sets the exit code; the key's activation
// opens by itself and the code activates it; ctrl+c does not leave; the
// exit code does.
func TestKioskInTmux(t *testing.T) {
	requireTmux(t)
	bin := buildBinary(t)
	home := isolate(t)
	data, sim := t.TempDir(), t.TempDir()
	base := []string{"--data", data, "--sim-keys", sim}
	run := func(args ...string) string {
		t.Helper()
		return mustRun(t, "", append(base, args...)...)
	}
	run("employees", "add", "--email", "ann@example.com", "--name", "Ann Kiosk")
	run("employees", "add", "--email", "ben@example.com", "--name", "Ben Elsewhere")
	serial := strings.TrimSpace(run("keys", "simulate", "new", "--dir", sim))
	run("keys")
	m := codeRe.FindStringSubmatch(run("keys", "assign", serial, "ann@example.com"))
	if m == nil {
		t.Fatal("assign printed no code")
	}
	env := []string{"HOME=" + home, "XDG_CONFIG_HOME=" + home, "XDG_DATA_HOME=" + home}
	tm := startTmux(t, 100, 30, env, append([]string{bin}, append(base, "kiosk")...)...)
	tm.waitFor("the exit code prompt", 10*time.Second, func(s string) bool { return strings.Contains(s, "exit code for this kiosk") })
	tm.typeLiteral("4711")
	tm.send("Enter")
	tm.waitFor("the second prompt", 10*time.Second, func(s string) bool { return strings.Contains(s, "the exit code again") })
	tm.typeLiteral("4711")
	tm.send("Enter")
	screen := tm.waitFor("the key's activation", 20*time.Second, func(s string) bool { return strings.Contains(s, "Activate key "+serial+" for Ann Kiosk") })
	if strings.Contains(screen, "Ben Elsewhere") || strings.Contains(screen, "ben@example.com") {
		t.Errorf("the kiosk shows another employee:\n%s", screen)
	}
	tm.send("C-c")
	tm.typeLiteral(strings.ReplaceAll(m[1], " ", ""))
	tm.send("Enter")
	tm.waitFor("the key active", 20*time.Second, func(s string) bool { return strings.Contains(s, "key "+serial+" is active") })
	leaveKiosk(t, tm, "4711")
	if out := run("keys"); !regexp.MustCompile(serial + `\s+active`).MatchString(out) {
		t.Errorf("the key is not active after the kiosk:\n%s", out)
	}
}

// syncBuffer collects a process's output for a test that reads it
// meanwhile.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRemoteKioskInTmux: keydesk kiosk --server on "another machine" (a
// second process with its own simulated key directory and no database of
// the server's) connects to keydesk serve over SSH with the kiosk's key;
// a key plugged in at the kiosk is activated by the server; the audit
// names the kiosk; what crossed the kiosk machine (every byte of the key
// channel) holds no secret of the key; a wrong host key is refused before
// anything is sent.
func TestRemoteKioskInTmux(t *testing.T) {
	requireTmux(t)
	bin := buildBinary(t)
	home := isolate(t)
	dir, data, kioskDir := t.TempDir(), t.TempDir(), t.TempDir()
	kioskKey, kioskPub := sshKey(t, dir, "lobby")
	// The kiosk's simulated key, made on the kiosk machine.
	serial := strings.TrimSpace(mustRun(t, "", "--data", t.TempDir(), "keys", "simulate", "new", "--dir", kioskDir))
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	// A real domain: alice is in its password group, so her activation
	// writes her first password to the key, through the kiosk.
	d := startCLIDomain(t)
	domainBlock, err := os.ReadFile(d.writeConfig(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	cfg := writeFile(t, filepath.Join(dir, "keydesk.toml"), fmt.Sprintf(`[ssh]
listen = "127.0.0.1:%d"

[keys]
trusted_makers = [%q]

[[operator]]
name = "owner"
role = "admin"
os_user = %q

[[operator]]
name = "lobby"
role = "kiosk"
authorized_keys = [%q]

%s`, port, filepath.Join(kioskDir, "maker-ca.pem"), me.Username, kioskPub, domainBlock), 0o600)
	base := []string{"--config", cfg, "--data", data}
	mustRun(t, "", append(base, "sync")...)
	mustRun(t, "", append(base, "keys", "add", serial)...)
	m := codeRe.FindStringSubmatch(mustRun(t, "", append(base, "keys", "assign", serial, "alice@example.com")...))
	if m == nil {
		t.Fatal("assign printed no code")
	}
	serve := exec.Command(bin, append(base, "serve")...)
	serve.Env = append(os.Environ(), "HOME="+home)
	var serveOut syncBuffer
	serve.Stdout, serve.Stderr = &serveOut, &serveOut
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { serve.Process.Kill(); serve.Wait() })
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(serveOut.String(), "operator key"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("keydesk serve did not start:\n%s", serveOut.String())
		}
	}
	fp := regexp.MustCompile(`host key (SHA256:\S+)`).FindStringSubmatch(serveOut.String())[1]
	env := []string{"HOME=" + home, "XDG_CONFIG_HOME=" + home, "XDG_DATA_HOME=" + home}

	exitCode := func(tm *tmux) {
		t.Helper()
		tm.waitFor("the exit code prompt", 10*time.Second, func(s string) bool { return strings.Contains(s, "exit code for this kiosk") })
		tm.typeLiteral("4711")
		tm.send("Enter")
		tm.waitFor("the second prompt", 10*time.Second, func(s string) bool { return strings.Contains(s, "the exit code again") })
		tm.typeLiteral("4711")
		tm.send("Enter")
	}
	wrong := startTmux(t, 100, 30, env, bin, "kiosk", "--server", fmt.Sprintf("ssh://lobby@127.0.0.1:%d", port), "--key", kioskKey, "--host-key", "SHA256:not-the-server", "--sim-keys", kioskDir)
	exitCode(wrong)
	wrong.waitFor("the wrong host key refused", 10*time.Second, func(s string) bool {
		return strings.Contains(strings.ReplaceAll(s, "\n", ""), "not the KeyDesk server you named")
	})

	tap := filepath.Join(dir, "tap")
	tm := startTmux(t, 100, 30, env, bin, "kiosk", "--server", fmt.Sprintf("ssh://lobby@127.0.0.1:%d", port), "--key", kioskKey, "--host-key", fp, "--sim-keys", kioskDir, "--tap", tap)
	exitCode(tm)
	tm.waitFor("the key's activation, drawn by the server", 20*time.Second, func(s string) bool { return strings.Contains(s, "Activate key "+serial+" for Alice Adams") })
	tm.typeLiteral(strings.ReplaceAll(m[1], " ", ""))
	tm.send("Enter")
	tm.waitFor("the key active, with alice's first password", 20*time.Second, func(s string) bool {
		// The message wraps inside its box: read it as one line.
		flat := strings.Join(strings.Fields(strings.ReplaceAll(s, "║", " ")), " ")
		return strings.Contains(flat, "key "+serial+" is active; 1 of 1 domain passwords set on it")
	})
	// What the key types logs alice in.
	f := strings.Split(strings.TrimSpace(mustRun(t, "", "--data", t.TempDir(), "keys", "simulate", "type", serial, "--dir", kioskDir)), "\t")
	if len(f) != 3 {
		t.Fatalf("the key types %q", f)
	}
	password := f[2]
	if l, err := d.dc.DialAs(context.Background(), f[1], password); err != nil {
		t.Fatalf("alice's password from the key does not bind: %v", err)
	} else {
		l.Close()
	}

	if out := mustRun(t, "", append(base, "keys")...); !regexp.MustCompile(serial + `\s+active`).MatchString(out) {
		t.Errorf("the server does not have the key active:\n%s", out)
	}
	audit := mustRun(t, "", append(base, "audit", "export")...)
	if !regexp.MustCompile(`"actor":"lobby","role":"kiosk","auth":"ssh-key SHA256:\S+ via ssh 127\.0\.0\.1:\d+ #[0-9a-f]{8}","action":"key\.activate"`).MatchString(audit) {
		t.Errorf("the audit log does not name the kiosk for the activation:\n%s", audit)
	}
	// What crossed the kiosk machine: the key channel's bytes.
	captured, err := os.ReadFile(tap)
	if err != nil || len(captured) < 10*64 {
		t.Fatalf("the tap holds %d bytes (%v)", len(captured), err)
	}
	mk, err := keys.ReadMasterKey(filepath.Join(data, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), filepath.Join(data, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	k, err := st.KeyBySerial(context.Background(), serial)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := mk.Open(k.SecretSealed, keys.SecretBinding(k.ID, k.Serial))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(captured, secret) {
		t.Error("the key's secret crossed the kiosk machine in clear")
	}
	if bytes.Contains(captured, []byte(strings.ReplaceAll(m[1], " ", ""))) {
		t.Error("the activation code crossed the key channel")
	}
	if bytes.Contains(captured, []byte(password)) {
		t.Error("alice's password crossed the kiosk machine in clear")
	}
	leaveKiosk(t, tm, "4711")
}

// leaveKiosk checks that ctrl+c and q do not leave the kiosk in tm, and
// that its exit code does.
func leaveKiosk(t *testing.T, tm *tmux, code string) {
	t.Helper()
	tm.send("C-c")
	tm.send("q")
	time.Sleep(300 * time.Millisecond)
	if s := tm.capture(); !strings.Contains(s, "KeyDesk") {
		t.Fatalf("ctrl+c or q left the kiosk:\n%s", s)
	}
	tm.send("C-x")
	tm.waitFor("the exit prompt", 5*time.Second, func(s string) bool { return strings.Contains(s, "Leave the kiosk") })
	tm.typeLiteral(code)
	tm.send("Enter")
	tm.waitFor("the kiosk to close", 10*time.Second, func(s string) bool { return !strings.Contains(s, "KeyDesk") })
}

// TestDemoEnrollmentInTmux: in the demo, the Invitations pane shows the
// mail its sink received, and enrolls with the code in it: the QR code on
// the real terminal reads (as a phone's camera would) as the otpauth URI,
// and the app's current code confirms.
func TestDemoEnrollmentInTmux(t *testing.T) {
	requireTmux(t)
	bin := buildBinary(t)
	isolate(t)
	home := t.TempDir()
	env := []string{"HOME=" + home, "XDG_CONFIG_HOME=" + home, "XDG_DATA_HOME=" + home}
	tm := startTmux(t, 160, 50, env, bin, "demo", "--users", "40", "--no-churn")
	tm.waitFor("both domains synced", 30*time.Second, func(s string) bool { return strings.Count(s, "● ok") == 2 })
	// To the Invitations pane.
	tm.waitFor("the Invitations pane", 15*time.Second, func(s string) bool {
		if strings.Contains(s, "▸Invitations") {
			return true
		}
		tm.send("Tab")
		time.Sleep(200 * time.Millisecond)
		return false
	})
	tm.waitFor("the invitations sent", 20*time.Second, func(s string) bool { return strings.Contains(s, " sent ") })
	tm.send("m")
	screen := tm.waitFor("the mail with its code", 10*time.Second, func(s string) bool { return inviteCodeRe.MatchString(s) })
	code := inviteCodeRe.FindString(screen)
	tm.send("Escape")
	tm.waitFor("the mail to close", 5*time.Second, func(s string) bool { return !inviteCodeRe.MatchString(s) })

	tm.send("e")
	tm.waitFor("the enrollment", 5*time.Second, func(s string) bool { return strings.Contains(s, "Enroll an authenticator app") })
	tm.typeLiteral(strings.ToLower(code))
	tm.send("Enter")
	screen = tm.waitFor("the QR code", 10*time.Second, func(s string) bool { return strings.Count(s, "█") > 200 })
	uri, err := qrtest.Decode(screen, true)
	if err != nil {
		t.Fatalf("the QR code on the terminal does not read: %v", err)
	}
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatalf("the QR code does not read as a URI: %v", err)
	}
	if u.Scheme != "otpauth" || u.Query().Get("issuer") != "KeyDesk demo" {
		t.Fatalf("the QR code reads as a URI of scheme %q, issuer %q", u.Scheme, u.Query().Get("issuer"))
	}
	secret, err := enroll.ParseSecret(u.Query().Get("secret"))
	if err != nil {
		t.Fatal(err)
	}
	totp, _ := enroll.CodeAt(secret, enroll.Step(time.Now()))
	tm.typeLiteral(totp)
	tm.send("Enter")
	tm.waitFor("the enrollment confirmed", 10*time.Second, func(s string) bool { return strings.Contains(s, "Authenticator enrolled for") })
	tm.send("Enter")
	tm.waitFor("the invitation shown as enrolled", 10*time.Second, func(s string) bool { return strings.Contains(s, "enrolled") })
}

// TestDemoLeavesNothingWhenItsTerminalCloses: the demo's temporary folder
// goes when its terminal closes (SIGHUP), as on quit and SIGTERM.
func TestDemoLeavesNothingWhenItsTerminalCloses(t *testing.T) {
	requireTmux(t)
	bin := buildBinary(t)
	isolate(t)
	home, tmp := t.TempDir(), t.TempDir()
	env := []string{"HOME=" + home, "XDG_CONFIG_HOME=" + home, "XDG_DATA_HOME=" + home, "TMPDIR=" + tmp}
	tm := startTmux(t, 120, 40, env, bin, "demo", "--users", "30", "--no-churn")
	tm.waitFor("the console", 20*time.Second, func(s string) bool { return strings.Contains(s, "KeyDesk [demo]") })
	demoDirs := func() []string {
		m, _ := filepath.Glob(filepath.Join(tmp, "keydesk-demo-*"))
		return m
	}
	if len(demoDirs()) != 1 {
		t.Fatalf("the running demo has %v in its TMPDIR, want one keydesk-demo-* folder", demoDirs())
	}
	tm.run("kill-session", "-t", tm.name)
	deadline := time.Now().Add(10 * time.Second)
	for len(demoDirs()) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if left := demoDirs(); len(left) > 0 {
		t.Errorf("the demo's terminal closed, and %v is left behind", left)
	}
}

// TestDemoSimKeysFolder: the demo says where its simulated keys live, and
// with --sim-keys DIR keeps them there, so that a key made from another
// terminal shows up in the console.
func TestDemoSimKeysFolder(t *testing.T) {
	requireTmux(t)
	bin := buildBinary(t)
	isolate(t)
	home, keysDir := t.TempDir(), t.TempDir()
	env := []string{"HOME=" + home, "XDG_CONFIG_HOME=" + home, "XDG_DATA_HOME=" + home}
	tm := startTmux(t, 140, 50, env, bin, "--sim-keys", keysDir, "demo", "--users", "30", "--no-churn")
	tm.waitFor("the console", 20*time.Second, func(s string) bool { return strings.Contains(s, "KeyDesk [demo]") })
	tm.send("?")
	tm.waitFor("the help naming the keys' folder", 5*time.Second, func(s string) bool {
		return strings.Contains(s, "Simulated keys: "+keysDir) && strings.Contains(s, "keys simulate new --dir "+keysDir)
	})
	tm.send("Escape")
	out, err := exec.Command(bin, "keys", "simulate", "new", "--dir", keysDir).CombinedOutput()
	if err != nil {
		t.Fatalf("keys simulate new: %v\n%s", err, out)
	}
	serial := strings.TrimSpace(string(out))
	tm.waitFor("the key made in another terminal", 10*time.Second, func(s string) bool { return strings.Contains(s, serial) })
}

// TestNothingIsCutAtCommonSizes: at 80x24 and 120x40, in every pane, the
// footer keeps "? help" and "q quit" and cuts no hint in half, and the help
// screen cuts no line.
func TestNothingIsCutAtCommonSizes(t *testing.T) {
	requireTmux(t)
	bin := buildBinary(t)
	isolate(t)
	for _, size := range [][2]int{{80, 24}, {120, 40}} {
		t.Run(fmt.Sprintf("%dx%d", size[0], size[1]), func(t *testing.T) {
			home := t.TempDir()
			env := []string{"HOME=" + home, "XDG_CONFIG_HOME=" + home, "XDG_DATA_HOME=" + home}
			tm := startTmux(t, size[0], size[1], env, bin, "demo", "--users", "40", "--no-churn")
			tm.waitFor("the console", 20*time.Second, func(s string) bool { return strings.Contains(s, "KeyDesk [demo]") })
			footer := func(s string) string {
				lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
				return lines[len(lines)-1]
			}
			seen := map[string]bool{}
			for range 12 {
				s := tm.capture()
				f := footer(s)
				if !strings.Contains(f, "? help") || !strings.Contains(f, "q quit") || strings.Contains(f, "…") {
					t.Errorf("a footer is cut or lacks ? help / q quit:\n%q", f)
				}
				seen[f] = true
				tm.send("Tab")
				time.Sleep(150 * time.Millisecond)
			}
			if len(seen) < 3 {
				t.Errorf("tab showed only %d different footers: the panes were not visited", len(seen))
			}
			tm.send("?")
			help := tm.waitFor("the help", 5*time.Second, func(s string) bool { return strings.Contains(s, "Keys for") })
			for _, l := range strings.Split(help, "\n") {
				if strings.Contains(l, "…") {
					t.Errorf("a help line is cut: %q", l)
				}
			}
			tm.send("Escape")
			// Dialogs: a key's assignment and its loss, the enrollment, an
			// invitation's mail, an audit entry.
			// focus presses tab until the pane has the focus, each time
			// waiting until the last one moved it (tabs sent faster than a
			// busy machine draws would go past the pane).
			focus := func(pane string) {
				for range 8 {
					s := tm.capture()
					if strings.Contains(s, "▸"+pane) {
						return
					}
					was := focusedPane(s)
					tm.send("Tab")
					tm.waitFor("the focus to leave "+was, 10*time.Second, func(s string) bool { return focusedPane(s) != was })
				}
				t.Fatalf("tab never focused the %s pane:\n%s", pane, tm.capture())
			}
			focus("Keys")
			tm.send("n")
			tm.waitFor("a new key, selected", 10*time.Second, func(s string) bool { return strings.Contains(s, "SIM-") && strings.Contains(s, "a assign") })
			tm.send("a")
			uncut(t, tm.waitFor("the assign dialog", 5*time.Second, func(s string) bool { return strings.Contains(s, "Assign key") }))
			tm.send("Escape")
			// The lifecycle offers "lost/stolen/broken" on a key in stock.
			tm.send("x")
			uncut(t, tm.waitFor("the lost/stolen/broken dialog", 5*time.Second, func(s string) bool { return strings.Contains(s, "╔") }))
			tm.send("Escape")
			tm.waitFor("the dialog closed", 5*time.Second, func(s string) bool { return !strings.Contains(s, "╔") })
			focus("Invitations")
			tm.send("e")
			uncut(t, tm.waitFor("the enroll dialog", 5*time.Second, func(s string) bool { return strings.Contains(s, "Enroll an authenticator") }))
			tm.send("Escape")
			tm.waitFor("the dialog closed", 5*time.Second, func(s string) bool { return !strings.Contains(s, "╔") })
			tm.send("m")
			uncut(t, tm.waitFor("the mail dialog", 5*time.Second, func(s string) bool { return strings.Contains(s, "╔") }))
			tm.send("Escape")
			tm.waitFor("the dialog closed", 5*time.Second, func(s string) bool { return !strings.Contains(s, "╔") })
			focus("Activity")
			tm.send("Enter")
			uncut(t, tm.waitFor("an audit entry", 5*time.Second, func(s string) bool { return strings.Contains(s, "╔") }))
			tm.send("Escape")
		})
	}
}

// focusedPane is the pane the console's header names as focused
// (" KeyDesk [demo] › Keys   ...").
func focusedPane(screen string) string {
	header, _, _ := strings.Cut(screen, "\n")
	_, rest, ok := strings.Cut(header, "› ")
	if f := strings.Fields(rest); ok && len(f) > 0 {
		return f[0]
	}
	return ""
}

// uncut checks that a dialog on screen (drawn with double lines) cuts none
// of its lines, and that its keys in its bottom border are whole.
func uncut(t *testing.T, screen string) {
	t.Helper()
	in, seen := false, false
	for _, l := range strings.Split(screen, "\n") {
		switch {
		case strings.Contains(l, "╔"):
			in, seen = true, true
		case in && strings.Contains(l, "╚"):
			in = false
			border := l[strings.Index(l, "╚"):]
			if j := strings.Index(border, "╝"); j >= 0 {
				border = border[:j]
			}
			if strings.Contains(border, "…") || !strings.Contains(border, "esc") {
				t.Errorf("a dialog's keys are cut, or lack esc: %q", border)
			}
		case in:
			if i, j := strings.Index(l, "║"), strings.LastIndex(l, "║"); i >= 0 && j > i && strings.Contains(l[i:j], "…") {
				t.Errorf("a dialog line is cut: %q", l[i:j])
			}
		}
	}
	if !seen {
		t.Errorf("no dialog on screen:\n%s", screen)
	}
}
