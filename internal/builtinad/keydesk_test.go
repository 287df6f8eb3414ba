package builtinad

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"keydesk/config"
	"keydesk/ldapsync"
)

// keydeskDomain is the configuration KeyDesk would have for d.
func keydeskDomain(d *Domain, tlsMode string, pageSize int) config.Domain {
	url := d.LDAPSURL
	if tlsMode == config.TLSModeStartTLS {
		url = d.LDAPURL
	}
	return config.Domain{
		Name: d.Name, URLs: []string{url}, BaseDN: d.BaseDN, BindDN: d.AdminUPN, BindPasswordEnv: "KEYDESK_TEST_BUILTINAD_PW",
		CAFile: d.CAFile, TLS: tlsMode, PageSize: pageSize,
		ConnectTimeout: config.Duration{Duration: 5 * time.Second}, Timeout: config.Duration{Duration: 30 * time.Second},
		SyncGroup: config.DefaultSyncGroup, PasswordGroup: config.DefaultPasswordGroup,
	}
}

// TestKeyDeskClient runs KeyDesk's own AD client against the built-in
// directory: connect, RootDSE, a full read, an incremental read, Classify.
func TestKeyDeskClient(t *testing.T) {
	s := startT(t, Options{})
	ctx := context.Background()
	for _, tt := range []struct {
		domain, tls string
		pageSize    int
	}{
		{"corp", config.TLSModeLDAPS, 50},
		{"branch", config.TLSModeStartTLS, 1000},
	} {
		t.Run(tt.domain+" over "+tt.tls, func(t *testing.T) {
			d := s.Domain(tt.domain)
			conn, err := ldapsync.Dial(ctx, keydeskDomain(d, tt.tls, tt.pageSize), d.AdminPassword)
			mustNoErr(t, err)
			defer conn.Close()
			rd := conn.RootDSE
			if rd.InvocationID == "" || rd.DSServiceName == "" || rd.HighestCommittedUSN != d.HighestCommittedUSN() ||
				rd.DefaultNamingContext != d.BaseDN || !rd.Supports(ldapsync.OIDPolicyHints) || !rd.Supports(ldapsync.OIDPagedResults) {
				t.Fatalf("RootDSE %+v", rd)
			}

			snap, err := conn.ReadMembers(ctx, ldapsync.ReadOptions{})
			mustNoErr(t, err)
			g := d.gen
			if !snap.Full || snap.MemberCount() != len(g.syncUsers) || len(snap.PasswordGUIDs) != len(g.pwUsers) {
				t.Fatalf("full read: full=%v, %d members, %d in the password group; the generator put %d and %d",
					snap.Full, snap.MemberCount(), len(snap.PasswordGUIDs), len(g.syncUsers), len(g.pwUsers))
			}
			wantPages := (len(g.syncUsers) + tt.pageSize - 1) / tt.pageSize
			if snap.Pages < wantPages {
				t.Errorf("%d pages, want at least %d", snap.Pages, wantPages)
			}
			bySam := map[string]ldapsync.User{}
			for _, u := range snap.Fetched {
				bySam[strings.ToLower(u.SAMAccountName)] = u
				if !g.syncUsers[strings.ToLower(u.SAMAccountName)] {
					t.Errorf("%s was read as a member", u.SAMAccountName)
				}
				if !strings.HasPrefix(u.ObjectSID, "S-1-5-21-") || u.UserPrincipalName == "" || u.PwdLastSet == nil || u.USNChanged == 0 {
					t.Errorf("member %+v lacks attributes", u)
				}
			}
			for _, sam := range g.disabled {
				if u, ok := bySam[strings.ToLower(sam)]; g.syncUsers[strings.ToLower(sam)] && (!ok || !u.Disabled) {
					t.Errorf("disabled member %s: read %v, disabled=%v", sam, ok, u.Disabled)
				}
			}
			for _, sam := range g.outsiders {
				if _, ok := bySam[strings.ToLower(sam)]; ok {
					t.Errorf("outsider %s was read", sam)
				}
			}
			if g.syncComputer == "" {
				t.Error("no workstation in the sync group")
			} else if _, ok := bySam[strings.ToLower(g.syncComputer)]; ok {
				t.Error("the workstation in the sync group was read as a member")
			}
			if tt.domain == "corp" {
				for _, sam := range g.escapes {
					if u := bySam[sam]; !strings.ContainsAny(u.DisplayName, "\x1b\u202e") {
						t.Errorf("%s: display name %q lost its escape", sam, u.DisplayName)
					}
				}
			}

			// Changes, then an incremental read.
			var direct []string
			for sam := range g.directSync {
				direct = append(direct, sam)
			}
			slices.Sort(direct)
			if len(direct) < 3 {
				t.Fatalf("only %d direct members", len(direct))
			}
			leaver, deleted, changed := bySam[direct[0]], bySam[direct[1]], bySam[direct[2]]
			mustNoErr(t, d.RemoveMembers(ctx, d.SyncGroupDN, leaver.DN))
			mustNoErr(t, d.Delete(ctx, deleted.DN))
			mustNoErr(t, d.Modify(ctx, changed.DN, map[string][]string{"mail": {"changed@example.com"}}))
			newDN := mustDN(t)(d.AddUser(ctx, User{Sam: "newcomer", DisplayName: "New Comer", Mail: "new.comer@example.com", NoPassword: true}))
			mustNoErr(t, d.AddMembers(ctx, d.SyncGroupDN, newDN))

			conn2, err := ldapsync.Dial(ctx, keydeskDomain(d, tt.tls, tt.pageSize), d.AdminPassword)
			mustNoErr(t, err)
			defer conn2.Close()
			known := map[string]bool{}
			for _, u := range snap.Fetched {
				known[u.ObjectGUID] = true
			}
			inc, err := conn2.ReadMembers(ctx, ldapsync.ReadOptions{Previous: &snap.Mark, Known: known, Graph: snap.Graph})
			mustNoErr(t, err)
			var fetched []string
			for _, u := range inc.Fetched {
				fetched = append(fetched, strings.ToLower(u.SAMAccountName))
			}
			slices.Sort(fetched)
			if inc.Full || !slices.Equal(fetched, []string{strings.ToLower(changed.SAMAccountName), "newcomer"}) || inc.MemberCount() != len(g.syncUsers)-1 {
				t.Fatalf("incremental read: full=%v (%s), fetched %q, %d members", inc.Full, inc.FullReason, fetched, inc.MemberCount())
			}
			reasons, err := conn2.Classify(ctx, []string{leaver.ObjectGUID, deleted.ObjectGUID, "00000000-0000-0000-0000-000000000001"})
			mustNoErr(t, err)
			if reasons[leaver.ObjectGUID] != ldapsync.ReasonLeftGroup || reasons[deleted.ObjectGUID] != ldapsync.ReasonDeleted ||
				reasons["00000000-0000-0000-0000-000000000001"] != ldapsync.ReasonDeleted {
				t.Errorf("Classify: %v", reasons)
			}
		})
	}

	t.Run("a new start is a new invocationId: full read", func(t *testing.T) {
		d := s.Domain("corp")
		conn, err := ldapsync.Dial(ctx, keydeskDomain(d, config.TLSModeLDAPS, 1000), d.AdminPassword)
		mustNoErr(t, err)
		defer conn.Close()
		s2 := startT(t, Options{})
		d2 := s2.Domain("corp")
		conn2, err := ldapsync.Dial(ctx, keydeskDomain(d2, config.TLSModeLDAPS, 1000), d2.AdminPassword)
		mustNoErr(t, err)
		defer conn2.Close()
		mark := ldapsync.Mark{DSADN: conn.RootDSE.DSServiceName, InvocationID: conn.RootDSE.InvocationID, HighestUSN: 1}
		snap, err := conn2.ReadMembers(ctx, ldapsync.ReadOptions{Previous: &mark})
		mustNoErr(t, err)
		if !snap.Full || !strings.Contains(snap.FullReason, "invocationId") {
			t.Errorf("full=%v reason %q", snap.Full, snap.FullReason)
		}
	})

	t.Run("KeyDesk's diagnosis passes", func(t *testing.T) {
		d := s.Domain("branch")
		t.Setenv("KEYDESK_TEST_BUILTINAD_PW", d.AdminPassword)
		for _, c := range ldapsync.Diagnose(ctx, keydeskDomain(d, config.TLSModeLDAPS, 1000)) {
			if c.Status == ldapsync.CheckFail || c.Status == ldapsync.CheckWarn && c.Name != "bind password" {
				t.Errorf("check %s: %s: %s", c.Name, c.Status, c.Detail)
			}
		}
	})

	t.Run("KeyDesk explains the refusals", func(t *testing.T) {
		d := s.Domain("corp")
		_, err := ldapsync.Dial(ctx, keydeskDomain(d, config.TLSModeLDAPS, 1000), "Wrong-Passw0rd")
		var be *ldapsync.BindError
		if !errors.As(err, &be) || be.DataCode != "52e" || !strings.Contains(ldapsync.Explain(err), "wrong password") {
			t.Errorf("wrong password: %v", err)
		}
		plain := keydeskDomain(d, config.TLSModeNone, 1000)
		plain.URLs = []string{d.LDAPURL}
		_, err = ldapsync.Dial(ctx, plain, d.AdminPassword)
		if !ldap.IsErrorWithCode(err, ldap.LDAPResultStrongAuthRequired) || !strings.Contains(ldapsync.Explain(err), "encrypted connection") {
			t.Errorf("plain LDAP: %v", err)
		}
	})
}
