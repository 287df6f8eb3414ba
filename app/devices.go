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
	mu         sync.Mutex
	bySerial   map[string]Plug
	serialOf   map[string]string           // Plug.ID -> serial
	unverified map[string]unverifiedDevice // by Plug.ID: devices that did not prove their serial
}

func (d *devices) addUnverified(u unverifiedDevice) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.unverified == nil {
		d.unverified = map[string]unverifiedDevice{}
	}
	d.unverified[u.plug.ID] = u
}

// unverifiedList lists the unverified devices plugged in now, by claimed
// serial.
func (d *devices) unverifiedList() []unverifiedDevice {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]unverifiedDevice, 0, len(d.unverified))
	for _, u := range d.unverified {
		out = append(out, u)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].claimed != out[j].claimed {
			return out[i].claimed < out[j].claimed
		}
		return out[i].plug.ID < out[j].plug.ID
	})
	return out
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
	if u, ok := d.unverified[id]; ok {
		delete(d.unverified, id)
		return u.claimed, u.plug, true
	}
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

// withDevice opens a connection to a plugged key for one conversation,
// bounded by exchangeTimeout.
func (s *Service) withDevice(ctx context.Context, serial string, fn func(ctx context.Context, d *proto.Device) error) error {
	return s.withDeviceFor(ctx, serial, exchangeTimeout, fn)
}

// withDeviceFor is withDevice with a conversation of at most timeout.
func (s *Service) withDeviceFor(ctx context.Context, serial string, timeout time.Duration, fn func(ctx context.Context, d *proto.Device) error) error {
	p, ok := s.devices.get(serial)
	if !ok {
		return fmt.Errorf("key %s: %w: plug it in first", serial, ErrNotPluggedIn)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
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

// KeyConnected handles a key that was just plugged in: it asks the device
// to prove who it is (INFO, then ATTEST; see identify). A device that does
// not prove the serial it claims is recorded as an unverified device and
// nothing else happens. A key that does is registered as Ready if it is
// new (its attestation key pinned), and what it reports is recorded; a
// Deactivated key is wiped (returning to Ready), a key whose own PIN locked
// it is marked Locked, and an interrupted activation resumes, each only
// after the device proved it again in the conversation that acts. A key
// that cannot be handled is also reported to the watchers of its place
// (KeyProblem).
func (s *Service) KeyConnected(ctx context.Context, p Plug) (string, error) {
	serial, err := s.keyConnected(ctx, p)
	if err != nil && !errors.Is(err, ErrUnverifiedDevice) { // an unverified device has an event of its own
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
	pr, err := s.identify(ctx, d)
	d.Close()
	if err != nil {
		return "", fmt.Errorf("read %s key %s: %w", p.Kind, p.ID, err)
	}
	if !pr.identity.Trusted() {
		if err := s.recordUnverified(ctx, p, pr); err != nil {
			return pr.claimed, err
		}
		return pr.claimed, &UnverifiedDeviceError{Claimed: pr.claimed, Why: pr.why}
	}
	serial := pr.claimed
	if err := s.devices.add(serial, p); err != nil {
		return "", err
	}
	status, err := s.onPlugged(ctx, serial, pr)
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

// plugFollowUp is what a plugged-in key's report calls for, once recorded.
type plugFollowUp int

const (
	followNothing   plugFollowUp = iota
	followWipe                   // a Deactivated key: wipe it, back to Ready
	followPINLock                // an Active key reports its PIN locked it
	followActivate               // an activation was cut off: resume it
	followPasswords              // an Active key: the password changes that wait for it
)

// plugFollowUpOf decides, from the key's status and what the device
// reported, what to do next. It is pure.
func plugFollowUpOf(status keys.Status, state proto.KeyState, activationUnderWay bool) plugFollowUp {
	switch {
	case status == keys.StatusDeactivated:
		return followWipe
	case status == keys.StatusActive && state == proto.StateLocked:
		return followPINLock
	case status == keys.StatusReserved && activationUnderWay:
		return followActivate
	case status == keys.StatusActive && state == proto.StateLinked:
		return followPasswords
	}
	return followNothing
}

// onPlugged records a device that proved it is key serial: registers a new
// key, pins its attestation key, records what it reports; then carries out
// what that calls for.
func (s *Service) onPlugged(ctx context.Context, serial string, pr proof) (string, error) {
	var status string
	var next plugFollowUp
	info := pr.info
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		k, err := tx.KeyBySerial(ctx, serial)
		details := map[string]any{"model": info.Model, "firmware": info.Firmware, "state": string(pr.state)}
		switch {
		case errors.Is(err, store.ErrNotFound):
			k = &store.Key{Serial: serial, Status: string(keys.StatusReady), Model: info.Model, Firmware: info.Firmware}
			pinAttestation(k, pr, details)
			if err := tx.InsertKey(ctx, k); err != nil {
				return err
			}
			if err := s.audit(ctx, tx, systemActor, "key.register", keyTarget(serial), store.OutcomeSuccess, details); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			if k.Model != info.Model || k.Firmware != info.Firmware {
				k.Model, k.Firmware = info.Model, info.Firmware
				if err := tx.SetKeyModel(ctx, serial, info.Model, info.Firmware); err != nil {
					return err
				}
			}
			if pinAttestation(k, pr, details) {
				if err := tx.UpdateKey(ctx, k); err != nil {
					return err
				}
				if err := s.audit(ctx, tx, systemActor, "key.attestation-pinned", keyTarget(serial), store.OutcomeSuccess, details); err != nil {
					return err
				}
			}
		}
		if err := tx.TouchKeySeen(ctx, serial, tx.Now(), string(pr.state)); err != nil {
			return err
		}
		status = k.Status
		var under bool
		if keys.Status(k.Status) == keys.StatusReserved {
			p, err := tx.Activation(ctx, k.ID)
			if err != nil {
				return err
			}
			under = p != nil
		}
		next = plugFollowUpOf(keys.Status(k.Status), pr.state, under)
		return nil
	})
	if err != nil {
		return status, err
	}
	switch next {
	case followActivate:
		if s.master == nil {
			return status, nil
		}
		// An activation was cut off (a crash, the key pulled out): finish it
		// if its code was accepted recently enough.
		res, err := s.activate(ctx, systemActor, serial, nil)
		if res.Activated {
			return string(keys.StatusActive), nil
		}
		return status, err
	case followWipe:
		if err := s.wipeKey(ctx, serial); err != nil {
			return status, err
		}
		return string(keys.StatusReady), nil
	case followPINLock:
		if err := s.pinLocked(ctx, serial); err != nil {
			return status, err
		}
		return string(keys.StatusLocked), nil
	case followPasswords:
		if s.master == nil {
			return status, nil
		}
		_, err := s.keyPasswords(ctx, serial)
		return status, err
	}
	return status, nil
}

// pinAttestation records on k how the device proved itself, the first
// time: its attestation key (or that it has none, where that is allowed).
// It reports whether k changed.
func pinAttestation(k *store.Key, pr proof, details map[string]any) bool {
	switch pr.identity {
	case keys.IdentityPin:
		k.AttestPub, k.AttestMaker = pr.att.PublicKey, pr.att.Maker
		details["attestation_key"], details["maker"] = keys.AttestationFingerprint(pr.att.PublicKey), pr.att.Maker
		return true
	case keys.IdentityUnattested:
		details["attestation"] = store.AttestUnattested
		if k.AttestMaker == "" {
			k.AttestMaker = store.AttestUnattested
			return true
		}
	}
	return false
}

// keySecrets opens key k's secret and, after an unlock, the previous one
// the device may still hold (nil when none). The caller clears them.
func (s *Service) keySecrets(ctx context.Context, k *store.Key) (cur, prev []byte, err error) {
	mk, err := s.masterKey(ctx, nil)
	if err != nil {
		return nil, nil, err
	}
	binding := keys.SecretBinding(k.ID, k.Serial)
	if k.SecretSealed != nil {
		if cur, err = mk.Open(k.SecretSealed, binding); err != nil {
			return nil, nil, fmt.Errorf("key %s: open its secret: %w", k.Serial, err)
		}
	}
	if k.PrevSecretSealed != nil {
		if prev, err = mk.Open(k.PrevSecretSealed, binding); err != nil {
			clear(cur)
			return nil, nil, fmt.Errorf("key %s: open its previous secret: %w", k.Serial, err)
		}
	}
	return cur, prev, nil
}

// authWithEither opens a session with the first of the secrets the key
// holds; ErrAuth when it holds neither.
func authWithEither(ctx context.Context, d *proto.Device, secrets ...[]byte) (*proto.Session, error) {
	err := fmt.Errorf("KeyDesk holds no secret for it: %w", proto.ErrAuth)
	for _, sec := range secrets {
		if sec == nil {
			continue
		}
		var sess *proto.Session
		if sess, err = d.Auth(ctx, sec); err == nil || !errors.Is(err, proto.ErrAuth) {
			return sess, err
		}
	}
	return nil, err
}

// withProvenKey holds one conversation with plugged-in key k in which the
// device first proves it is k (a fresh attestation: see identify); fn gets
// what it proved and k's secrets (the current one, and the one from before
// an unlock; nil when none), which are cleared afterwards.
func (s *Service) withProvenKey(ctx context.Context, k *store.Key, fn func(ctx context.Context, d *proto.Device, pr proof, cur, prev []byte) error) error {
	return s.withProvenKeyFor(ctx, k, exchangeTimeout, fn)
}

// withProvenKeyFor is withProvenKey with a conversation of at most timeout.
func (s *Service) withProvenKeyFor(ctx context.Context, k *store.Key, timeout time.Duration, fn func(ctx context.Context, d *proto.Device, pr proof, cur, prev []byte) error) error {
	cur, prev, err := s.keySecrets(ctx, k)
	if err != nil {
		return err
	}
	defer clear(cur)
	defer clear(prev)
	return s.withDeviceFor(ctx, k.Serial, timeout, func(ctx context.Context, d *proto.Device) error {
		pr, err := s.identify(ctx, d)
		if err != nil {
			return err
		}
		if err := requireProof(pr, k); err != nil {
			return err
		}
		return fn(ctx, d, pr, cur, prev)
	})
}

// wipeKey wipes a Deactivated key that is plugged in and returns it to
// Ready. In one conversation the device proves it is the key (a fresh
// attestation) and, unless it proved it is blank, proves it holds the key's
// secret (AUTH) and is wiped; only then the inventory changes, so an unplug
// in between leaves a Deactivated key that is wiped next time.
func (s *Service) wipeKey(ctx context.Context, serial string) error {
	k, err := s.st.KeyBySerial(ctx, serial)
	if err != nil {
		return err
	}
	var blankUnproved bool
	err = s.withProvenKey(ctx, k, func(ctx context.Context, d *proto.Device, pr proof, cur, prev []byte) error {
		if pr.state == proto.StateBlank {
			blankUnproved = !pr.attested()
			return nil
		}
		sess, err := authWithEither(ctx, d, cur, prev)
		if err != nil {
			return fmt.Errorf("authenticate to key %s: %w", serial, err)
		}
		return sess.Wipe(ctx)
	})
	if err != nil {
		return fmt.Errorf("wipe key %s: %w", serial, err)
	}
	return s.st.Update(ctx, func(tx *store.Tx) error {
		k, err := tx.KeyBySerial(ctx, serial)
		if err != nil {
			return err
		}
		if keys.Status(k.Status) != keys.StatusDeactivated {
			return nil // someone else handled it meanwhile
		}
		ch := keyChange{action: keys.ActionWipe}
		if blankUnproved {
			ch.note = "the key cannot attest: its report that it is blank was taken on trust (require_attestation = false)"
		}
		_, err = s.transition(ctx, tx, systemActor, k, ch)
		return err
	})
}

// pinLocked handles an Active key that reports its own PIN locked it: in
// one conversation it must prove it is the key (a fresh attestation of its
// locked state) and that it holds the key's secret (AUTH, which a locked key
// still answers); only then is the key recorded Locked.
func (s *Service) pinLocked(ctx context.Context, serial string) error {
	k, err := s.st.KeyBySerial(ctx, serial)
	if err != nil {
		return err
	}
	var lockedBy proto.LockReason
	err = s.withProvenKey(ctx, k, func(ctx context.Context, d *proto.Device, pr proof, cur, _ []byte) error {
		if pr.state != proto.StateLocked {
			return fmt.Errorf("it no longer reports that it is locked (%s)", pr.state)
		}
		lockedBy = pr.lockedBy
		sess, err := authWithEither(ctx, d, cur)
		if err != nil {
			return fmt.Errorf("it reports that it is locked, but does not prove it holds the key's secret: %w", err)
		}
		sess.Close()
		return nil
	})
	if err != nil {
		return fmt.Errorf("key %s: nothing changed: %w", serial, err)
	}
	return s.st.Update(ctx, func(tx *store.Tx) error {
		cur, err := tx.KeyBySerial(ctx, serial)
		if err != nil {
			return err
		}
		if cur.Version != k.Version || keys.Status(cur.Status) != keys.StatusActive {
			return nil // changed meanwhile: the operator's decision stands
		}
		_, err = s.transition(ctx, tx, systemActor, cur, keyChange{action: keys.ActionPINLock, note: "locked by: " + string(lockedBy)})
		return err
	})
}

// KeyContents is what a plugged-in key says it holds, read through the
// protocol with KeyDesk's secret for it (no passwords).
type KeyContents struct {
	Info  proto.Info
	Slots []proto.SlotInfo // empty unless the key holds KeyDesk's secret
	Owned bool             // the key proved it holds KeyDesk's secret
	// Identity is how the device proved its serial (keys.Identity); Why
	// says why not, for an unverified device; Maker and AttestationKey name
	// the attestation it proved it with.
	Identity       string
	Why            string
	Maker          string
	AttestationKey string
}

// InspectKey reads a plugged-in key's INFO and attestation and, when it
// proved it is the key and KeyDesk holds its secret, the list of its
// credential slots (logins only).
func (s *Service) InspectKey(ctx context.Context, a Actor, serial string) (KeyContents, error) {
	var out KeyContents
	if err := s.authorize(ctx, a, PermKeyInspect, keyTarget(serial)); err != nil {
		return out, err
	}
	var secret []byte
	if k, err := s.st.KeyBySerial(ctx, serial); err == nil && len(k.SecretSealed) > 0 && s.master != nil {
		if secret, _, err = s.keySecrets(ctx, k); err != nil {
			return out, err
		}
		defer clear(secret)
	}
	err := s.withDevice(ctx, serial, func(ctx context.Context, d *proto.Device) error {
		pr, err := s.identify(ctx, d)
		if err != nil {
			return err
		}
		out.Info, out.Identity, out.Why = pr.info, string(pr.identity), pr.why
		if pr.attested() {
			out.Maker, out.AttestationKey = pr.att.Maker, keys.AttestationFingerprint(pr.att.PublicKey)
		}
		if secret == nil || pr.state == proto.StateBlank || !pr.identity.Trusted() {
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
