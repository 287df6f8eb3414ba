package app

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// RunScheduler syncs every configured domain periodically (the configured
// interval plus a random jitter) until ctx ends. A domain never synced, or
// whose last success is older than the interval, is synced at once. A
// domain already being synced (by a person, say) is not synced twice: that
// run is skipped and the next one planned.
func (s *Service) RunScheduler(ctx context.Context) {
	var wg sync.WaitGroup
	for _, d := range s.cfg.Domains {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.scheduleDomain(ctx, d.Name)
		}()
	}
	wg.Wait()
}

func (s *Service) scheduleDomain(ctx context.Context, domain string) {
	seed := uint64(s.now().UnixNano())
	for _, c := range domain {
		seed = seed*31 + uint64(c)
	}
	rng := rand.New(rand.NewPCG(seed, uint64(len(domain))))
	jitter := func() time.Duration {
		if j := s.cfg.Sync.Jitter.Duration; j > 0 {
			return time.Duration(rng.Int64N(int64(j)))
		}
		return 0
	}
	interval := s.cfg.Sync.Interval.Duration
	next := s.now()
	if st, err := s.st.SyncState(ctx, domain); err == nil && st.LastSuccessAt != nil {
		if due := st.LastSuccessAt.Add(interval); due.After(next) {
			next = due.Add(jitter())
		}
	}
	for {
		s.setNext(domain, next)
		timer := time.NewTimer(max(0, next.Sub(s.now())))
		select {
		case <-ctx.Done():
			timer.Stop()
			s.setNext(domain, time.Time{})
			return
		case <-timer.C:
		}
		s.setNext(domain, time.Time{})
		if _, err := s.Sync(ctx, SyncRequest{Actor: schedulerActor, Domains: []string{domain}, Trigger: "schedule"}); err != nil {
			s.log.Warn("scheduled sync", "domain", domain, "err", err)
		}
		next = s.now().Add(interval + jitter())
	}
}

func (s *Service) setNext(domain string, t time.Time) {
	s.mu.Lock()
	if t.IsZero() {
		delete(s.schedule, domain)
	} else {
		s.schedule[domain] = t
	}
	s.mu.Unlock()
	s.publish(ScheduleChanged{Domain: domain, Next: t})
}

// NextSync is when the scheduler will next sync the domain (zero when it
// is not scheduled: no scheduler, or a sync running now).
func (s *Service) NextSync(domain string) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.schedule[domain]
}
