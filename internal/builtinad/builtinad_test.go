package builtinad

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/go-ldap/ldap/v3"
)

// fixture is an empty directory with a few known users and groups.
type fixture struct {
	s    *Server
	d    *Domain
	dns  map[string]string
	ou   string
	pw   string
	sync string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s := startT(t, Options{Empty: true})
	d := s.Domain("corp")
	ctx := context.Background()
	must := mustDN(t)
	f := &fixture{s: s, d: d, dns: map[string]string{}, pw: "Corr3ct-Horse!", sync: d.SyncGroupDN}
	f.ou = must(d.AddOU(ctx, "Staff", ""))
	users := []User{
		{Sam: "alice", GivenName: "Alice", SN: "Adams", DisplayName: "Alice Adams", Mail: "Alice.Adams@Example.com", OU: f.ou, Password: f.pw,
			Extra: map[string][]string{"department": {"Finance"}, "title": {"Controller"}}},
		{Sam: "bob", GivenName: "Bob", SN: "Brown", DisplayName: "Bob Brown", Mail: "bob@example.com", OU: f.ou, Password: f.pw, Disabled: true},
		{Sam: "carol", GivenName: "Carol", SN: "Clark", DisplayName: "Carol Clark", OU: f.ou, Password: f.pw},
		{Sam: "asmith", GivenName: "Anna", SN: "Smith", CN: "Smith, Anna", DisplayName: "Smith, Anna", Mail: "anna.smith@example.com", Password: f.pw},
		{Sam: "zoe", GivenName: "Zoë", SN: "Łukasiewicz", DisplayName: "Zoë Łukasiewicz 山田", Mail: "zoe@example.com", OU: f.ou, NoPassword: true},
	}
	dns, err := d.AddUsers(ctx, users)
	mustNoErr(t, err)
	for i, u := range users {
		f.dns[u.Sam] = dns[i]
	}
	return f
}

func TestBind(t *testing.T) {
	f := newFixture(t)
	s, d := f.s, f.d
	tests := []struct {
		name     string
		mode     string
		user, pw string
		code     uint16
		diag     string
	}{
		{"LDAPS by UPN", "ldaps", d.AdminUPN, d.AdminPassword, 0, ""},
		{"LDAPS by DN", "ldaps", d.AdminDN, d.AdminPassword, 0, ""},
		{"LDAPS by DOMAIN\\user", "ldaps", `CORP\Administrator`, d.AdminPassword, 0, ""},
		{"LDAPS by DN in other case and spacing", "ldaps", strings.ToLower(strings.ReplaceAll(d.AdminDN, ",", ", ")), d.AdminPassword, 0, ""},
		{"StartTLS", "starttls", d.AdminUPN, d.AdminPassword, 0, ""},
		{"user with a comma in the DN", "starttls", f.dns["asmith"], f.pw, 0, ""},
		{"plain LDAP refused", "plain", d.AdminUPN, d.AdminPassword, ldap.LDAPResultStrongAuthRequired, "00002028: LdapErr: DSID-0C090259, comment: The server requires binds to turn on integrity checking if SSL\\TLS are not already active"},
		{"wrong password", "ldaps", d.AdminUPN, "Wrong-Passw0rd", ldap.LDAPResultInvalidCredentials, "80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 52e, v4563"},
		{"disabled account", "ldaps", "bob@corp.example.test", f.pw, ldap.LDAPResultInvalidCredentials, "data 533,"},
		{"disabled account, wrong password", "ldaps", "bob@corp.example.test", "nope-Nope-1", ldap.LDAPResultInvalidCredentials, "data 52e,"},
		{"no such account", "ldaps", "nobody@corp.example.test", f.pw, ldap.LDAPResultInvalidCredentials, "data 525,"},
		{"account without password", "ldaps", "zoe@corp.example.test", "whatever-1A", ldap.LDAPResultInvalidCredentials, "data 52e,"},
		{"group DN", "ldaps", d.SyncGroupDN, f.pw, ldap.LDAPResultInvalidCredentials, "data 525,"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := connect(t, s, d, tt.mode)
			err := c.Bind(tt.user, tt.pw)
			if got := resultCode(err); got != tt.code || tt.diag != "" && !strings.Contains(fmt.Sprint(err), tt.diag) {
				t.Fatalf("bind: %v (code %d), want code %d with %q", err, got, tt.code, tt.diag)
			}
			if tt.code != 0 {
				return
			}
			res, err := search(c, d.BaseDN, ldap.ScopeBaseObject, "(objectClass=*)", []string{"dc"})
			if err != nil || len(res.Entries) != 1 {
				t.Fatalf("search after bind: %v", err)
			}
		})
	}

	t.Run("anonymous", func(t *testing.T) {
		c := connect(t, s, d, "plain")
		res, err := search(c, "", ldap.ScopeBaseObject, "(objectClass=*)", []string{"defaultNamingContext"})
		if err != nil || res.Entries[0].GetAttributeValue("defaultNamingContext") != d.BaseDN {
			t.Fatalf("anonymous RootDSE read: %v", err)
		}
		_, err = search(c, d.BaseDN, ldap.ScopeWholeSubtree, "(objectClass=user)", nil)
		if resultCode(err) != ldap.LDAPResultOperationsError || !strings.Contains(err.Error(), "000004DC: LdapErr: DSID-0C090A5C, comment: In order to perform this operation a successful bind must be completed on the connection.") {
			t.Fatalf("anonymous search: %v, want 1 with 000004DC", err)
		}
		err = c.UnauthenticatedBind("")
		mustNoErr(t, err)
		if _, err = search(c, d.BaseDN, ldap.ScopeBaseObject, "(objectClass=*)", nil); resultCode(err) != ldap.LDAPResultOperationsError {
			t.Fatalf("search after anonymous bind: %v, want 1", err)
		}
	})
	t.Run("must change, expired", func(t *testing.T) {
		ctx := context.Background()
		mustNoErr(t, d.Modify(ctx, f.dns["carol"], map[string][]string{"pwdLastSet": {"0"}}))
		if err := connect(t, s, d, "ldaps").Bind(f.dns["carol"], f.pw); resultCode(err) != ldap.LDAPResultInvalidCredentials || !strings.Contains(err.Error(), "data 773,") {
			t.Errorf("bind with pwdLastSet 0: %v, want 49 data 773", err)
		}
		mustNoErr(t, d.Modify(ctx, d.BaseDN, map[string][]string{"maxPwdAge": {"-1"}}))
		defer d.Modify(ctx, d.BaseDN, map[string][]string{"maxPwdAge": {"-36288000000000"}})
		if err := connect(t, s, d, "ldaps").Bind(f.dns["asmith"], f.pw); resultCode(err) != ldap.LDAPResultInvalidCredentials || !strings.Contains(err.Error(), "data 532,") {
			t.Errorf("bind with an expired password: %v, want 49 data 532", err)
		}
		// Administrator's password never expires.
		mustNoErr(t, connect(t, s, d, "ldaps").Bind(d.AdminUPN, d.AdminPassword))
	})
	t.Run("a failed bind drops the earlier identity", func(t *testing.T) {
		c := admin(t, s, d)
		if err := c.Bind(d.AdminUPN, "Wrong-Passw0rd"); resultCode(err) != ldap.LDAPResultInvalidCredentials {
			t.Fatalf("bind: %v", err)
		}
		if _, err := search(c, d.BaseDN, ldap.ScopeBaseObject, "(objectClass=*)", nil); resultCode(err) != ldap.LDAPResultOperationsError {
			t.Fatalf("search: %v, want 1", err)
		}
	})
	t.Run("adds and deletes over LDAP are refused", func(t *testing.T) {
		c := admin(t, s, d)
		add := ldap.NewAddRequest("CN=x,"+f.ou, nil)
		add.Attribute("objectClass", []string{"top", "group"})
		if err := c.Add(add); resultCode(err) != ldap.LDAPResultUnwillingToPerform {
			t.Errorf("add: %v, want 53", err)
		}
		if err := c.Del(ldap.NewDelRequest(f.dns["carol"], nil)); resultCode(err) != ldap.LDAPResultUnwillingToPerform {
			t.Errorf("delete: %v, want 53", err)
		}
		anon := connect(t, s, d, "ldaps")
		if err := anon.Del(ldap.NewDelRequest(f.dns["carol"], nil)); resultCode(err) != ldap.LDAPResultOperationsError {
			t.Errorf("anonymous delete: %v, want 1", err)
		}
	})
}

func TestRootDSE(t *testing.T) {
	s := startT(t, Options{})
	for _, d := range s.Domains() {
		t.Run(d.Name, func(t *testing.T) {
			c := admin(t, s, d)
			res, err := search(c, "", ldap.ScopeBaseObject, "(objectClass=*)", nil)
			mustNoErr(t, err)
			e := res.Entries[0]
			want := map[string]string{
				"defaultNamingContext":    d.BaseDN,
				"dnsHostName":             "dc1." + d.Name + ".example.test",
				"highestCommittedUSN":     strconv.FormatInt(d.HighestCommittedUSN(), 10),
				"rootDomainNamingContext": d.BaseDN,
			}
			for k, v := range want {
				if got := e.GetAttributeValue(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			for _, oid := range []string{"1.2.840.113556.1.4.319", "1.2.840.113556.1.4.417", "1.2.840.113556.1.4.2239", "1.2.840.113556.1.4.841"} {
				if !slices.Contains(e.GetAttributeValues("supportedControl"), oid) {
					t.Errorf("supportedControl lacks %s", oid)
				}
			}
			for _, oid := range []string{"2.16.840.1.113730.3.4.9", "1.2.840.113556.1.4.473"} {
				if slices.Contains(e.GetAttributeValues("supportedControl"), oid) {
					t.Errorf("supportedControl lists %s, which is not implemented", oid)
				}
			}
			if !slices.Contains(e.GetAttributeValues("supportedLDAPVersion"), "3") || !slices.Contains(e.GetAttributeValues("namingContexts"), d.BaseDN) {
				t.Errorf("supportedLDAPVersion %v namingContexts %v", e.GetAttributeValues("supportedLDAPVersion"), e.GetAttributeValues("namingContexts"))
			}
			ds := e.GetAttributeValue("dsServiceName")
			if !strings.HasPrefix(ds, "CN=NTDS Settings,CN=DC1,CN=Servers,") || !strings.HasSuffix(ds, ",CN=Configuration,"+d.BaseDN) {
				t.Errorf("dsServiceName %q", ds)
			}
			res, err = search(c, ds, ldap.ScopeBaseObject, "(objectClass=*)", []string{"invocationId"})
			mustNoErr(t, err)
			if inv := res.Entries[0].GetRawAttributeValue("invocationId"); len(inv) != 16 {
				t.Errorf("invocationId has %d bytes", len(inv))
			}
			// The configuration naming context is not part of the domain's subtree.
			res, err = search(c, d.BaseDN, ldap.ScopeWholeSubtree, "(objectClass=nTDSDSA)", []string{"1.1"})
			if err != nil || len(res.Entries) != 0 {
				t.Errorf("subtree search of the domain found the NTDS Settings: %v %d", err, len(res.Entries))
			}
			// Only the attributes asked for.
			res, err = search(c, "", ldap.ScopeBaseObject, "(objectClass=*)", []string{"DSSERVICENAME"})
			mustNoErr(t, err)
			if a := res.Entries[0].Attributes; len(a) != 1 || a[0].Name != "dsServiceName" {
				t.Errorf("RootDSE with one attribute: %v", a)
			}
		})
	}
	// Every start is a new database instance.
	s2 := startT(t, Options{})
	inv := func(s *Server) string {
		d := s.Domain("corp")
		d.mu.RLock()
		defer d.mu.RUnlock()
		return d.ntds.first("invocationid")
	}
	if inv(s) == inv(s2) {
		t.Error("two starts have the same invocationId")
	}
}

func TestSearchFilters(t *testing.T) {
	f := newFixture(t)
	s, d := f.s, f.d
	c := admin(t, s, d)
	ctx := context.Background()
	g := mustDN(t)(d.AddGroup(ctx, "Staff Group", f.ou))
	mustNoErr(t, d.AddMembers(ctx, g, f.dns["alice"], f.dns["carol"]))

	res, err := search(c, f.dns["alice"], ldap.ScopeBaseObject, "(objectClass=*)", []string{"objectGUID", "uSNChanged"})
	mustNoErr(t, err)
	aliceGUID := res.Entries[0].GetRawAttributeValue("objectGUID")
	aliceUSN := res.Entries[0].GetAttributeValue("uSNChanged")
	res, err = search(c, f.dns["bob"], ldap.ScopeBaseObject, "(objectClass=*)", []string{"objectGUID", "objectSid"})
	mustNoErr(t, err)
	bobGUID := res.Entries[0].GetRawAttributeValue("objectGUID")
	bobSID := res.Entries[0].GetRawAttributeValue("objectSid")
	if len(aliceGUID) != 16 || len(bobSID) != 28 || bobSID[0] != 1 || bobSID[1] != 5 {
		t.Fatalf("objectGUID %x objectSid %x", aliceGUID, bobSID)
	}
	usn, _ := strconv.Atoi(aliceUSN)

	tests := []struct {
		name   string
		base   string
		scope  int
		filter string
		want   []string
	}{
		{"equality, any case", f.ou, ldap.ScopeWholeSubtree, "(sAMAccountName=ALICE)", []string{"alice"}},
		{"email in another case", d.BaseDN, ldap.ScopeWholeSubtree, "(mail=alice.adams@example.COM)", []string{"alice"}},
		{"attribute name in another case", d.BaseDN, ldap.ScopeWholeSubtree, "(MAIL=bob@example.com)", []string{"bob"}},
		{"presence", f.ou, ldap.ScopeWholeSubtree, "(&(objectClass=user)(mail=*))", []string{"alice", "bob", "zoe"}},
		{"absence", f.ou, ldap.ScopeWholeSubtree, "(&(objectClass=user)(!(mail=*)))", []string{"carol"}},
		{"substring initial", d.BaseDN, ldap.ScopeWholeSubtree, "(displayName=ali*)", []string{"alice"}},
		{"substring any and final", d.BaseDN, ldap.ScopeWholeSubtree, "(cn=*, ann*)", []string{"asmith"}},
		{"substring non-ASCII", d.BaseDN, ldap.ScopeWholeSubtree, "(displayName=*łukasiewicz*)", []string{"zoe"}},
		{"or", d.BaseDN, ldap.ScopeWholeSubtree, "(|(sAMAccountName=alice)(sAMAccountName=bob)(sAMAccountName=nobody))", []string{"alice", "bob"}},
		{"and with not", f.ou, ldap.ScopeWholeSubtree, "(&(objectClass=user)(!(sAMAccountName=alice))(!(sAMAccountName=zoe)))", []string{"bob", "carol"}},
		{"disabled bit (803)", d.BaseDN, ldap.ScopeWholeSubtree, "(&(objectCategory=person)(userAccountControl:1.2.840.113556.1.4.803:=2))", []string{"Guest", "bob", "krbtgt"}},
		{">= numeric", f.ou, ldap.ScopeWholeSubtree, fmt.Sprintf("(&(objectClass=user)(uSNChanged>=%d))", usn), []string{"alice", "bob", "carol", "zoe"}},
		{"<= numeric", d.BaseDN, ldap.ScopeWholeSubtree, fmt.Sprintf("(&(objectClass=user)(uSNChanged<=%d)(sAMAccountName=a*))", usn), []string{"Administrator", "alice"}},
		{"objectGUID OR filter", d.BaseDN, ldap.ScopeWholeSubtree, "(|(objectGUID=" + escapeBytes(aliceGUID) + ")(objectGUID=" + escapeBytes(bobGUID) + "))", []string{"alice", "bob"}},
		{"objectSid", d.BaseDN, ldap.ScopeWholeSubtree, "(objectSid=" + escapeBytes(bobSID) + ")", []string{"bob"}},
		{"objectClass hierarchy: person", f.ou, ldap.ScopeWholeSubtree, "(objectClass=person)", []string{"alice", "bob", "carol", "zoe"}},
		{"objectClass hierarchy: organizationalPerson", f.ou, ldap.ScopeSingleLevel, "(objectClass=organizationalPerson)", []string{"alice", "bob", "carol", "zoe"}},
		{"objectClass group", f.ou, ldap.ScopeWholeSubtree, "(objectClass=group)", []string{"Staff Group"}},
		{"objectCategory=person", f.ou, ldap.ScopeWholeSubtree, "(objectCategory=person)", []string{"alice", "bob", "carol", "zoe"}},
		{"computers are users too", d.BaseDN, ldap.ScopeWholeSubtree, "(&(objectClass=user)(objectClass=computer))", []string{"DC1$"}},
		{"approx as equality", d.BaseDN, ldap.ScopeWholeSubtree, "(sAMAccountName~=Carol)", []string{"carol"}},
		{"plain memberOf", d.BaseDN, ldap.ScopeWholeSubtree, "(memberOf=" + ldap.EscapeFilter(g) + ")", []string{"alice", "carol"}},
		{"memberOf of a DN that does not exist", d.BaseDN, ldap.ScopeWholeSubtree, "(memberOf=CN=Nope," + f.ou + ")", nil},
		{"DN with comma as distinguishedName", d.BaseDN, ldap.ScopeWholeSubtree, "(distinguishedName=" + ldap.EscapeFilter(strings.ToLower(f.dns["asmith"])) + ")", []string{"asmith"}},
		{"one level", d.BaseDN, ldap.ScopeSingleLevel, "(objectClass=organizationalUnit)", []string{"Domain Controllers", "Staff"}},
		{"base", f.dns["carol"], ldap.ScopeBaseObject, "(objectClass=*)", []string{"carol"}},
		{"base, filter not matching", f.dns["carol"], ldap.ScopeBaseObject, "(mail=*)", nil},
		{"GUID base DN", "<GUID=" + guidString(aliceGUID) + ">", ldap.ScopeBaseObject, "(objectClass=*)", []string{"alice"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := search(c, tt.base, tt.scope, tt.filter, []string{"sAMAccountName", "ou", "cn"})
			mustNoErr(t, err)
			var got []string
			for _, e := range res.Entries {
				n := e.GetAttributeValue("sAMAccountName")
				if n == "" {
					n = e.GetAttributeValue("ou")
				}
				if n == "" || strings.HasSuffix(tt.name, "group") {
					n = e.GetAttributeValue("cn")
				}
				got = append(got, n)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("%s: got %q, want %q", tt.filter, got, tt.want)
			}
		})
	}

	t.Run("attribute lists", func(t *testing.T) {
		for _, tt := range []struct {
			attrs []string
			want  func([]*ldap.EntryAttribute) bool
		}{
			{[]string{"1.1"}, func(a []*ldap.EntryAttribute) bool { return len(a) == 0 }},
			{nil, func(a []*ldap.EntryAttribute) bool {
				return has(a, "mail") && has(a, "memberOf") && has(a, "uSNChanged")
			}},
			{[]string{"*"}, func(a []*ldap.EntryAttribute) bool { return has(a, "objectGUID") && has(a, "distinguishedName") }},
			{[]string{"MAIL", "objectguid"}, func(a []*ldap.EntryAttribute) bool { return len(a) == 2 && has(a, "mail") && has(a, "objectGUID") }},
			{[]string{"memberof"}, func(a []*ldap.EntryAttribute) bool { return len(a) == 1 && has(a, "memberOf") }},
			{[]string{"noSuchAttribute"}, func(a []*ldap.EntryAttribute) bool { return len(a) == 0 }},
		} {
			res, err := search(c, f.dns["alice"], ldap.ScopeBaseObject, "(objectClass=*)", tt.attrs)
			mustNoErr(t, err)
			if !tt.want(res.Entries[0].Attributes) {
				t.Errorf("attributes %q: got %v", tt.attrs, names(res.Entries[0].Attributes))
			}
		}
	})
	t.Run("no such object", func(t *testing.T) {
		_, err := search(c, "CN=Nobody,"+f.ou, ldap.ScopeBaseObject, "(objectClass=*)", nil)
		var le *ldap.Error
		if !errors.As(err, &le) || le.ResultCode != ldap.LDAPResultNoSuchObject || le.MatchedDN != f.ou || !strings.Contains(le.Error(), "0000208D: NameErr") {
			t.Fatalf("search of a missing DN: %v (%+v), want 32 with matchedDN %s", err, le, f.ou)
		}
	})
	t.Run("size limit", func(t *testing.T) {
		res, err := c.Search(ldap.NewSearchRequest(f.ou, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2, 0, false, "(objectClass=user)", []string{"1.1"}, nil))
		if resultCode(err) != ldap.LDAPResultSizeLimitExceeded || res == nil || len(res.Entries) != 2 {
			t.Fatalf("size limit 2: %v, %v", err, res)
		}
	})
	t.Run("unsupported critical controls", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			ctl  ldap.Control
			code uint16
		}{
			{"VLV critical", ldap.NewControlString("2.16.840.1.113730.3.4.9", true, "x"), ldap.LDAPResultUnavailableCriticalExtension},
			{"sort critical", ldap.NewControlString("1.2.840.113556.1.4.473", true, ""), ldap.LDAPResultUnavailableCriticalExtension},
			{"VLV not critical", ldap.NewControlString("2.16.840.1.113730.3.4.9", false, "x"), 0},
			{"unknown not critical", ldap.NewControlString("1.2.3.4.5", false, ""), 0},
			{"policy hints critical on a search", policyHints(true), 0},
		} {
			_, err := search(c, d.BaseDN, ldap.ScopeBaseObject, "(objectClass=*)", nil, tt.ctl)
			if resultCode(err) != tt.code {
				t.Errorf("%s: %v, want code %d", tt.name, err, tt.code)
			}
		}
	})
}

func has(as []*ldap.EntryAttribute, name string) bool {
	return slices.ContainsFunc(as, func(a *ldap.EntryAttribute) bool { return a.Name == name })
}

func names(as []*ldap.EntryAttribute) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Name)
	}
	return out
}

func TestInChain(t *testing.T) {
	f := newFixture(t)
	s, d := f.s, f.d
	ctx := context.Background()
	must := mustDN(t)
	g1 := must(d.AddGroup(ctx, "Level 1", f.ou))
	g2 := must(d.AddGroup(ctx, "Level 2 (Sales)", f.ou))
	g3 := must(d.AddGroup(ctx, "Level 3, Deep", f.ou))
	loopA := must(d.AddGroup(ctx, "Loop A", f.ou))
	loopB := must(d.AddGroup(ctx, "Loop B", f.ou))
	mustNoErr(t, d.AddMembers(ctx, f.sync, g1, f.dns["alice"]))
	mustNoErr(t, d.AddMembers(ctx, g1, g2))
	mustNoErr(t, d.AddMembers(ctx, g2, g3))
	mustNoErr(t, d.AddMembers(ctx, g3, f.dns["asmith"], f.dns["bob"]))
	mustNoErr(t, d.AddMembers(ctx, loopA, loopB, f.dns["carol"]))
	mustNoErr(t, d.AddMembers(ctx, loopB, loopA, f.dns["zoe"]))
	c := admin(t, s, d)
	inChain := func(dn string) string {
		return "(&(objectClass=user)(memberOf:1.2.840.113556.1.4.1941:=" + ldap.EscapeFilter(dn) + "))"
	}
	tests := []struct {
		name   string
		filter string
		want   []string
	}{
		{"three levels deep", inChain(f.sync), []string{"alice", "asmith", "bob"}},
		{"from the middle", inChain(g2), []string{"asmith", "bob"}},
		{"direct memberOf only", "(&(objectClass=user)(memberOf=" + ldap.EscapeFilter(f.sync) + "))", []string{"alice"}},
		{"cycle", inChain(loopA), []string{"carol", "zoe"}},
		{"cycle from the other side", inChain(loopB), []string{"carol", "zoe"}},
		{"groups of the chain", "(&(objectClass=group)(memberOf:1.2.840.113556.1.4.1941:=" + ldap.EscapeFilter(f.sync) + "))", []string{"Level 1", "Level 2 (Sales)", "Level 3, Deep"}},
		{"ancestors of a user", "(member:1.2.840.113556.1.4.1941:=" + ldap.EscapeFilter(f.dns["bob"]) + ")", []string{"Hideez Users Sync", "Level 1", "Level 2 (Sales)", "Level 3, Deep"}},
		{"group DN in another case", inChain(strings.ToUpper(g3)), []string{"asmith", "bob"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := search(c, d.BaseDN, ldap.ScopeWholeSubtree, tt.filter, []string{"sAMAccountName"})
			mustNoErr(t, err)
			if got := sams(res.Entries); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	// The cache follows membership changes.
	mustNoErr(t, d.RemoveMembers(ctx, g2, g3))
	res, err := search(c, d.BaseDN, ldap.ScopeWholeSubtree, inChain(f.sync), []string{"sAMAccountName"})
	mustNoErr(t, err)
	if got := sams(res.Entries); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("after removing level 3: %q", got)
	}
}

// pagedSearch reads a search page by page with the paging control and
// returns the entries and the number of pages.
func pagedSearch(t *testing.T, c *ldap.Conn, req *ldap.SearchRequest, size uint32) ([]*ldap.Entry, int) {
	t.Helper()
	paging := ldap.NewControlPaging(size)
	req.Controls = append(req.Controls, paging)
	var all []*ldap.Entry
	for pages := 1; ; pages++ {
		res, err := c.Search(req)
		mustNoErr(t, err)
		if len(res.Entries) > int(size) {
			t.Fatalf("page %d has %d entries, page size %d", pages, len(res.Entries), size)
		}
		all = append(all, res.Entries...)
		ctrl, _ := ldap.FindControl(res.Controls, ldap.ControlTypePaging).(*ldap.ControlPaging)
		if ctrl == nil {
			t.Fatalf("page %d without paging control", pages)
		}
		if len(ctrl.Cookie) == 0 {
			return all, pages
		}
		paging.SetCookie(ctrl.Cookie)
	}
}

func TestPaging(t *testing.T) {
	s := startT(t, Options{Empty: true})
	d := s.Domain("branch")
	ctx := context.Background()
	ou := mustDN(t)(d.AddOU(ctx, "Bulk", ""))
	var us []User
	for i := range 1600 {
		us = append(us, User{Sam: fmt.Sprintf("bulk%04d", i), DisplayName: fmt.Sprintf("Bulk %04d", i), OU: ou, NoPassword: true})
	}
	dns, err := d.AddUsers(ctx, us)
	mustNoErr(t, err)
	mustNoErr(t, d.AddMembers(ctx, d.SyncGroupDN, dns[:350]...))
	c := admin(t, s, d)
	filter := "(&(objectClass=user)(memberOf:1.2.840.113556.1.4.1941:=" + ldap.EscapeFilter(d.SyncGroupDN) + "))"
	req := func() *ldap.SearchRequest {
		return ldap.NewSearchRequest(d.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false, filter, []string{"sAMAccountName"}, nil)
	}

	t.Run("pages of 100 give the unpaged result", func(t *testing.T) {
		paged, pages := pagedSearch(t, c, req(), 100)
		unpaged, err := c.Search(req())
		mustNoErr(t, err)
		if pages != 4 || len(paged) != 350 {
			t.Fatalf("%d entries in %d pages, want 350 in 4", len(paged), pages)
		}
		if !slices.Equal(sams(paged), sams(unpaged.Entries)) {
			t.Error("paged and unpaged results differ")
		}
	})
	t.Run("the page size is capped at 1000", func(t *testing.T) {
		r := req()
		r.Filter = "(objectClass=user)"
		r.BaseDN = ou
		paged, pages := pagedSearch(t, c, r, 5000)
		if len(paged) != 1600 || pages != 2 {
			t.Fatalf("%d entries in %d pages, want 1600 in 2", len(paged), pages)
		}
	})
	t.Run("more than 1000 without paging", func(t *testing.T) {
		res, err := search(c, ou, ldap.ScopeWholeSubtree, "(objectClass=user)", []string{"1.1"})
		if resultCode(err) != ldap.LDAPResultSizeLimitExceeded || res == nil || len(res.Entries) != 1000 {
			t.Fatalf("%v, %v; want 4 with 1000 entries", err, res != nil && len(res.Entries) == 1000)
		}
	})
	t.Run("unknown or stale cookie", func(t *testing.T) {
		r := req()
		paging := ldap.NewControlPaging(100)
		paging.SetCookie([]byte("not a cookie"))
		r.Controls = []ldap.Control{paging}
		if _, err := c.Search(r); resultCode(err) != ldap.LDAPResultUnavailableCriticalExtension {
			t.Errorf("unknown cookie: %v, want 12", err)
		}
		// A cookie is good for one page only, and only with the same search.
		r = req()
		paging = ldap.NewControlPaging(100)
		r.Controls = []ldap.Control{paging}
		res, err := c.Search(r)
		mustNoErr(t, err)
		cookie := ldap.FindControl(res.Controls, ldap.ControlTypePaging).(*ldap.ControlPaging).Cookie
		paging.SetCookie(cookie)
		r.Filter = "(objectClass=user)"
		if _, err := c.Search(r); resultCode(err) != ldap.LDAPResultUnavailableCriticalExtension {
			t.Errorf("cookie with another filter: %v, want 12", err)
		}
		// Cookies belong to their connection.
		other := admin(t, s, d)
		r = req()
		paging = ldap.NewControlPaging(100)
		r.Controls = []ldap.Control{paging}
		res, err = c.Search(r)
		mustNoErr(t, err)
		paging.SetCookie(ldap.FindControl(res.Controls, ldap.ControlTypePaging).(*ldap.ControlPaging).Cookie)
		if _, err := other.Search(r); resultCode(err) != ldap.LDAPResultUnavailableCriticalExtension {
			t.Errorf("cookie on another connection: %v, want 12", err)
		}
	})
	t.Run("go-ldap's SearchWithPaging", func(t *testing.T) {
		res, err := c.SearchWithPaging(req(), 64)
		if err != nil || len(res.Entries) != 350 {
			t.Fatalf("%v, %d entries", err, len(res.Entries))
		}
	})
	t.Run("large groups read member in ranges", func(t *testing.T) {
		res, err := search(c, d.SyncGroupDN, ldap.ScopeBaseObject, "(objectClass=*)", []string{"member"})
		mustNoErr(t, err)
		if a := res.Entries[0].Attributes; len(a) != 1 || a[0].Name != "member" || len(a[0].Values) != 350 {
			t.Fatalf("member of a 350-member group: %v", names(a))
		}
		mustNoErr(t, d.AddMembers(ctx, d.SyncGroupDN, dns[350:]...))
		res, err = search(c, d.SyncGroupDN, ldap.ScopeBaseObject, "(objectClass=*)", []string{"member"})
		mustNoErr(t, err)
		if a := res.Entries[0].Attributes; len(a) != 1 || a[0].Name != "member;range=0-1499" || len(a[0].Values) != 1500 {
			t.Fatalf("member of a 1600-member group: %v", names(a))
		}
	})
	t.Run("the extended DN control gives members as <GUID=hex>;DN", func(t *testing.T) {
		res, err := search(c, d.SyncGroupDN, ldap.ScopeBaseObject, "(objectClass=*)", []string{"member;range=1500-*"}, ldap.NewControlString("1.2.840.113556.1.4.529", false, ""))
		mustNoErr(t, err)
		a := res.Entries[0].Attributes
		if len(a) != 1 || a[0].Name != "member;range=1500-*" || len(a[0].Values) != 100 {
			t.Fatalf("the last 100 members: %v", names(a))
		}
		for _, v := range a[0].Values {
			hexGUID, dn, ok := strings.Cut(strings.TrimPrefix(v, "<GUID="), ">;")
			if !strings.HasPrefix(v, "<GUID=") || !ok {
				t.Fatalf("member value %q is not <GUID=hex>;DN", v)
			}
			got, err := search(c, dn, ldap.ScopeBaseObject, "(objectClass=*)", []string{"objectGUID"})
			mustNoErr(t, err)
			if want := hex.EncodeToString(got.Entries[0].GetRawAttributeValue("objectGUID")); hexGUID != want {
				t.Fatalf("member %s: GUID %s in the value, %s on the entry", dn, hexGUID, want)
			}
		}
	})
}

func TestShowDeleted(t *testing.T) {
	f := newFixture(t)
	s, d := f.s, f.d
	c := admin(t, s, d)
	ctx := context.Background()
	mustNoErr(t, d.AddMembers(ctx, f.sync, f.dns["carol"]))
	res, err := search(c, f.dns["carol"], ldap.ScopeBaseObject, "(objectClass=*)", []string{"objectGUID"})
	mustNoErr(t, err)
	guid := res.Entries[0].GetRawAttributeValue("objectGUID")
	syncUSN := usnOf(t, c, f.sync)
	mustNoErr(t, d.Delete(ctx, f.dns["carol"]))

	byGUID := "(|(objectGUID=" + escapeBytes(guid) + ")(objectGUID=\\00\\01))"
	res, err = search(c, d.BaseDN, ldap.ScopeWholeSubtree, byGUID, []string{"isDeleted"})
	if err != nil || len(res.Entries) != 0 {
		t.Fatalf("without show deleted: %v, %d entries", err, len(res.Entries))
	}
	if _, err := search(c, f.dns["carol"], ldap.ScopeBaseObject, "(objectClass=*)", nil); resultCode(err) != ldap.LDAPResultNoSuchObject {
		t.Errorf("the old DN: %v, want 32", err)
	}
	res, err = search(c, d.BaseDN, ldap.ScopeWholeSubtree, byGUID, []string{"isDeleted", "objectGUID", "sAMAccountName", "mail", "lastKnownParent", "memberOf"}, ldap.NewControlMicrosoftShowDeleted())
	mustNoErr(t, err)
	if len(res.Entries) != 1 {
		t.Fatalf("with show deleted: %d entries", len(res.Entries))
	}
	e := res.Entries[0]
	if e.GetAttributeValue("isDeleted") != "TRUE" || string(e.GetRawAttributeValue("objectGUID")) != string(guid) ||
		!strings.Contains(e.DN, `\0ADEL:`+guidString(guid)+",CN=Deleted Objects,"+d.BaseDN) ||
		e.GetAttributeValue("sAMAccountName") != "carol" || e.GetAttributeValue("mail") != "" || e.GetAttributeValue("memberOf") != "" ||
		e.GetAttributeValue("lastKnownParent") != f.ou {
		t.Errorf("tombstone %s: %v", e.DN, e.Attributes)
	}
	if usnOf(t, c, f.sync) == syncUSN {
		t.Error("the group the deleted user was in did not change")
	}
	// The tombstone can be read by its DN with the control.
	res, err = search(c, e.DN, ldap.ScopeBaseObject, "(objectClass=*)", []string{"1.1"}, ldap.NewControlMicrosoftShowDeleted())
	if err != nil || len(res.Entries) != 1 {
		t.Errorf("base search of the tombstone: %v", err)
	}
	// A new account may take the old name.
	if _, err := d.AddUser(ctx, User{Sam: "carol", DisplayName: "Carol Clark", OU: f.ou, NoPassword: true}); err != nil {
		t.Errorf("re-create carol: %v", err)
	}
	if err := d.Delete(ctx, f.ou); resultCode(err) != ldap.LDAPResultNotAllowedOnNonLeaf {
		t.Errorf("delete a non-empty OU: %v, want 66", err)
	}
	mustNoErr(t, d.DeleteTree(ctx, f.ou))
	res, err = search(c, d.BaseDN, ldap.ScopeWholeSubtree, "(lastKnownParent="+ldap.EscapeFilter(f.ou)+")", []string{"1.1"}, ldap.NewControlMicrosoftShowDeleted())
	if err != nil || len(res.Entries) != 5 { // alice, bob, zoe, the new carol, and carol's first tombstone
		t.Errorf("after DeleteTree: %v, %d tombstones from the OU", err, len(res.Entries))
	}
	if _, err := search(c, f.ou, ldap.ScopeBaseObject, "(objectClass=*)", nil); resultCode(err) != ldap.LDAPResultNoSuchObject {
		t.Errorf("the OU after DeleteTree: %v", err)
	}
}

func TestUSN(t *testing.T) {
	f := newFixture(t)
	s, d := f.s, f.d
	c := admin(t, s, d)
	ctx := context.Background()
	alice, sync := f.dns["alice"], f.sync
	num := func(v string) int { n, _ := strconv.Atoi(v); return n }
	highest := func() int {
		res, err := search(c, "", ldap.ScopeBaseObject, "(objectClass=*)", []string{"highestCommittedUSN"})
		mustNoErr(t, err)
		return num(res.Entries[0].GetAttributeValue("highestCommittedUSN"))
	}
	steps := []struct {
		name          string
		do            func() error
		userChanges   bool
		groupChanges  bool
		userDNChanged string
	}{
		{"modify through the API", func() error { return d.Modify(ctx, alice, map[string][]string{"mail": {"alice@new.example.com"}}) }, true, false, ""},
		{"modify over LDAP (replace)", func() error {
			m := ldap.NewModifyRequest(alice, nil)
			m.Replace("department", []string{"Research"})
			return c.Modify(m)
		}, true, false, ""},
		{"modify over LDAP (add, delete)", func() error {
			m := ldap.NewModifyRequest(alice, nil)
			m.Add("description", []string{"one", "two"})
			m.Delete("title", nil)
			return c.Modify(m)
		}, true, false, ""},
		{"add a member", func() error { return d.AddMembers(ctx, sync, alice) }, false, true, ""},
		{"remove a member over LDAP", func() error {
			m := ldap.NewModifyRequest(sync, nil)
			m.Delete("member", []string{alice})
			return c.Modify(m)
		}, false, true, ""},
		{"disable", func() error { return d.SetDisabled(ctx, alice, true) }, true, false, ""},
		{"reset the password", func() error { return d.SetPassword(ctx, alice, "An0ther-Secret!") }, true, false, ""},
	}
	for _, st := range steps {
		u0, g0, h0 := num(usnOf(t, c, alice)), num(usnOf(t, c, sync)), highest()
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		u1, g1, h1 := num(usnOf(t, c, alice)), num(usnOf(t, c, sync)), highest()
		if (u1 > u0) != st.userChanges || (g1 > g0) != st.groupChanges || h1 <= h0 || max(u1, g1) != h1 {
			t.Errorf("%s: user %d->%d, group %d->%d, highest %d->%d; want user changed %v, group changed %v",
				st.name, u0, u1, g0, g1, h0, h1, st.userChanges, st.groupChanges)
		}
	}
	res, err := search(c, alice, ldap.ScopeBaseObject, "(objectClass=*)", []string{"mail", "department", "description", "title", "userAccountControl", "memberOf"})
	mustNoErr(t, err)
	e := res.Entries[0]
	if e.GetAttributeValue("mail") != "alice@new.example.com" || e.GetAttributeValue("department") != "Research" ||
		len(e.GetAttributeValues("description")) != 2 || e.GetAttributeValue("title") != "" || e.GetAttributeValue("userAccountControl") != "514" || e.GetAttributeValue("memberOf") != "" {
		t.Errorf("alice after the changes: %v", e.Attributes)
	}

	t.Run("refused modifies", func(t *testing.T) {
		user := bound(t, s, d, f.dns["asmith"], f.pw)
		for _, tt := range []struct {
			name string
			c    *ldap.Conn
			mod  func(*ldap.ModifyRequest)
			code uint16
		}{
			{"not an administrator", user, func(m *ldap.ModifyRequest) { m.Replace("mail", []string{"x@example.com"}) }, ldap.LDAPResultInsufficientAccessRights},
			{"system-only attribute", c, func(m *ldap.ModifyRequest) { m.Replace("objectGUID", []string{"0123456789abcdef"}) }, ldap.LDAPResultUnwillingToPerform},
			{"memberOf is a backlink", c, func(m *ldap.ModifyRequest) { m.Add("memberOf", []string{sync}) }, ldap.LDAPResultUnwillingToPerform},
			{"RDN attribute", c, func(m *ldap.ModifyRequest) { m.Replace("cn", []string{"Other"}) }, ldap.LDAPResultNotAllowedOnRDN},
			{"delete a missing attribute", c, func(m *ldap.ModifyRequest) { m.Delete("facsimileTelephoneNumber", nil) }, ldap.LDAPResultNoSuchAttribute},
			{"add an existing value", c, func(m *ldap.ModifyRequest) { m.Add("description", []string{"ONE"}) }, ldap.LDAPResultAttributeOrValueExists},
			{"taken sAMAccountName", c, func(m *ldap.ModifyRequest) { m.Replace("sAMAccountName", []string{"bob"}) }, ldap.LDAPResultEntryAlreadyExists},
			{"critical unknown control", c, func(m *ldap.ModifyRequest) {
				m.Replace("mail", []string{"y@example.com"})
				m.Controls = append(m.Controls, ldap.NewControlString("1.2.3.4", true, ""))
			}, ldap.LDAPResultUnavailableCriticalExtension},
		} {
			m := ldap.NewModifyRequest(alice, nil)
			tt.mod(m)
			if err := tt.c.Modify(m); resultCode(err) != tt.code {
				t.Errorf("%s: %v, want %d", tt.name, err, tt.code)
			}
		}
		// Atomic: a refused request changes nothing.
		before := usnOf(t, c, alice)
		m := ldap.NewModifyRequest(alice, nil)
		m.Replace("mail", []string{"partial@example.com"})
		m.Replace("objectSid", []string{"x"})
		if err := c.Modify(m); err == nil {
			t.Fatal("modify with a system-only attribute succeeded")
		}
		if usnOf(t, c, alice) != before {
			t.Error("a refused modify changed the entry")
		}
	})
}

func TestPasswords(t *testing.T) {
	f := newFixture(t)
	s, d := f.s, f.d
	ctx := context.Background()
	c := admin(t, s, d)
	alice := f.dns["alice"]
	reset := func(conn *ldap.Conn, dn, pw string, ctls ...ldap.Control) error {
		m := ldap.NewModifyRequest(dn, ctls)
		m.Replace("unicodePwd", []string{EncodePassword(pw)})
		return conn.Modify(m)
	}
	change := func(conn *ldap.Conn, dn, oldPw, newPw string) error {
		m := ldap.NewModifyRequest(dn, nil)
		m.Delete("unicodePwd", []string{EncodePassword(oldPw)})
		m.Add("unicodePwd", []string{EncodePassword(newPw)})
		return conn.Modify(m)
	}
	pwdLastSet := func() string {
		res, err := search(c, alice, ldap.ScopeBaseObject, "(objectClass=*)", []string{"pwdLastSet"})
		mustNoErr(t, err)
		return res.Entries[0].GetAttributeValue("pwdLastSet")
	}
	canBind := func(pw string) bool {
		conn := connect(t, s, d, "ldaps")
		return conn.Bind(alice, pw) == nil
	}

	resets := []struct {
		name string
		pw   string
		ctls []ldap.Control
		code uint16
		diag string
	}{
		{"too short", "Ab1!x", nil, ldap.LDAPResultConstraintViolation, "too short"},
		{"not complex", "alllowercase1", nil, ldap.LDAPResultConstraintViolation, "complexity"},
		{"contains the sAMAccountName", "xxALICE-2024!", nil, ldap.LDAPResultConstraintViolation, "account name"},
		{"contains a display-name token", "Adams-Family-9", nil, ldap.LDAPResultConstraintViolation, "account name"},
		{"good", "Reset-Passw0rd-1", nil, 0, ""},
		{"the old one again, without hints (history skipped)", f.pw, nil, 0, ""},
		{"in history, with policy hints", "Reset-Passw0rd-1", []ldap.Control{policyHints(false)}, ldap.LDAPResultConstraintViolation, "history"},
		{"new one, with policy hints", "Hinted-Passw0rd-2", []ldap.Control{policyHints(true)}, 0, ""},
	}
	for _, tt := range resets {
		before := pwdLastSet()
		err := reset(c, alice, tt.pw, tt.ctls...)
		if resultCode(err) != tt.code || tt.code != 0 && (!strings.Contains(err.Error(), "0000052D: AtrErr: DSID-03191083, #1:\n\t0: 0000052D: DSID-03191083, problem 1005 (CONSTRAINT_ATT_TYPE), data 0, Att 9005a (unicodePwd)") || !strings.Contains(err.Error(), tt.diag)) {
			t.Errorf("reset, %s: %v; want code %d with %q", tt.name, err, tt.code, tt.diag)
			continue
		}
		if tt.code == 0 && pwdLastSet() == before {
			t.Errorf("reset, %s: pwdLastSet did not change", tt.name)
		}
	}
	if !canBind("Hinted-Passw0rd-2") || canBind(f.pw) {
		t.Error("after the resets: the new password must bind and the old one must not")
	}

	t.Run("refused resets", func(t *testing.T) {
		user := bound(t, s, d, f.dns["asmith"], f.pw)
		if err := reset(user, alice, "Other-Passw0rd-3"); resultCode(err) != ldap.LDAPResultInsufficientAccessRights || !strings.Contains(err.Error(), "00000005: SecErr: DSID-031A11F8, problem 4003 (INSUFF_ACCESS_RIGHTS), data 0") {
			t.Errorf("reset by a user: %v, want 50", err)
		}
		plain := connect(t, s, d, "plain")
		if err := reset(plain, alice, "Other-Passw0rd-3"); resultCode(err) != ldap.LDAPResultUnwillingToPerform || !strings.Contains(err.Error(), "0000001F: SvcErr: DSID-031A12D2, problem 5003 (WILL_NOT_PERFORM), data 0") {
			t.Errorf("reset without TLS: %v, want 53", err)
		}
		m := ldap.NewModifyRequest(alice, nil)
		m.Replace("unicodePwd", []string{"not UTF-16 in quotes"})
		if err := c.Modify(m); resultCode(err) != ldap.LDAPResultUnwillingToPerform {
			t.Errorf("malformed unicodePwd: %v, want 53", err)
		}
	})

	t.Run("user changes", func(t *testing.T) {
		user := bound(t, s, d, alice, "Hinted-Passw0rd-2")
		err := change(user, alice, "Hinted-Passw0rd-2", "Changed-Passw0rd-4")
		if resultCode(err) != ldap.LDAPResultConstraintViolation || !strings.Contains(err.Error(), "too young") {
			t.Fatalf("change within the minimum age: %v, want 19 (too young)", err)
		}
		mustNoErr(t, d.Modify(ctx, d.BaseDN, map[string][]string{"minPwdAge": {"0"}}))
		err = change(user, alice, "Wrong-Old-Passw0rd", "Changed-Passw0rd-4")
		if resultCode(err) != ldap.LDAPResultConstraintViolation || !strings.Contains(err.Error(), "00000056: AtrErr: DSID-03190F80, #1:\n\t0: 00000056: DSID-03190F80, problem 1005 (CONSTRAINT_ATT_TYPE), data 0, Att 9005a (unicodePwd)") {
			t.Fatalf("change with a wrong old password: %v, want 19 00000056", err)
		}
		mustNoErr(t, change(user, alice, "Hinted-Passw0rd-2", "Changed-Passw0rd-4"))
		if err := change(user, alice, "Changed-Passw0rd-4", "Reset-Passw0rd-1"); resultCode(err) != ldap.LDAPResultConstraintViolation || !strings.Contains(err.Error(), "history") {
			t.Errorf("change back to a password in history: %v, want 19", err)
		}
		if !canBind("Changed-Passw0rd-4") || canBind("Hinted-Passw0rd-2") {
			t.Error("after the change: the new password must bind and the old one must not")
		}
		// StartTLS is as good as LDAPS for passwords.
		st := connect(t, s, d, "starttls")
		mustNoErr(t, st.Bind(alice, "Changed-Passw0rd-4"))
		mustNoErr(t, change(st, alice, "Changed-Passw0rd-4", "Changed-Passw0rd-5"))
		// A shorter policy takes effect at once.
		mustNoErr(t, d.Modify(ctx, d.BaseDN, map[string][]string{"minPwdLength": {"20"}}))
		if err := reset(c, alice, "Now-Too-Short-6"); resultCode(err) != ldap.LDAPResultConstraintViolation {
			t.Errorf("reset under minPwdLength 20: %v", err)
		}
	})
	t.Run("a user without password gets one", func(t *testing.T) {
		if err := d.SetPassword(ctx, f.dns["zoe"], "Zoe-Has-A-Long-Passw0rd"); resultCode(err) != ldap.LDAPResultConstraintViolation {
			t.Errorf("a password with the account name: %v", err)
		}
		mustNoErr(t, d.SetPassword(ctx, f.dns["zoe"], "Her-0wn-Passw0rd-Is-Long"))
		conn := connect(t, s, d, "ldaps")
		mustNoErr(t, conn.Bind("zoe@corp.example.test", "Her-0wn-Passw0rd-Is-Long"))
	})
}

func TestStopRestart(t *testing.T) {
	s := startT(t, Options{Empty: true})
	d := s.Domain("corp")
	other := s.Domain("branch")
	c := admin(t, s, d)
	st := connect(t, s, d, "starttls")
	oc := admin(t, s, other)
	url := d.LDAPSURL
	mustNoErr(t, d.Stop())
	if d.Running() || !other.Running() {
		t.Error("Running after Stop")
	}
	if _, err := search(c, d.BaseDN, ldap.ScopeBaseObject, "(objectClass=*)", nil); err == nil {
		t.Error("a search on an open LDAPS connection worked after Stop")
	}
	if _, err := search(st, "", ldap.ScopeBaseObject, "(objectClass=*)", nil); err == nil {
		t.Error("a search on an open StartTLS connection worked after Stop")
	}
	if _, err := ldap.DialURL(d.LDAPSURL, ldap.DialWithTLSConfig(tlsConfig(t, s, d.LDAPSURL))); err == nil {
		t.Error("a new connection worked after Stop")
	}
	if _, err := search(oc, other.BaseDN, ldap.ScopeBaseObject, "(objectClass=*)", nil); err != nil {
		t.Errorf("the other domain stopped too: %v", err)
	}
	mustNoErr(t, d.Restart(context.Background()))
	if d.LDAPSURL != url {
		t.Errorf("URL changed from %s to %s", url, d.LDAPSURL)
	}
	c = admin(t, s, d)
	if _, err := search(c, d.BaseDN, ldap.ScopeBaseObject, "(objectClass=*)", nil); err != nil {
		t.Errorf("search after Restart: %v", err)
	}
	st = connect(t, s, d, "starttls")
	mustNoErr(t, st.Bind(d.AdminDN, d.AdminPassword))
	if err := d.Restart(context.Background()); err == nil {
		t.Error("Restart of a running domain worked")
	}
	mustNoErr(t, s.Close())
	if _, err := d.AddUser(context.Background(), User{Sam: "late", NoPassword: true}); err == nil {
		t.Error("AddUser after Close worked")
	}
}

func TestChurn(t *testing.T) {
	s := startT(t, Options{Users: 100})
	rng := rand.New(rand.NewPCG(1, 2))
	total := func() int64 {
		var n int64
		for _, d := range s.Domains() {
			n += d.HighestCommittedUSN()
		}
		return n
	}
	// What a client sees of the people of both domains.
	conns := map[*Domain]*ldap.Conn{}
	for _, d := range s.Domains() {
		conns[d] = admin(t, s, d)
	}
	view := func() []string {
		var out []string
		for _, d := range s.Domains() {
			c := conns[d]
			res, err := c.SearchWithPaging(ldap.NewSearchRequest(d.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
				"(objectCategory=person)", []string{"mail", "displayName", "userAccountControl", "memberOf"}, nil), 500)
			mustNoErr(t, err)
			for _, e := range res.Entries {
				out = append(out, fmt.Sprint(e.DN, e.GetAttributeValue("mail"), e.GetAttributeValue("displayName"),
					e.GetAttributeValue("userAccountControl"), e.GetAttributeValues("memberOf")))
			}
		}
		return out
	}
	seen := map[string]bool{}
	for i := range 40 {
		before, usn := view(), total()
		msg := s.Churn(rng)
		if msg == "" || strings.Contains(msg, "\n") || strings.Contains(msg, "no change") {
			t.Fatalf("churn %d: %q", i, msg)
		}
		if slices.Equal(view(), before) || total() <= usn {
			t.Errorf("churn %d (%s) changed nothing a client sees", i, msg)
		}
		for _, kind := range []string{"joined", "hired", "removed from", "left the company", "email", "renamed", "disabled", "enabled"} {
			if strings.Contains(msg, kind) {
				seen[kind] = true
			}
		}
	}
	if len(seen) < 5 {
		t.Errorf("40 changes showed only %v", seen)
	}
	// The changes are visible over LDAP, and the directory stays consistent.
	for _, d := range s.Domains() {
		c := admin(t, s, d)
		res, err := c.SearchWithPaging(ldap.NewSearchRequest(d.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
			"(&(objectClass=user)(!(objectClass=computer))(memberOf:1.2.840.113556.1.4.1941:="+ldap.EscapeFilter(d.SyncGroupDN)+"))", []string{"sAMAccountName"}, nil), 500)
		mustNoErr(t, err)
		if len(res.Entries) == 0 {
			t.Errorf("%s: no members after churn", d.Name)
		}
	}
}

// snapshot lists what a domain holds, without times and passwords.
func snapshot(d *Domain) []string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	var out []string
	for _, e := range d.all {
		if e == d.ntds {
			continue
		}
		line := e.dn + "|" + guidString([]byte(e.guid)) + "|" + fmt.Sprint(e.usnCreated)
		for _, a := range e.attrs {
			if a.key == "pwdlastset" {
				continue
			}
			line += "|" + a.name + "=" + strings.Join(a.vals, ";")
		}
		line += "|" + strings.Join(dnList(e.memberOf), ";")
		out = append(out, line)
	}
	return out
}

func TestDeterministic(t *testing.T) {
	a := startT(t, Options{Seed: 7, Users: 150})
	b := startT(t, Options{Seed: 7, Users: 150})
	c := startT(t, Options{Seed: 8, Users: 150})
	for i, d := range a.Domains() {
		if !slices.Equal(snapshot(d), snapshot(b.Domains()[i])) {
			t.Errorf("%s: two starts with seed 7 differ", d.Name)
		}
		if slices.Equal(snapshot(d), snapshot(c.Domains()[i])) {
			t.Errorf("%s: seeds 7 and 8 give the same data", d.Name)
		}
	}
}

func TestGeneratedData(t *testing.T) {
	s := startT(t, Options{})
	corp, branch := s.Domain("corp"), s.Domain("branch")
	total := corp.gen.accounts + branch.gen.accounts
	if corp.gen.accounts < 180 || branch.gen.accounts < 80 || total < 300 || total > 340 {
		t.Errorf("accounts: corp %d, branch %d", corp.gen.accounts, branch.gen.accounts)
	}
	for _, d := range s.Domains() {
		g := d.gen
		if len(g.outsiders) == 0 || len(g.commaCN) == 0 {
			t.Errorf("%s: outsiders %d, comma CNs %d", d.Name, len(g.outsiders), len(g.commaCN))
		}
		share := float64(len(g.pwUsers)) / float64(g.accounts)
		if share < 0.12 || share > 0.30 {
			t.Errorf("%s: %.0f%% in the password group", d.Name, 100*share)
		}
		if nested := len(g.syncUsers) - len(g.directSync); nested < len(g.syncUsers)*3/4 {
			t.Errorf("%s: only %d of %d members are nested", d.Name, nested, len(g.syncUsers))
		}
		c := admin(t, s, d)
		res, err := c.SearchWithPaging(ldap.NewSearchRequest(d.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
			"(&(objectClass=user)(!(objectClass=computer))(memberOf:1.2.840.113556.1.4.1941:="+ldap.EscapeFilter(d.SyncGroupDN)+"))", []string{"sAMAccountName"}, nil), 100)
		mustNoErr(t, err)
		var want []string
		for sam := range g.syncUsers {
			want = append(want, sam)
		}
		slices.Sort(want)
		got := sams(res.Entries)
		for i := range got {
			got[i] = strings.ToLower(got[i])
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: the in-chain search found %d members, the generator put %d", d.Name, len(got), len(want))
		}
	}
	if n, m := len(corp.gen.disabled)+len(branch.gen.disabled), len(corp.gen.noMail)+len(branch.gen.noMail); n == 0 || m == 0 || n > total/20 || m > total/20 {
		t.Errorf("%d disabled, %d without email among %d accounts; want about 2%% each", n, m, total)
	}
	if len(corp.gen.escapes) != 3 || len(branch.gen.escapes) != 0 || len(corp.gen.sharedMail) != 2 {
		t.Errorf("escapes %v / %v, shared mail %v", corp.gen.escapes, branch.gen.escapes, corp.gen.sharedMail)
	}
	c := admin(t, s, corp)
	res, err := search(c, corp.BaseDN, ldap.ScopeWholeSubtree, "(|(sAMAccountName=mallory)(sAMAccountName=trudy)(sAMAccountName=eve)(sAMAccountName="+corp.gen.sharedMail[0]+")(sAMAccountName="+corp.gen.sharedMail[1]+")(sAMAccountName="+corp.gen.specials["anna"]+")(sAMAccountName="+corp.gen.specials["yamada"]+"))",
		[]string{"sAMAccountName", "displayName", "mail"})
	mustNoErr(t, err)
	got := map[string]*ldap.Entry{}
	for _, e := range res.Entries {
		got[e.GetAttributeValue("sAMAccountName")] = e
	}
	for sam, display := range map[string]string{"mallory": "Mallory \x1b[31mRed\x1b[0m", "trudy": "Trudy\x1b]0;pwned\x07", "eve": "Eve \u202Egnp.exe",
		corp.gen.specials["yamada"]: "山田 太郎", corp.gen.specials["anna"]: "Smith, Anna"} {
		if e := got[sam]; e == nil || e.GetAttributeValue("displayName") != display {
			t.Errorf("%s: display name %v, want %q", sam, e, display)
		}
	}
	if e := got[corp.gen.specials["anna"]]; e == nil || !strings.HasPrefix(e.DN, `CN=Smith\, Anna,`) {
		t.Errorf("Anna Smith's DN: %v", e)
	}
	m1, m2 := got[corp.gen.sharedMail[0]].GetAttributeValue("mail"), got[corp.gen.sharedMail[1]].GetAttributeValue("mail")
	if !strings.EqualFold(m1, m2) || m1 == m2 {
		t.Errorf("shared email: %q and %q, want the same address in different case", m1, m2)
	}
	// Anna is in both domains, with her email in another case.
	bc := admin(t, s, branch)
	res, err = search(bc, branch.BaseDN, ldap.ScopeWholeSubtree, "(mail="+got[corp.gen.specials["anna"]].GetAttributeValue("mail")+")", []string{"mail"})
	mustNoErr(t, err)
	if len(res.Entries) != 1 || res.Entries[0].GetAttributeValue("mail") == got[corp.gen.specials["anna"]].GetAttributeValue("mail") {
		t.Errorf("Anna in branch: %v", res.Entries)
	}
}

// TestConcurrent reads (paged, in-chain) on several connections while the
// directory changes, for the race detector.
func TestConcurrent(t *testing.T) {
	s := startT(t, Options{Users: 400})
	d := s.Domain("corp")
	filter := "(&(objectClass=user)(!(objectClass=computer))(memberOf:1.2.840.113556.1.4.1941:=" + ldap.EscapeFilter(d.SyncGroupDN) + "))"
	conns := make([]*ldap.Conn, 4)
	for i := range conns {
		conns[i] = admin(t, s, d)
	}
	errs := make(chan error, len(conns))
	for _, c := range conns {
		go func() {
			for range 5 {
				res, err := c.SearchWithPaging(ldap.NewSearchRequest(d.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
					filter, []string{"objectGUID", "uSNChanged", "mail", "memberOf"}, nil), 37)
				if err != nil {
					errs <- err
					return
				}
				if len(res.Entries) < 200 {
					errs <- fmt.Errorf("%d members", len(res.Entries))
					return
				}
			}
			errs <- nil
		}()
	}
	rng := rand.New(rand.NewPCG(3, 4))
	ctx := context.Background()
	for i := range 30 {
		s.Churn(rng)
		if _, err := d.AddUser(ctx, User{Sam: fmt.Sprintf("conc%d", i), NoPassword: true}); err != nil {
			t.Error(err)
		}
	}
	for range conns {
		if err := <-errs; err != nil {
			t.Errorf("reader: %v", err)
		}
	}
}

// The uSNChanged index answers as a scan of the whole directory would,
// after many changes (and the compactions they cause), and every entry is
// in it exactly once.
func TestUSNChangedIndex(t *testing.T) {
	s := startT(t, Options{Users: 200})
	rng := rand.New(rand.NewPCG(3, 4))
	for range 5000 {
		s.Churn(rng)
	}
	compacted := false
	for _, d := range s.Domains() {
		d.mu.RLock()
		live := 0
		for _, r := range d.changes.refs {
			if r.e.usnChanged == r.usn {
				live++
			}
		}
		if live != len(d.all) || live != len(d.changes.refs)-d.changes.stale {
			t.Errorf("%s: %d live refs, %d stale of %d, for %d entries", d.Name, live, d.changes.stale, len(d.changes.refs), len(d.all))
		}
		compacted = compacted || d.usn > int64(len(d.changes.refs))
		h := d.usn
		for _, usn := range []int64{0, 1, h / 2, h - 40, h - 1, h, h + 1} {
			for _, tt := range []struct {
				filter      string
				showDeleted bool
			}{
				{fmt.Sprintf("(uSNChanged>=%d)", usn), false},
				{fmt.Sprintf("(&(objectClass=group)(uSNChanged>=%d))", usn), false},
				{fmt.Sprintf("(&(isDeleted=TRUE)(|(objectClass=user)(objectClass=group))(uSNChanged>=%d))", usn), true},
			} {
				got, lerr := d.search(d.BaseDN, scopeSub, tt.filter, tt.showDeleted)
				if lerr != nil {
					t.Fatalf("%s: %v", tt.filter, lerr)
				}
				f, err := d.compileFilter(tt.filter)
				mustNoErr(t, err)
				var want []*entry
				for _, e := range d.all {
					if d.still(e, d.head, scopeSub, f, tt.showDeleted) {
						want = append(want, e)
					}
				}
				if !slices.Equal(got, want) {
					t.Errorf("%s %s: the index found %d entries, a scan %d", d.Name, tt.filter, len(got), len(want))
				}
			}
		}
		d.mu.RUnlock()
	}
	if !compacted {
		t.Error("5000 changes never compacted the index: the test does not cover compaction")
	}
}
