// Package app is KeyDesk's application layer: the operations that cross
// packages (syncing domains into the database, managing employees), where
// permissions are checked and the audit log is written. The command line,
// the console and the SSH server all call it; it calls ldapsync and store.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"keydesk/config"
	"keydesk/keys"
	"keydesk/store"
)

// Role is what an actor may do.
type Role string

// Roles, from most to least powerful.
const (
	RoleAdmin    Role = "admin"    // everything
	RoleHelpdesk Role = "helpdesk" // read, sync, key handling
	RoleViewer   Role = "viewer"   // read only
)

// Actor is who asks for an operation; it is written to the audit log.
type Actor struct {
	Name string
	Role Role
}

// String is the actor as the audit log records it.
func (a Actor) String() string { return a.Name }

// ErrPermission is returned when an actor's role does not allow an operation.
var ErrPermission = errors.New("permission denied")

// permissions lists which roles may do each operation.
var permissions = map[string][]Role{
	"sync":            {RoleAdmin, RoleHelpdesk},
	"sync.allow":      {RoleAdmin},
	"key.add":         {RoleAdmin, RoleHelpdesk},
	"key.assign":      {RoleAdmin},
	"key.manage":      {RoleAdmin},
	"key.activate":    {RoleAdmin, RoleHelpdesk},
	"employee.add":    {RoleAdmin},
	"employee.remove": {RoleAdmin},
	"read":            {RoleAdmin, RoleHelpdesk, RoleViewer},
}

func authorize(a Actor, op string) error {
	for _, r := range permissions[op] {
		if a.Role == r {
			return nil
		}
	}
	return fmt.Errorf("%s (role %s) may not %s: %w", a.Name, a.Role, op, ErrPermission)
}

// Service is the application layer over one configuration and database.
type Service struct {
	cfg *config.Config
	st  *store.Store
	log *slog.Logger
	now func() time.Time

	mu       sync.Mutex
	running  map[string]bool      // domains being synced
	schedule map[string]time.Time // next scheduled sync per domain
	writeMu  sync.Mutex           // one sync write at a time
	events   bus

	master  *keys.MasterKey // seals key secrets; nil: key operations that need it fail
	devices devices         // keys plugged in now
	simDir  string          // simulated keys' directory ("" = none)
}

// Option configures a Service.
type Option func(*Service)

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithMasterKey sets the master key that seals the keys' secrets and keys
// the activation-code hashes.
func WithMasterKey(k keys.MasterKey) Option { return func(s *Service) { s.master = &k } }

// WithSimulatedKeys names the directory of simulated keys that the console
// may create and plug in and out (the demo's, or --sim-keys).
func WithSimulatedKeys(dir string) Option { return func(s *Service) { s.simDir = dir } }

// WithClock sets the clock (tests).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// New builds the service.
func New(cfg *config.Config, st *store.Store, opts ...Option) *Service {
	s := &Service{cfg: cfg, st: st, log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: time.Now, running: map[string]bool{}, schedule: map[string]time.Time{}}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Config is the service's configuration.
func (s *Service) Config() *config.Config { return s.cfg }

// Store is the service's database (read access for views).
func (s *Service) Store() *store.Store { return s.st }

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

// Running lists the domains being synced now.
func (s *Service) Running() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for d := range s.running {
		out = append(out, d)
	}
	return out
}

func (s *Service) audit(ctx context.Context, tx *store.Tx, a Actor, action, target, outcome string, details map[string]any) error {
	_, err := tx.AppendAudit(ctx, store.AuditEntry{Actor: a.String(), Action: action, Target: target, Outcome: outcome, Details: details})
	return err
}
