package app

import (
	"context"
	"errors"
	"fmt"

	"keydesk/store"
)

// SimulatedKeys creates simulated keys and plugs them in and out: a test and
// demo aid (package simkey's Dir is one). The keys it plugs in reach the
// service as any key does, through device.Sink.
type SimulatedKeys interface {
	New() (serial string, err error)
	// NewClaiming makes a clone: a key that claims serial claimed, with an
	// attestation of its own naming its own serial (returned).
	NewClaiming(claimed string) (serial string, err error)
	SetPlugged(serial string, in bool) error
}

// errNoSimulatedKeys says how to get simulated keys.
var errNoSimulatedKeys = errors.New("no simulated keys here: start KeyDesk with --sim-keys DIR, or use keydesk demo")

// NewSimulatedKey creates a blank simulated key; its watcher plugs it in,
// and KeyDesk registers it as Ready. With claim != "" it is a clone that
// claims that serial (a test aid: KeyDesk refuses it as unverified).
func (s *Service) NewSimulatedKey(ctx context.Context, a Actor, claim string) (string, error) {
	if err := s.authorize(ctx, a, PermKeyAdd, "keys:simulated"); err != nil {
		return "", err
	}
	if s.simulated == nil {
		return "", errNoSimulatedKeys
	}
	newKey := s.simulated.New
	if claim != "" {
		if _, err := normalizeSerial(claim); err != nil {
			return "", err
		}
		newKey = func() (string, error) { return s.simulated.NewClaiming(claim) }
	}
	serial, err := newKey()
	if err != nil {
		return "", fmt.Errorf("new simulated key: %w", err)
	}
	s.log.Info("simulated key created", "serial", serial, "claims", claim, "actor", a.Name)
	details := map[string]any{}
	if claim != "" {
		details["claims"] = claim
	}
	if err := s.st.Update(ctx, func(tx *store.Tx) error {
		return s.audit(ctx, tx, a, "key.simulate", keyTarget(serial), store.OutcomeSuccess, details)
	}); err != nil {
		return serial, err
	}
	s.publish(DataChanged{What: ChangedAudit})
	return serial, nil
}

// SetSimulatedKeyPlugged plugs a simulated key in or out.
func (s *Service) SetSimulatedKeyPlugged(ctx context.Context, a Actor, serial string, in bool) error {
	if err := s.authorize(ctx, a, PermKeyAdd, keyTarget(serial)); err != nil {
		return err
	}
	if s.simulated == nil {
		return errNoSimulatedKeys
	}
	if _, err := normalizeSerial(serial); err != nil {
		return err
	}
	return s.simulated.SetPlugged(serial, in)
}

// HasSimulatedKeys reports whether this service has simulated keys to plug.
func (s *Service) HasSimulatedKeys() bool { return s.simulated != nil }
