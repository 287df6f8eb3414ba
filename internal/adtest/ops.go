package adtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"

	"keydesk/internal/builtinad"
	"keydesk/ldapsync"
)

// Active Directory constants used by the helpers.
const (
	UACNormalAccount       = 0x200 // 512
	UACAccountDisabled     = 0x2
	UACPasswordNotRequired = 0x20
	// GroupTypeGlobalSecurity is groupType for a global security group (0x80000002).
	GroupTypeGlobalSecurity = -2147483646
	// OIDTreeDelete is the LDAP_SERVER_TREE_DELETE control.
	OIDTreeDelete = "1.2.840.113556.1.4.805"
	// memberBatch is how many member values one modify request carries.
	memberBatch = 500
)

// Dial returns a new LDAPS connection to the DC, verified against the test CA, bound as
// Administrator. The caller closes it.
func (d *DC) Dial(ctx context.Context) (*ldap.Conn, error) {
	c, err := d.dialBind(ctx, d.AdminUPN, d.AdminPassword)
	if err != nil {
		return nil, fmt.Errorf("adtest: dial %s as Administrator: %w", d.LDAPSURL, err)
	}
	return c, nil
}

// DialAs returns a new LDAPS connection bound as user (a DN or a UPN) with password.
func (d *DC) DialAs(ctx context.Context, user, password string) (*ldap.Conn, error) {
	c, err := d.dialBind(ctx, user, password)
	if err != nil {
		return nil, fmt.Errorf("adtest: dial %s as %s: %w", d.LDAPSURL, user, err)
	}
	return c, nil
}

// dialBind connects to Addr:636 with TLS verified against the test CA and binds; ctx bounds the
// whole operation.
func (d *DC) dialBind(ctx context.Context, user, password string) (*ldap.Conn, error) {
	return ldapsync.DialLDAPS(ctx, net.JoinHostPort(d.Addr, "636"), d.TLSConfig(), user, password, opTimeout)
}

func (d *DC) setConn(c *ldap.Conn) {
	d.connMu.Lock()
	old := d.conn
	d.conn = c
	d.connMu.Unlock()
	if old != nil {
		old.Close()
	}
}

func (d *DC) resetConn() { d.setConn(nil) }

// withConn runs fn with the shared Administrator connection, dialing it when needed. If ctx ends
// while fn runs, the connection is closed (and redialed by the next call).
func (d *DC) withConn(ctx context.Context, fn func(*ldap.Conn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.connMu.Lock()
	c := d.conn
	if c == nil || c.IsClosing() {
		var err error
		c, err = d.dialBind(ctx, d.AdminUPN, d.AdminPassword)
		if err != nil {
			d.connMu.Unlock()
			return fmt.Errorf("connect to %s: %w", d.LDAPSURL, err)
		}
		d.conn = c
	}
	d.connMu.Unlock()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	err := fn(c)
	if !stop() {
		return errors.Join(ctx.Err(), err)
	}
	return err
}

// EncodePassword returns the unicodePwd value for password: UTF-16LE of the quoted password.
func EncodePassword(password string) string { return ldapsync.EncodePassword(password) }

// User describes a user for AddUser: the same description as the built-in
// directory's, so that one scenario seeds either directory. On Samba,
// NoPassword makes a user about 7 times faster to create: Samba derives the
// Kerberos AES keys of every password (PBKDF2, 2 x 4096 rounds of HMAC-SHA1)
// inside its serialized write transaction, about 16 ms per user on this kind
// of machine, so users with passwords are added at about 60/s whatever the
// number of connections, users without at about 450/s. SetPassword can give
// one a password later. Password defaults to DC.UserPassword.
type User = builtinad.User

// UserDN returns the DN AddUser gives u.
func (d *DC) UserDN(u User) string {
	parent := u.OU
	if parent == "" {
		parent = "CN=Users," + d.BaseDN
	}
	cn := u.CN
	if cn == "" {
		cn = u.DisplayName
	}
	if cn == "" {
		cn = u.Sam
	}
	return "CN=" + ldap.EscapeDN(cn) + "," + parent
}

// PasswordFor returns the password AddUser sets for u.
func (d *DC) PasswordFor(u User) string {
	if u.Password != "" {
		return u.Password
	}
	avoid := append([]string{u.Sam}, nameTokens(u.DisplayName)...)
	if containsAny(d.UserPassword, avoid) {
		// Deterministic per user would be nicer, but this cannot happen with genPassword's
		// alternating classes unless a name token is two characters plus digits/symbols.
		return genPassword(avoid...)
	}
	return d.UserPassword
}

// nameTokens splits a display name like AD's complexity check does.
func nameTokens(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return strings.ContainsRune(",.-_ #\t", r)
	})
}

func (d *DC) userAddRequest(u User) (string, *ldap.AddRequest, error) {
	if u.Sam == "" {
		return "", nil, errors.New("user without Sam (sAMAccountName)")
	}
	dn := d.UserDN(u)
	if u.NoPassword && u.Password != "" {
		return "", nil, fmt.Errorf("user %s has both NoPassword and a Password", u.Sam)
	}
	uac := UACNormalAccount
	if u.Disabled {
		uac |= UACAccountDisabled
	}
	attrs := map[string][]string{
		"objectClass":       {"top", "person", "organizationalPerson", "user"},
		"sAMAccountName":    {u.Sam},
		"userPrincipalName": {u.Sam + "@" + d.Domain},
	}
	if u.NoPassword {
		uac |= UACPasswordNotRequired
	} else {
		attrs["unicodePwd"] = []string{EncodePassword(d.PasswordFor(u))}
	}
	attrs["userAccountControl"] = []string{strconv.Itoa(uac)}
	for k, v := range map[string]string{"givenName": u.GivenName, "sn": u.SN, "displayName": u.DisplayName, "mail": u.Mail} {
		if v != "" {
			attrs[k] = []string{v}
		}
	}
	for k, v := range u.Extra {
		for ek := range attrs {
			if strings.EqualFold(ek, k) {
				delete(attrs, ek)
			}
		}
		if len(v) > 0 {
			attrs[k] = v
		}
	}
	req := ldap.NewAddRequest(dn, nil)
	for _, k := range sortedKeys(attrs) {
		req.Attribute(k, attrs[k])
	}
	return dn, req, nil
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// AddUser creates an enabled (or, with Disabled, disabled) user with a password in one add request
// and returns its DN.
func (d *DC) AddUser(ctx context.Context, u User) (string, error) {
	dn, req, err := d.userAddRequest(u)
	if err != nil {
		return "", fmt.Errorf("adtest: add user: %w", err)
	}
	err = d.withConn(ctx, func(c *ldap.Conn) error { return c.Add(req) })
	if err != nil {
		return "", fmt.Errorf("adtest: add user %s (%s): %w", u.Sam, dn, err)
	}
	return dn, nil
}

// addUsersConns is the number of parallel LDAPS connections AddUsers uses.
const addUsersConns = 4

// AddUsers adds users over a few parallel LDAPS connections and returns their DNs in order. On
// error, some of the users may have been added. Users with passwords are added at about 60/s
// (Samba serializes the Kerberos key derivation), users with NoPassword at about 450/s.
func (d *DC) AddUsers(ctx context.Context, us []User) ([]string, error) {
	dns := make([]string, len(us))
	reqs := make([]*ldap.AddRequest, len(us))
	for i, u := range us {
		dn, req, err := d.userAddRequest(u)
		if err != nil {
			return nil, fmt.Errorf("adtest: add users: #%d: %w", i, err)
		}
		dns[i], reqs[i] = dn, req
	}
	if len(us) == 0 {
		return dns, nil
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	workers := min(addUsersConns, len(us))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := d.dialBind(ctx, d.AdminUPN, d.AdminPassword)
			if err != nil {
				cancel(fmt.Errorf("connect to %s: %w", d.LDAPSURL, err))
				for range jobs {
				}
				return
			}
			defer c.Close()
			stop := context.AfterFunc(ctx, func() { c.Close() })
			defer stop()
			for i := range jobs {
				if ctx.Err() != nil {
					continue
				}
				if err := c.Add(reqs[i]); err != nil {
					cancel(fmt.Errorf("user #%d %s (%s): %w", i, us[i].Sam, dns[i], err))
				}
			}
		}()
	}
feed:
	for i := range us {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return dns, fmt.Errorf("adtest: add %d users: %w", len(us), err)
	}
	return dns, nil
}

// AddGroup creates a global security group named name (CN and sAMAccountName) under parentDN
// ("" = CN=Users,<BaseDN>) and returns its DN.
func (d *DC) AddGroup(ctx context.Context, name, parentDN string) (string, error) {
	if parentDN == "" {
		parentDN = "CN=Users," + d.BaseDN
	}
	dn := "CN=" + ldap.EscapeDN(name) + "," + parentDN
	req := ldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{"top", "group"})
	req.Attribute("sAMAccountName", []string{name})
	req.Attribute("groupType", []string{strconv.Itoa(GroupTypeGlobalSecurity)})
	if err := d.withConn(ctx, func(c *ldap.Conn) error { return c.Add(req) }); err != nil {
		return "", fmt.Errorf("adtest: add group %s: %w", dn, err)
	}
	return dn, nil
}

// AddOU creates an organizational unit under parentDN ("" = BaseDN) and returns its DN.
func (d *DC) AddOU(ctx context.Context, name, parentDN string) (string, error) {
	if parentDN == "" {
		parentDN = d.BaseDN
	}
	dn := "OU=" + ldap.EscapeDN(name) + "," + parentDN
	req := ldap.NewAddRequest(dn, nil)
	req.Attribute("objectClass", []string{"top", "organizationalUnit"})
	if err := d.withConn(ctx, func(c *ldap.Conn) error { return c.Add(req) }); err != nil {
		return "", fmt.Errorf("adtest: add OU %s: %w", dn, err)
	}
	return dn, nil
}

// AddMembers adds members to a group, memberBatch (500) values per modify request.
func (d *DC) AddMembers(ctx context.Context, groupDN string, memberDNs ...string) error {
	return d.changeMembers(ctx, groupDN, memberDNs, true)
}

// RemoveMembers removes members from a group, memberBatch (500) values per modify request.
func (d *DC) RemoveMembers(ctx context.Context, groupDN string, memberDNs ...string) error {
	return d.changeMembers(ctx, groupDN, memberDNs, false)
}

func (d *DC) changeMembers(ctx context.Context, groupDN string, members []string, add bool) error {
	verb := "add members to"
	if !add {
		verb = "remove members from"
	}
	for start := 0; start < len(members); start += memberBatch {
		batch := members[start:min(start+memberBatch, len(members))]
		req := ldap.NewModifyRequest(groupDN, nil)
		if add {
			req.Add("member", batch)
		} else {
			req.Delete("member", batch)
		}
		if err := d.withConn(ctx, func(c *ldap.Conn) error { return c.Modify(req) }); err != nil {
			return fmt.Errorf("adtest: %s %s (values %d-%d of %d): %w", verb, groupDN, start, start+len(batch)-1, len(members), err)
		}
	}
	return nil
}

// Modify replaces attributes of dn; an empty value list deletes the attribute.
func (d *DC) Modify(ctx context.Context, dn string, replace map[string][]string) error {
	req := ldap.NewModifyRequest(dn, nil)
	for _, k := range sortedKeys(replace) {
		req.Replace(k, replace[k])
	}
	if err := d.withConn(ctx, func(c *ldap.Conn) error { return c.Modify(req) }); err != nil {
		return fmt.Errorf("adtest: modify %s: %w", dn, err)
	}
	return nil
}

// PSO is a fine-grained password policy (msDS-PasswordSettings).
type PSO struct {
	Name      string
	MinLength int
	History   int
	MinAge    time.Duration
	MaxAge    time.Duration
	AppliesTo []string // DNs of users or groups
}

// AddPSO adds a fine-grained password policy (precedence 10, complexity
// on, no lockout) and returns its DN.
func (d *DC) AddPSO(ctx context.Context, p PSO) (string, error) {
	dn := "CN=" + ldap.EscapeDN(p.Name) + ",CN=Password Settings Container,CN=System," + d.BaseDN
	ticks := func(t time.Duration) string { return strconv.FormatInt(-int64(t/100), 10) }
	req := ldap.NewAddRequest(dn, nil)
	for k, v := range map[string][]string{
		"objectClass":                              {"msDS-PasswordSettings"},
		"msDS-PasswordSettingsPrecedence":          {"10"},
		"msDS-PasswordReversibleEncryptionEnabled": {"FALSE"},
		"msDS-PasswordHistoryLength":               {strconv.Itoa(p.History)},
		"msDS-PasswordComplexityEnabled":           {"TRUE"},
		"msDS-MinimumPasswordLength":               {strconv.Itoa(p.MinLength)},
		"msDS-MinimumPasswordAge":                  {ticks(p.MinAge)},
		"msDS-MaximumPasswordAge":                  {ticks(p.MaxAge)},
		"msDS-LockoutThreshold":                    {"0"},
		"msDS-LockoutObservationWindow":            {"-18000000000"},
		"msDS-LockoutDuration":                     {"-18000000000"},
		"msDS-PSOAppliesTo":                        p.AppliesTo,
	} {
		req.Attribute(k, v)
	}
	if err := d.withConn(ctx, func(c *ldap.Conn) error { return c.Add(req) }); err != nil {
		return "", fmt.Errorf("adtest: add PSO %s: %w", p.Name, err)
	}
	return dn, nil
}

// Delete deletes the leaf object dn.
func (d *DC) Delete(ctx context.Context, dn string) error {
	if err := d.withConn(ctx, func(c *ldap.Conn) error { return c.Del(ldap.NewDelRequest(dn, nil)) }); err != nil {
		return fmt.Errorf("adtest: delete %s: %w", dn, err)
	}
	return nil
}

// DeleteTree deletes dn and everything under it (tree-delete control).
func (d *DC) DeleteTree(ctx context.Context, dn string) error {
	req := ldap.NewDelRequest(dn, []ldap.Control{ldap.NewControlString(OIDTreeDelete, true, "")})
	if err := d.withConn(ctx, func(c *ldap.Conn) error { return c.Del(req) }); err != nil {
		return fmt.Errorf("adtest: delete tree %s: %w", dn, err)
	}
	return nil
}

// SetDisabled sets or clears the account-disabled bit of userAccountControl (512 <-> 514 for a
// normal account), keeping its other flags.
func (d *DC) SetDisabled(ctx context.Context, dn string, disabled bool) error {
	err := d.withConn(ctx, func(c *ldap.Conn) error {
		res, err := c.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false,
			"(objectClass=*)", []string{"userAccountControl"}, nil))
		if err != nil {
			return fmt.Errorf("read userAccountControl: %w", err)
		}
		uac := UACNormalAccount
		if len(res.Entries) == 1 {
			if v, err := strconv.Atoi(res.Entries[0].GetAttributeValue("userAccountControl")); err == nil {
				uac = v
			}
		}
		if disabled {
			uac |= UACAccountDisabled
		} else {
			uac &^= UACAccountDisabled
		}
		req := ldap.NewModifyRequest(dn, nil)
		req.Replace("userAccountControl", []string{strconv.Itoa(uac)})
		return c.Modify(req)
	})
	if err != nil {
		return fmt.Errorf("adtest: set disabled=%v on %s: %w", disabled, dn, err)
	}
	return nil
}

// SetPassword resets dn's password (unicodePwd replace, as an administrator).
func (d *DC) SetPassword(ctx context.Context, dn, password string) error {
	req := ldap.NewModifyRequest(dn, nil)
	req.Replace("unicodePwd", []string{EncodePassword(password)})
	if err := d.withConn(ctx, func(c *ldap.Conn) error { return c.Modify(req) }); err != nil {
		return fmt.Errorf("adtest: set password of %s: %w", dn, err)
	}
	return nil
}
