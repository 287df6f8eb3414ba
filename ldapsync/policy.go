package ldapsync

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"keydesk/rotation"
)

// The password policy that applies to an account is read, not assumed: the
// domain's, on the domain head, unless a fine-grained policy (a Password
// Settings Object) applies to the user, which AD names in the user's
// constructed attribute msDS-ResultantPSO.

var domainPolicyAttrs = []string{"minPwdLength", "pwdProperties", "pwdHistoryLength", "minPwdAge", "maxPwdAge"}

var psoAttrs = []string{"cn", "msDS-MinimumPasswordLength", "msDS-PasswordComplexityEnabled", "msDS-PasswordHistoryLength",
	"msDS-MinimumPasswordAge", "msDS-MaximumPasswordAge"}

// pwdComplex is pwdProperties' DOMAIN_PASSWORD_COMPLEX bit.
const pwdComplex = 0x1

// DomainPolicy reads the domain's password policy from its head (baseDN).
// name names the domain in messages.
func (c *Conn) DomainPolicy(ctx context.Context, baseDN, name string) (rotation.Policy, error) {
	e, err := c.readOne(ctx, baseDN, domainPolicyAttrs)
	if err != nil {
		return rotation.Policy{}, fmt.Errorf("read the password policy of domain %s: %w", name, err)
	}
	p := rotation.Policy{Source: "domain " + name}
	var props int64
	err = errors.Join(
		intAttr(e, "minPwdLength", &p.MinLength),
		int64Attr(e, "pwdProperties", &props),
		intAttr(e, "pwdHistoryLength", &p.History),
		intervalAttr(e, "minPwdAge", &p.MinAge),
		intervalAttr(e, "maxPwdAge", &p.MaxAge),
	)
	if err != nil {
		return rotation.Policy{}, fmt.Errorf("read the password policy of domain %s (%s): %w", name, baseDN, err)
	}
	p.Complexity = props&pwdComplex != 0
	return p, nil
}

// UserPolicy is the policy that applies to the user at userDN: the
// fine-grained policy AD names in msDS-ResultantPSO when there is one, else
// domain. A fine-grained policy that applies but cannot be read (reading
// PSOs needs rights a service account may lack) is an error that says so:
// guessing would generate passwords the DC refuses.
func (c *Conn) UserPolicy(ctx context.Context, userDN string, domain rotation.Policy) (rotation.Policy, error) {
	u, err := c.readOne(ctx, userDN, []string{"msDS-ResultantPSO"})
	if err != nil {
		return rotation.Policy{}, fmt.Errorf("read the password policy of %s: %w", userDN, err)
	}
	pso := u.GetAttributeValue("msDS-ResultantPSO")
	if pso == "" {
		return domain, nil
	}
	e, err := c.readOne(ctx, pso, psoAttrs)
	if err != nil {
		return rotation.Policy{}, fmt.Errorf("read the fine-grained password policy %s that applies to %s (give the service account read access to the Password Settings Container): %w", pso, userDN, err)
	}
	p := rotation.Policy{Source: "fine-grained policy " + e.GetAttributeValue("cn")}
	err = errors.Join(
		intAttr(e, "msDS-MinimumPasswordLength", &p.MinLength),
		intAttr(e, "msDS-PasswordHistoryLength", &p.History),
		intervalAttr(e, "msDS-MinimumPasswordAge", &p.MinAge),
		intervalAttr(e, "msDS-MaximumPasswordAge", &p.MaxAge),
	)
	if err != nil {
		return rotation.Policy{}, fmt.Errorf("read the fine-grained password policy %s: %w", pso, err)
	}
	switch v := e.GetAttributeValue("msDS-PasswordComplexityEnabled"); strings.ToUpper(v) {
	case "TRUE":
		p.Complexity = true
	case "FALSE":
	default:
		return rotation.Policy{}, fmt.Errorf("read the fine-grained password policy %s: msDS-PasswordComplexityEnabled is %q, want TRUE or FALSE", pso, v)
	}
	return p, nil
}

// readOne reads one entry's attributes (a base search).
func (c *Conn) readOne(ctx context.Context, dn string, attrs []string) (*ldap.Entry, error) {
	res, err := c.l.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 1, 0, false, "(objectClass=*)", attrs, nil))
	if err != nil {
		return nil, ctxErr(ctx, err)
	}
	if len(res.Entries) != 1 {
		return nil, fmt.Errorf("%s: %d entries, want 1 (no such entry, or no right to read it)", dn, len(res.Entries))
	}
	return res.Entries[0], nil
}

func int64Attr(e *ldap.Entry, name string, out *int64) error {
	v := e.GetAttributeValue(name)
	if v == "" {
		return fmt.Errorf("%s is missing (no right to read it?)", name)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return fmt.Errorf("%s is %q, not a number", name, v)
	}
	*out = n
	return nil
}

func intAttr(e *ldap.Entry, name string, out *int) error {
	var n int64
	if err := int64Attr(e, name, &n); err != nil {
		return err
	}
	if n < 0 || n > math.MaxInt32 {
		return fmt.Errorf("%s is %d, out of range", name, n)
	}
	*out = int(n)
	return nil
}

// intervalAttr reads an AD interval: a negative number of 100-nanosecond
// ticks; the most negative value (and 0) mean "never" (0 here).
func intervalAttr(e *ldap.Entry, name string, out *time.Duration) error {
	var n int64
	if err := int64Attr(e, name, &n); err != nil {
		return err
	}
	*out = Interval(n)
	return nil
}

// Interval converts an AD interval (negative 100 ns ticks) to a duration;
// "never" (math.MinInt64, or 0) is 0.
func Interval(ticks int64) time.Duration {
	if ticks == math.MinInt64 || ticks >= 0 || -ticks > math.MaxInt64/100 {
		return 0 // never, or longer than a Duration holds (292 years): never
	}
	return time.Duration(-ticks) * 100
}
