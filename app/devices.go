package app

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"keydesk/keys"
	"keydesk/keys/device"
	"keydesk/keys/proto"
	"keydesk/store"
)

// Plug is a key connected somewhere (package device).
type Plug = device.Plug

// PlaceLocal is this machine (package device).
const PlaceLocal = device.PlaceLocal

// KeyPlugged is sent when a key is connected or disconnected, only to the
// watchers attached to the key's place.
type KeyPlugged struct {
	Serial    string
	Kind      string
	Place     string
	PluggedIn bool
	Status    string // the key's status in the inventory after KeyDesk handled it
}

// KeyProblem is sent, to the watchers attached to the place, when a key
// plugged in there could not be handled.
type KeyProblem struct {
	PlugID string
	Place  string
	Err    string
}

func (KeyPlugged) event() {}
func (KeyProblem) event() {}

// exchangeTimeout bounds one conversation with a key.
const exchangeTimeout = 15 * time.Second

// devices tracks the keys plugged in now.
type devices struct {
	mu       sync.Mutex
	bySerial map[string]Plug
	serialOf map[string]string // Plug.ID -> serial
}

func (d *devices) plugged(serial string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.bySerial[serial]
	return ok
}

func (d *devices) get(serial string) (Plug, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	p, ok := d.bySerial[serial]
	return p, ok
}

// add records a plugged key; a second connection reporting a serial that is
// already plugged in elsewhere is refused: one of the two is not what it
// says.
func (d *devices) add(serial string, p Plug) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.bySerial == nil {
		d.bySerial, d.serialOf = map[string]Plug{}, map[string]string{}
	}
	if old, ok := d.bySerial[serial]; ok && old.ID != p.ID {
		return fmt.Errorf("%s key %s reports serial %s, which the key at %s has: ignored (unplug both and plug in one)", p.Kind, p.ID, serial, old.ID)
	}
	d.bySerial[serial], d.serialOf[p.ID] = p, serial
	return nil
}

func (d *devices) remove(id string) (string, Plug, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	serial, ok := d.serialOf[id]
	if !ok {
		return "", Plug{}, false
	}
	p := d.bySerial[serial]
	delete(d.serialOf, id)
	delete(d.bySerial, serial)
	return serial, p, true
}

// PluggedKeys lists the serials of the keys plugged in now.
func (s *Service) PluggedKeys() []string {
	s.devices.mu.Lock()
	defer s.devices.mu.Unlock()
	out := make([]string, 0, len(s.devices.bySerial))
	for serial := range s.devices.bySerial {
		out = append(out, serial)
	}
	sort.Strings(out)
	return out
}

// withDevice opens a connection to a plugged key for one conversation.
func (s *Service) withDevice(ctx context.Context, serial string, fn func(ctx context.Context, d *proto.Device) error) error {
	p, ok := s.devices.get(serial)
	if !ok {
		return fmt.Errorf("key %s: %w: plug it in first", serial, ErrNotPluggedIn)
	}
	ctx, cancel := context.WithTimeout(ctx, exchangeTimeout)
	defer cancel()
	t, err := p.Open()
	if err != nil {
		return fmt.Errorf("open key %s: %w", serial, err)
	}
	d, err := proto.Open(ctx, t)
	if err != nil {
		t.Close()
		return fmt.Errorf("talk to key %s: %w", serial, err)
	}
	defer d.Close()
	return fn(ctx, d)
}

// KeyConnected handles a key that was just plugged in: it reads the key's
// INFO, registers an unknown key as Ready, wipes a Deactivated key (which
// then returns to Ready), and notes a key whose own PIN locked it. A key
// that cannot be handled is also reported to the watchers of its place
// (KeyProblem).
func (s *Service) KeyConnected(ctx context.Context, p Plug) (string, error) {
	serial, err := s.keyConnected(ctx, p)
	if err != nil {
		s.publish(KeyProblem{PlugID: p.ID, Place: p.Place, Err: err.Error()})
	}
	return serial, err
}

func (s *Service) keyConnected(ctx context.Context, p Plug) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, exchangeTimeout)
	defer cancel()
	t, err := p.Open()
	if err != nil {
		return "", fmt.Errorf("open %s key %s: %w", p.Kind, p.ID, err)
	}
	d, err := proto.Open(ctx, t)
	if err != nil {
		t.Close()
		return "", fmt.Errorf("talk to %s key %s: %w", p.Kind, p.ID, err)
	}
	info, err := d.Info(ctx)
	d.Close()
	if err != nil {
		return "", fmt.Errorf("read %s key %s: %w", p.Kind, p.ID, err)
	}
	serial, err := normalizeSerial(info.Serial)
	if err != nil {
		return "", fmt.Errorf("%s key %s reports a bad serial: %w", p.Kind, p.ID, err)
	}
	if err := s.devices.add(serial, p); err != nil {
		return "", err
	}
	status, err := s.onPlugged(ctx, serial, info)
	s.publish(KeyPlugged{Serial: serial, Kind: p.Kind, Place: p.Place, PluggedIn: true, Status: status})
	s.publish(DataChanged{What: ChangedKeys | ChangedEmployees | ChangedAudit})
	return serial, err
}

// KeyDisconnected handles a key that was unplugged (by its Plug.ID).
func (s *Service) KeyDisconnected(id string) {
	if serial, p, ok := s.devices.remove(id); ok {
		s.publish(KeyPlugged{Serial: serial, Kind: p.Kind, Place: p.Place, PluggedIn: false})
		s.publish(DataChanged{What: ChangedKeys})
	}
}

func (s *Service) onPlugged(ctx context.Context, serial string, info proto.Info) (string, error) {
	var status string
	var wipe, resume bool
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		k, err := tx.KeyBySerial(ctx, serial)
		switch {
		case errors.Is(err, store.ErrNotFound):
			k = &store.Key{Serial: serial, Status: string(keys.StatusReady), Model: info.Model, Firmware: info.Firmware}
			if err := tx.InsertKey(ctx, k); err != nil {
				return err
			}
			if err := s.audit(ctx, tx, systemActor, "key.register", keyTarget(serial), store.OutcomeSuccess,
				map[string]any{"model": info.Model, "firmware": info.Firmware, "state": string(info.State)}); err != nil {
				return err
			}
		case err != nil:
			return err
		case k.Model != info.Model || k.Firmware != info.Firmware:
			k.Model, k.Firmware = info.Model, info.Firmware
			if err := tx.SetKeyModel(ctx, serial, info.Model, info.Firmware); err != nil {
				return err
			}
		}
		if err := tx.TouchKeySeen(ctx, serial, tx.Now()); err != nil {
			return err
		}
		if keys.Status(k.Status) == keys.StatusActive && info.State == proto.StateLocked {
			if _, err := s.transition(ctx, tx, systemActor, k, keyChange{action: keys.ActionPINLock}); err != nil {
				return err
			}
		}
		status = k.Status
		wipe = keys.Status(k.Status) == keys.StatusDeactivated
		if keys.Status(k.Status) == keys.StatusReserved {
			p, err := tx.Activation(ctx, k.ID)
			resume = p != nil
			return err
		}
		return nil
	})
	if err == nil && resume && s.master != nil {
		// An activation was cut off (a crash, the key pulled out): finish it
		// if its code was accepted recently enough.
		res, err := s.activate(ctx, systemActor, serial, nil)
		if res.Activated {
			return string(keys.StatusActive), nil
		}
		return status, err
	}
	if err != nil || !wipe {
		return status, err
	}
	if err := s.wipeKey(ctx, serial, info); err != nil {
		return status, err
	}
	return string(keys.StatusReady), nil
}

// wipeKey wipes a Deactivated key that is plugged in and returns it to
// Ready. The device is wiped first; only then the inventory changes, so an
// unplug in between leaves a Deactivated key that is wiped next time.
func (s *Service) wipeKey(ctx context.Context, serial string, info proto.Info) error {
	k, err := s.st.KeyBySerial(ctx, serial)
	if err != nil {
		return err
	}
	if info.State != proto.StateBlank {
		mk, err := s.masterKey(ctx, nil)
		if err != nil {
			return err
		}
		if len(k.SecretSealed) == 0 {
			return fmt.Errorf("key %s: KeyDesk no longer holds its secret, so it cannot wipe it", serial)
		}
		secret, err := mk.Open(k.SecretSealed, keys.SecretBinding(k.ID, k.Serial))
		if err != nil {
			return fmt.Errorf("key %s: open its secret: %w", serial, err)
		}
		defer clear(secret)
		err = s.withDevice(ctx, serial, func(ctx context.Context, d *proto.Device) error {
			sess, err := d.Auth(ctx, secret)
			if err != nil {
				return fmt.Errorf("authenticate to key %s: %w", serial, err)
			}
			return sess.Wipe(ctx)
		})
		if err != nil {
			return fmt.Errorf("wipe key %s: %w", serial, err)
		}
	}
	return s.st.Update(ctx, func(tx *store.Tx) error {
		k, err := tx.KeyBySerial(ctx, serial)
		if err != nil {
			return err
		}
		if keys.Status(k.Status) != keys.StatusDeactivated {
			return nil // someone else handled it meanwhile
		}
		_, err = s.transition(ctx, tx, systemActor, k, keyChange{action: keys.ActionWipe})
		return err
	})
}

// KeyContents is what a plugged-in key says it holds, read through the
// protocol with KeyDesk's secret for it (no passwords).
type KeyContents struct {
	Info  proto.Info
	Slots []proto.SlotInfo // empty unless the key holds KeyDesk's secret
	Owned bool             // the key proved it holds KeyDesk's secret
}

// InspectKey reads a plugged-in key's INFO and, when KeyDesk holds its
// secret, the list of its credential slots (logins only).
func (s *Service) InspectKey(ctx context.Context, a Actor, serial string) (KeyContents, error) {
	var out KeyContents
	if err := s.authorize(ctx, a, PermKeyInspect, keyTarget(serial)); err != nil {
		return out, err
	}
	var secret []byte
	if k, err := s.st.KeyBySerial(ctx, serial); err == nil && len(k.SecretSealed) > 0 && s.master != nil {
		mk, err := s.masterKey(ctx, nil)
		if err != nil {
			return out, err
		}
		if secret, err = mk.Open(k.SecretSealed, keys.SecretBinding(k.ID, k.Serial)); err != nil {
			return out, fmt.Errorf("key %s: open its secret: %w", serial, err)
		}
		defer clear(secret)
	}
	err := s.withDevice(ctx, serial, func(ctx context.Context, d *proto.Device) error {
		info, err := d.Info(ctx)
		if err != nil {
			return err
		}
		out.Info = info
		if secret == nil || info.State == proto.StateBlank {
			return nil
		}
		sess, err := d.Auth(ctx, secret)
		if err != nil {
			return nil // not KeyDesk's secret: INFO is all there is to show
		}
		defer sess.Close()
		out.Owned = true
		out.Slots, err = sess.List(ctx)
		return err
	})
	return out, err
}
