// Package bench holds Go benchmarks of whole KeyDesk operations in one process, so that they
// can be profiled (-memprofile, -cpuprofile); bench/run measures the same operations as
// separate processes. Nothing here runs without -bench.
//
//	go test ./bench -run '^$' -bench SyncBuiltin -benchtime 1x -memprofile mem.out
//	go tool pprof -sample_index=alloc_space -top mem.out
//
// With KEYDESK_BENCH_PEAK_PROFILE=FILE, BenchmarkSyncBuiltin also writes a heap profile to
// FILE.<sync> each time the heap passes its highest point so far by 10%: what the sync holds at
// its peak (go tool pprof -sample_index=inuse_space -top FILE.full).
package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync/atomic"
	"testing"
	"time"

	"keydesk/app"
	"keydesk/config"
	"keydesk/internal/builtinad"
	"keydesk/keys"
	"keydesk/store"
)

var admin = app.Actor{Name: "bench:admin", Role: app.RoleAdmin}

// BenchmarkSyncBuiltin syncs the built-in directory (two domains) into a fresh database, then
// again incrementally with nothing changed, then with --full, at 10,000 and 100,000 people. It
// reports the peak Go heap (sampled every 10 ms) each kind of sync adds to what the process held
// before it (the directory lives in this process too).
func BenchmarkSyncBuiltin(b *testing.B) {
	for _, n := range []int{10000, 100000} {
		b.Run(fmt.Sprintf("%dk", n/1000), func(b *testing.B) {
			ctx := context.Background()
			srv, err := builtinad.Start(ctx, builtinad.Options{Users: n, Seed: 1})
			if err != nil {
				b.Fatal(err)
			}
			defer srv.Close()
			for _, step := range []struct {
				name string
				req  app.SyncRequest
				warm bool // sync once before measuring
			}{
				{"first", app.SyncRequest{Actor: admin}, false},
				{"incremental", app.SyncRequest{Actor: admin}, true},
				{"full", app.SyncRequest{Actor: admin, Full: true}, true},
			} {
				b.Run(step.name, func(b *testing.B) {
					var peak, added uint64
					for b.Loop() {
						b.StopTimer()
						s := newService(ctx, b, srv)
						if step.warm {
							if _, err := s.Sync(ctx, app.SyncRequest{Actor: admin}); err != nil {
								b.Fatal(err)
							}
						}
						runtime.GC()
						var ms runtime.MemStats
						runtime.ReadMemStats(&ms)
						peak = ms.HeapAlloc
						stop := samplePeak(&peak, os.Getenv("KEYDESK_BENCH_PEAK_PROFILE"), step.name)
						b.StartTimer()
						rep, err := s.Sync(ctx, step.req)
						b.StopTimer()
						stop()
						added = max(added, peak-ms.HeapAlloc)
						if err != nil {
							b.Fatal(err)
						}
						for _, d := range rep.Domains {
							if !d.OK {
								b.Fatalf("sync of %s failed: %+v", d.Domain, d)
							}
						}
						b.StartTimer()
					}
					b.ReportMetric(float64(added)/(1<<20), "peak-heap-MB")
				})
			}
		})
	}
}

// newService opens a fresh database in a temporary folder with a configuration for srv's domains.
func newService(ctx context.Context, b *testing.B, srv *builtinad.Server) *app.Service {
	b.Helper()
	dir := b.TempDir()
	text := "[sync]\ninterval = \"1h\"\n\n"
	for _, d := range srv.Domains() {
		pw := filepath.Join(dir, d.Name+".pw")
		if err := os.WriteFile(pw, []byte(d.AdminPassword), 0o600); err != nil {
			b.Fatal(err)
		}
		text += fmt.Sprintf("[[domain]]\nname = %q\nurls = [%q]\nbase_dn = %q\nbind_dn = %q\nbind_password_file = %q\nca_file = %q\ntimeout = \"10m\"\n\n",
			d.Name, d.LDAPSURL, d.BaseDN, d.AdminUPN, pw, srv.CAFile())
	}
	cfg, err := config.Parse(filepath.Join(dir, "keydesk.toml"), []byte(text))
	if err != nil {
		b.Fatalf("configuration: %v", err)
	}
	st, err := store.Open(ctx, filepath.Join(dir, store.FileName))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	var mk keys.MasterKey
	rand.Read(mk[:])
	return app.New(cfg, st, app.WithMasterKey(mk))
}

// samplePeak raises *peak to the largest HeapAlloc seen until the returned stop is called; with
// a profile path, it writes a heap profile to profile.name at each new peak 10% above the last.
func samplePeak(peak *uint64, profile, name string) (stop func()) {
	var done atomic.Bool
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		var ms runtime.MemStats
		written := *peak
		for !done.Load() {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > *peak {
				*peak = ms.HeapAlloc
			}
			if profile != "" && ms.HeapAlloc > written+written/10 {
				written = ms.HeapAlloc
				if f, err := os.Create(profile + "." + name); err == nil {
					pprof.WriteHeapProfile(f)
					f.Close()
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return func() { done.Store(true); <-finished }
}
