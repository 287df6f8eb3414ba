// Package config reads and checks KeyDesk's TOML configuration file: the
// Active Directory domains to sync, where the data lives and how syncs run.
//
// Every problem is reported with the file, the field and what was expected;
// unknown keys are errors, so that a misspelt option is never silently ignored.
package config

import (
	"crypto/x509"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Defaults for fields left out of the file.
const (
	DefaultSyncGroup       = "Hideez Users Sync"
	DefaultPasswordGroup   = "Security Key Auto Password Change"
	DefaultPageSize        = 1000
	DefaultConnectTimeout  = 10 * time.Second
	DefaultRequestTimeout  = 60 * time.Second
	DefaultSyncInterval    = time.Hour
	DefaultSyncJitter      = 5 * time.Minute
	DefaultRemovalShare    = 0.10
	DefaultRemovalMinimum  = 20
	DefaultFullReadEvery   = 24 * time.Hour
	DefaultCodeTTL         = 72 * time.Hour
	DefaultSSHListen       = "127.0.0.1:2222"
	DefaultSSHIdleTimeout  = 15 * time.Minute
	DefaultSSHMaxTimeout   = 12 * time.Hour
	DefaultSSHMaxSessions  = 32
	DefaultRotationPeriod  = 28 * 24 * time.Hour
	DefaultRotationWorkers = 4
	DefaultPasswordLength  = 24
	minPasswordLength      = 14
	maxPasswordLength      = 64
	maxRotationWorkers     = 64
	maxOperatorNameLength  = 64
	DefaultUSBVendorID     = 0x1209
	DefaultUSBProductID    = 0x0001
	TLSModeLDAPS           = "ldaps"
	TLSModeStartTLS        = "starttls"
	TLSModeNone            = "none"
	configFileName         = "keydesk.toml"
	appDirName             = "keydesk"
	maxPageSizeAllowed     = 100000
	maxDomainNameLength    = 64
	passwordFileMaxBytes   = 4096
	removalShareUpperBound = 1.0
)

// ErrLoosePasswordFile: a bind password file that group or others can read
// is refused.
var ErrLoosePasswordFile = errors.New("group or others can read it, so it is refused")

// Config is the whole configuration file.
type Config struct {
	// Path is the file the configuration was read from ("" when none).
	Path string `toml:"-"`
	// DataDir holds the database and other state; the --data flag overrides it.
	DataDir string `toml:"data_dir"`
	Sync    Sync   `toml:"sync"`
	Keys    Keys   `toml:"keys"`
	Audit   Audit  `toml:"audit"`
	SSH     SSH    `toml:"ssh"`
	// Mail is the SMTP server that sends invitations.
	Mail Mail `toml:"mail"`
	// Invitations are the settings of invitation emails and authenticator
	// enrollment (each domain turns them on in [domain.invitations]).
	Invitations Invitations `toml:"invitations"`
	Domains     []Domain    `toml:"domain"`
	// Operators are the people who may use KeyDesk, each with a role. When
	// none is listed, the OS user who owns the data directory is the one
	// operator, an admin.
	Operators []Operator `toml:"operator"`
}

// OperatorRoles are the roles an operator may be given: the roles of the
// application layer (package app), which a test keeps in step with these.
var OperatorRoles = []string{"admin", "helpdesk", "auditor", "kiosk"}

// Operator is a person who may use KeyDesk.
type Operator struct {
	// Name is how the audit log names the operator.
	Name string `toml:"name"`
	// Role is admin, helpdesk or auditor (README "Operators and roles").
	Role string `toml:"role"`
	// OSUser is the local account (login name) that runs KeyDesk's commands
	// and console as this operator ("" for one who only connects over SSH).
	OSUser string `toml:"os_user"`
	// AuthorizedKeys are the operator's SSH public keys, as lines of an
	// OpenSSH authorized_keys file ("ssh-ed25519 AAAA... comment"), for
	// keydesk serve. A malformed line is reported when the server starts
	// and does not hide the others.
	AuthorizedKeys []string `toml:"authorized_keys"`
}

// SSH holds the settings of keydesk serve.
type SSH struct {
	// Listen is the address the server listens on (default
	// 127.0.0.1:2222: this machine only).
	Listen string `toml:"listen"`
	// HostKey is the server's ed25519 host key file, created on first
	// start (default ssh_host_ed25519_key in the data directory).
	HostKey string `toml:"host_key"`
	// IdleTimeout ends a session nobody types in (default 15m);
	// MaxTimeout ends any session (default 12h).
	IdleTimeout Duration `toml:"idle_timeout"`
	MaxTimeout  Duration `toml:"max_timeout"`
	// MaxSessions bounds the sessions open at once (default 32).
	MaxSessions int `toml:"max_sessions"`
}

// Audit holds the settings of the audit log.
type Audit struct {
	// Syslog sends each entry's number, hash and MAC to the system log as
	// it is written, so that the log's history is also kept outside this
	// machine's database.
	Syslog bool `toml:"syslog"`
	// SyslogAddress is where: "unixgram:/dev/log", "udp:host:514",
	// "tcp:host:514"; empty: the local system log.
	SyslogAddress string `toml:"syslog_address"`
}

// Keys holds the settings of the hardware keys.
type Keys struct {
	// CodeTTL is how long an activation code stays valid (default 72h).
	CodeTTL Duration `toml:"code_ttl"`
	// USBVendorID and USBProductID select the keys on USB (default
	// 0x1209/0x0001, the pid.codes test ids); USBInterface the HID
	// interface (-1 or unset: any).
	USBVendorID  int  `toml:"usb_vendor_id"`
	USBProductID int  `toml:"usb_product_id"`
	USBInterface *int `toml:"usb_interface"`
	// TrustedMakers are PEM files of the key makers' CA certificates: a key
	// proves its serial with an attestation certificate from one of them.
	TrustedMakers []string `toml:"trusted_makers"`
	// RequireAttestation (default true): a key that cannot attest is
	// refused. False accepts keys made without attestation (doctor warns).
	RequireAttestation *bool `toml:"require_attestation"`
}

// AttestationRequired reports [keys] require_attestation (default true).
func (k Keys) AttestationRequired() bool { return k.RequireAttestation == nil || *k.RequireAttestation }

// Sync holds the settings of the sync scheduler and of the removal guard.
type Sync struct {
	// Interval between periodic syncs of one domain.
	Interval Duration `toml:"interval"`
	// Jitter is the largest random delay added to each interval.
	Jitter Duration `toml:"jitter"`
	// RemovalGuardShare is the share of a domain's accounts that one sync may
	// mark as leavers before the removals are held for confirmation.
	RemovalGuardShare float64 `toml:"removal_guard_share"`
	// RemovalGuardMinimum is the smallest number of leavers that can trip the
	// guard: fewer leavers than this are always applied.
	RemovalGuardMinimum int `toml:"removal_guard_minimum"`
	// FullReadEvery is how often a domain's sync reads everything instead
	// of what changed, and checks that the incremental state had not
	// drifted from it.
	FullReadEvery Duration `toml:"full_read_every"`
}

// Domain is one Active Directory domain to sync.
type Domain struct {
	Name              string   `toml:"name"`
	URLs              []string `toml:"urls"`
	BaseDN            string   `toml:"base_dn"`
	BindDN            string   `toml:"bind_dn"`
	BindPasswordFile  string   `toml:"bind_password_file"`
	BindPasswordEnv   string   `toml:"bind_password_env"`
	CAFile            string   `toml:"ca_file"`
	TLS               string   `toml:"tls"`
	InsecurePlaintext bool     `toml:"insecure_plaintext"`
	SyncGroup         string   `toml:"sync_group"`
	PasswordGroup     string   `toml:"password_group"`
	ConnectTimeout    Duration `toml:"connect_timeout"`
	Timeout           Duration `toml:"timeout"`
	PageSize          int      `toml:"page_size"`
	// Passwords are the settings of the domain passwords KeyDesk manages
	// for the members of PasswordGroup.
	Passwords Passwords `toml:"passwords"`
	// Invitations turns on invitation emails for the domain's newly
	// imported employees ([domain.invitations]).
	Invitations DomainInvitations `toml:"invitations"`
}

// DomainInvitations holds a domain's invitation switch.
type DomainInvitations struct {
	// Enabled: each newly imported employee of the domain who has an email
	// and no key gets one invitation.
	Enabled bool `toml:"enabled"`
}

// The mail security modes.
const (
	MailSTARTTLS = "starttls" // plain connection, upgraded with STARTTLS (port 587)
	MailTLS      = "tls"      // implicit TLS (port 465)
	MailNone     = "none"     // no TLS: only to a server on this machine (loopback)
)

// Mail is the SMTP server invitations go through ([mail]).
type Mail struct {
	Host     string `toml:"host"`
	Port     int    `toml:"port"`
	Security string `toml:"security"`
	// Username, with the password from PasswordFile or PasswordEnv, logs in
	// (none: no authentication).
	Username     string `toml:"username"`
	PasswordFile string `toml:"password_file"`
	PasswordEnv  string `toml:"password_env"`
	// From is the sender, e.g. "KeyDesk <keydesk@example.com>".
	From string `toml:"from"`
	// CAFile is a PEM file of the CA that signed the server's certificate
	// (default: the system's).
	CAFile  string   `toml:"ca_file"`
	Timeout Duration `toml:"timeout"`
}

// Configured reports whether a mail server is set.
func (m *Mail) Configured() bool { return m.Host != "" }

// Password reads the mail password from its file or environment variable
// ("" when no username is set).
func (m *Mail) Password() (string, error) {
	if m.Username == "" {
		return "", nil
	}
	return readSecret("mail", "password", m.PasswordFile, m.PasswordEnv)
}

// DefaultInviteTTL is how long an enrollment code is valid by default.
const DefaultInviteTTL = 7 * 24 * time.Hour

// Invitations are the settings of invitations ([invitations]).
type Invitations struct {
	// Organisation names the sender in the email and the account in the
	// authenticator app (default "KeyDesk").
	Organisation string `toml:"organisation"`
	// CodeTTL is how long an enrollment code is valid (default "7d").
	CodeTTL Duration `toml:"code_ttl"`
	// Where tells the employee where to enroll, e.g. "at the KeyDesk
	// kiosk at reception".
	Where string `toml:"where"`
	// TemplatesDir holds templates that replace the built-in ones:
	// invitation.subject, invitation.txt, invitation.html.
	TemplatesDir string `toml:"templates_dir"`
}

// The offline policies: what a rotation does when it falls due while the
// employee's key is not plugged in.
const (
	// OfflineWait: the rotation waits, and runs when the key is plugged in.
	OfflineWait = "wait"
	// OfflineRotateAndHold: AD is changed now and the new password is held
	// sealed until the key connects (an admin can reveal it).
	OfflineRotateAndHold = "rotate-and-hold"
)

// Passwords holds a domain's password settings ([domain.passwords]).
type Passwords struct {
	// RotationPeriod is how old a managed password may get before it is
	// rotated (default 28 days; never longer than the domain's maximum
	// password age allows).
	RotationPeriod Duration `toml:"rotation_period"`
	// Offline is OfflineWait (default) or OfflineRotateAndHold.
	Offline string `toml:"offline"`
	// Concurrency bounds the rotations of the domain in flight at once
	// (default 4).
	Concurrency int `toml:"concurrency"`
	// Length of generated passwords (default 24; 14..64).
	Length int `toml:"length"`
	// LayoutSafe restricts generated passwords to characters that keys type
	// identically on US, UK, German and French keyboard layouts.
	LayoutSafe bool `toml:"layout_safe"`
}

// Duration is a time.Duration written as a Go duration string ("90s", "1h").
type Duration struct{ time.Duration }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	text := string(b)
	if days, ok := strings.CutSuffix(text, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 && n < 100000 {
			d.Duration = time.Duration(n) * 24 * time.Hour
			return nil
		}
	}
	v, err := time.ParseDuration(text)
	if err != nil {
		return fmt.Errorf("%q is not a duration: write it like \"30s\", \"5m\", \"1h\" or \"28d\"", text)
	}
	d.Duration = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// DefaultPath is where the configuration is looked for when neither --config
// nor KEYDESK_CONFIG names a file.
func DefaultPath() string {
	return filepath.Join(xdgDir("XDG_CONFIG_HOME", ".config"), appDirName, configFileName)
}

// DefaultDataDir is the data directory used when neither --data nor the file
// names one.
func DefaultDataDir() string {
	return filepath.Join(xdgDir("XDG_DATA_HOME", filepath.Join(".local", "share")), appDirName)
}

func xdgDir(env, fallback string) string {
	if v := os.Getenv(env); v != "" && filepath.IsAbs(v) {
		return v
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return filepath.Join(os.TempDir(), fallback)
	}
	return filepath.Join(home, fallback)
}

// Load reads and checks the configuration at path. A missing file is an
// error wrapping fs.ErrNotExist.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read configuration: %w", err)
	}
	return Parse(path, data)
}

// Parse checks configuration text; path is only used in messages. Every
// problem is reported at once, in the file's order of sections, each on a
// line of its own naming the file and the key.
func Parse(path string, data []byte) (*Config, error) {
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			if perr.LastKey != "" {
				return nil, fmt.Errorf("%s: line %d: %s: %s", path, perr.Position.Line, perr.LastKey, perr.Message)
			}
			return nil, fmt.Errorf("%s: line %d: %s", path, perr.Position.Line, perr.Message)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	// Keys and types are checked against the settings first, in the
	// user's terms; the decoder's own words never reach them.
	if errs := checkKeys(raw, reflect.TypeFor[Config](), ""); len(errs) > 0 {
		return nil, problemsIn(path, errs)
	}
	var c Config
	md, err := toml.Decode(string(data), &c)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.Path = path
	// A relative data_dir is the configuration file's neighbour, wherever
	// keydesk is run from.
	if c.DataDir != "" && !filepath.IsAbs(c.DataDir) {
		c.DataDir = filepath.Join(filepath.Dir(path), c.DataDir)
	}
	c.applyDefaults(md.IsDefined("sync", "jitter"))
	if err := c.Validate(); err != nil {
		return nil, problemsIn(path, []error{err})
	}
	return &c, nil
}

// ConfigError is every problem of a configuration file.
type ConfigError struct {
	Path     string
	Problems []string // each "key: what is wrong and what to write"
}

func (e *ConfigError) Error() string {
	if len(e.Problems) == 1 {
		return e.Path + ": " + e.Problems[0]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problems:", e.Path, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  " + p)
	}
	return b.String()
}

// problemsIn is the ConfigError of errs (a joined error counts as each of
// its parts).
func problemsIn(path string, errs []error) error {
	e := &ConfigError{Path: path}
	var walk func(err error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		e.Problems = append(e.Problems, err.Error())
	}
	for _, err := range errs {
		walk(err)
	}
	return e
}

var durationType = reflect.TypeFor[Duration]()

// checkKeys compares the decoded file with the settings' type: unknown keys
// and values of the wrong kind, by the key's full name, in the settings'
// order (then the unknown keys, sorted).
func checkKeys(raw map[string]any, t reflect.Type, prefix string) []error {
	var errs []error
	known := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("toml")
		if tag == "" || tag == "-" {
			continue
		}
		known[tag] = true
		v, ok := raw[tag]
		if !ok {
			continue
		}
		errs = append(errs, checkValue(v, f.Type, prefix+tag)...)
	}
	var unknown []string
	for k := range raw {
		if !known[k] {
			unknown = append(unknown, prefix+k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		errs = append(errs, fmt.Errorf("%s: unknown key; check its spelling (the known keys are listed in the README under \"Configuration\")", k))
	}
	return errs
}

// checkValue checks one value against the setting's type.
func checkValue(v any, t reflect.Type, key string) []error {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	got := describe(v)
	switch {
	case t == durationType:
		s, ok := v.(string)
		if !ok {
			return []error{fmt.Errorf("%s: expected a duration such as \"1h\", \"30s\" or \"7d\", got %s", key, got)}
		}
		var d Duration
		if err := d.UnmarshalText([]byte(s)); err != nil {
			return []error{fmt.Errorf("%s: %w", key, err)}
		}
	case t.Kind() == reflect.String:
		if _, ok := v.(string); !ok {
			return []error{fmt.Errorf("%s: expected text in quotes, got %s", key, got)}
		}
	case t.Kind() == reflect.Bool:
		if _, ok := v.(bool); !ok {
			return []error{fmt.Errorf("%s: expected true or false, got %s", key, got)}
		}
	case t.Kind() == reflect.Int:
		if _, ok := v.(int64); !ok {
			return []error{fmt.Errorf("%s: expected a whole number, got %s", key, got)}
		}
	case t.Kind() == reflect.Float64:
		switch v.(type) {
		case int64, float64:
		default:
			return []error{fmt.Errorf("%s: expected a number such as 0.1, got %s", key, got)}
		}
	case t.Kind() == reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return []error{fmt.Errorf("%s: expected a section [%s], got %s", key, key, got)}
		}
		return checkKeys(m, t, key+".")
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		tables, ok := v.([]map[string]any)
		if !ok {
			return []error{fmt.Errorf("%s: expected sections written [[%s]], got %s", key, key, got)}
		}
		var errs []error
		for i, m := range tables {
			errs = append(errs, checkKeys(m, t.Elem(), fmt.Sprintf("%s[%d].", key, i+1))...)
		}
		return errs
	case t.Kind() == reflect.Slice:
		list, ok := v.([]any)
		if !ok {
			return []error{fmt.Errorf("%s: expected a list in brackets such as [\"a\", \"b\"], got %s", key, got)}
		}
		var errs []error
		for i, x := range list {
			errs = append(errs, checkValue(x, t.Elem(), fmt.Sprintf("%s[%d]", key, i+1))...)
		}
		return errs
	}
	return nil
}

// describe names a decoded value as a person would.
func describe(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("the text %q", x)
	case int64:
		return fmt.Sprintf("the number %d", x)
	case float64:
		return fmt.Sprintf("the number %v", x)
	case bool:
		return fmt.Sprintf("%v", x)
	case map[string]any:
		return "a section"
	case []map[string]any:
		return "a list of sections"
	case []any:
		return "a list"
	}
	return fmt.Sprintf("%T", v)
}

// applyDefaults fills what the file left out; jitterSet tells a written
// jitter = "0s" (no jitter) from a missing one.
func (c *Config) applyDefaults(jitterSet bool) {
	if c.Sync.Interval.Duration == 0 {
		c.Sync.Interval.Duration = DefaultSyncInterval
	}
	if !jitterSet {
		c.Sync.Jitter.Duration = DefaultSyncJitter
	}
	if c.Sync.FullReadEvery.Duration == 0 {
		c.Sync.FullReadEvery.Duration = DefaultFullReadEvery
	}
	if c.Sync.RemovalGuardShare == 0 {
		c.Sync.RemovalGuardShare = DefaultRemovalShare
	}
	if c.Sync.RemovalGuardMinimum == 0 {
		c.Sync.RemovalGuardMinimum = DefaultRemovalMinimum
	}
	if c.Keys.CodeTTL.Duration == 0 {
		c.Keys.CodeTTL.Duration = DefaultCodeTTL
	}
	if c.SSH.Listen == "" {
		c.SSH.Listen = DefaultSSHListen
	}
	if c.SSH.IdleTimeout.Duration == 0 {
		c.SSH.IdleTimeout.Duration = DefaultSSHIdleTimeout
	}
	if c.SSH.MaxTimeout.Duration == 0 {
		c.SSH.MaxTimeout.Duration = DefaultSSHMaxTimeout
	}
	if c.SSH.MaxSessions == 0 {
		c.SSH.MaxSessions = DefaultSSHMaxSessions
	}
	if c.Keys.USBVendorID == 0 {
		c.Keys.USBVendorID = DefaultUSBVendorID
	}
	if c.Keys.USBProductID == 0 {
		c.Keys.USBProductID = DefaultUSBProductID
	}
	if c.Mail.Security == "" {
		c.Mail.Security = MailSTARTTLS
	}
	if c.Mail.Port == 0 {
		c.Mail.Port = map[string]int{MailSTARTTLS: 587, MailTLS: 465, MailNone: 25}[c.Mail.Security]
	}
	if c.Mail.Timeout.Duration == 0 {
		c.Mail.Timeout.Duration = 30 * time.Second
	}
	if c.Invitations.Organisation == "" {
		c.Invitations.Organisation = "KeyDesk"
	}
	if c.Invitations.CodeTTL.Duration == 0 {
		c.Invitations.CodeTTL.Duration = DefaultInviteTTL
	}
	for i := range c.Domains {
		d := &c.Domains[i]
		if d.TLS == "" {
			d.TLS = TLSModeLDAPS
			if d.InsecurePlaintext {
				d.TLS = TLSModeNone
			}
		}
		if d.SyncGroup == "" {
			d.SyncGroup = DefaultSyncGroup
		}
		if d.PasswordGroup == "" {
			d.PasswordGroup = DefaultPasswordGroup
		}
		if d.PageSize == 0 {
			d.PageSize = DefaultPageSize
		}
		if d.ConnectTimeout.Duration == 0 {
			d.ConnectTimeout.Duration = DefaultConnectTimeout
		}
		if d.Timeout.Duration == 0 {
			d.Timeout.Duration = DefaultRequestTimeout
		}
		p := &d.Passwords
		if p.RotationPeriod.Duration == 0 {
			p.RotationPeriod.Duration = DefaultRotationPeriod
		}
		if p.Offline == "" {
			p.Offline = OfflineWait
		}
		if p.Concurrency == 0 {
			p.Concurrency = DefaultRotationWorkers
		}
		if p.Length == 0 {
			p.Length = DefaultPasswordLength
		}
	}
}

// Validate checks every field and returns the first problem found, naming the
// field and what is expected.
func (c *Config) Validate() error {
	var errs []error
	add := func(err error) { errs = append(errs, err) }
	if c.Sync.Interval.Duration < time.Minute {
		add(fmt.Errorf("sync.interval: %s is too short; use at least \"1m\"", c.Sync.Interval))
	}
	if c.Sync.Jitter.Duration < 0 {
		add(fmt.Errorf("sync.jitter: must not be negative"))
	}
	if c.Sync.FullReadEvery.Duration < c.Sync.Interval.Duration {
		add(fmt.Errorf("sync.full_read_every: %s is shorter than sync.interval (%s); use at least the interval, e.g. \"24h\"", c.Sync.FullReadEvery, c.Sync.Interval))
	}
	if s := c.Sync.RemovalGuardShare; s <= 0 || s > removalShareUpperBound {
		add(fmt.Errorf("sync.removal_guard_share: %v is out of range; use a share between 0 and 1, e.g. 0.1 for 10%%", s))
	}
	if c.Sync.RemovalGuardMinimum < 1 {
		add(fmt.Errorf("sync.removal_guard_minimum: must be at least 1"))
	}
	if c.Keys.CodeTTL.Duration < time.Minute || c.Keys.CodeTTL.Duration > 90*24*time.Hour {
		add(fmt.Errorf("keys.code_ttl: %s is out of range; use between \"1m\" and \"2160h\" (90 days), e.g. \"72h\"", c.Keys.CodeTTL))
	}
	for _, id := range []struct {
		name string
		v    int
	}{{"keys.usb_vendor_id", c.Keys.USBVendorID}, {"keys.usb_product_id", c.Keys.USBProductID}} {
		if id.v < 1 || id.v > 0xffff {
			add(fmt.Errorf("%s: %d is out of range; use a 16-bit USB id such as 0x1209", id.name, id.v))
		}
	}
	if _, port, err := net.SplitHostPort(c.SSH.Listen); err != nil || port == "" {
		add(fmt.Errorf("ssh.listen: %q is not an address; write it like \"127.0.0.1:2222\" or \":2222\" (every interface)", c.SSH.Listen))
	}
	if c.SSH.HostKey != "" && !filepath.IsAbs(c.SSH.HostKey) {
		add(fmt.Errorf("ssh.host_key: %q: give an absolute path (default: ssh_host_ed25519_key in the data directory)", c.SSH.HostKey))
	}
	if c.SSH.IdleTimeout.Duration < time.Minute || c.SSH.MaxTimeout.Duration < c.SSH.IdleTimeout.Duration {
		add(fmt.Errorf("ssh.idle_timeout and ssh.max_timeout: %s and %s; use at least \"1m\" for the first and no less for the second", c.SSH.IdleTimeout, c.SSH.MaxTimeout))
	}
	if c.SSH.MaxSessions < 1 || c.SSH.MaxSessions > 10000 {
		add(fmt.Errorf("ssh.max_sessions: %d is out of range; use 1 to 10000", c.SSH.MaxSessions))
	}
	for i, p := range c.Keys.TrustedMakers {
		if p == "" || !filepath.IsAbs(p) {
			add(fmt.Errorf("keys.trusted_makers[%d]: %q: give the absolute path of a PEM file with the maker's CA certificate", i+1, p))
		}
	}
	if a := c.Audit.SyslogAddress; a != "" {
		network, _, ok := strings.Cut(a, ":")
		if !ok || !slices.Contains([]string{"unix", "unixgram", "udp", "tcp"}, network) {
			add(fmt.Errorf("audit.syslog_address: %q: write it like \"unixgram:/dev/log\" or \"udp:loghost:514\"", a))
		}
		if !c.Audit.Syslog {
			add(fmt.Errorf("audit.syslog_address: set, but audit.syslog is not true"))
		}
	}
	c.validateOperators(add)
	c.validateMail(add)
	seen := map[string]int{}
	for i := range c.Domains {
		d := &c.Domains[i]
		where := fmt.Sprintf("domain[%d]", i+1)
		if d.Name != "" {
			where = fmt.Sprintf("domain[%d] (%q)", i+1, d.Name)
		}
		d.validate(func(err error) { add(fmt.Errorf("%s.%w", where, err)) })
		key := strings.ToLower(d.Name)
		if j, dup := seen[key]; dup {
			add(fmt.Errorf("%s.name: %q is already the name of domain[%d]; each domain needs its own name", where, d.Name, j+1))
		}
		seen[key] = i
	}
	return errors.Join(errs...)
}

func (c *Config) validateMail(add func(error)) {
	m := &c.Mail
	invites := false
	for _, d := range c.Domains {
		invites = invites || d.Invitations.Enabled
	}
	if !m.Configured() {
		if invites {
			add(fmt.Errorf("mail.host: required: a domain turns invitations on, and they are sent by email; set [mail] host, from and security"))
		}
		return
	}
	switch m.Security {
	case MailSTARTTLS, MailTLS:
	case MailNone:
		if ip := net.ParseIP(m.Host); m.Host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			add(fmt.Errorf("mail.security: \"none\" sends enrollment codes in the clear, so only to a server on this machine (localhost); use \"starttls\" or \"tls\" for %s", m.Host))
		}
	default:
		add(fmt.Errorf("mail.security: %q is not a mode; use \"starttls\" (port 587), \"tls\" (port 465) or \"none\" (localhost only)", m.Security))
	}
	if m.Port < 1 || m.Port > 65535 {
		add(fmt.Errorf("mail.port: %d is out of range; use 1 to 65535", m.Port))
	}
	if m.Timeout.Duration < time.Second || m.Timeout.Duration > 2*time.Minute {
		add(fmt.Errorf("mail.timeout: %s is out of range; use between \"1s\" and \"2m\" (default \"30s\")", m.Timeout))
	}
	if m.From == "" || !strings.Contains(m.From, "@") {
		add(fmt.Errorf("mail.from: %q: required, the sender, e.g. \"KeyDesk <keydesk@example.com>\"", m.From))
	}
	if m.Username != "" {
		switch {
		case m.PasswordFile == "" && m.PasswordEnv == "":
			add(fmt.Errorf("mail.password_file: required with mail.username (or mail.password_env): the password is never written in this file"))
		case m.PasswordFile != "" && m.PasswordEnv != "":
			add(fmt.Errorf("mail.password_file: set together with mail.password_env; keep only one"))
		}
	}
	if c.Invitations.CodeTTL.Duration < time.Hour || c.Invitations.CodeTTL.Duration > 90*24*time.Hour {
		add(fmt.Errorf("invitations.code_ttl: %s is out of range; use between \"1h\" and \"90d\" (default \"7d\")", c.Invitations.CodeTTL))
	}
}

func (c *Config) validateOperators(add func(error)) {
	names, users := map[string]int{}, map[string]int{}
	for i, o := range c.Operators {
		where := fmt.Sprintf("operator[%d]", i+1)
		if o.Name != "" {
			where = fmt.Sprintf("operator[%d] (%q)", i+1, o.Name)
		}
		switch {
		case o.Name == "":
			add(fmt.Errorf("%s.name: required, the person's name as the audit log should show it, e.g. \"alice\"", where))
		case len(o.Name) > maxOperatorNameLength || strings.ContainsFunc(o.Name, func(r rune) bool {
			return !(r == '-' || r == '_' || r == '.' || r == '@' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9'))
		}):
			add(fmt.Errorf("%s.name: may only hold letters, digits, '.', '-', '_' and '@' (at most %d)", where, maxOperatorNameLength))
		case !slices.Contains(OperatorRoles, o.Role):
			add(fmt.Errorf("%s.role: %q is not a role; use one of %s", where, o.Role, strings.Join(OperatorRoles, ", ")))
		case o.OSUser == "" && len(o.AuthorizedKeys) == 0:
			add(fmt.Errorf("%s.os_user: required (or authorized_keys): the local login that runs KeyDesk as this operator, e.g. \"alice\", or their SSH public keys for keydesk serve", where))
		}
		if j, dup := names[strings.ToLower(o.Name)]; dup {
			add(fmt.Errorf("%s.name: %q is already operator[%d]'s name", where, o.Name, j+1))
		}
		if j, dup := users[o.OSUser]; dup && o.OSUser != "" {
			add(fmt.Errorf("%s.os_user: %q is already operator[%d]'s; one OS user is one operator", where, o.OSUser, j+1))
		}
		names[strings.ToLower(o.Name)] = i
		if o.OSUser != "" {
			users[o.OSUser] = i
		}
	}
}

func (d *Domain) validate(add func(error)) {
	if d.Name == "" {
		add(fmt.Errorf("name: required, a short label such as \"corp\""))
	} else if len(d.Name) > maxDomainNameLength || strings.ContainsFunc(d.Name, func(r rune) bool {
		return !(r == '-' || r == '_' || r == '.' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9'))
	}) {
		add(fmt.Errorf("name: %q may only hold letters, digits, '.', '-' and '_' (at most %d)", d.Name, maxDomainNameLength))
	}
	tlsKnown := true
	switch d.TLS {
	case TLSModeLDAPS, TLSModeStartTLS:
	case TLSModeNone:
		if !d.InsecurePlaintext {
			add(fmt.Errorf("tls: \"none\" sends the bind password in clear text; it needs insecure_plaintext = true as well"))
		}
	default:
		tlsKnown = false
		add(fmt.Errorf("tls: %q is not a TLS mode; use \"ldaps\" or \"starttls\"", d.TLS))
	}
	if d.InsecurePlaintext && tlsKnown && d.TLS != TLSModeNone {
		add(fmt.Errorf("insecure_plaintext: set, but tls = %q; remove insecure_plaintext, or set tls = \"none\"", d.TLS))
	}
	if len(d.URLs) == 0 {
		add(fmt.Errorf("urls: required, one or more addresses such as [\"ldaps://dc1.corp.example.com:636\"]"))
	}
	for j, raw := range d.URLs {
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			add(fmt.Errorf("urls[%d]: %q is not an LDAP URL; write it like \"ldaps://dc1.corp.example.com:636\"", j+1, raw))
			continue
		}
		want := "ldaps"
		if d.TLS != TLSModeLDAPS {
			want = "ldap"
		}
		if tlsKnown && u.Scheme != want {
			add(fmt.Errorf("urls[%d]: %q uses %s:// but tls = %q needs %s:// URLs", j+1, raw, u.Scheme, d.TLS, want))
		}
		if u.Path != "" && u.Path != "/" {
			add(fmt.Errorf("urls[%d]: %q has a path; put the base DN in base_dn instead", j+1, raw))
		}
	}
	if d.BaseDN == "" {
		add(fmt.Errorf("base_dn: required, e.g. \"DC=corp,DC=example,DC=com\""))
	} else if !strings.Contains(d.BaseDN, "=") {
		add(fmt.Errorf("base_dn: %q is not a DN; write it like \"DC=corp,DC=example,DC=com\"", d.BaseDN))
	}
	if d.BindDN == "" {
		add(fmt.Errorf("bind_dn: required, the service account, e.g. \"svc-keydesk@corp.example.com\" or its DN"))
	}
	switch {
	case d.BindPasswordFile == "" && d.BindPasswordEnv == "":
		add(fmt.Errorf("bind_password_file: required (or bind_password_env): the bind password is never written in this file"))
	case d.BindPasswordFile != "" && d.BindPasswordEnv != "":
		add(fmt.Errorf("bind_password_file: set together with bind_password_env; keep only one"))
	}
	if d.PageSize < 1 || d.PageSize > maxPageSizeAllowed {
		add(fmt.Errorf("page_size: %d is out of range; use 1 to %d (AD's MaxPageSize is 1000 by default)", d.PageSize, maxPageSizeAllowed))
	}
	if d.ConnectTimeout.Duration < 0 || d.Timeout.Duration < 0 {
		add(fmt.Errorf("timeout: must not be negative"))
	}
	d.Passwords.validate(add)
}

func (p *Passwords) validate(add func(error)) {
	if p.RotationPeriod.Duration < 24*time.Hour {
		add(fmt.Errorf("passwords.rotation_period: %s is too short; use at least \"1d\" (the default is \"28d\")", p.RotationPeriod))
	}
	switch p.Offline {
	case OfflineWait, OfflineRotateAndHold:
	default:
		add(fmt.Errorf("passwords.offline: %q is not a policy; use %q (rotate when the key is plugged in) or %q (rotate AD now and hold the password until the key connects)",
			p.Offline, OfflineWait, OfflineRotateAndHold))
	}
	if p.Concurrency < 1 || p.Concurrency > maxRotationWorkers {
		add(fmt.Errorf("passwords.concurrency: %d is out of range; use 1 to %d", p.Concurrency, maxRotationWorkers))
	}
	if p.Length < minPasswordLength || p.Length > maxPasswordLength {
		add(fmt.Errorf("passwords.length: %d is out of range; use %d to %d", p.Length, minPasswordLength, maxPasswordLength))
	}
}

// BindPassword reads the bind password from the file or the environment
// variable the domain names. A trailing newline in the file is dropped.
func (d *Domain) BindPassword() (string, error) {
	return readSecret(fmt.Sprintf("domain %q", d.Name), "bind_password", d.BindPasswordFile, d.BindPasswordEnv)
}

// readSecret reads a password from the file or the environment variable
// (setting names name_file and name_env, in section what).
func readSecret(what, name, file, env string) (string, error) {
	if env != "" {
		v, ok := os.LookupEnv(env)
		if !ok || v == "" {
			return "", fmt.Errorf("%s: environment variable %s (%s_env) is not set; export it before running keydesk", what, env, name)
		}
		return v, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("%s: read %s_file: %w", what, name, err)
	}
	defer f.Close()
	// As OpenSSH refuses a private key that others can read: a password
	// others could have read may be known to them.
	if fi, err := f.Stat(); err != nil {
		return "", fmt.Errorf("%s: read %s_file: %w", what, name, err)
	} else if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s: read %s_file: %s is not a regular file", what, name, file)
	} else if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return "", fmt.Errorf("%s: %s_file %s has mode %#o: %w; run: chmod 600 %s", what, name, file, uint32(perm), ErrLoosePasswordFile, file)
	}
	buf, err := io.ReadAll(io.LimitReader(f, passwordFileMaxBytes+1))
	if err != nil {
		return "", fmt.Errorf("%s: read %s_file: %w", what, name, err)
	}
	n := len(buf)
	if n > passwordFileMaxBytes {
		return "", fmt.Errorf("%s: %s_file %s is larger than %d bytes; it should hold only the password", what, name, file, passwordFileMaxBytes)
	}
	pw := strings.TrimRight(string(buf[:n]), "\r\n")
	if pw == "" {
		return "", fmt.Errorf("%s: %s_file %s is empty", what, name, file)
	}
	return pw, nil
}

// Domain returns the domain with the given name (case-insensitive).
func (c *Config) Domain(name string) (*Domain, bool) {
	for i := range c.Domains {
		if strings.EqualFold(c.Domains[i].Name, name) {
			return &c.Domains[i], true
		}
	}
	return nil, false
}

// DomainNames lists the configured domains in file order.
func (c *Config) DomainNames() []string {
	out := make([]string, len(c.Domains))
	for i, d := range c.Domains {
		out[i] = d.Name
	}
	return out
}

// Select returns the named domains in configuration order, or all when names
// is empty. An unknown name is an error that lists the known ones.
func (c *Config) Select(names []string) ([]Domain, error) {
	if len(names) == 0 {
		return append([]Domain(nil), c.Domains...), nil
	}
	want := map[string]bool{}
	for _, n := range names {
		if _, ok := c.Domain(n); !ok {
			known := c.DomainNames()
			sort.Strings(known)
			return nil, fmt.Errorf("no domain named %q in %s; configured: %s", n, c.Path, strings.Join(known, ", "))
		}
		want[strings.ToLower(n)] = true
	}
	var out []Domain
	for _, d := range c.Domains {
		if want[strings.ToLower(d.Name)] {
			out = append(out, d)
		}
	}
	return out, nil
}

// Sample is a commented configuration for one domain (keydesk init).
//
//go:embed sample.toml
var Sample string

// CAPool reads a PEM file of CA certificates (a ca_file setting, named in
// errors by setting).
func CAPool(setting, path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", setting, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s %s holds no PEM certificate", setting, path)
	}
	return pool, nil
}
