package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testPath is the file name the parser is told; every error must name it.
const testPath = "/srv/keydesk/conf/keydesk.toml"

// fullFile sets every key of Config, Sync and Domain at least once: the first
// domain sets every Domain key except bind_password_env (it excludes
// bind_password_file), the second sets bind_password_env.
const fullFile = `# KeyDesk test configuration
data_dir = "/var/lib/keydesk"

[sync]
interval = "30m"
jitter = "2m"
removal_guard_share = 0.25
removal_guard_minimum = 5
full_read_every = "12h"

[audit]
syslog = true
syslog_address = "udp:loghost:514"

[ssh]
listen = "0.0.0.0:2200"
host_key = "/var/lib/keydesk/host_key"
idle_timeout = "30m"
max_timeout = "8h"
max_sessions = 8

[mail]
host = "smtp.example.com"
port = 2525
security = "tls"
username = "keydesk"
password_file = "/etc/keydesk/smtp.pw"
password_env = ""
from = "KeyDesk <keydesk@example.com>"
ca_file = "/etc/keydesk/smtp-ca.pem"
timeout = "20s"

[invitations]
organisation = "Example Corp"
code_ttl = "3d"
where = "at the kiosk at reception"
templates_dir = "/etc/keydesk/templates"

[keys]
code_ttl = "48h"
usb_vendor_id = 0x20a0
usb_product_id = 0x4287
usb_interface = 1
trusted_makers = ["/etc/keydesk/makers/acme-ca.pem"]
require_attestation = false

[[domain]]
name = "corp"
urls = ["ldaps://dc1.corp.example.com:636", "ldaps://dc2.corp.example.com"]
base_dn = "DC=corp,DC=example,DC=com"
bind_dn = "svc-keydesk@corp.example.com"
bind_password_file = "/etc/keydesk/corp.pw"
ca_file = "/etc/keydesk/corp-ca.pem"
tls = "ldaps"
insecure_plaintext = false
sync_group = "KeyDesk Sync"
password_group = "KeyDesk Rotation"
connect_timeout = "5s"
timeout = "2m"
page_size = 500

[domain.passwords]
rotation_period = "14d"
offline = "rotate-and-hold"
concurrency = 2
length = 32
layout_safe = true

[domain.invitations]
enabled = true

[[domain]]
name = "lab"
urls = ["ldap://dc.lab.example.com:389/"]
base_dn = "DC=lab,DC=example,DC=com"
bind_dn = "CN=svc,OU=Service,DC=lab,DC=example,DC=com"
bind_password_env = "KEYDESK_LAB_PW"
tls = "starttls"

[[operator]]
name = "alice"
role = "admin"
os_user = "alice"

[[operator]]
name = "hd.bob"
role = "helpdesk"
os_user = "bob"
authorized_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB6m8Q bob@laptop"]
`

func dur(d time.Duration) Duration { return Duration{d} }

// tomlKeys lists the toml tags of a struct type, without "-".
func tomlKeys(t *testing.T, v any) []string {
	t.Helper()
	var keys []string
	rt := reflect.TypeOf(v)
	for i := 0; i < rt.NumField(); i++ {
		tag := rt.Field(i).Tag.Get("toml")
		if tag != "" && tag != "-" {
			keys = append(keys, tag)
		}
	}
	if len(keys) == 0 {
		t.Fatalf("%T has no toml keys", v)
	}
	return keys
}

func TestFullFileSetsEveryKey(t *testing.T) {
	// Keeps fullFile complete when a field is added to the structs.
	for _, v := range []any{Config{}, Sync{}, Domain{}, Keys{}, Operator{}, Audit{}, Passwords{}, SSH{}, Mail{}, Invitations{}, DomainInvitations{}} {
		for _, k := range tomlKeys(t, v) {
			if !strings.Contains(fullFile, "\n"+k+" = ") && !strings.Contains(fullFile, "["+k+"]") && !strings.Contains(fullFile, "."+k+"]") {
				t.Errorf("fullFile does not set %T key %q", v, k)
			}
		}
	}
}

func TestParseFullFile(t *testing.T) {
	c, err := Parse(testPath, []byte(fullFile))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	one, no := 1, false
	want := &Config{
		Path:    testPath,
		DataDir: "/var/lib/keydesk",
		Sync: Sync{
			Interval:            dur(30 * time.Minute),
			Jitter:              dur(2 * time.Minute),
			RemovalGuardShare:   0.25,
			RemovalGuardMinimum: 5,
			FullReadEvery:       dur(12 * time.Hour),
		},
		Keys: Keys{CodeTTL: dur(48 * time.Hour), USBVendorID: 0x20a0, USBProductID: 0x4287, USBInterface: &one,
			TrustedMakers: []string{"/etc/keydesk/makers/acme-ca.pem"}, RequireAttestation: &no},
		Audit: Audit{Syslog: true, SyslogAddress: "udp:loghost:514"},
		SSH:   SSH{Listen: "0.0.0.0:2200", HostKey: "/var/lib/keydesk/host_key", IdleTimeout: dur(30 * time.Minute), MaxTimeout: dur(8 * time.Hour), MaxSessions: 8},
		Mail: Mail{Host: "smtp.example.com", Port: 2525, Security: MailTLS, Username: "keydesk", PasswordFile: "/etc/keydesk/smtp.pw",
			From: "KeyDesk <keydesk@example.com>", CAFile: "/etc/keydesk/smtp-ca.pem", Timeout: dur(20 * time.Second)},
		Invitations: Invitations{Organisation: "Example Corp", CodeTTL: dur(72 * time.Hour), Where: "at the kiosk at reception", TemplatesDir: "/etc/keydesk/templates"},
		Domains: []Domain{
			{
				Name:             "corp",
				URLs:             []string{"ldaps://dc1.corp.example.com:636", "ldaps://dc2.corp.example.com"},
				BaseDN:           "DC=corp,DC=example,DC=com",
				BindDN:           "svc-keydesk@corp.example.com",
				BindPasswordFile: "/etc/keydesk/corp.pw",
				CAFile:           "/etc/keydesk/corp-ca.pem",
				TLS:              TLSModeLDAPS,
				SyncGroup:        "KeyDesk Sync",
				PasswordGroup:    "KeyDesk Rotation",
				ConnectTimeout:   dur(5 * time.Second),
				Timeout:          dur(2 * time.Minute),
				PageSize:         500,
				Passwords: Passwords{RotationPeriod: dur(14 * 24 * time.Hour), Offline: OfflineRotateAndHold, Concurrency: 2,
					Length: 32, LayoutSafe: true},
				Invitations: DomainInvitations{Enabled: true},
			},
			{
				// Everything left out gets its default.
				Name:            "lab",
				URLs:            []string{"ldap://dc.lab.example.com:389/"},
				BaseDN:          "DC=lab,DC=example,DC=com",
				BindDN:          "CN=svc,OU=Service,DC=lab,DC=example,DC=com",
				BindPasswordEnv: "KEYDESK_LAB_PW",
				TLS:             TLSModeStartTLS,
				SyncGroup:       "Hideez Users Sync",
				PasswordGroup:   "Security Key Auto Password Change",
				ConnectTimeout:  dur(10 * time.Second),
				Timeout:         dur(60 * time.Second),
				PageSize:        1000,
				Passwords:       Passwords{RotationPeriod: dur(28 * 24 * time.Hour), Offline: OfflineWait, Concurrency: 4, Length: 24},
			},
		},
		Operators: []Operator{{Name: "alice", Role: "admin", OSUser: "alice"},
			{Name: "hd.bob", Role: "helpdesk", OSUser: "bob", AuthorizedKeys: []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB6m8Q bob@laptop"}}},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Parse result differs\n got: %+v\nwant: %+v", c, want)
	}
	if got := c.DomainNames(); !reflect.DeepEqual(got, []string{"corp", "lab"}) {
		t.Errorf("DomainNames = %q, want [corp lab]", got)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keydesk.toml")
	if err := os.WriteFile(path, []byte(fullFile), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Path != path || len(c.Domains) != 2 {
		t.Errorf("Load: Path = %q, %d domains; want %q, 2", c.Path, len(c.Domains), path)
	}

	missing := filepath.Join(dir, "missing.toml")
	_, err = Load(missing)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load(missing) error = %v, want one wrapping fs.ErrNotExist", err)
	}
	if !strings.Contains(err.Error(), missing) {
		t.Errorf("Load(missing) error %q does not name the file", err)
	}
}

// domainKeys is a valid domain; domainBlock edits it.
var domainKeys = [][2]string{
	{"name", `"corp"`},
	{"urls", `["ldaps://dc1.corp.example.com:636"]`},
	{"base_dn", `"DC=corp,DC=example,DC=com"`},
	{"bind_dn", `"svc-keydesk@corp.example.com"`},
	{"bind_password_file", `"/etc/keydesk/corp.pw"`},
}

// domainBlock renders a [[domain]] section from domainKeys, with the keys in
// set replaced or added (raw TOML values) and the keys in drop left out.
func domainBlock(t *testing.T, set map[string]string, drop ...string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("\n[[domain]]\n")
	done := map[string]bool{}
	for _, kv := range domainKeys {
		k, v := kv[0], kv[1]
		done[k] = true
		if containsString(drop, k) {
			continue
		}
		if nv, ok := set[k]; ok {
			v = nv
		}
		b.WriteString(k + " = " + v + "\n")
	}
	for k, v := range set {
		if !done[k] {
			b.WriteString(k + " = " + v + "\n")
		}
	}
	return b.String()
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestParseDefaults(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		check func(t *testing.T, c *Config)
	}{
		{
			name: "sync table left out",
			text: domainBlock(t, nil),
			check: func(t *testing.T, c *Config) {
				want := Sync{
					Interval:            dur(time.Hour),
					Jitter:              dur(5 * time.Minute),
					RemovalGuardShare:   0.10,
					RemovalGuardMinimum: 20,
					FullReadEvery:       dur(24 * time.Hour),
				}
				if c.Sync != want {
					t.Errorf("Sync = %+v, want %+v", c.Sync, want)
				}
				if c.DataDir != "" {
					t.Errorf("DataDir = %q, want \"\" (the caller picks DefaultDataDir)", c.DataDir)
				}
			},
		},
		{
			name: "sync table partly set",
			text: "[sync]\ninterval = \"2h\"\nremoval_guard_minimum = 3\n" + domainBlock(t, nil),
			check: func(t *testing.T, c *Config) {
				if c.Sync.Interval.Duration != 2*time.Hour || c.Sync.RemovalGuardMinimum != 3 {
					t.Errorf("set values not kept: %+v", c.Sync)
				}
				if c.Sync.Jitter.Duration != DefaultSyncJitter || c.Sync.RemovalGuardShare != DefaultRemovalShare {
					t.Errorf("defaults not applied: %+v", c.Sync)
				}
			},
		},
		{
			name: "domain optional keys left out",
			text: domainBlock(t, nil),
			check: func(t *testing.T, c *Config) {
				d := c.Domains[0]
				if d.TLS != "ldaps" || d.SyncGroup != "Hideez Users Sync" || d.PasswordGroup != "Security Key Auto Password Change" ||
					d.PageSize != 1000 || d.ConnectTimeout.Duration != 10*time.Second || d.Timeout.Duration != time.Minute ||
					d.InsecurePlaintext || d.CAFile != "" {
					t.Errorf("domain defaults wrong: %+v", d)
				}
			},
		},
		{
			name: "insecure_plaintext without tls means tls none",
			text: domainBlock(t, map[string]string{"insecure_plaintext": "true", "urls": `["ldap://dc1.corp.example.com"]`}),
			check: func(t *testing.T, c *Config) {
				if c.Domains[0].TLS != TLSModeNone {
					t.Errorf("TLS = %q, want %q", c.Domains[0].TLS, TLSModeNone)
				}
			},
		},
		{
			name: "no domains at all",
			text: "data_dir = \"/data\"\n",
			check: func(t *testing.T, c *Config) {
				if len(c.Domains) != 0 || c.DataDir != "/data" {
					t.Errorf("got %+v", c)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(testPath, []byte(tt.text))
			if err != nil {
				t.Fatalf("Parse: %v\n%s", err, tt.text)
			}
			tt.check(t, c)
		})
	}
}

func TestParseErrors(t *testing.T) {
	second := func(set map[string]string) string {
		s := map[string]string{"name": `"lab"`}
		for k, v := range set {
			s[k] = v
		}
		return domainBlock(t, s)
	}
	tests := []struct {
		name string
		text string
		want []string // each must appear in the error, besides the path
	}{
		{"unknown top-level key", "bind_pw = \"x\"\n" + domainBlock(t, nil),
			[]string{"bind_pw: unknown key", "known keys"}},
		{"unknown key in domain", domainBlock(t, map[string]string{"bind_pw": `"hunter2"`}),
			[]string{"domain[1].bind_pw: unknown key", "known keys"}},
		{"unknown key in sync", "[sync]\nintervall = \"1h\"\n",
			[]string{"sync.intervall: unknown key"}},
		{"missing name", domainBlock(t, nil, "name"),
			[]string{"domain[1].name: required"}},
		{"missing urls", domainBlock(t, nil, "urls"),
			[]string{`domain[1] ("corp").urls: required`, "ldaps://"}},
		{"empty urls", domainBlock(t, map[string]string{"urls": "[]"}),
			[]string{`domain[1] ("corp").urls: required`}},
		{"missing base_dn", domainBlock(t, nil, "base_dn"),
			[]string{`domain[1] ("corp").base_dn: required`, "DC="}},
		{"base_dn not a DN", domainBlock(t, map[string]string{"base_dn": `"corp.example.com"`}),
			[]string{`domain[1] ("corp").base_dn:`, "is not a DN", "DC="}},
		{"missing bind_dn", domainBlock(t, nil, "bind_dn"),
			[]string{`domain[1] ("corp").bind_dn: required`}},
		{"neither password source", domainBlock(t, nil, "bind_password_file"),
			[]string{`domain[1] ("corp").bind_password_file: required`, "bind_password_env"}},
		{"both password sources", domainBlock(t, map[string]string{"bind_password_env": `"PW"`}),
			[]string{`domain[1] ("corp").bind_password_file:`, "bind_password_env", "keep only one"}},
		{"bad name", domainBlock(t, map[string]string{"name": `"corp west"`}),
			[]string{`.name: "corp west" may only hold letters, digits`}},
		{"bad tls", domainBlock(t, map[string]string{"tls": `"ssl"`}),
			[]string{`domain[1] ("corp").tls: "ssl" is not a TLS mode`, `"ldaps"`, `"starttls"`}},
		{"tls none without insecure_plaintext", domainBlock(t, map[string]string{"tls": `"none"`, "urls": `["ldap://dc1"]`}),
			[]string{`domain[1] ("corp").tls:`, "insecure_plaintext = true"}},
		{"insecure_plaintext with ldaps", domainBlock(t, map[string]string{"tls": `"ldaps"`, "insecure_plaintext": "true"}),
			[]string{`domain[1] ("corp").insecure_plaintext:`, `tls = "none"`}},
		{"ldap url with tls ldaps", domainBlock(t, map[string]string{"urls": `["ldaps://dc1:636", "ldap://dc2:389"]`}),
			[]string{`domain[1] ("corp").urls[2]:`, `"ldap://dc2:389"`, "needs ldaps://"}},
		{"ldaps url with tls starttls", domainBlock(t, map[string]string{"tls": `"starttls"`}),
			[]string{`domain[1] ("corp").urls[1]:`, `tls = "starttls" needs ldap://`}},
		{"url with path", domainBlock(t, map[string]string{"urls": `["ldaps://dc1:636/DC=corp"]`}),
			[]string{`domain[1] ("corp").urls[1]:`, "has a path", "base_dn"}},
		{"url without host", domainBlock(t, map[string]string{"urls": `["dc1.corp.example.com"]`}),
			[]string{`domain[1] ("corp").urls[1]:`, "is not an LDAP URL", "ldaps://"}},
		{"page_size negative", domainBlock(t, map[string]string{"page_size": "-1"}),
			[]string{`domain[1] ("corp").page_size: -1 is out of range`, "use 1 to 100000"}},
		{"page_size too large", domainBlock(t, map[string]string{"page_size": "100001"}),
			[]string{`domain[1] ("corp").page_size: 100001 is out of range`, "use 1 to 100000"}},
		{"negative timeout", domainBlock(t, map[string]string{"timeout": `"-5s"`}),
			[]string{`domain[1] ("corp").timeout: must not be negative`}},
		{"rotation period too short", domainBlock(t, nil) + "[domain.passwords]\nrotation_period = \"12h\"\n",
			[]string{`domain[1] ("corp").passwords.rotation_period: 12h0m0s is too short`, `"28d"`}},
		{"unknown offline policy", domainBlock(t, nil) + "[domain.passwords]\noffline = \"hold\"\n",
			[]string{`passwords.offline: "hold" is not a policy`, `"wait"`, `"rotate-and-hold"`}},
		{"password length too short", domainBlock(t, nil) + "[domain.passwords]\nlength = 8\n",
			[]string{`passwords.length: 8 is out of range; use 14 to 64`}},
		{"rotation concurrency zero", domainBlock(t, nil) + "[domain.passwords]\nconcurrency = -1\n",
			[]string{`passwords.concurrency: -1 is out of range`}},
		{"invitations without mail", domainBlock(t, nil) + "[domain.invitations]\nenabled = true\n",
			[]string{`mail.host: required: a domain turns invitations on`}},
		{"mail in the clear to another host", "[mail]\nhost = \"smtp.example.com\"\nsecurity = \"none\"\nfrom = \"k@example.com\"\n" + domainBlock(t, nil),
			[]string{`mail.security: "none" sends enrollment codes in the clear`, "smtp.example.com"}},
		{"mail security unknown", "[mail]\nhost = \"smtp.example.com\"\nsecurity = \"ssl\"\nfrom = \"k@example.com\"\n" + domainBlock(t, nil),
			[]string{`mail.security: "ssl" is not a mode`}},
		{"mail without sender", "[mail]\nhost = \"smtp.example.com\"\n" + domainBlock(t, nil),
			[]string{`mail.from: "": required`}},
		{"mail user without password", "[mail]\nhost = \"smtp.example.com\"\nfrom = \"k@example.com\"\nusername = \"k\"\n" + domainBlock(t, nil),
			[]string{`mail.password_file: required with mail.username`}},
		{"invitation code ttl too long", "[mail]\nhost = \"smtp.example.com\"\nfrom = \"k@example.com\"\n[invitations]\ncode_ttl = \"100d\"\n" + domainBlock(t, nil),
			[]string{`invitations.code_ttl: 2400h0m0s is out of range`}},
		{"ssh listen not an address", "[ssh]\nlisten = \"2222\"\n" + domainBlock(t, nil),
			[]string{`ssh.listen: "2222" is not an address`, `"127.0.0.1:2222"`}},
		{"ssh host key relative", "[ssh]\nhost_key = \"key\"\n" + domainBlock(t, nil),
			[]string{`ssh.host_key: "key": give an absolute path`}},
		{"operator with neither os_user nor keys", domainBlock(t, nil) + "[[operator]]\nname = \"x\"\nrole = \"admin\"\n",
			[]string{`operator[1] ("x").os_user: required (or authorized_keys)`}},
		{"duplicate domain name", domainBlock(t, nil) + second(map[string]string{"name": `"CORP"`}),
			[]string{`domain[2] ("CORP").name:`, "already the name of domain[1]", "its own name"}},
		{"second domain invalid", domainBlock(t, nil) + second(map[string]string{"base_dn": `""`}),
			[]string{`domain[2] ("lab").base_dn: required`}},
		{"bad duration in sync", "[sync]\ninterval = \"soon\"\n",
			[]string{"sync.interval: ", `"soon" is not a duration`, `"30s"`}},
		{"bad duration in domain", domainBlock(t, map[string]string{"connect_timeout": `"5 parsecs"`}),
			[]string{`domain[1].connect_timeout: "5 parsecs" is not a duration`}},
		{"interval too short", "[sync]\ninterval = \"30s\"\n",
			[]string{"sync.interval:", "too short", `"1m"`}},
		{"negative jitter", "[sync]\njitter = \"-1m\"\n",
			[]string{"sync.jitter: must not be negative"}},
		{"removal share above 1", "[sync]\nremoval_guard_share = 1.5\n",
			[]string{"sync.removal_guard_share: 1.5 is out of range", "between 0 and 1"}},
		{"removal minimum negative", "[sync]\nremoval_guard_minimum = -2\n",
			[]string{"sync.removal_guard_minimum: must be at least 1"}},
		{"wrong value type", domainBlock(t, map[string]string{"page_size": `"big"`}),
			[]string{`domain[1].page_size: expected a whole number, got the text "big"`}},
		{"operator without name", "[[operator]]\nrole = \"admin\"\nos_user = \"alice\"\n",
			[]string{"operator[1].name: required"}},
		{"operator with a bad role", "[[operator]]\nname = \"alice\"\nrole = \"root\"\nos_user = \"alice\"\n",
			[]string{`operator[1] ("alice").role: "root" is not a role`, "admin, helpdesk, auditor"}},
		{"operator without os_user", "[[operator]]\nname = \"alice\"\nrole = \"auditor\"\n",
			[]string{`operator[1] ("alice").os_user: required`}},
		{"operator with a bad name", "[[operator]]\nname = \"alice smith\"\nrole = \"auditor\"\nos_user = \"alice\"\n",
			[]string{`operator[1] ("alice smith").name: may only hold`}},
		{"two operators for one OS user", "[[operator]]\nname = \"a\"\nrole = \"admin\"\nos_user = \"alice\"\n[[operator]]\nname = \"b\"\nrole = \"auditor\"\nos_user = \"alice\"\n",
			[]string{`operator[2] ("b").os_user: "alice" is already operator[1]'s`}},
		{"two operators with one name", "[[operator]]\nname = \"a\"\nrole = \"admin\"\nos_user = \"alice\"\n[[operator]]\nname = \"A\"\nrole = \"auditor\"\nos_user = \"bob\"\n",
			[]string{`operator[2] ("A").name: "A" is already operator[1]'s name`}},
		{"unknown key in operator", "[[operator]]\nname = \"a\"\nrole = \"admin\"\nos_user = \"alice\"\nssh_key = \"x\"\n",
			[]string{"operator[1].ssh_key: unknown key"}},
		{"relative trusted maker", "[keys]\ntrusted_makers = [\"acme.pem\"]\n",
			[]string{"keys.trusted_makers[1]", "absolute path"}},
		{"bad syslog address", "[audit]\nsyslog = true\nsyslog_address = \"/dev/log\"\n",
			[]string{"audit.syslog_address", "unixgram:/dev/log"}},
		{"syslog address without syslog", "[audit]\nsyslog_address = \"udp:h:514\"\n",
			[]string{"audit.syslog_address", "audit.syslog is not true"}},
		{"toml syntax error", "data_dir = \"/data\"\n[sync]\ninterval = \"1h\" x\n",
			[]string{"line 3", "expected"}},
		{"unterminated string", "data_dir = \"/data\ninterval = 1\n",
			[]string{"line 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse(testPath, []byte(tt.text))
			if err == nil {
				t.Fatalf("Parse succeeded (%+v), want an error\n%s", c, tt.text)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, testPath+": ") {
				t.Errorf("error %q does not start with the file path", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}

func TestBindPassword(t *testing.T) {
	dir := t.TempDir()
	writeMode := func(name, content string, mode os.FileMode) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write := func(name, content string) string { return writeMode(name, content, 0o600) }
	const envName = "KEYDESK_TEST_BIND_PW"
	const unsetEnv = "KEYDESK_TEST_BIND_PW_UNSET"
	tests := []struct {
		name    string
		domain  Domain
		env     map[string]string
		unset   []string
		want    string
		wantErr []string
		errIs   error
	}{
		{name: "file with trailing newline",
			domain: Domain{Name: "corp", BindPasswordFile: write("nl.pw", "correct horse\n")},
			want:   "correct horse"},
		{name: "file with CRLF",
			domain: Domain{Name: "corp", BindPasswordFile: write("crlf.pw", "correct horse\r\n")},
			want:   "correct horse"},
		{name: "file without newline keeps inner and leading spaces",
			domain: Domain{Name: "corp", BindPasswordFile: write("plain.pw", " a b ")},
			want:   " a b "},
		{name: "file at the size limit",
			domain: Domain{Name: "corp", BindPasswordFile: write("max.pw", strings.Repeat("x", passwordFileMaxBytes))},
			want:   strings.Repeat("x", passwordFileMaxBytes)},
		{name: "environment variable is taken verbatim",
			domain: Domain{Name: "lab", BindPasswordEnv: envName},
			env:    map[string]string{envName: "env-secret\n"},
			want:   "env-secret\n"},
		{name: "missing environment variable",
			domain:  Domain{Name: "lab", BindPasswordEnv: unsetEnv},
			unset:   []string{unsetEnv},
			wantErr: []string{`domain "lab"`, unsetEnv, "bind_password_env", "not set"}},
		{name: "empty environment variable",
			domain:  Domain{Name: "lab", BindPasswordEnv: envName},
			env:     map[string]string{envName: ""},
			wantErr: []string{envName, "not set"}},
		{name: "empty file",
			domain:  Domain{Name: "corp", BindPasswordFile: write("empty.pw", "")},
			wantErr: []string{`domain "corp"`, "empty.pw", "is empty"}},
		{name: "file with only a newline",
			domain:  Domain{Name: "corp", BindPasswordFile: write("newline.pw", "\n")},
			wantErr: []string{"newline.pw", "is empty"}},
		{name: "file too large",
			domain:  Domain{Name: "corp", BindPasswordFile: write("big.pw", strings.Repeat("y", passwordFileMaxBytes+1))},
			wantErr: []string{`domain "corp"`, "big.pw", "larger than 4096 bytes"}},
		{name: "missing file",
			domain:  Domain{Name: "corp", BindPasswordFile: filepath.Join(dir, "nope.pw")},
			wantErr: []string{`domain "corp"`, "bind_password_file", "nope.pw"},
			errIs:   fs.ErrNotExist},
		{name: "file others can read is refused",
			domain:  Domain{Name: "corp", BindPasswordFile: writeMode("loose.pw", "secret", 0o644)},
			wantErr: []string{`domain "corp"`, "loose.pw", "mode 0644", "chmod 600"},
			errIs:   ErrLoosePasswordFile},
		{name: "file the group can read is refused",
			domain:  Domain{Name: "corp", BindPasswordFile: writeMode("group.pw", "secret", 0o640)},
			wantErr: []string{"group.pw", "mode 0640", "chmod 600"},
			errIs:   ErrLoosePasswordFile},
		{name: "read-only for its owner is fine",
			domain: Domain{Name: "corp", BindPasswordFile: writeMode("ro.pw", "secret", 0o400)},
			want:   "secret"},
		{name: "directory instead of a file",
			domain:  Domain{Name: "corp", BindPasswordFile: dir},
			wantErr: []string{`domain "corp"`, "read bind_password_file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			for _, k := range tt.unset {
				t.Setenv(k, "") // restores the old value afterwards
				os.Unsetenv(k)
			}
			got, err := tt.domain.BindPassword()
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("BindPassword: %v", err)
				}
				if got != tt.want {
					// Lengths only: never print a password.
					t.Errorf("BindPassword returned a different password (%d bytes, want %d)", len(got), len(tt.want))
				}
				return
			}
			if err == nil {
				t.Fatalf("BindPassword succeeded (%d bytes), want an error", len(got))
			}
			if got != "" {
				t.Errorf("BindPassword returned %d bytes together with an error", len(got))
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if tt.errIs != nil && !errors.Is(err, tt.errIs) {
				t.Errorf("error %q does not wrap %v", err, tt.errIs)
			}
			if strings.Contains(err.Error(), "yyyy") {
				t.Errorf("error quotes the file content")
			}
		})
	}
}

func TestSelect(t *testing.T) {
	text := domainBlock(t, nil) +
		domainBlock(t, map[string]string{"name": `"lab"`}) +
		domainBlock(t, map[string]string{"name": `"branch"`})
	c, err := Parse(testPath, []byte(text))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	tests := []struct {
		name    string
		names   []string
		want    []string
		wantErr []string
	}{
		{name: "none selects all in file order", names: nil, want: []string{"corp", "lab", "branch"}},
		{name: "order follows the file", names: []string{"branch", "corp"}, want: []string{"corp", "branch"}},
		{name: "case-insensitive", names: []string{"LAB"}, want: []string{"lab"}},
		{name: "repeated name once", names: []string{"corp", "Corp"}, want: []string{"corp"}},
		{name: "unknown name", names: []string{"corp", "nope"},
			wantErr: []string{`no domain named "nope"`, testPath, "configured: branch, corp, lab"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds, err := c.Select(tt.names)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("Select(%q) succeeded, want an error", tt.names)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Select(%q): %v", tt.names, err)
			}
			var got []string
			for _, d := range ds {
				got = append(got, d.Name)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Select(%q) = %q, want %q", tt.names, got, tt.want)
			}
		})
	}

	// The selection is a copy: changing it leaves the configuration alone.
	ds, err := c.Select(nil)
	if err != nil {
		t.Fatal(err)
	}
	ds[0].Name = "changed"
	if c.Domains[0].Name != "corp" {
		t.Errorf("Select(nil) shares its slice with the configuration")
	}

	d, ok := c.Domain("BRANCH")
	if !ok || d != &c.Domains[2] {
		t.Errorf("Domain(\"BRANCH\") = %v, %v; want the third domain", d, ok)
	}
	if _, ok := c.Domain("nope"); ok {
		t.Errorf("Domain(\"nope\") found a domain")
	}
}

func TestDefaultPaths(t *testing.T) {
	home := t.TempDir()
	xdg := t.TempDir()
	tests := []struct {
		name       string
		configHome string
		dataHome   string
		wantConfig string
		wantData   string
	}{
		{"XDG variables set", xdg, filepath.Join(xdg, "data"),
			filepath.Join(xdg, "keydesk", "keydesk.toml"), filepath.Join(xdg, "data", "keydesk")},
		{"XDG variables empty", "", "",
			filepath.Join(home, ".config", "keydesk", "keydesk.toml"), filepath.Join(home, ".local", "share", "keydesk")},
		{"relative XDG variables are ignored", "rel/config", "rel/data",
			filepath.Join(home, ".config", "keydesk", "keydesk.toml"), filepath.Join(home, ".local", "share", "keydesk")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("HOME", home)
			t.Setenv("XDG_CONFIG_HOME", tt.configHome)
			t.Setenv("XDG_DATA_HOME", tt.dataHome)
			if got := DefaultPath(); got != tt.wantConfig {
				t.Errorf("DefaultPath() = %q, want %q", got, tt.wantConfig)
			}
			if got := DefaultDataDir(); got != tt.wantData {
				t.Errorf("DefaultDataDir() = %q, want %q", got, tt.wantData)
			}
		})
	}
}

func TestDurationText(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"90s", 90 * time.Second, false},
		{"1h30m", 90 * time.Minute, false},
		{"0", 0, false},
		{"28d", 28 * 24 * time.Hour, false},
		{"1d", 24 * time.Hour, false},
		{"2xd", 0, true},
		{"-1d", 0, true},
		{"d", 0, true},
		{"5", 0, true},
		{"soon", 0, true},
	}
	for _, tt := range tests {
		var d Duration
		err := d.UnmarshalText([]byte(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("UnmarshalText(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if d.Duration != tt.want {
			t.Errorf("UnmarshalText(%q) = %v, want %v", tt.in, d.Duration, tt.want)
		}
		b, err := d.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Duration
		if err := back.UnmarshalText(b); err != nil || back != d {
			t.Errorf("MarshalText round trip of %v gave %v, %v", d, back, err)
		}
	}
}

func TestJitterCanBeTurnedOff(t *testing.T) {
	base := "[[domain]]\nname = \"corp\"\nurls = [\"ldaps://dc1.corp.example.com\"]\nbase_dn = \"DC=corp,DC=example,DC=com\"\nbind_dn = \"svc@corp.example.com\"\nbind_password_env = \"PW\"\n"
	tests := []struct {
		name, sync string
		want       time.Duration
	}{
		{"missing gives the default", "", DefaultSyncJitter},
		{"zero turns it off", "[sync]\njitter = \"0s\"\n", 0},
		{"set", "[sync]\njitter = \"90s\"\n", 90 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("k.toml", []byte(tt.sync+base))
			if err != nil {
				t.Fatal(err)
			}
			if c.Sync.Jitter.Duration != tt.want {
				t.Errorf("jitter = %v, want %v", c.Sync.Jitter, tt.want)
			}
		})
	}
}

func TestAttestationRequiredByDefault(t *testing.T) {
	for text, want := range map[string]bool{
		"":                                      true,
		"[keys]\nrequire_attestation = true\n":  true,
		"[keys]\nrequire_attestation = false\n": false,
	} {
		c, err := Parse(testPath, []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Keys.AttestationRequired(); got != want {
			t.Errorf("%q: AttestationRequired() = %v, want %v", text, got, want)
		}
	}
}

// TestEveryProblemAtOnce: a file with several mistakes gets them all, in
// the file's order of sections, in the user's words.
func TestEveryProblemAtOnce(t *testing.T) {
	text := "[sync]\ninterval = 3600\njitter = \"5m\"\nremoval_guard_share = \"ten\"\n\n[keys]\ncode_ttl = true\n\n[[domain]]\nname = \"corp\"\nurls = \"ldaps://dc1\"\npage_size = \"big\"\nbind_pw = \"x\"\n"
	_, err := Parse("k.toml", []byte(text))
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want a *ConfigError", err)
	}
	want := []string{
		`sync.interval: expected a duration such as "1h", "30s" or "7d", got the number 3600`,
		`sync.removal_guard_share: expected a number such as 0.1, got the text "ten"`,
		`keys.code_ttl: expected a duration such as "1h", "30s" or "7d", got true`,
		`domain[1].urls: expected a list in brackets such as ["a", "b"], got the text "ldaps://dc1"`,
		`domain[1].page_size: expected a whole number, got the text "big"`,
		`domain[1].bind_pw: unknown key`,
	}
	if len(ce.Problems) != len(want) {
		t.Fatalf("%d problems, want %d:\n%s", len(ce.Problems), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(ce.Problems[i], w) {
			t.Errorf("problem %d = %q, want it to start with %q", i+1, ce.Problems[i], w)
		}
	}
	if !strings.HasPrefix(err.Error(), "k.toml: 6 problems:\n  sync.interval: ") {
		t.Errorf("message:\n%s", err)
	}
	for _, decoder := range []string{"incompatible types", "int64", "TOML value"} {
		if strings.Contains(err.Error(), decoder) {
			t.Errorf("the message carries the decoder's words %q", decoder)
		}
	}
	// Once the types are right, every rule that fails is reported too.
	_, err = Parse("k.toml", []byte("[sync]\ninterval = \"30s\"\n[ssh]\nmax_sessions = -1\n[[domain]]\nname = \"corp\"\nurls = [\"ldaps://dc1\"]\n"))
	if !errors.As(err, &ce) || len(ce.Problems) < 4 || !strings.HasPrefix(ce.Problems[0], "sync.interval") || !strings.Contains(err.Error(), "ssh.max_sessions") || !strings.Contains(err.Error(), `domain[1] ("corp").base_dn: required`) {
		t.Errorf("the rules broken: %v", err)
	}
}

func TestRelativeDataDirIsTheFilesNeighbour(t *testing.T) {
	for _, tt := range []struct{ path, dataDir, want string }{
		{"/etc/keydesk/keydesk.toml", "data", "/etc/keydesk/data"},
		{"/etc/keydesk/keydesk.toml", "../lib/keydesk", "/etc/lib/keydesk"},
		{"/etc/keydesk/keydesk.toml", "/var/lib/keydesk", "/var/lib/keydesk"},
		{"conf/keydesk.toml", "./state", "conf/state"},
	} {
		c, err := Parse(tt.path, []byte("data_dir = \""+tt.dataDir+"\"\n"))
		if err != nil {
			t.Fatal(err)
		}
		if c.DataDir != tt.want {
			t.Errorf("data_dir %q in %s = %q, want %q", tt.dataDir, tt.path, c.DataDir, tt.want)
		}
	}
}

func TestSampleParses(t *testing.T) {
	c, err := Parse("/etc/keydesk/keydesk.toml", []byte(Sample))
	if err != nil {
		t.Fatalf("the sample configuration does not parse: %v", err)
	}
	if len(c.Domains) != 1 || c.Domains[0].Name != "corp" || c.Domains[0].Invitations.Enabled {
		t.Errorf("sample: %+v", c.Domains)
	}
}
