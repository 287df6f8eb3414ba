package app

import (
	"context"
	"errors"
	"fmt"

	"keydesk/store"
)

// A kiosk (role kiosk) serves only the key plugged in at it: its actor
// carries its place, and every operation it may run (activation, a
// person's own password change, reading the key at hand) checks that the
// key is plugged in there, whatever the caller.

// ErrNotHere: a kiosk asked about a key that is not plugged in at it.
var ErrNotHere = errors.New("a kiosk serves only the key plugged in at it")

// atTheKiosk refuses a kiosk actor a key that is not plugged in at its
// place (with an audit entry); other actors pass.
func (s *Service) atTheKiosk(ctx context.Context, a Actor, serial string) error {
	if a.Role != RoleKiosk {
		return nil
	}
	if p, ok := s.devices.get(serial); ok && a.Place != "" && p.Place == a.Place {
		return nil
	}
	err := fmt.Errorf("key %s: %w", serial, ErrNotHere)
	ctx = context.WithoutCancel(ctx)
	if aerr := s.st.Update(ctx, func(tx *store.Tx) error {
		return s.audit(ctx, tx, a, "kiosk.refused", keyTarget(serial), store.OutcomeFailure, map[string]any{"place": a.Place})
	}); aerr != nil {
		s.log.Error("audit a kiosk's refusal", "err", aerr)
	}
	return err
}

// KeyAtHand is the plugged-in key an activation or a person's own change
// is about: its status and owner (needs key.activate; a kiosk gets only
// the key plugged in at it).
func (s *Service) KeyAtHand(ctx context.Context, a Actor, serial string) (KeyView, error) {
	if err := s.authorize(ctx, a, PermKeyActivate, keyTarget(serial)); err != nil {
		return KeyView{}, err
	}
	if err := s.atTheKiosk(ctx, a, serial); err != nil {
		return KeyView{}, err
	}
	return s.keyBySerial(ctx, serial)
}

// PluggedAt lists the serials of the keys plugged in at place.
func (s *Service) PluggedAt(place string) []string {
	s.devices.mu.Lock()
	defer s.devices.mu.Unlock()
	var out []string
	for serial, p := range s.devices.bySerial {
		if p.Place == place {
			out = append(out, serial)
		}
	}
	return out
}
