package app

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"keydesk/config"
	"keydesk/internal/builtinad"
	"keydesk/store"
)

// builtinService is a service over both domains of a built-in directory.
func builtinService(t *testing.T, users int, syncSection string) (*Service, *builtinad.Server) {
	t.Helper()
	srv, err := builtinad.Start(context.Background(), builtinad.Options{Users: users})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cfgText := syncSection
	for _, d := range srv.Domains() {
		env := "KD_SCHED_PW_" + d.Name
		t.Setenv(env, d.AdminPassword)
		cfgText += fmt.Sprintf("[[domain]]\nname = %q\nurls = [%q]\nbase_dn = %q\nbind_dn = %q\nbind_password_env = %q\nca_file = %q\n\n",
			d.Name, d.LDAPSURL, d.BaseDN, d.AdminUPN, env, srv.CAFile())
	}
	dir := t.TempDir()
	cfg, err := config.Parse(filepath.Join(dir, "k.toml"), []byte(cfgText))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), filepath.Join(dir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return New(cfg, st), srv
}

func TestSchedulerSyncsDueDomainsAndPlansTheNext(t *testing.T) {
	s, _ := builtinService(t, 200, "[sync]\ninterval = \"1h\"\njitter = \"10m\"\n\n")
	events, cancelSub := s.Subscribe(SubscribeOptions{})
	defer cancelSub()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.RunScheduler(ctx) }()

	finished := map[string]DomainSummary{}
	for len(finished) < 2 {
		if e, ok := recv(t, events).(SyncFinished); ok {
			finished[e.Domain] = e.Summary
		}
	}
	for d, sum := range finished {
		if !sum.OK || sum.Members == 0 {
			t.Errorf("scheduled sync of %s: %+v", d, sum)
		}
	}
	// The next run is an interval (plus at most the jitter) away.
	deadline := time.Now().Add(5 * time.Second)
	for _, d := range []string{"corp", "branch"} {
		var next time.Time
		for next.IsZero() && time.Now().Before(deadline) {
			next = s.NextSync(d)
			time.Sleep(10 * time.Millisecond)
		}
		if in := time.Until(next); in < 59*time.Minute || in > 70*time.Minute {
			t.Errorf("%s: next sync in %s, want between 1h and 1h10m", d, in)
		}
	}
	// A manual sync while the scheduler waits is fine; one during a run of
	// the same domain is refused rather than run twice.
	if rep, err := s.Sync(ctx, SyncRequest{Actor: testAdmin}); err != nil || len(rep.Failed()) != 0 {
		t.Errorf("manual sync beside the scheduler: %v %+v", err, rep)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RunScheduler did not return after its context ended")
	}
	if !s.NextSync("corp").IsZero() {
		t.Error("a stopped scheduler still announces a next sync")
	}
}

func TestSchedulerWaitsForRecentSync(t *testing.T) {
	s, _ := builtinService(t, 50, "[sync]\ninterval = \"1h\"\njitter = \"0s\"\n\n")
	if _, err := s.Sync(context.Background(), SyncRequest{Actor: testAdmin}); err != nil {
		t.Fatal(err)
	}
	events, cancelSub := s.Subscribe(SubscribeOptions{})
	defer cancelSub()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.RunScheduler(ctx)
	for {
		if e, ok := recv(t, events).(ScheduleChanged); ok && e.Domain == "corp" && !e.Next.IsZero() {
			if in := time.Until(e.Next); in < 59*time.Minute {
				t.Fatalf("a domain synced just now is scheduled again in %s", in)
			}
			return
		}
	}
}

func TestConcurrentSyncOfOneDomainIsRefused(t *testing.T) {
	s, _ := builtinService(t, 2000, "")
	results := make(chan DomainSummary, 2)
	for i := 0; i < 2; i++ {
		go func() {
			rep, _ := s.Sync(context.Background(), SyncRequest{Actor: testAdmin, Domains: []string{"corp"}})
			results <- rep.Domains[0]
		}()
	}
	a, b := <-results, <-results
	if a.OK == b.OK {
		// Both may succeed only if they did not overlap; then the second
		// found nothing new.
		if !a.OK || (a.Added != 0 && b.Added != 0) {
			t.Errorf("two syncs of one domain both wrote: %+v / %+v", a, b)
		}
		return
	}
	failed := a
	if a.OK {
		failed = b
	}
	if failed.Error == "" || !errors.Is(failed.Err, ErrSyncRunning) {
		t.Errorf("the refused sync says %q", failed.Error)
	}
}

func TestDeadHere(t *testing.T) {
	host, _ := os.Hostname()
	ns := pidNamespace()
	if ns == "-" {
		t.Skip("no pid namespace to read here (/proc/self/ns/pid)")
	}
	done := exec.Command("true")
	if err := done.Run(); err != nil {
		t.Skipf("cannot run a process to see it end: %v", err)
	}
	ended := done.Process.Pid
	for holder, want := range map[string]bool{
		fmt.Sprintf("%s pid %d %s (ab12)", host, ended, ns):        true,  // ended
		fmt.Sprintf("%s pid %d %s (ab12)", host, os.Getpid(), ns):  false, // this process
		fmt.Sprintf("%s pid %d %s (ab12)", host, os.Getppid(), ns): false, // running
		fmt.Sprintf("elsewhere pid %d %s (ab12)", ended, ns):       false, // another machine: cannot tell
		fmt.Sprintf("%s pid %d pid:[1] (ab12)", host, ended):       false, // another container
		fmt.Sprintf("%s pid %d - (ab12)", host, ended):             false, // namespace unknown
		holderID(): false,
		"garbage":  false,
		"":         false,
	} {
		if got := deadHere(holder); got != want {
			t.Errorf("deadHere(%q) = %v, want %v", holder, got, want)
		}
	}
}

// A person's sync of a domain restarts its timer: the next periodic sync
// is an interval after it, not after the scheduler's last one.
func TestAManualSyncRestartsTheDomainsTimer(t *testing.T) {
	s, _ := builtinService(t, 50, "[sync]\ninterval = \"1h\"\njitter = \"0s\"\n\n")
	var offset atomic.Int64
	s.now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.RunScheduler(ctx)
	waitNext := func(domain string, after time.Time) time.Time {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if n := s.NextSync(domain); n.After(after) {
				return n
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("no next sync of %s after %s", domain, after)
		return time.Time{}
	}
	// Both domains synced by the scheduler, and waiting.
	first, branch := waitNext("corp", time.Time{}), waitNext("branch", time.Time{})
	// Half an hour later a person syncs corp.
	offset.Store(int64(30 * time.Minute))
	if rep, err := s.Sync(ctx, SyncRequest{Actor: testAdmin, Domains: []string{"corp"}}); err != nil || len(rep.Failed()) != 0 {
		t.Fatal(err, rep)
	}
	next := waitNext("corp", first)
	if d := next.Sub(first); d < 29*time.Minute || d > 31*time.Minute {
		t.Errorf("after a manual sync half an hour on, the next sync moved by %s, want 30m", d)
	}
	if n := s.NextSync("branch"); !n.Equal(branch) {
		t.Errorf("branch's timer moved too, by %s", n.Sub(branch))
	}
}

// The Domains pane and a sync's summary count a domain's members alike.
func TestMembersCountedAlike(t *testing.T) {
	s, _ := builtinService(t, 300, "")
	rep, err := s.Sync(context.Background(), SyncRequest{Actor: testAdmin})
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.DomainStatuses(context.Background(), testAdmin)
	if err != nil {
		t.Fatal(err)
	}
	for _, sum := range rep.Domains {
		for _, d := range st {
			if d.Name == sum.Domain && d.Members != sum.Members {
				t.Errorf("%s: the sync says %d members, the Domains pane %d", d.Name, sum.Members, d.Members)
			}
		}
	}
}

// TestIncrementalFollowsChurn: after rounds of changes, an incremental
// sync has followed them all (a full read then changes nothing) and
// counts the members as the full read does. When only people's own
// entries change (emails, names, disables), it reads and merges only them
// (a Partial snapshot).
func TestIncrementalFollowsChurn(t *testing.T) {
	for _, tt := range []struct {
		name     string
		churn    func(*builtinad.Server, *rand.Rand) string
		perRound int
		partial  bool // at most perRound members read
	}{
		{"random changes", (*builtinad.Server).Churn, 30, false},
		{"people's own entries", (*builtinad.Server).ChurnPeople, 40, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, srv := builtinService(t, 600, "")
			ctx := context.Background()
			req := SyncRequest{Actor: testAdmin, AllowRemovals: true}
			if rep, err := s.Sync(ctx, req); err != nil || len(rep.Failed()) > 0 {
				t.Fatalf("first sync: %v %+v", err, rep)
			}
			rng := rand.New(rand.NewPCG(7, 13))
			for round := range 4 {
				var changes []string
				for range tt.perRound {
					changes = append(changes, tt.churn(srv, rng))
				}
				inc, err := s.Sync(ctx, req)
				if err != nil || len(inc.Failed()) > 0 {
					t.Fatalf("round %d: incremental sync: %v %+v", round, err, inc)
				}
				full := req
				full.Full = true
				rep, err := s.Sync(ctx, full)
				if err != nil || len(rep.Failed()) > 0 {
					t.Fatalf("round %d: full sync: %v %+v", round, err, rep)
				}
				fetched := 0
				for i, d := range inc.Domains {
					f := rep.Domains[i]
					fetched += d.Fetched
					if d.Mode != "incremental" || tt.partial && d.Fetched > tt.perRound {
						t.Errorf("round %d: %s synced %s (%s), %d members read; want incremental", round, d.Domain, d.Mode, d.FullReason, d.Fetched)
					}
					if f.Added+f.Updated+f.Merged+f.Removed+f.Held != 0 {
						t.Errorf("round %d: the full read after the incremental one changed %s: +%d ~%d merged %d -%d held %d; the changes:\n%s",
							round, f.Domain, f.Added, f.Updated, f.Merged, f.Removed, f.Held, strings.Join(changes, "\n"))
					}
					if d.Members != f.Members || d.PasswordRotation != f.PasswordRotation || d.Added+d.Updated+d.Unchanged != f.Unchanged {
						t.Errorf("round %d: %s: the incremental sync counted %d members, %d in the password group, %d+%d+%d read or kept; the full read %d, %d, %d",
							round, d.Domain, d.Members, d.PasswordRotation, d.Added, d.Updated, d.Unchanged, f.Members, f.PasswordRotation, f.Unchanged)
					}
				}
				if fetched == 0 {
					t.Errorf("round %d: %d changes, and no member read", round, tt.perRound)
				}
			}
		})
	}
}
