package app

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"keydesk/internal/adtest"
	"keydesk/ldapsync"
)

// BenchmarkRotationSamba measures scheduled rotations against a real Samba
// DC with the default concurrency (4): 100 accounts, each with an active
// simulated key plugged in, all due; one iteration rotates them all (policy
// read, key session with attestation, WRITE, the AD reset, COMMIT, five
// journal steps committed with synchronous=FULL, an audit entry each). As
// the floor, ldapmodify replaces unicodePwd on the same 100 accounts, one
// after another on one connection, in the same run.
//
//	go test -run x -bench RotationSamba -benchtime 5x ./app
func BenchmarkRotationSamba(b *testing.B) {
	adtest.Require(b)
	const n = 100
	ctx := context.Background()
	p := newPWDomain(b, "PWBENCH.KEYDESK.TEST", "")
	dns, keys := p.managedUsers(b, "rb", n)

	b.Run("keydesk", func(b *testing.B) {
		days := 0
		for b.Loop() {
			days += 30 // each iteration: everything is due again
			d := time.Duration(days) * 24 * time.Hour
			s := p.service(b, WithClock(func() time.Time { return time.Now().Add(d) }))
			for i := range n {
				plugSim(b, s, keys[i])
			}
			start := time.Now()
			rs, err := s.RotateDue(ctx, testAdmin, "")
			if err != nil {
				b.Fatal(err)
			}
			done := 0
			for _, r := range rs {
				if r.Done() {
					done++
				}
			}
			if done != n {
				b.Fatalf("%d of %d rotations done", done, n)
			}
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "rotations/s")
		}
	})
	b.Run("ldapmodify-floor", func(b *testing.B) {
		if _, err := exec.LookPath("ldapmodify"); err != nil {
			b.Skip("ldapmodify is not installed (ldap-utils)")
		}
		for i := 0; b.Loop(); i++ {
			var ldif strings.Builder
			for j, dn := range dns {
				fmt.Fprintf(&ldif, "dn: %s\nchangetype: modify\nreplace: unicodePwd\nunicodePwd:: %s\n-\n\n", dn,
					base64.StdEncoding.EncodeToString([]byte(ldapsync.EncodePassword(fmt.Sprintf("Floor-%d-Passw0rd-%d!", i, j)))))
			}
			f := filepath.Join(b.TempDir(), "rotate.ldif")
			if err := os.WriteFile(f, []byte(ldif.String()), 0o600); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			cmd := exec.Command("ldapmodify", "-H", p.dc.LDAPSURL, "-x", "-D", p.dc.AdminUPN, "-w", p.dc.AdminPassword, "-f", f)
			cmd.Env = append(os.Environ(), "LDAPTLS_CACERT="+p.dc.CAFile)
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("ldapmodify: %v\n%s", err, out)
			}
			b.ReportMetric(float64(n)/time.Since(start).Seconds(), "rotations/s")
		}
	})
}
