package ldapsync_test

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"keydesk/config"
	"keydesk/internal/adtest"
	"keydesk/ldapsync"
	"keydesk/rotation"
)

// domainOf is the configuration of a test DC's domain, bound as its
// Administrator.
func domainOf(t *testing.T, dc *adtest.DC, name string) config.Domain {
	t.Helper()
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte(dc.AdminPassword), 0o600); err != nil {
		t.Fatal(err)
	}
	return config.Domain{Name: name, URLs: []string{dc.LDAPSURL}, BaseDN: dc.BaseDN, BindDN: dc.AdminUPN, BindPasswordFile: pwFile,
		CAFile: dc.CAFile, TLS: config.TLSModeLDAPS, ConnectTimeout: config.Duration{Duration: 10 * time.Second}, Timeout: config.Duration{Duration: 30 * time.Second}}
}

func TestInterval(t *testing.T) {
	for ticks, want := range map[int64]time.Duration{
		-864000000000:     24 * time.Hour,
		-36288000000000:   42 * 24 * time.Hour,
		math.MinInt64:     0,
		0:                 0,
		5:                 0,
		math.MinInt64 + 1: 0, // beyond a Duration: never
	} {
		if got := ldapsync.Interval(ticks); got != want {
			t.Errorf("Interval(%d) = %v, want %v", ticks, got, want)
		}
	}
}

// TestPasswordPolicyFromSamba reads the domain's policy as Samba provisions
// it, then a fine-grained policy (a PSO) applied to one user, and sees it
// win for that user only.
func TestPasswordPolicyFromSamba(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dc := adtest.StartT(t, adtest.Options{Realm: "POLICY.KEYDESK.TEST"})
	d := domainOf(t, dc, "policy")
	c, err := ldapsync.Dial(ctx, d, dc.AdminPassword)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	domain, err := c.DomainPolicy(ctx, dc.BaseDN, "policy")
	if err != nil {
		t.Fatal(err)
	}
	want := rotation.Policy{Source: "domain policy", MinLength: 7, Complexity: true, History: 24, MinAge: 24 * time.Hour, MaxAge: 42 * 24 * time.Hour}
	if domain != want {
		t.Fatalf("domain policy %+v, want Samba's defaults %+v", domain, want)
	}

	plain, err := dc.AddUser(ctx, adtest.User{Sam: "plain", DisplayName: "Plain User"})
	if err != nil {
		t.Fatal(err)
	}
	strict, err := dc.AddUser(ctx, adtest.User{Sam: "strict", DisplayName: "Strict User"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dc.AddPSO(ctx, adtest.PSO{Name: "Long Passwords", MinLength: 20, History: 5, MinAge: time.Hour, MaxAge: 1000 * 24 * time.Hour, AppliesTo: []string{strict}}); err != nil {
		t.Fatalf("add a PSO: %v", err)
	}
	if p, err := c.UserPolicy(ctx, plain, domain); err != nil || p != domain {
		t.Errorf("the policy of a user without a PSO: %+v %v, want the domain's", p, err)
	}
	p, err := c.UserPolicy(ctx, strict, domain)
	if err != nil {
		t.Fatal(err)
	}
	want = rotation.Policy{Source: "fine-grained policy Long Passwords", MinLength: 20, Complexity: true, History: 5, MinAge: time.Hour, MaxAge: 1000 * 24 * time.Hour}
	if p != want {
		t.Errorf("the policy of the user the PSO applies to: %+v, want %+v", p, want)
	}
	if err := rotation.Check(p, rotation.Account{SAMAccountName: "strict"}, "Short1!Pass"); err == nil || !strings.Contains(err.Error(), "fine-grained policy Long Passwords") {
		t.Errorf("a short password against the PSO: %v", err)
	}
}
