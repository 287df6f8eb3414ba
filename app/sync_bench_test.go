package app

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"keydesk/internal/adtest"
)

// BenchmarkSyncSamba measures whole syncs (read from a real Samba DC, merge,
// write to SQLite) of a domain with 5,000 members, full and incremental, in
// users per second; and, as the floor, ldapsearch reading the same members
// with the same in-chain filter and paging.
//
//	go test -run x -bench SyncSamba -benchtime 5x ./app
func BenchmarkSyncSamba(b *testing.B) {
	adtest.Require(b)
	const n = 5000
	ctx := context.Background()
	dc, err := adtest.Start(ctx, adtest.Options{Realm: "BENCH.KEYDESK.TEST"})
	if err != nil {
		b.Fatal(err)
	}
	defer dc.Close()
	group, err := dc.AddGroup(ctx, "Hideez Users Sync", "")
	if err != nil {
		b.Fatal(err)
	}
	us := make([]adtest.User, n)
	for i := range us {
		us[i] = adtest.User{Sam: fmt.Sprintf("b%05d", i), DisplayName: fmt.Sprintf("Bench User %05d", i), Mail: fmt.Sprintf("b%05d@example.com", i),
			NoPassword: true, Extra: map[string][]string{"department": {"Dept " + fmt.Sprint(i%40)}, "title": {"Engineer"}}}
	}
	dns, err := dc.AddUsers(ctx, us)
	if err != nil {
		b.Fatal(err)
	}
	if err := dc.AddMembers(ctx, group, dns...); err != nil {
		b.Fatal(err)
	}
	d := &adDomain{dc: sambaDir{dc}, name: "bench"}
	b.Setenv("KD_BENCH_PW", dc.AdminPassword)
	cfg := d.configBlock(b, "KD_BENCH_PW")

	b.Run("full", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			s := serviceFor(b, cfg, b.TempDir())
			b.StartTimer()
			rep, err := s.Sync(ctx, SyncRequest{Actor: testAdmin})
			if err != nil || !rep.Domains[0].OK || rep.Domains[0].Added != n {
				b.Fatalf("sync: %v %+v", err, rep)
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "users/s")
	})
	b.Run("incremental-unchanged", func(b *testing.B) {
		s := serviceFor(b, cfg, b.TempDir())
		if _, err := s.Sync(ctx, SyncRequest{Actor: testAdmin}); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			rep, err := s.Sync(ctx, SyncRequest{Actor: testAdmin})
			if err != nil || rep.Domains[0].Mode != "incremental" || rep.Domains[0].Unchanged != n {
				b.Fatalf("sync: %v %+v", err, rep)
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "users/s")
	})
	b.Run("ldapsearch-floor", func(b *testing.B) {
		if _, err := exec.LookPath("ldapsearch"); err != nil {
			b.Skip("ldapsearch is not installed (ldap-utils)")
		}
		filter := "(&(objectClass=user)(!(objectClass=computer))(memberOf:1.2.840.113556.1.4.1941:=" + group + "))"
		for i := 0; i < b.N; i++ {
			cmd := exec.Command("ldapsearch", "-LLL", "-H", dc.LDAPSURL, "-x", "-D", dc.AdminUPN, "-w", dc.AdminPassword,
				"-b", dc.BaseDN, "-E", "pr=1000/noprompt", filter,
				"objectGUID", "objectSid", "sAMAccountName", "userPrincipalName", "mail", "givenName", "sn", "displayName", "department",
				"title", "company", "telephoneNumber", "userAccountControl", "pwdLastSet", "distinguishedName", "uSNChanged")
			cmd.Env = append(os.Environ(), "LDAPTLS_CACERT="+dc.CAFile)
			out, err := cmd.Output()
			if err != nil {
				b.Fatalf("ldapsearch: %v", err)
			}
			if got := strings.Count(string(out), "\ndn: ") + 1; got < n {
				b.Fatalf("ldapsearch returned %d entries", got)
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "users/s")
	})
}
