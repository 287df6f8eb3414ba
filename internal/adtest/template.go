package adtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// templateFormat changes whenever the way templates are provisioned changes, so that old cached
// templates are not reused.
const templateFormat = "v1"

const templateMeta = ".adtest-template.json"

// template is a provisioned, never started domain directory that DCs are copied from.
type template struct {
	Dir           string `json:"-"`
	ProvisionDir  string `json:"provision_dir"` // the path provision wrote into smb.conf
	Realm         string `json:"realm"`
	AdminPassword string `json:"admin_password"`
	SambaVersion  string `json:"samba_version"`
	Created       string `json:"created"`
	ProvisionSecs string `json:"provision_seconds"`
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// TemplateDir returns the cache directory of the template for realm (which may not exist yet).
func TemplateDir(realm string) (string, error) {
	v, err := sambaVersion()
	if err != nil {
		return "", err
	}
	name := "template-" + strings.ToLower(realm) + "-" + unsafeChars.ReplaceAllString(v, "_") + "-" + templateFormat
	return filepath.Join(baseDir(), name), nil
}

// ensureTemplate returns the cached template for realm, provisioning it first (under a file lock,
// so that parallel test processes do not race) when it does not exist.
func ensureTemplate(ctx context.Context, realm string) (*template, error) {
	dir, err := TemplateDir(realm)
	if err != nil {
		return nil, err
	}
	if t, err := loadTemplate(dir); err == nil {
		return t, nil
	}
	lock, err := lockWait(ctx, dir+".lock")
	if err != nil {
		return nil, err
	}
	defer unlock(lock)
	if t, err := loadTemplate(dir); err == nil {
		return t, nil // another process made it while we waited
	}
	// A directory without metadata is a provisioning that was interrupted.
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("remove incomplete template %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	v, _ := sambaVersion()
	t := &template{Dir: dir, ProvisionDir: dir, Realm: realm, AdminPassword: genPassword("Administrator"), SambaVersion: v}
	start := time.Now()
	if err := provision(ctx, realm, t.AdminPassword, dir); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	t.Created = time.Now().Format(time.RFC3339)
	t.ProvisionSecs = fmt.Sprintf("%.1f", time.Since(start).Seconds())
	data, _ := json.MarshalIndent(t, "", "  ")
	// Written last: its presence marks the template complete.
	if err := writeFileSync(filepath.Join(dir, templateMeta), data, 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("write template metadata: %w", err)
	}
	return t, nil
}

func loadTemplate(dir string) (*template, error) {
	data, err := os.ReadFile(filepath.Join(dir, templateMeta))
	if err != nil {
		return nil, err
	}
	var t template
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, err
	}
	if t.AdminPassword == "" || t.ProvisionDir == "" {
		return nil, fmt.Errorf("template metadata %s is incomplete", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "private", "sam.ldb")); err != nil {
		return nil, err
	}
	t.Dir = dir
	return &t, nil
}

func writeFileSync(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// provision runs samba-tool domain provision for realm into dir (dns backend NONE; DC host name DC1).
func provision(ctx context.Context, realm, adminPassword, dir string) error {
	args := []string{"domain", "provision",
		"--realm=" + realm,
		"--domain=" + netbiosOf(realm),
		"--server-role=dc",
		"--dns-backend=NONE",
		"--adminpass=" + adminPassword,
		"--targetdir=" + dir,
		"--host-ip=127.0.0.1",
		"--option=interfaces=127.0.0.1",
		"--option=bind interfaces only=yes",
		"--option=netbios name=" + hostLabel,
		"--option=pid directory=" + filepath.Join(dir, "pid"),
		"--option=ncalrpc dir=" + filepath.Join(dir, "ncalrpc"),
		"--option=winbindd socket directory=" + filepath.Join(dir, "winbindd"),
	}
	cmd := exec.CommandContext(ctx, "samba-tool", args...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	os.WriteFile(filepath.Join(dir, "provision.log"), out, 0o644)
	if err != nil {
		return fmt.Errorf("samba-tool domain provision --realm=%s --targetdir=%s: %v; output:\n%s",
			realm, dir, err, lastLines(string(out), 30))
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// copyTo copies the template into dst (which exists and is empty), keeping modes, owners and
// extended attributes (sysvol's NT ACLs).
func (t *template) copyTo(ctx context.Context, dst string) error {
	out, err := exec.CommandContext(ctx, "cp", "-a", t.Dir+"/.", dst+"/").CombinedOutput()
	if err != nil {
		return fmt.Errorf("cp -a %s/. %s/: %v: %s", t.Dir, dst, err, bytes.TrimSpace(out))
	}
	os.Remove(filepath.Join(dst, templateMeta))
	return nil
}

// writeConf rewrites Dir/etc/smb.conf for this DC: every path of the template (or of the
// provisioning) points into Dir, it listens only on Addr, runs only the LDAP and KDC services,
// and uses the certificate written by writeCerts.
func (d *DC) writeConf(t *template) error {
	path := filepath.Join(d.Dir, "etc", "smb.conf")
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	conf := string(data)
	if t != nil {
		conf = strings.ReplaceAll(conf, t.ProvisionDir, d.Dir)
	}
	for _, sub := range []string{"pid", "ncalrpc", "winbindd", "ntp_signd", "cache", "state", "tls"} {
		if err := os.MkdirAll(filepath.Join(d.Dir, sub), 0o755); err != nil {
			return err
		}
	}
	j := func(p string) string { return filepath.Join(d.Dir, p) }
	conf = setGlobals(conf, [][2]string{
		{"interfaces", d.Addr},
		{"bind interfaces only", "yes"},
		{"server services", "ldap, cldap, kdc"},
		{"tls enabled", "yes"},
		{"tls keyfile", j("tls/key.pem")},
		{"tls certfile", j("tls/cert.pem")},
		{"tls cafile", j("tls/ca.pem")},
		{"private dir", j("private")},
		{"binddns dir", j("bind-dns")},
		{"lock directory", d.Dir},
		{"state directory", j("state")},
		{"cache directory", j("cache")},
		{"pid directory", j("pid")},
		{"ncalrpc dir", j("ncalrpc")},
		{"winbindd socket directory", j("winbindd")},
		{"ntp signd socket directory", j("ntp_signd")},
		{"log file", j("log.%m")},
		// Samba, like AD's NTLM network logons, keeps accepting the previous password for an
		// hour after a change ("old password allowed period", simple binds included); a test
		// that a rotated-out password stops working needs it to stop at once.
		{"old password allowed period", "0"},
		// No fsync on every ldb transaction commit (as Samba's own selftest runs): a test DC
		// does not need to survive a machine crash, and adds are several times faster.
		{"ldb:nosync", "true"},
	})
	if t != nil && strings.Contains(conf, t.ProvisionDir) && !strings.HasPrefix(d.Dir, t.ProvisionDir) {
		return fmt.Errorf("template path %s still in %s", t.ProvisionDir, path)
	}
	return os.WriteFile(path, []byte(conf), 0o644)
}

// setGlobals sets the given parameters in smb.conf's [global] section, replacing existing lines
// (Samba's parameter names are case- and space-insensitive) and appending the others.
func setGlobals(conf string, params [][2]string) string {
	norm := func(k string) string { return strings.ToLower(strings.Join(strings.Fields(k), "")) }
	want := map[string]int{}
	for i, p := range params {
		want[norm(p[0])] = i
	}
	done := make([]bool, len(params))
	lines := strings.Split(conf, "\n")
	var out []string
	inGlobal := false
	flush := func() {
		for i, p := range params {
			if !done[i] {
				out = append(out, "\t"+p[0]+" = "+p[1])
				done[i] = true
			}
		}
	}
	for _, line := range lines {
		trim := strings.TrimSpace(line)
		if strings.HasPrefix(trim, "[") {
			if inGlobal {
				flush()
				out = append(out, "")
			}
			inGlobal = strings.EqualFold(trim, "[global]")
			out = append(out, line)
			continue
		}
		if inGlobal {
			if k, _, ok := strings.Cut(trim, "="); ok {
				if i, ok := want[norm(k)]; ok {
					if !done[i] {
						out = append(out, "\t"+params[i][0]+" = "+params[i][1])
						done[i] = true
					}
					continue
				}
			}
		}
		out = append(out, line)
	}
	if inGlobal {
		flush()
	}
	if !allDone(done) { // no [global] section at all
		out = append([]string{"[global]"}, out...)
		var add []string
		for i, p := range params {
			if !done[i] {
				add = append(add, "\t"+p[0]+" = "+p[1])
			}
		}
		out = append(out[:1], append(add, out[1:]...)...)
	}
	return strings.Join(out, "\n")
}

func allDone(b []bool) bool {
	for _, v := range b {
		if !v {
			return false
		}
	}
	return true
}
