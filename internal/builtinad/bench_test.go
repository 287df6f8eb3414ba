package builtinad

import (
	"context"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"keydesk/config"
	"keydesk/ldapsync"
)

// BenchmarkStart100k measures Start with 100,000 people (about 105,000
// accounts in two domains).
func BenchmarkStart100k(b *testing.B) {
	for b.Loop() {
		s, err := Start(context.Background(), Options{Users: 100_000})
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}

// BenchmarkStart300 measures Start with the default 300 people.
func BenchmarkStart300(b *testing.B) {
	for b.Loop() {
		s, err := Start(context.Background(), Options{})
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}

// bench100k is one 100,000-people directory shared by the search
// benchmarks.
func bench100k(b *testing.B) *Server {
	b.Helper()
	start := time.Now()
	s := startT(b, Options{Users: 100_000})
	b.Logf("Start with 100,000 people: %v", time.Since(start).Round(time.Millisecond))
	return s
}

// BenchmarkPagedInChain100k reads the whole sync group of corp (about
// 68,000 users, nested groups) with KeyDesk's filter, its 16 attributes
// and pages of 1000, over LDAPS with go-ldap.
func BenchmarkPagedInChain100k(b *testing.B) {
	s := bench100k(b)
	d := s.Domain("corp")
	c := admin(b, s, d)
	req := ldap.NewSearchRequest(d.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(&(objectClass=user)(!(objectClass=computer))(memberOf:1.2.840.113556.1.4.1941:="+ldap.EscapeFilter(d.SyncGroupDN)+"))",
		ldapsync.UserAttributes, nil)
	n := 0
	b.ResetTimer()
	for b.Loop() {
		res, err := c.SearchWithPaging(req, 1000)
		if err != nil {
			b.Fatal(err)
		}
		n += len(res.Entries)
		req.Controls = nil
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "users/s")
	b.ReportMetric(float64(n/b.N), "users/op")
}

// BenchmarkKeyDeskFullRead100k is KeyDesk's full read of corp (members
// with attributes, then the password group) through ldapsync.
func BenchmarkKeyDeskFullRead100k(b *testing.B) {
	s := bench100k(b)
	d := s.Domain("corp")
	conn, err := ldapsync.Dial(context.Background(), keydeskDomain(d, config.TLSModeLDAPS, 1000), d.AdminPassword)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	n := 0
	b.ResetTimer()
	for b.Loop() {
		snap, err := conn.ReadMembers(context.Background(), ldapsync.ReadOptions{Full: true})
		if err != nil {
			b.Fatal(err)
		}
		n += snap.MemberCount()
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "users/s")
}

// BenchmarkMembershipRead100k is the membership-only read of an
// incremental sync (objectGUID and uSNChanged of every member).
func BenchmarkMembershipRead100k(b *testing.B) {
	s := bench100k(b)
	d := s.Domain("corp")
	c := admin(b, s, d)
	req := ldap.NewSearchRequest(d.BaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
		"(&(objectClass=user)(!(objectClass=computer))(memberOf:1.2.840.113556.1.4.1941:="+ldap.EscapeFilter(d.SyncGroupDN)+"))",
		[]string{"objectGUID", "uSNChanged"}, nil)
	n := 0
	b.ResetTimer()
	for b.Loop() {
		res, err := c.SearchWithPaging(req, 1000)
		if err != nil {
			b.Fatal(err)
		}
		n += len(res.Entries)
		req.Controls = nil
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "users/s")
}
