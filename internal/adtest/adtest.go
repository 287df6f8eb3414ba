package adtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// EnvRequire is the environment variable that turns skips into failures: with KEYDESK_REQUIRE_AD=1,
// Require and StartT fail the test when Samba AD cannot run.
const EnvRequire = "KEYDESK_REQUIRE_AD"

// EnvDir overrides the base directory (default os.TempDir()/keydesk-adtest).
const EnvDir = "KEYDESK_ADTEST_DIR"

// EnvNoTemplate, set to 1, makes every Start provision afresh instead of copying a cached template.
const EnvNoTemplate = "KEYDESK_ADTEST_NO_TEMPLATE"

// DefaultRealm is used when Options.Realm is empty.
const DefaultRealm = "CORP.KEYDESK.TEST"

// hostLabel is the DC's NetBIOS/host name in every domain: its DNS name is dc1.<realm>.
const hostLabel = "DC1"

const (
	readyTimeout = 60 * time.Second
	readyPoll    = 200 * time.Millisecond
	stopTimeout  = 10 * time.Second
	opTimeout    = 60 * time.Second
)

var (
	availOnce   sync.Once
	availReason string
)

// Available returns "" if Samba AD tests can run here, or the reason why not.
func Available() string {
	availOnce.Do(func() { availReason = checkAvailable() })
	return availReason
}

func checkAvailable() string {
	if runtime.GOOS != "linux" {
		return "Samba AD tests need Linux (GOOS is " + runtime.GOOS + ")"
	}
	if os.Geteuid() != 0 {
		return "Samba AD tests need root (to add loopback addresses and run samba)"
	}
	for _, bin := range []string{"samba", "samba-tool"} {
		if _, err := exec.LookPath(bin); err != nil {
			return bin + " not found in PATH: install Samba AD DC with .ci/install-samba"
		}
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return "the ip command (iproute2) was not found in PATH: it is needed to add loopback addresses (apt-get install iproute2)"
	}
	if _, err := sambaVersion(); err != nil {
		return err.Error()
	}
	return ""
}

// Require skips the test when Samba AD tests cannot run here (samba/samba-tool/ip missing, not
// root), with the reason; with KEYDESK_REQUIRE_AD=1 in the environment it fails the test instead.
// In -short mode it always skips, saying so: -short asks for the quick tests only.
func Require(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("adtest: skipping Samba AD test in -short mode: it starts a domain controller (run without -short to include it)")
	}
	reason := Available()
	if reason == "" {
		return
	}
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("adtest: %s (and %s=1 requires the Samba AD tests to run)", reason, EnvRequire)
	}
	t.Skipf("adtest: skipping Samba AD test: %s (set %s=1 to make this a failure)", reason, EnvRequire)
}

var (
	versionOnce sync.Once
	versionStr  string
	versionErr  error
)

// SambaVersion returns the installed Samba's version, e.g. "4.17.12-Debian".
func SambaVersion() (string, error) { return sambaVersion() }

func sambaVersion() (string, error) {
	versionOnce.Do(func() {
		out, err := exec.Command("samba", "--version").CombinedOutput()
		if err != nil {
			versionErr = fmt.Errorf("samba --version: %v: %s", err, bytes.TrimSpace(out))
			return
		}
		v := strings.TrimSpace(string(out))
		v = strings.TrimPrefix(v, "Version ")
		if v == "" {
			versionErr = errors.New("samba --version printed nothing")
			return
		}
		versionStr = v
	})
	return versionStr, versionErr
}

func baseDir() string {
	if d := os.Getenv(EnvDir); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "keydesk-adtest")
}

// Options configures a DC.
type Options struct {
	// Realm is the Kerberos realm / DNS domain in upper case, e.g. "CORP.KEYDESK.TEST" (default
	// DefaultRealm). The NetBIOS domain is its first label in upper case ("CORP").
	Realm string
	// AdminPassword is the Administrator's password; default a strong generated one.
	AdminPassword string
	// NoTemplate provisions the domain afresh (about 4-8 s) instead of copying the cached template.
	NoTemplate bool
}

// DC is a running (or stopped) Samba AD domain controller.
type DC struct {
	Realm    string // "CORP.KEYDESK.TEST"
	NetBIOS  string // "CORP"
	Domain   string // DNS domain, "corp.keydesk.test"
	BaseDN   string // "DC=corp,DC=keydesk,DC=test"
	HostName string // the DC's DNS name, "dc1.corp.keydesk.test" (in its certificate)
	Addr     string // loopback IP it listens on, e.g. "127.0.1.7"
	LDAPSURL string // "ldaps://127.0.1.7:636"
	LDAPURL  string // "ldap://127.0.1.7:389" (for StartTLS; simple binds without TLS are refused)
	CAFile   string // PEM file of the test CA that signed the DC's certificate

	AdminDN       string // "CN=Administrator,CN=Users,<BaseDN>"
	AdminUPN      string // "Administrator@corp.keydesk.test"
	AdminPassword string
	// UserPassword is the password AddUser/AddUsers give users whose Password is empty (unless it
	// happens to contain the user's name, then a per-user generated one is used).
	UserPassword string

	Dir string // the DC's directory (smb.conf in Dir/etc, database in Dir/private)

	slot    *addrSlot
	logPath string
	caPEM   []byte

	mu      sync.Mutex // guards the process fields and closed
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	done    chan struct{} // closed when cmd has exited
	waitErr error
	closed  bool

	connMu sync.Mutex
	conn   *ldap.Conn // shared admin connection for the helpers
}

var realmRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*(\.[A-Za-z][A-Za-z0-9-]*)+$`)

func (o *Options) normalize() error {
	if o.Realm == "" {
		o.Realm = DefaultRealm
	}
	o.Realm = strings.ToUpper(o.Realm)
	if !realmRE.MatchString(o.Realm) {
		return fmt.Errorf("invalid realm %q: want a DNS name with at least two labels, like CORP.KEYDESK.TEST", o.Realm)
	}
	nb := netbiosOf(o.Realm)
	if len(nb) > 15 {
		return fmt.Errorf("invalid realm %q: its first label %q is longer than 15 characters (NetBIOS domain)", o.Realm, nb)
	}
	if nb == hostLabel {
		return fmt.Errorf("invalid realm %q: the NetBIOS domain may not be %s, the DC's host name", o.Realm, hostLabel)
	}
	if o.AdminPassword == "" {
		o.AdminPassword = genPassword("Administrator")
	}
	if os.Getenv(EnvNoTemplate) == "1" {
		o.NoTemplate = true
	}
	return nil
}

func netbiosOf(realm string) string {
	return strings.ToUpper(strings.SplitN(realm, ".", 2)[0])
}

func baseDNOf(realm string) string {
	labels := strings.Split(strings.ToLower(realm), ".")
	for i, l := range labels {
		labels[i] = "DC=" + l
	}
	return strings.Join(labels, ",")
}

// Start provisions (from a cached template when possible) and starts a DC on a free loopback
// address, waits until LDAPS answers an Administrator bind, and returns it. The caller must Close it.
func Start(ctx context.Context, opts Options) (dc *DC, err error) {
	if reason := Available(); reason != "" {
		return nil, errors.New("adtest: " + reason)
	}
	if err := opts.normalize(); err != nil {
		return nil, fmt.Errorf("adtest: %w", err)
	}
	if err := os.MkdirAll(baseDir(), 0o755); err != nil {
		return nil, fmt.Errorf("adtest: create base directory: %w", err)
	}
	sweepStale()

	var tmpl *template
	if !opts.NoTemplate {
		tmpl, err = ensureTemplate(ctx, opts.Realm)
		if err != nil {
			return nil, fmt.Errorf("adtest: template for %s: %w", opts.Realm, err)
		}
	}

	slot, err := acquireSlot(ctx)
	if err != nil {
		return nil, fmt.Errorf("adtest: %w", err)
	}
	domain := strings.ToLower(opts.Realm)
	d := &DC{
		Realm:         opts.Realm,
		NetBIOS:       netbiosOf(opts.Realm),
		Domain:        domain,
		BaseDN:        baseDNOf(opts.Realm),
		HostName:      strings.ToLower(hostLabel) + "." + domain,
		Addr:          slot.ip,
		LDAPSURL:      "ldaps://" + slot.ip + ":636",
		LDAPURL:       "ldap://" + slot.ip + ":389",
		AdminUPN:      "Administrator@" + domain,
		AdminPassword: opts.AdminPassword,
		Dir:           slot.dir,
		slot:          slot,
	}
	d.AdminDN = "CN=Administrator,CN=Users," + d.BaseDN
	d.UserPassword = genPassword()
	d.logPath = filepath.Join(d.Dir, "samba.log")
	defer func() {
		if err != nil {
			if os.Getenv("KEYDESK_ADTEST_KEEP") == "1" {
				d.Stop()
				err = fmt.Errorf("%w (kept %s because KEYDESK_ADTEST_KEEP=1)", err, d.Dir)
				return
			}
			d.Close()
		}
	}()

	if err := os.MkdirAll(d.Dir, 0o755); err != nil {
		return d, fmt.Errorf("adtest: create %s: %w", d.Dir, err)
	}
	bindPassword := d.AdminPassword
	if tmpl != nil {
		if err := tmpl.copyTo(ctx, d.Dir); err != nil {
			return d, fmt.Errorf("adtest: copy template for %s: %w", d.Realm, err)
		}
		bindPassword = tmpl.AdminPassword
	} else {
		if err := provision(ctx, d.Realm, d.AdminPassword, d.Dir); err != nil {
			return d, fmt.Errorf("adtest: provision %s: %w", d.Realm, err)
		}
	}
	if err := d.writeCerts(); err != nil {
		return d, fmt.Errorf("adtest: certificates for %s: %w", d.Realm, err)
	}
	if err := d.writeConf(tmpl); err != nil {
		return d, fmt.Errorf("adtest: smb.conf for %s: %w", d.Realm, err)
	}
	if err := d.startProcess(ctx, bindPassword); err != nil {
		return d, err
	}
	if bindPassword != d.AdminPassword {
		if err := d.SetPassword(ctx, d.AdminDN, d.AdminPassword); err != nil {
			return d, fmt.Errorf("adtest: set the Administrator password of %s: %w", d.Realm, err)
		}
		d.resetConn()
		if err := d.withConn(ctx, func(*ldap.Conn) error { return nil }); err != nil {
			return d, fmt.Errorf("adtest: bind with the new Administrator password of %s: %w", d.Realm, err)
		}
	}
	return d, nil
}

// StartT is Start for a test: it calls Require(t) first, fails the test on error, and registers
// Close with t.Cleanup (logging the tail of Samba's log when the test failed).
func StartT(t testing.TB, opts Options) *DC {
	t.Helper()
	Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	d, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("adtest: start DC: %v", err)
	}
	Cleanup(t, d)
	return d
}

// Cleanup registers d.Close with t.Cleanup; when the test failed it logs the tail of Samba's log first.
func Cleanup(t testing.TB, d *DC) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("adtest: last lines of samba's log for %s (%s):\n%s", d.Realm, d.Addr, d.LogTail(40))
		}
		if err := d.Close(); err != nil {
			t.Errorf("adtest: close DC %s: %v", d.Realm, err)
		}
	})
}

// startProcess runs samba in the foreground in its own process group and waits until it answers
// an LDAPS bind with password pw.
func (d *DC) startProcess(ctx context.Context, pw string) error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return errors.New("adtest: DC is closed")
	}
	if d.cmd != nil {
		d.mu.Unlock()
		return errors.New("adtest: samba is already running")
	}
	if err := os.MkdirAll(filepath.Join(d.Dir, "pid"), 0o755); err != nil {
		d.mu.Unlock()
		return fmt.Errorf("adtest: create pid directory: %w", err)
	}
	logf, err := os.OpenFile(d.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		d.mu.Unlock()
		return fmt.Errorf("adtest: open samba log: %w", err)
	}
	fmt.Fprintf(logf, "==== adtest: starting samba at %s on %s ====\n", time.Now().Format(time.RFC3339), d.Addr)
	cmd := exec.Command("samba", "-s", filepath.Join(d.Dir, "etc", "smb.conf"), "-i", "--debug-stdout", "-d", "1")
	cmd.Dir = d.Dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	// samba -i terminates on EOF on its standard input: we hold the write end for the DC's
	// lifetime, so if this process dies, samba follows.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		logf.Close()
		d.mu.Unlock()
		return fmt.Errorf("adtest: samba stdin pipe: %w", err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		d.mu.Unlock()
		return fmt.Errorf("adtest: start samba: %w", err)
	}
	logf.Close() // the child has its own copy
	done := make(chan struct{})
	d.cmd, d.stdin, d.done, d.waitErr = cmd, stdin, done, nil
	d.slot.record(cmd.Process.Pid)
	go func() {
		err := cmd.Wait()
		d.mu.Lock()
		d.waitErr = err
		d.mu.Unlock()
		close(done)
	}()
	d.mu.Unlock()

	if err := d.waitReady(ctx, pw, done); err != nil {
		return err
	}
	return nil
}

func (d *DC) waitReady(ctx context.Context, pw string, done chan struct{}) error {
	start := time.Now()
	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(readyPoll)
	defer tick.Stop()
	var lastErr error
	for {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		c, err := d.dialBind(actx, d.AdminUPN, pw)
		cancel()
		if err == nil {
			d.setConn(c)
			return nil
		}
		lastErr = err
		select {
		case <-done:
			d.mu.Lock()
			werr := d.waitErr
			d.mu.Unlock()
			return fmt.Errorf("adtest: samba for %s at %s exited during start-up (%v); last lines of its log:\n%s",
				d.Realm, d.Addr, werr, d.LogTail(30))
		case <-ctx.Done():
			return fmt.Errorf("adtest: waiting for samba for %s at %s: %w (last error: %v); last lines of its log:\n%s",
				d.Realm, d.Addr, ctx.Err(), lastErr, d.LogTail(30))
		case <-deadline.C:
			return fmt.Errorf("adtest: samba for %s at %s did not answer an LDAPS bind within %v (last error: %v); last lines of its log:\n%s",
				d.Realm, d.Addr, time.Since(start).Round(time.Second), lastErr, d.LogTail(30))
		case <-tick.C:
		}
	}
}

// Running reports whether the samba process is running.
func (d *DC) Running() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		return false
	}
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// Stop stops the samba process (SIGTERM to its process group, then SIGKILL after 10 s) and waits
// for it and its workers to exit. The provisioned data stays; Restart starts it again.
func (d *DC) Stop() error {
	d.resetConn()
	d.mu.Lock()
	cmd, stdin, done := d.cmd, d.stdin, d.done
	d.mu.Unlock()
	if cmd == nil {
		return nil
	}
	pid := cmd.Process.Pid
	var errs []error
	select {
	case <-done:
	default:
		// SIGTERM to the whole process group, as samba itself does on EOF on stdin: the master
		// alone takes about 2 s to wind its workers down, the group about 50 ms.
		if err := syscall.Kill(-pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Errorf("SIGTERM samba pid %d: %w", pid, err))
		}
		select {
		case <-done:
		case <-time.After(stopTimeout):
			errs = append(errs, fmt.Errorf("samba pid %d did not exit within %v of SIGTERM; killed its process group", pid, stopTimeout))
			syscall.Kill(-pid, syscall.SIGKILL)
			<-done
		}
	}
	stdin.Close()
	// The workers (prefork children) exit with the master; make sure none is left holding the ports.
	waitGroupGone(pid, 3*time.Second)
	d.mu.Lock()
	d.cmd, d.stdin = nil, nil
	d.mu.Unlock()
	d.slot.record(0)
	if len(errs) > 0 {
		return fmt.Errorf("adtest: stop samba for %s: %w", d.Realm, errors.Join(errs...))
	}
	return nil
}

// waitGroupGone waits until process group pgid has no live members, and SIGKILLs it after
// timeout. (kill(-pgid, 0) would also count zombies, which init may take a while to reap.)
func waitGroupGone(pgid int, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		if len(groupMembers(pgid)) == 0 {
			return
		}
		if time.Now().After(deadline) {
			syscall.Kill(-pgid, syscall.SIGKILL)
			time.Sleep(100 * time.Millisecond)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Restart starts samba again after Stop, on the same address with the same data (and certificate),
// and waits until it answers an Administrator bind.
func (d *DC) Restart(ctx context.Context) error {
	if d.Running() {
		return fmt.Errorf("adtest: restart %s: samba is still running (call Stop first)", d.Realm)
	}
	d.mu.Lock()
	d.cmd = nil
	d.mu.Unlock()
	if err := d.startProcess(ctx, d.AdminPassword); err != nil {
		return fmt.Errorf("adtest: restart %s: %w", d.Realm, err)
	}
	return nil
}

// Close stops samba, removes the DC's directory and releases its address. It is idempotent.
func (d *DC) Close() error {
	if d == nil {
		return nil
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	var errs []error
	if err := d.Stop(); err != nil {
		errs = append(errs, err)
	}
	if d.slot != nil {
		if err := os.RemoveAll(d.Dir); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", d.Dir, err))
		}
		if err := d.slot.release(); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("adtest: close %s: %w", d.Realm, errors.Join(errs...))
	}
	return nil
}

// LogTail returns the last n lines of samba's log (its output since the DC's first start).
func (d *DC) LogTail(n int) string {
	if d == nil || d.logPath == "" {
		return ""
	}
	f, err := os.Open(d.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read samba log: %v)", err)
	}
	defer f.Close()
	const max = 256 << 10
	if st, err := f.Stat(); err == nil && st.Size() > max {
		f.Seek(st.Size()-max, io.SeekStart)
	}
	data, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
