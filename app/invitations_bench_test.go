package app

import (
	"context"
	"fmt"
	"testing"

	"keydesk/internal/smtpsink"
	"keydesk/ldapsync"
)

// BenchmarkSyncThatInvites is a first sync of n people into a domain with
// invitations on: the merge and write, and an invitation (code, hash,
// sealed code, outbox row) for each, in one transaction; per person.
func BenchmarkSyncThatInvites(b *testing.B) {
	const n = 2000
	users := make([]ldapsync.User, n)
	for i := range users {
		users[i] = user("corp", i, fmt.Sprintf("u%05d", i), fmt.Sprintf("u%05d@example.com", i), fmt.Sprintf("User %d", i))
	}
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		m := newMailDomainB(b)
		s := m.service(b)
		b.StartTimer()
		if sum := apply(b, s, "corp", full(users...), nil, false); sum.Invited != n {
			b.Fatalf("invited %d", sum.Invited)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n)/1e6, "ms/person")
}

// BenchmarkDeliverMail sends invitations to a real SMTP server on
// loopback (no TLS: the cost of KeyDesk's side, one connection each).
func BenchmarkDeliverMail(b *testing.B) {
	const n = 200
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		m := newMailDomainB(b)
		s := m.service(b)
		users := make([]ldapsync.User, n)
		for i := range users {
			users[i] = user("corp", i, fmt.Sprintf("u%05d", i), fmt.Sprintf("u%05d@example.com", i), "User")
		}
		apply(b, s, "corp", full(users...), nil, false)
		b.StartTimer()
		rep, err := s.DeliverMail(ctx, testHelpdesk)
		if err != nil || rep.Sent != n {
			b.Fatalf("%+v %v", rep, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n)/1e6, "ms/message")
}

// newMailDomainB is a mail domain (corp with invitations on) whose sink
// takes mail without TLS, for benchmarks.
func newMailDomainB(b *testing.B) *mailDomain {
	sink, err := smtpsink.Start(smtpsink.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sink.Close() })
	conf := fmt.Sprintf("[mail]\nhost = %q\nport = %d\nsecurity = \"none\"\nfrom = \"k@example.com\"\n\n[[domain]]\nname = \"corp\"\nurls = [\"ldaps://dc.corp.test:636\"]\nbase_dn = \"DC=corp,DC=test\"\nbind_dn = \"svc@corp.test\"\nbind_password_env = \"UNUSED_PW\"\n[domain.invitations]\nenabled = true\n",
		sink.Host(), sink.Port())
	return &mailDomain{sink: sink, conf: conf, dir: b.TempDir()}
}
