package adtest

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// --- tests that need no Samba ---

func TestDerivedNames(t *testing.T) {
	if got := netbiosOf("CORP.KEYDESK.TEST"); got != "CORP" {
		t.Errorf("netbiosOf = %q", got)
	}
	if got := baseDNOf("CORP.KEYDESK.TEST"); got != "DC=corp,DC=keydesk,DC=test" {
		t.Errorf("baseDNOf = %q", got)
	}
	o := Options{Realm: "branch.keydesk.test"}
	if err := o.normalize(); err != nil {
		t.Fatal(err)
	}
	if o.Realm != "BRANCH.KEYDESK.TEST" || o.AdminPassword == "" {
		t.Errorf("normalize: %+v", o)
	}
	for _, bad := range []string{"CORP", "1X.TEST", "A..B", "VERYLONGFIRSTLABEL.TEST", "DC1.TEST"} {
		o := Options{Realm: bad}
		if err := o.normalize(); err == nil {
			t.Errorf("normalize(%q) accepted", bad)
		}
	}
	d := &DC{BaseDN: "DC=corp,DC=keydesk,DC=test"}
	if got := d.UserDN(User{Sam: "asmith", CN: "Smith, Anna"}); got != `CN=Smith\, Anna,CN=Users,DC=corp,DC=keydesk,DC=test` {
		t.Errorf("UserDN = %q", got)
	}
	if got := d.UserDN(User{Sam: "bob", DisplayName: "Bob B", OU: "OU=People,DC=x"}); got != "CN=Bob B,OU=People,DC=x" {
		t.Errorf("UserDN = %q", got)
	}
}

func TestGenPassword(t *testing.T) {
	for i := 0; i < 200; i++ {
		p := genPassword("Administrator", "abc")
		if len(p) != 20 {
			t.Fatalf("length %d", len(p))
		}
		classes := 0
		for _, set := range []string{pwUpper, pwLower, pwDigit, pwSymbol} {
			if strings.ContainsAny(p, set) {
				classes++
			}
		}
		if classes != 4 {
			t.Fatalf("%q has %d character classes", p, classes)
		}
		if strings.Contains(strings.ToLower(p), "abc") {
			t.Fatalf("%q contains an avoided word", p)
		}
	}
	if got := EncodePassword("Ab1"); got != "\"\x00A\x00b\x001\x00\"\x00" {
		t.Errorf("EncodePassword = %q", got)
	}
}

func TestSetGlobals(t *testing.T) {
	in := "# Global parameters\n[global]\n\tinterfaces = 127.0.0.1\n\tServer  Services = s3fs, rpc\n\tworkgroup = CORP\n\n[sysvol]\n\tpath = /x\n"
	out := setGlobals(in, [][2]string{{"interfaces", "127.0.1.9"}, {"server services", "ldap, cldap, kdc"}, {"tls enabled", "yes"}})
	for _, want := range []string{"\tinterfaces = 127.0.1.9\n", "\tserver services = ldap, cldap, kdc\n", "\ttls enabled = yes\n", "\tworkgroup = CORP\n", "[sysvol]\n\tpath = /x\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "s3fs") || strings.Contains(out, "127.0.0.1") {
		t.Errorf("old values left in:\n%s", out)
	}
	if i, j := strings.Index(out, "tls enabled"), strings.Index(out, "[sysvol]"); i < 0 || i > j {
		t.Errorf("tls enabled not in [global]:\n%s", out)
	}
}

func TestIssueCerts(t *testing.T) {
	cs, err := issueCerts("CORP.KEYDESK.TEST", []string{"dc1.corp.keydesk.test"}, []net.IP{net.ParseIP("127.0.1.9")})
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(cs.CAPEM) {
		t.Fatal("CA PEM not parsed")
	}
	blk, _ := pem.Decode(cs.CertPEM)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if cert.SerialNumber.Sign() <= 0 {
		t.Errorf("serial %v is not positive", cert.SerialNumber)
	}
	for _, name := range []string{"127.0.1.9", "dc1.corp.keydesk.test"} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
			t.Errorf("verify for %s: %v", name, err)
		}
	}
	if _, err := tls.X509KeyPair(cs.CertPEM, cs.KeyPEM); err != nil {
		t.Errorf("key pair: %v", err)
	}
}

// --- tests against real Samba AD DCs ---

func caOnlyTLS(t *testing.T, dc *DC, serverName string) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(dc.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", dc.CAFile)
	}
	return &tls.Config{RootCAs: pool, ServerName: serverName}
}

func TestSambaAD(t *testing.T) {
	Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// Two domains at once, started concurrently.
	realms := []string{"CORP.KEYDESK.TEST", "BRANCH.KEYDESK.TEST"}
	dcs := make([]*DC, len(realms))
	errs := make([]error, len(realms))
	durs := make([]time.Duration, len(realms))
	var wg sync.WaitGroup
	for i, realm := range realms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			dcs[i], errs[i] = Start(ctx, Options{Realm: realm})
			durs[i] = time.Since(start)
		}()
	}
	wg.Wait()
	for i := range realms {
		if errs[i] == nil {
			Cleanup(t, dcs[i])
		}
	}
	for i := range realms {
		if errs[i] != nil {
			t.Fatalf("start %s: %v", realms[i], errs[i])
		}
		t.Logf("%s started at %s in %v (dir %s)", realms[i], dcs[i].Addr, durs[i].Round(time.Millisecond), dcs[i].Dir)
	}
	corp, branch := dcs[0], dcs[1]
	if corp.Addr == branch.Addr {
		t.Fatalf("both DCs on %s", corp.Addr)
	}
	if corp.NetBIOS != "CORP" || corp.BaseDN != "DC=corp,DC=keydesk,DC=test" || corp.AdminUPN != "Administrator@corp.keydesk.test" {
		t.Errorf("corp names: %s %s %s", corp.NetBIOS, corp.BaseDN, corp.AdminUPN)
	}

	t.Run("LDAPSVerified", func(t *testing.T) {
		for _, dc := range dcs {
			conn, err := ldap.DialURL(dc.LDAPSURL, ldap.DialWithTLSConfig(caOnlyTLS(t, dc, "")))
			if err != nil {
				t.Fatalf("%s: dial %s: %v", dc.Realm, dc.LDAPSURL, err)
			}
			for _, user := range []string{dc.AdminUPN, dc.AdminDN} {
				if err := conn.Bind(user, dc.AdminPassword); err != nil {
					t.Errorf("%s: bind as %s: %v", dc.Realm, user, err)
				}
			}
			res, err := conn.Search(ldap.NewSearchRequest("", ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
				"(objectClass=*)", []string{"defaultNamingContext", "dnsHostName"}, nil))
			if err != nil {
				t.Errorf("%s: RootDSE: %v", dc.Realm, err)
			} else if got := res.Entries[0].GetAttributeValue("defaultNamingContext"); !strings.EqualFold(got, dc.BaseDN) {
				t.Errorf("%s: defaultNamingContext = %q, want %q", dc.Realm, got, dc.BaseDN)
			}
			conn.Close()

			// The other DC's CA must not verify this DC.
			other := dcs[0]
			if dc == other {
				other = dcs[1]
			}
			if c, err := ldap.DialURL(dc.LDAPSURL, ldap.DialWithTLSConfig(caOnlyTLS(t, other, ""))); err == nil {
				c.Close()
				t.Errorf("%s: LDAPS verified with the other domain's CA", dc.Realm)
			}
		}
		// A wrong password is refused with result 49.
		if _, err := corp.DialAs(ctx, corp.AdminUPN, "Wrong-Passw0rd"); !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			t.Errorf("bind with wrong password: %v", err)
		}
	})

	t.Run("PlainBindRefused", func(t *testing.T) {
		conn, err := ldap.DialURL(corp.LDAPURL)
		if err != nil {
			t.Fatalf("dial %s: %v", corp.LDAPURL, err)
		}
		defer conn.Close()
		err = conn.Bind(corp.AdminUPN, corp.AdminPassword)
		// go-ldap renders result 8 as "Strong Auth Required" (ldapsearch: "Strong(er) authentication
		// required"); Samba's diagnostic message says why.
		if !ldap.IsErrorWithCode(err, ldap.LDAPResultStrongAuthRequired) || !strings.Contains(err.Error(), "Transport encryption required") {
			t.Fatalf("simple bind over plain LDAP: got %v, want result 8 (strong(er) authentication required): Transport encryption required", err)
		}
		t.Logf("plain bind refused: %v", err)
	})

	t.Run("StartTLS", func(t *testing.T) {
		for _, serverName := range []string{corp.HostName, corp.Addr} {
			conn, err := ldap.DialURL(corp.LDAPURL)
			if err != nil {
				t.Fatalf("dial %s: %v", corp.LDAPURL, err)
			}
			if err := conn.StartTLS(caOnlyTLS(t, corp, serverName)); err != nil {
				t.Errorf("StartTLS (ServerName %s): %v", serverName, err)
			} else if err := conn.Bind(corp.AdminDN, corp.AdminPassword); err != nil {
				t.Errorf("bind after StartTLS: %v", err)
			}
			conn.Close()
		}
	})

	t.Run("PasswordPolicy", func(t *testing.T) {
		conn, err := corp.Dial(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		attrs := []string{"minPwdLength", "pwdProperties", "pwdHistoryLength", "maxPwdAge", "minPwdAge", "lockoutThreshold", "lockoutDuration"}
		res, err := conn.Search(ldap.NewSearchRequest(corp.BaseDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
			"(objectClass=*)", attrs, nil))
		if err != nil {
			t.Fatal(err)
		}
		var parts []string
		for _, a := range attrs {
			parts = append(parts, a+"="+res.Entries[0].GetAttributeValue(a))
		}
		t.Logf("default domain password policy: %s", strings.Join(parts, " "))
		if res.Entries[0].GetAttributeValue("pwdProperties") != "1" {
			t.Errorf("pwdProperties = %q, want 1 (complexity on)", res.Entries[0].GetAttributeValue("pwdProperties"))
		}
	})

	t.Run("UsersGroupsNested", func(t *testing.T) {
		ou, err := corp.AddOU(ctx, "People", "")
		if err != nil {
			t.Fatal(err)
		}
		anna := User{Sam: "asmith", GivenName: "Anna", SN: "Smith", DisplayName: "Anna Smith", CN: "Smith, Anna",
			Mail: "anna.smith@corp.keydesk.test", OU: ou, Password: "Sunny-Day-2024!",
			Extra: map[string][]string{"department": {"Finance"}, "title": {"Controller"}}}
		annaDN, err := corp.AddUser(ctx, anna)
		if err != nil {
			t.Fatal(err)
		}
		if want := `CN=Smith\, Anna,OU=People,` + corp.BaseDN; annaDN != want {
			t.Errorf("DN = %q, want %q", annaDN, want)
		}
		bobDN, err := corp.AddUser(ctx, User{Sam: "bjones", GivenName: "Bob", SN: "Jones", OU: ou})
		if err != nil {
			t.Fatal(err)
		}
		carlDN, err := corp.AddUser(ctx, User{Sam: "cdisabled", SN: "Disabled", OU: ou, Disabled: true})
		if err != nil {
			t.Fatal(err)
		}
		outer, err := corp.AddGroup(ctx, "Keydesk Users", "")
		if err != nil {
			t.Fatal(err)
		}
		inner, err := corp.AddGroup(ctx, "Finance (EU)", ou)
		if err != nil {
			t.Fatal(err)
		}
		if err := corp.AddMembers(ctx, inner, annaDN, carlDN); err != nil {
			t.Fatal(err)
		}
		if err := corp.AddMembers(ctx, outer, inner, bobDN); err != nil {
			t.Fatal(err)
		}

		conn, err := corp.Dial(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		inChain := func(group string) []string {
			t.Helper()
			res, err := conn.Search(ldap.NewSearchRequest(corp.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
				"(&(objectClass=user)(memberOf:1.2.840.113556.1.4.1941:="+ldap.EscapeFilter(group)+"))",
				[]string{"sAMAccountName"}, nil))
			if err != nil {
				t.Fatalf("in-chain search for %s: %v", group, err)
			}
			var sams []string
			for _, e := range res.Entries {
				sams = append(sams, e.GetAttributeValue("sAMAccountName"))
			}
			return sortedStrings(sams)
		}
		if got := inChain(outer); strings.Join(got, ",") != "asmith,bjones,cdisabled" {
			t.Errorf("nested members of %s = %v", outer, got)
		}
		if got := inChain(inner); strings.Join(got, ",") != "asmith,cdisabled" {
			t.Errorf("members of %s = %v", inner, got)
		}

		// Attributes as given.
		res, err := conn.Search(ldap.NewSearchRequest(annaDN, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
			"(objectClass=*)", []string{"mail", "department", "userPrincipalName", "userAccountControl", "cn"}, nil))
		if err != nil {
			t.Fatal(err)
		}
		e := res.Entries[0]
		if e.GetAttributeValue("mail") != anna.Mail || e.GetAttributeValue("department") != "Finance" ||
			e.GetAttributeValue("userPrincipalName") != "asmith@corp.keydesk.test" || e.GetAttributeValue("userAccountControl") != "512" ||
			e.GetAttributeValue("cn") != "Smith, Anna" {
			t.Errorf("anna's attributes: %v", e.Attributes)
		}

		// Users can bind with their passwords; a disabled one cannot.
		if c, err := corp.DialAs(ctx, "asmith@"+corp.Domain, anna.Password); err != nil {
			t.Errorf("bind as anna: %v", err)
		} else {
			c.Close()
		}
		if c, err := corp.DialAs(ctx, bobDN, corp.UserPassword); err != nil {
			t.Errorf("bind as bob with the default password: %v", err)
		} else {
			c.Close()
		}
		_, err = corp.DialAs(ctx, carlDN, corp.UserPassword)
		if !ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			t.Errorf("bind as a disabled user: %v, want result 49", err)
		}
		t.Logf("disabled user's bind: %v", err)

		// Modify, SetDisabled, SetPassword, RemoveMembers, Delete.
		if err := corp.Modify(ctx, annaDN, map[string][]string{"title": {"CFO"}, "department": nil}); err != nil {
			t.Error(err)
		}
		if err := corp.SetDisabled(ctx, carlDN, false); err != nil {
			t.Error(err)
		}
		if err := corp.SetDisabled(ctx, bobDN, true); err != nil {
			t.Error(err)
		}
		if err := corp.SetPassword(ctx, annaDN, "Rainy-Night-2025?"); err != nil {
			t.Error(err)
		}
		res, err = conn.Search(ldap.NewSearchRequest(ou, ldap.ScopeSingleLevel, ldap.NeverDerefAliases, 0, 0, false,
			"(objectClass=user)", []string{"sAMAccountName", "userAccountControl", "title", "department"}, nil))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range res.Entries {
			got := e.GetAttributeValue("userAccountControl")
			switch e.GetAttributeValue("sAMAccountName") {
			case "asmith":
				if e.GetAttributeValue("title") != "CFO" || e.GetAttributeValue("department") != "" {
					t.Errorf("anna after Modify: %v", e.Attributes)
				}
			case "bjones":
				if got != "514" {
					t.Errorf("bob's userAccountControl = %s, want 514", got)
				}
			case "cdisabled":
				if got != "512" {
					t.Errorf("carl's userAccountControl = %s, want 512", got)
				}
			}
		}
		if c, err := corp.DialAs(ctx, annaDN, "Rainy-Night-2025?"); err != nil {
			t.Errorf("bind with the new password: %v", err)
		} else {
			c.Close()
		}
		if err := corp.RemoveMembers(ctx, inner, carlDN); err != nil {
			t.Error(err)
		}
		if got := inChain(outer); strings.Join(got, ",") != "asmith,bjones" {
			t.Errorf("nested members after RemoveMembers = %v", got)
		}
		if err := corp.Delete(ctx, bobDN); err != nil {
			t.Error(err)
		}
		if got := inChain(outer); strings.Join(got, ",") != "asmith" {
			t.Errorf("nested members after Delete = %v", got)
		}
	})

	t.Run("AddUsersSpeed", func(t *testing.T) {
		ou, err := branch.AddOU(ctx, "Bulk", "")
		if err != nil {
			t.Fatal(err)
		}
		const n = 300
		mk := func(prefix string, noPassword bool) []User {
			us := make([]User, n)
			for i := range us {
				us[i] = User{Sam: fmt.Sprintf("%s%03d", prefix, i), GivenName: "Bulk", SN: fmt.Sprintf("User %03d", i),
					DisplayName: fmt.Sprintf("%s User %03d", prefix, i), Mail: fmt.Sprintf("%s%03d@branch.keydesk.test", prefix, i), OU: ou,
					NoPassword: noPassword, Extra: map[string][]string{"department": {"Ops"}, "company": {"Keydesk"}}}
			}
			return us
		}
		var all []string
		for _, tc := range []struct {
			prefix     string
			noPassword bool
		}{{"pw", false}, {"nopw", true}} {
			start := time.Now()
			dns, err := branch.AddUsers(ctx, mk(tc.prefix, tc.noPassword))
			elapsed := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("AddUsers (NoPassword=%v): %d users in %v = %.0f users/s", tc.noPassword, n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
			if want := "CN=" + tc.prefix + " User 007," + ou; len(dns) != n || dns[7] != want {
				t.Errorf("DNs: %d, [7] = %q, want %q", len(dns), dns[7], want)
			}
			all = append(all, dns...)
		}
		if c, err := branch.DialAs(ctx, "pw042@"+branch.Domain, branch.UserPassword); err != nil {
			t.Errorf("bind as a bulk user: %v", err)
		} else {
			c.Close()
		}
		group, err := branch.AddGroup(ctx, "Bulk Group", ou)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if err := branch.AddMembers(ctx, group, all...); err != nil {
			t.Fatal(err)
		}
		t.Logf("AddMembers: %d members in %v", len(all), time.Since(start).Round(time.Millisecond))
		conn, err := branch.Dial(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		res, err := conn.SearchWithPaging(ldap.NewSearchRequest(branch.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
			"(memberOf:1.2.840.113556.1.4.1941:="+ldap.EscapeFilter(group)+")", []string{"userAccountControl"}, nil), 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Entries) != len(all) {
			t.Errorf("found %d members, want %d", len(res.Entries), len(all))
		}
		uacs := map[string]int{}
		for _, e := range res.Entries {
			uacs[e.GetAttributeValue("userAccountControl")]++
		}
		if uacs["512"] != n || uacs["544"] != n {
			t.Errorf("userAccountControl values: %v, want %d x 512 and %d x 544", uacs, n, n)
		}
	})

	t.Run("StopRestart", func(t *testing.T) {
		dn, err := branch.AddUser(ctx, User{Sam: "persist", GivenName: "Per", SN: "Sist"})
		if err != nil {
			t.Fatal(err)
		}
		if err := branch.Stop(); err != nil {
			t.Fatal(err)
		}
		if branch.Running() {
			t.Fatal("still running after Stop")
		}
		if c, err := net.DialTimeout("tcp", net.JoinHostPort(branch.Addr, "636"), time.Second); err == nil {
			c.Close()
			t.Fatal("port 636 still open after Stop")
		}
		if _, err := branch.AddUser(ctx, User{Sam: "nope", SN: "Nope"}); err == nil {
			t.Error("AddUser worked on a stopped DC")
		}
		start := time.Now()
		if err := branch.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("restart took %v", time.Since(start).Round(time.Millisecond))
		conn, err := branch.Dial(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		res, err := conn.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases, 0, 0, false,
			"(objectClass=user)", []string{"sAMAccountName"}, nil))
		if err != nil || len(res.Entries) != 1 {
			t.Fatalf("user added before Stop: %v", err)
		}
		if _, err := branch.AddUser(ctx, User{Sam: "after", SN: "After"}); err != nil {
			t.Errorf("AddUser after Restart: %v", err)
		}
	})

	// The other domain was untouched by BRANCH's restart.
	if c, err := corp.Dial(ctx); err != nil {
		t.Errorf("corp after branch restart: %v", err)
	} else {
		c.Close()
	}
}

// TestStartT checks the test-facing wrapper, a non-default admin password, and that Close
// releases the address and removes the directory.
func TestStartT(t *testing.T) {
	Require(t)
	var dir, addr string
	t.Run("dc", func(t *testing.T) {
		dc := StartT(t, Options{Realm: "CORP.KEYDESK.TEST", AdminPassword: "Adm1n-Pass-Word!"})
		dir, addr = dc.Dir, dc.Addr
		c, err := dc.Dial(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	})
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists after Close: %v", dir, err)
	}
	if c, err := net.DialTimeout("tcp", net.JoinHostPort(addr, "636"), time.Second); err == nil {
		c.Close()
		t.Errorf("%s:636 still answers after Close", addr)
	}
}

func sortedStrings(s []string) []string {
	out := append([]string(nil), s...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// TestStaleCleanup checks that a DC whose owner lost its address lock (as when the owning process
// died but samba did not) is killed and removed by the next taker of the address.
func TestStaleCleanup(t *testing.T) {
	Require(t)
	dc := StartT(t, Options{Realm: "BRANCH.KEYDESK.TEST"})
	n := dc.slot.n
	dir := dc.Dir
	// Orphan it: drop the lock without stopping samba.
	dc.slot.mu.Lock()
	unlock(dc.slot.lock)
	dc.slot.lock = nil
	dc.slot.mu.Unlock()

	f, err := tryLock(lockPath(n))
	if err != nil || f == nil {
		t.Fatalf("lock %s after orphaning: %v", lockPath(n), err)
	}
	cleanStale(n, f)
	unlock(f)
	select {
	case <-dc.done:
	case <-time.After(10 * time.Second):
		t.Fatal("stale samba still running after cleanStale")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists: %v", dir, err)
	}
}

const helperEnv = "KEYDESK_ADTEST_CRASH_HELPER"

// TestMain runs crashHelper instead of the tests when TestCrashedOwner starts this binary.
func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		crashHelper()
	}
	os.Exit(m.Run())
}

// crashHelper starts a DC, reports it and waits to be killed.
func crashHelper() {
	dc, err := Start(context.Background(), Options{Realm: "BRANCH.KEYDESK.TEST"})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Printf("DC %d %d %s\n", dc.slot.n, dc.cmd.Process.Pid, dc.Dir)
	time.Sleep(time.Minute)
	os.Exit(2)
}

// TestCrashedOwner kills a process that runs a DC (SIGKILL, so no cleanup runs) and checks that
// samba goes with it and that the next taker of the address removes what is left.
func TestCrashedOwner(t *testing.T) {
	Require(t)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var n, pid int
	var dir string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "ERROR") {
			t.Fatalf("helper: %s", line)
		}
		if _, err := fmt.Sscanf(line, "DC %d %d %s", &n, &pid, &dir); err == nil {
			break
		}
	}
	if pid == 0 {
		t.Fatalf("helper did not report a DC: %v", sc.Err())
	}
	cmd.Process.Kill()
	cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for len(groupMembers(pid)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("samba (pid %d) still running 10 s after its owner was killed", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
	f, err := tryLock(lockPath(n))
	if err != nil {
		t.Fatal(err)
	}
	if f == nil {
		t.Skipf("address %d was taken by another process before we could check the clean-up", n)
	}
	cleanStale(n, f)
	unlock(f)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists: %v", dir, err)
	}
}
