// Package app is KeyDesk's application layer: the operations that cross
// packages (syncing domains into the database, managing employees), where
// permissions are checked and the audit log is written. The command line,
// the console and the SSH server all call it; it calls ldapsync and store.
package app

import (
	"io"
	"log/slog"
	"sync"
	"time"

	"keydesk/config"
	"keydesk/keys"
	"keydesk/store"
)

// Service is the application layer over one configuration and database.
type Service struct {
	cfg *config.Config
	st  *store.Store
	log *slog.Logger
	now func() time.Time

	mu       sync.Mutex
	running  map[string]bool          // domains being synced
	schedule map[string]time.Time     // next scheduled sync per domain
	resync   map[string]chan struct{} // a domain synced by a person: its timer restarts
	writeMu  sync.Mutex               // one sync write at a time
	events   bus
	own      ownEntries // audit entries this process wrote, for WatchChanges

	master    *keys.MasterKey // seals key secrets; nil: key operations that need it fail
	vault     dbKeys          // the database's own keys, opened
	headFile  string          // the audit head kept outside the database ("" = none)
	auditSink func(store.AuditEntry)
	makers    *keys.Makers  // the key makers whose attestations KeyDesk trusts
	devices   devices       // keys plugged in now
	rot       rotationState // the rotation scheduler's policies and backoff
	simulated SimulatedKeys // nil: no simulated keys here
	mail      mailState     // the invitations' mail sender and templates

	// journalHook, when set, runs after each step of a password change is
	// recorded and after each effect on the key or AD; an error stops the
	// drive on the spot, as a crash would.
	journalHook func(change int64, step string) error

	holder        string        // this process, in the leases
	leaseTTL      time.Duration // the scheduler lease
	rotationEvery time.Duration // how often due rotations are looked for
}

// Option configures a Service.
type Option func(*Service)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithMasterKey sets the master key that seals the keys' secrets and keys
// the activation-code hashes.
func WithMasterKey(k keys.MasterKey) Option { return func(s *Service) { s.master = &k } }

// WithAuditHead keeps the newest audit entry in this file too (outside the
// database, next to the master key), so that a log cut off is noticed.
func WithAuditHead(path string) Option { return func(s *Service) { s.headFile = path } }

// WithAuditSink gives every committed audit entry to fn as well (the system
// log).
func WithAuditSink(fn func(store.AuditEntry)) Option { return func(s *Service) { s.auditSink = fn } }

// WithSimulatedKeys gives the service simulated keys that operators may
// create and plug in and out (the demo's, or --sim-keys DIR).
func WithSimulatedKeys(k SimulatedKeys) Option { return func(s *Service) { s.simulated = k } }

// WithJournalHook runs fn after each recorded step of a password change
// (step is its name) and after each effect before its step is recorded
// ("key-written", "ad-sent", "key-committed"); an error from fn stops the
// change there, as if the process had died (tests inject crashes with it).
func WithJournalHook(fn func(change int64, step string) error) Option {
	return func(s *Service) { s.journalHook = fn }
}

// WithSchedule sets the scheduler lease's time (another process takes over
// within it and a third of it) and how often due rotations are looked for
// (defaults 45 s and 1 min; tests shorten them).
func WithSchedule(leaseTTL, rotationEvery time.Duration) Option {
	return func(s *Service) { s.leaseTTL, s.rotationEvery = leaseTTL, rotationEvery }
}

// WithClock sets the clock (tests).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// New builds the service.
func New(cfg *config.Config, st *store.Store, opts ...Option) *Service {
	s := &Service{cfg: cfg, st: st, log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: time.Now, running: map[string]bool{}, schedule: map[string]time.Time{},
		leaseTTL: defaultLeaseTTL, rotationEvery: defaultRotationEvery}
	for _, o := range opts {
		o(s)
	}
	s.holder = holderID()
	return s
}

// claim marks a domain as being synced; false if it already is.
func (s *Service) claim(domain string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running[domain] {
		return false
	}
	s.running[domain] = true
	return true
}

func (s *Service) release(domain string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.running, domain)
}

// AnnounceStop tells every watcher that KeyDesk stops in d (the server's
// sessions show it).
func (s *Service) AnnounceStop(d time.Duration) { s.publish(Stopping{In: d}) }
