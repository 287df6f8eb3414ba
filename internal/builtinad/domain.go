package builtinad

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"

	"keydesk/ldapsync"
)

// Domain is one domain of the built-in directory, with its own domain
// controller (two listeners: LDAPS and LDAP with StartTLS). Its methods
// mirror internal/adtest's DC, so that a test can run one scenario against
// either.
type Domain struct {
	Name     string // "corp"
	Realm    string // "CORP.EXAMPLE.TEST"
	NetBIOS  string // "CORP"
	DNSName  string // "corp.example.test"
	BaseDN   string // "DC=corp,DC=example,DC=test"
	HostName string // the DC's DNS name, "dc1.corp.example.test" (in its certificate)
	LDAPSURL string // "ldaps://127.0.0.1:PORT"
	LDAPURL  string // "ldap://127.0.0.1:PORT" (StartTLS; simple binds without TLS are refused)
	CAFile   string // PEM of the CA that signed the DC's certificate

	AdminDN       string // "CN=Administrator,CN=Users,<BaseDN>"
	AdminUPN      string // "Administrator@corp.example.test"
	AdminPassword string
	// UserPassword is the password AddUser gives users whose Password is
	// empty (unless it contains the user's name; then a generated one).
	UserPassword string

	SyncGroupDN     string // CN=Hideez Users Sync,CN=Users,<BaseDN>
	PasswordGroupDN string // CN=Security Key Auto Password Change,CN=Users,<BaseDN>

	srv *Server

	mu             sync.RWMutex
	usn            int64
	changes        usnLog // uSNChanged's index, as AD's
	all            []*entry
	byNDN          map[string]*entry // normalized DN
	byGUID         map[string]*entry // raw objectGUID, tombstones included
	bySam          map[string]*entry // lower-case sAMAccountName, live objects
	byUPN          map[string]*entry // lower-case userPrincipalName, live objects
	head           *entry            // the domain head (password policy)
	users          *entry            // CN=Users
	computers      *entry
	deletedObjects *entry
	ntds           *entry // the DC's NTDS Settings (invocationId)
	admin          *entry
	adminGroups    []*entry // members may write and reset passwords
	syncGroup      *entry
	passwordGroup  *entry
	schemaDN       string
	configDN       string
	sidSub         [3]uint32
	nextRID        uint32
	rng            *rand.Rand
	cacheMu        sync.Mutex
	chains         map[*entry]*chain
	gen            genInfo // what the generator made (for tests)

	tlsConfig *tls.Config
	lnMu      sync.Mutex
	lns       []*listener // LDAPS, LDAP
}

// User describes a user for AddUser (adtest.User is the same type).
type User struct {
	Sam         string // sAMAccountName (required); the UPN is <Sam>@<realm in lower case>
	GivenName   string
	SN          string
	DisplayName string
	Mail        string
	OU          string // parent DN; default "CN=Users,<BaseDN>"
	CN          string // default DisplayName, else Sam; may contain a comma
	Password    string // default Domain.UserPassword
	// NoPassword creates the user without a password (userAccountControl
	// gets PASSWD_NOTREQD: 544, or 546 disabled); it cannot bind until
	// SetPassword gives it one.
	NoPassword bool
	Disabled   bool
	// Extra holds more attributes (department, title, company,
	// telephoneNumber, ...); an entry for an attribute set from the fields
	// above replaces it.
	Extra map[string][]string
}

func (d *Domain) check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d.srv.closed.Load() {
		return errClosed
	}
	return nil
}

// wrap turns a core error into the API's error, keeping *ldap.Error
// reachable with errors.As (ldap.IsErrorWithCode works on it).
func wrap(err *ldap.Error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("builtinad: "+format+": %w", append(args, error(err))...)
}

// UserDN returns the DN of the live user (or computer) with this
// sAMAccountName.
func (d *Domain) UserDN(sam string) (string, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	e := d.bySam[strings.ToLower(sam)]
	if e == nil || !e.isAccount() {
		return "", false
	}
	return e.dn, true
}

// PasswordFor returns the password AddUser sets for u.
func (d *Domain) PasswordFor(u User) string {
	if u.Password != "" {
		return u.Password
	}
	if containsName(d.UserPassword, u.Sam, u.DisplayName) {
		return "Xq7#" + strings.Repeat("kP2!", 3)
	}
	return d.UserPassword
}

// AddUser creates a user and returns its DN.
func (d *Domain) AddUser(ctx context.Context, u User) (string, error) {
	return d.addOne(ctx, func(when time.Time) (*entry, *ldap.Error) { return d.addUser(u, when) }, "add user %s", u.Sam)
}

// addOne runs add under the domain's lock and returns the new entry's DN.
func (d *Domain) addOne(ctx context.Context, add func(when time.Time) (*entry, *ldap.Error), format string, args ...any) (string, error) {
	if err := d.check(ctx); err != nil {
		return "", err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	e, err := add(d.now())
	if err != nil {
		return "", wrap(err, format, args...)
	}
	return e.dn, nil
}

// AddUsers adds users and returns their DNs in order. On error, the users
// before the failing one were added.
func (d *Domain) AddUsers(ctx context.Context, us []User) ([]string, error) {
	if err := d.check(ctx); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	dns := make([]string, 0, len(us))
	now := d.now()
	for i, u := range us {
		e, err := d.addUser(u, now)
		if err != nil {
			return dns, wrap(err, "add users: #%d %s", i, u.Sam)
		}
		dns = append(dns, e.dn)
	}
	return dns, nil
}

func (d *Domain) parentOr(dn string, def *entry) (*entry, *ldap.Error) {
	if dn == "" {
		return def, nil
	}
	return d.lookup(dn, false)
}

// addUser creates a user account. Caller holds d.mu for writing.
func (d *Domain) addUser(u User, when time.Time) (*entry, *ldap.Error) {
	if u.Sam == "" {
		return nil, ldapErr(ldap.LDAPResultConstraintViolation, "user without Sam (sAMAccountName)")
	}
	if u.NoPassword && u.Password != "" {
		return nil, ldapErr(ldap.LDAPResultConstraintViolation, "user %s has both NoPassword and a Password", u.Sam)
	}
	for k := range u.Extra {
		if systemOnly[strings.ToLower(k)] || strings.EqualFold(k, "unicodePwd") {
			return nil, ldapErr(ldap.LDAPResultUnwillingToPerform, "%s (%s is system-only)", diagSystemOnly, k)
		}
	}
	parent, err := d.parentOr(u.OU, d.users)
	if err != nil {
		return nil, err
	}
	return d.addUserUnder(u, parent, when)
}

// addUserUnder is addUser under a parent already found (u.OU is not read).
// Caller holds d.mu for writing.
func (d *Domain) addUserUnder(u User, parent *entry, when time.Time) (*entry, *ldap.Error) {
	upn := u.Sam + "@" + d.DNSName
	if d.bySam[strings.ToLower(u.Sam)] != nil || d.byUPN[strings.ToLower(upn)] != nil {
		return nil, ldapErr(ldap.LDAPResultEntryAlreadyExists, "%s (sAMAccountName %s is taken)", diagSamExists, u.Sam)
	}
	cn := u.CN
	if cn == "" {
		cn = u.DisplayName
	}
	if cn == "" {
		cn = u.Sam
	}
	pw := ""
	if !u.NoPassword {
		pw = d.PasswordFor(u)
		// Check before anything is created (the entry's names are needed).
		probe := &entry{attrs: []attr{{name: "sAMAccountName", key: "samaccountname", vals: []string{u.Sam}},
			{name: "displayName", key: "displayname", vals: []string{u.DisplayName}}}}
		if err := d.checkPassword(probe, pw, pwInitial); err != nil {
			return nil, err
		}
	}
	e, err := d.newEntry(parent, "CN", cn, kindUser, []string{"top", "person", "organizationalPerson", "user"}, "Person", when)
	if err != nil {
		return nil, err
	}
	uac := uacNormalAccount
	if u.Disabled {
		uac |= uacAccountDisable
	}
	if u.NoPassword {
		uac |= uacPasswdNotReqd
	}
	for _, kv := range [][2]string{{"sn", u.SN}, {"givenName", u.GivenName}, {"displayName", u.DisplayName}} {
		if kv[1] != "" {
			e.set(kv[0], kv[1])
		}
	}
	e.set("userAccountControl", strconv.Itoa(uac))
	e.set("primaryGroupID", "513")
	e.set("objectSid", d.newSID())
	e.set("accountExpires", neverExpires)
	e.set("pwdLastSet", "0")
	e.set("sAMAccountName", u.Sam)
	e.set("sAMAccountType", samTypeUser)
	e.set("userPrincipalName", upn)
	if u.Mail != "" {
		e.set("mail", u.Mail)
	}
	for _, k := range sortedKeys(u.Extra) {
		e.set(k, u.Extra[k]...)
	}
	d.bySam[strings.ToLower(e.first("samaccountname"))] = e
	if v := e.first("userprincipalname"); v != "" {
		d.byUPN[strings.ToLower(v)] = e
	}
	if !u.NoPassword {
		d.storePassword(e, pw)
	}
	return e, nil
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// AddGroup creates a global security group named name (CN and
// sAMAccountName) under parentDN ("" = CN=Users,<BaseDN>) and returns its
// DN.
func (d *Domain) AddGroup(ctx context.Context, name, parentDN string) (string, error) {
	return d.addOne(ctx, func(when time.Time) (*entry, *ldap.Error) { return d.addGroup(name, parentDN, when) }, "add group %s", name)
}

func (d *Domain) addGroup(name, parentDN string, when time.Time) (*entry, *ldap.Error) {
	parent, err := d.parentOr(parentDN, d.users)
	if err != nil {
		return nil, err
	}
	if d.bySam[strings.ToLower(name)] != nil {
		return nil, ldapErr(ldap.LDAPResultEntryAlreadyExists, "%s (sAMAccountName %s is taken)", diagSamExists, name)
	}
	e, err := d.newEntry(parent, "CN", name, kindGroup, []string{"top", "group"}, "Group", when)
	if err != nil {
		return nil, err
	}
	e.set("sAMAccountName", name)
	e.set("sAMAccountType", samTypeGroup)
	e.set("groupType", groupTypeGlobalSec)
	e.set("objectSid", d.newSID())
	d.bySam[strings.ToLower(name)] = e
	return e, nil
}

// AddOU creates an organizational unit under parentDN ("" = BaseDN) and
// returns its DN.
func (d *Domain) AddOU(ctx context.Context, name, parentDN string) (string, error) {
	return d.addOne(ctx, func(when time.Time) (*entry, *ldap.Error) { return d.addOU(name, parentDN, when) }, "add OU %s", name)
}

func (d *Domain) addOU(name, parentDN string, when time.Time) (*entry, *ldap.Error) {
	parent, err := d.parentOr(parentDN, d.head)
	if err != nil {
		return nil, err
	}
	return d.newEntry(parent, "OU", name, kindOU, []string{"top", "organizationalUnit"}, "Organizational-Unit", when)
}

// AddMembers adds members to a group. Adding a member changes the group
// (its uSNChanged rises), not the member: memberOf is a backlink.
func (d *Domain) AddMembers(ctx context.Context, groupDN string, memberDNs ...string) error {
	return d.changeMembers(ctx, groupDN, memberDNs, true)
}

// RemoveMembers removes members from a group.
func (d *Domain) RemoveMembers(ctx context.Context, groupDN string, memberDNs ...string) error {
	return d.changeMembers(ctx, groupDN, memberDNs, false)
}

func (d *Domain) changeMembers(ctx context.Context, groupDN string, memberDNs []string, add bool) error {
	op := uint(ldap.AddAttribute)
	verb := "add members to"
	if !add {
		op, verb = uint(ldap.DeleteAttribute), "remove members from"
	}
	return d.onEntry(ctx, groupDN, func(g *entry) *ldap.Error {
		return d.modify(g, []change{{op: op, name: "member", vals: memberDNs}}, nil, false)
	}, "%s %s", verb, groupDN)
}

// onEntry runs fn on the entry dn under the domain's lock.
func (d *Domain) onEntry(ctx context.Context, dn string, fn func(*entry) *ldap.Error, format string, args ...any) error {
	if err := d.check(ctx); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	e, err := d.lookup(dn, false)
	if err == nil {
		err = fn(e)
	}
	return wrap(err, format, args...)
}

// Modify replaces attributes of dn; an empty value list deletes the
// attribute. "member" is accepted on groups, the password policy
// attributes on the domain head.
func (d *Domain) Modify(ctx context.Context, dn string, replace map[string][]string) error {
	var changes []change
	for _, k := range sortedKeys(replace) {
		changes = append(changes, change{op: ldap.ReplaceAttribute, name: k, vals: replace[k]})
	}
	return d.onEntry(ctx, dn, func(e *entry) *ldap.Error { return d.modify(e, changes, nil, false) }, "modify %s", dn)
}

// Delete deletes the leaf object dn: it becomes a tombstone (isDeleted
// TRUE, moved under CN=Deleted Objects, same objectGUID), visible only to
// searches with the show-deleted control, and leaves its groups.
func (d *Domain) Delete(ctx context.Context, dn string) error {
	return d.onEntry(ctx, dn, d.tombstone, "delete %s", dn)
}

// DeleteTree deletes dn and everything under it (each object becomes a
// tombstone, leaves first), like adtest's tree-delete.
func (d *Domain) DeleteTree(ctx context.Context, dn string) error {
	if err := d.check(ctx); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	root, err := d.lookup(dn, false)
	if err != nil {
		return wrap(err, "delete tree %s", dn)
	}
	var doomed []*entry
	for _, e := range d.all {
		if !e.deleted && e.under(root) {
			doomed = append(doomed, e)
		}
	}
	// Deeper objects first.
	depth := func(e *entry) int {
		n := 0
		for x := e; x != nil; x = x.parent {
			n++
		}
		return n
	}
	slices.SortStableFunc(doomed, func(a, b *entry) int { return depth(b) - depth(a) })
	for _, e := range doomed {
		if err := d.tombstone(e); err != nil {
			return wrap(err, "delete tree %s: %s", dn, e.dn)
		}
	}
	return nil
}

// Running reports whether the domain's listeners are up (false after
// Stop, until Restart).
func (d *Domain) Running() bool {
	d.lnMu.Lock()
	defer d.lnMu.Unlock()
	for _, l := range d.lns {
		l.mu.Lock()
		up := l.front != nil
		l.mu.Unlock()
		if !up {
			return false
		}
	}
	return len(d.lns) > 0
}

// SetDisabled sets or clears the account-disabled bit of
// userAccountControl (512 <-> 514 for a normal account).
func (d *Domain) SetDisabled(ctx context.Context, dn string, disabled bool) error {
	if err := d.check(ctx); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	e, err := d.lookup(dn, false)
	if err == nil {
		err = d.setDisabled(e, disabled)
	}
	return wrap(err, "set disabled=%v on %s", disabled, dn)
}

func (d *Domain) setDisabled(e *entry, disabled bool) *ldap.Error {
	if !e.isAccount() {
		return ldapErr(ldap.LDAPResultUnwillingToPerform, "%s (not an account)", diagWillNotPerform)
	}
	uac := e.uac()
	if disabled {
		uac |= uacAccountDisable
	} else {
		uac &^= uacAccountDisable
	}
	e.set("userAccountControl", strconv.FormatInt(uac, 10))
	d.touch(e)
	return nil
}

// SetPassword resets dn's password as an administrator does (unicodePwd
// replace): length and complexity apply, history and minimum age do not.
func (d *Domain) SetPassword(ctx context.Context, dn, password string) error {
	if err := d.check(ctx); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	e, err := d.lookup(dn, false)
	if err == nil {
		err = d.setPassword(e, password, pwReset)
	}
	return wrap(err, "set password of %s", dn)
}

func (d *Domain) setPassword(e *entry, pw string, mode pwMode) *ldap.Error {
	if !e.isAccount() {
		return ldapErr(ldap.LDAPResultUnwillingToPerform, diagWillNotPerform)
	}
	if err := d.checkPassword(e, pw, mode); err != nil {
		return err
	}
	d.storePassword(e, pw)
	d.touch(e)
	return nil
}

// HighestCommittedUSN is the domain's USN counter (RootDSE's
// highestCommittedUSN).
func (d *Domain) HighestCommittedUSN() int64 {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.usn
}

// Stop closes this domain's listeners and drops its open connections, as
// when a domain controller goes down. The data stays; Restart serves it
// again.
func (d *Domain) Stop() error {
	d.lnMu.Lock()
	defer d.lnMu.Unlock()
	var errs []error
	for _, l := range d.lns {
		errs = append(errs, l.stop())
	}
	return errors.Join(errs...)
}

// Restart listens again on the same ports after Stop.
func (d *Domain) Restart(ctx context.Context) error {
	if err := d.check(ctx); err != nil {
		return err
	}
	d.lnMu.Lock()
	defer d.lnMu.Unlock()
	for _, l := range d.lns {
		if err := l.listen(ctx); err != nil {
			return fmt.Errorf("builtinad: restart %s: %w", d.Name, err)
		}
	}
	return nil
}

// Dial returns a new LDAPS connection to the domain, verified against the
// CA, bound as Administrator. The caller closes it.
func (d *Domain) Dial(ctx context.Context) (*ldap.Conn, error) {
	return d.DialAs(ctx, d.AdminUPN, d.AdminPassword)
}

// DialAs returns a new LDAPS connection bound as user (a DN or a UPN).
func (d *Domain) DialAs(ctx context.Context, user, password string) (*ldap.Conn, error) {
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(d.LDAPSURL, "ldaps://"))
	cfg := &tls.Config{RootCAs: d.srv.caPool(), ServerName: host, MinVersion: tls.VersionTLS12}
	c, err := ldapsync.DialLDAPS(ctx, net.JoinHostPort(host, port), cfg, user, password, 30*time.Second)
	if err != nil {
		return nil, fmt.Errorf("builtinad: %w", err)
	}
	return c, nil
}

// canAdmin reports whether a bound account may write and reset passwords:
// Administrator and the members (nested included) of Domain Admins and
// Account Operators.
func (d *Domain) canAdmin(e *entry) bool {
	if e == nil {
		return false
	}
	if e == d.admin {
		return true
	}
	anc := ancestors(e)
	for _, g := range d.adminGroups {
		if _, ok := anc[g]; ok {
			return true
		}
	}
	return false
}

// resolveBindName finds the account a simple bind names: a DN, a UPN
// (user@realm) or DOMAIN\sam.
func (d *Domain) resolveBindName(name string) *entry {
	var e *entry
	switch {
	case strings.Contains(name, "="):
		e, _ = d.lookup(name, false)
	case strings.Contains(name, "@"):
		e = d.byUPN[strings.ToLower(name)]
		if e == nil {
			if local, dom, _ := strings.Cut(name, "@"); strings.EqualFold(dom, d.DNSName) {
				e = d.bySam[strings.ToLower(local)]
			}
		}
	case strings.Contains(name, `\`):
		if dom, sam, _ := strings.Cut(name, `\`); strings.EqualFold(dom, d.NetBIOS) || strings.EqualFold(dom, d.DNSName) {
			e = d.bySam[strings.ToLower(sam)]
		}
	}
	if e == nil || e.deleted || !e.isAccount() {
		return nil
	}
	return e
}
