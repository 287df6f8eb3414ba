package app

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Defaults of the scheduler: the lease that makes one process of those
// sharing a database the scheduler (renewed every third of its time, so
// another process takes over within a minute of the holder's end), and how
// often the due rotations are looked for.
const (
	defaultLeaseTTL      = 45 * time.Second
	defaultRotationEvery = time.Minute
)

// RunScheduler runs KeyDesk's periodic work until ctx ends: every
// configured domain is synced periodically (the configured interval plus a
// random jitter; at once when it was never synced, or its last success is
// older than the interval; a domain being synced by a person is not synced
// twice), the password rotations that fall due are carried out, and the
// invitations in the outbox are sent (and retried).
// Several processes may share one database: a lease makes exactly one of
// them the scheduler; the others wait, and one takes over within a minute
// when it stops. On ctx's end the step of a password change in flight
// finishes, then the scheduler stops and gives up its lease.
func (s *Service) RunScheduler(ctx context.Context) {
	holder := s.holder
	ttl := s.leaseTTL
	for {
		held, err := s.takeLease(ctx, schedulerLease, ttl)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("scheduler lease", "err", err)
		}
		if held {
			s.log.Info("this process is the scheduler", "holder", holder)
			s.lead(ctx, holder)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(ttl / 3):
		}
	}
}

// lead runs the scheduler's work while this process holds the lease.
func (s *Service) lead(ctx context.Context, holder string) {
	lctx, lost := context.WithCancel(ctx)
	defer lost()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer lost()
		t := time.NewTicker(s.leaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-lctx.Done():
				return
			case <-t.C:
			}
			held, err := s.st.TakeLease(context.WithoutCancel(lctx), schedulerLease, holder, s.leaseTTL)
			if err != nil || !held {
				s.log.Warn("the scheduler lease was lost", "err", err)
				return
			}
		}
	}()
	for _, d := range s.cfg.Domains {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.scheduleDomain(lctx, d.Name)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.rotationLoop(lctx)
	}()
	if s.cfg.Mail.Configured() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.mailLoop(lctx)
		}()
	}
	wg.Wait()
	if err := s.st.ReleaseLease(context.WithoutCancel(ctx), schedulerLease, holder); err != nil {
		s.log.Warn("release the scheduler lease", "err", err)
	}
}

// rotationLoop looks for due rotations at once and then periodically.
func (s *Service) rotationLoop(ctx context.Context) {
	for {
		if _, err := s.rotateDue(ctx, rotationActor, ""); err != nil && ctx.Err() == nil {
			s.log.Warn("scheduled rotations", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.rotationEvery):
		}
	}
}

// mailLoop sends the outbox: at once, when a message is put in it, when
// the next retry is due, and at least every rotationEvery (another process
// may have put one in).
func (s *Service) mailLoop(ctx context.Context) {
	wake := s.mailWake()
	for {
		rep, err := s.DeliverMail(ctx, mailActor)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("sending invitations", "err", err)
		}
		wait := s.rotationEvery
		if rep.Pending > 0 {
			if _, next, err := s.st.PendingMail(ctx); err == nil && next != nil {
				wait = min(wait, max(time.Until(*next), time.Second))
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-time.After(wait):
		}
	}
}

// holderID names this process (and this service in it) in the leases:
// "HOST pid PID NAMESPACE (RANDOM)", the namespace being the process's pid
// namespace (containers that share a host name have their own).
func holderID() string {
	host, _ := os.Hostname()
	var b [4]byte
	crand.Read(b[:])
	return fmt.Sprintf("%s pid %d %s (%x)", host, os.Getpid(), pidNamespace(), b)
}

// pidNamespace names this process's pid namespace ("-" when unknown).
func pidNamespace() string {
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil || strings.ContainsAny(ns, " ()") {
		return "-"
	}
	return ns
}

// takeLease takes lease name for this process. A lease whose holder is a
// process of this machine that no longer runs (killed, crashed) is taken
// over at once instead of after its time: a KeyDesk started after a crash
// carries on at once what the dead one held.
func (s *Service) takeLease(ctx context.Context, name string, ttl time.Duration) (bool, error) {
	held, err := s.st.TakeLease(ctx, name, s.holder, ttl)
	if held || err != nil {
		return held, err
	}
	holder, _, err := s.st.LeaseHolder(ctx, name)
	if err != nil || !deadHere(holder) {
		return false, err
	}
	s.log.Info("taking over a lease from a process that no longer runs", "lease", name, "holder", holder)
	if err := s.st.ReleaseLease(ctx, name, holder); err != nil {
		return false, err
	}
	return s.st.TakeLease(ctx, name, s.holder, ttl)
}

// deadHere reports whether a lease holder is a process of this machine
// (and of this pid namespace) that no longer runs. Anything it cannot tell
// counts as alive.
func deadHere(holder string) bool {
	var host, ns, rest string
	var pid int
	if n, _ := fmt.Sscanf(holder, "%s pid %d %s %s", &host, &pid, &ns, &rest); n != 4 || pid <= 0 {
		return false
	}
	if me, _ := os.Hostname(); host != me || pid == os.Getpid() || ns == "-" || ns != pidNamespace() {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	return errors.Is(p.Signal(syscall.Signal(0)), os.ErrProcessDone)
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
	resync := s.resyncCh(domain)
	for {
		s.setNext(domain, next)
		timer := time.NewTimer(max(0, next.Sub(s.now())))
		select {
		case <-ctx.Done():
			timer.Stop()
			s.setNext(domain, time.Time{})
			return
		case <-resync:
			// A person synced the domain: its timer starts again.
			timer.Stop()
			next = s.now().Add(interval + jitter())
			continue
		case <-timer.C:
		}
		s.setNext(domain, time.Time{})
		if _, err := s.Sync(ctx, SyncRequest{Actor: schedulerActor, Domains: []string{domain}, Trigger: "schedule"}); err != nil {
			s.log.Warn("scheduled sync", "domain", domain, "err", err)
		}
		next = s.now().Add(interval + jitter())
	}
}

// resyncCh is the channel that tells the domain's timer a person synced
// it.
func (s *Service) resyncCh(domain string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.resync == nil {
		s.resync = map[string]chan struct{}{}
	}
	ch, ok := s.resync[domain]
	if !ok {
		ch = make(chan struct{}, 1)
		s.resync[domain] = ch
	}
	return ch
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
