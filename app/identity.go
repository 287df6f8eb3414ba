package app

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"keydesk/keys"
	"keydesk/keys/proto"
	"keydesk/store"
)

// A device is who it proves it is. When a key is plugged in, and again at
// the start of every conversation that may change the key's record, KeyDesk
// asks the device for INFO and then ATTEST over a fresh nonce, verifies the
// attestation chain against the trusted makers and the attestation key
// pinned on the key's row (keys.DecideIdentity), and believes the device's
// serial and state only then. A device that does not prove the serial it
// claims is an unverified device: it is shown and audited as such, and
// nothing about the key with that serial changes.

// StatusUnverifiedDevice is the status of a KeyView that is not a key of
// the inventory but a plugged-in device that claims a serial it does not
// prove.
const StatusUnverifiedDevice = "unverified-device"

// WithTrustedMakers sets the key makers' CAs whose attestations prove a
// key's serial ([keys] trusted_makers, and the simulation maker of the demo
// and --sim-keys).
func WithTrustedMakers(m *keys.Makers) Option { return func(s *Service) { s.makers = m } }

// WithTrustedMaker adds one maker CA (the simulated keys' maker).
func WithTrustedMaker(ca *x509.Certificate) Option {
	return func(s *Service) {
		if s.makers == nil {
			s.makers = keys.NewMakers()
		}
		s.makers.Add(ca)
	}
}

// UnverifiedDeviceError is a plugged-in device that did not prove the
// serial it claims.
type UnverifiedDeviceError struct {
	Claimed string
	Why     string
}

func (e *UnverifiedDeviceError) Error() string {
	return fmt.Sprintf("a device claiming serial %s did not prove it: %s; it is shown as an unverified device and nothing about key %s changed", e.Claimed, e.Why, e.Claimed)
}

// ErrUnverifiedDevice is wrapped by every refusal of a device that did not
// prove who it is.
var ErrUnverifiedDevice = errors.New("the device did not prove who it is")

func (e *UnverifiedDeviceError) Unwrap() error { return ErrUnverifiedDevice }

// proof is what a device proved about itself in one conversation.
type proof struct {
	info     proto.Info
	claimed  string           // the serial it claims (normalised)
	state    proto.KeyState   // its state: signed when it attested
	lockedBy proto.LockReason // why it is locked, if it is
	identity keys.Identity
	why      string // when unverified
	att      keys.Attested
}

// attested reports whether the device's statements are signed.
func (p proof) attested() bool { return p.att.PublicKey != nil }

// requireAttestation is [keys] require_attestation.
func (s *Service) requireAttestation() bool { return s.cfg.Keys.AttestationRequired() }

func (s *Service) trustedMakers() *keys.Makers {
	if s.makers == nil {
		return keys.NewMakers()
	}
	return s.makers
}

// identify asks d who it is (INFO, then ATTEST over a fresh nonce) and
// decides, against the trusted makers and the attestation key pinned on the
// row of the serial it claims, whether it is that key.
func (s *Service) identify(ctx context.Context, d *proto.Device) (proof, error) {
	var p proof
	info, err := d.Info(ctx)
	if err != nil {
		return p, err
	}
	p.info = info
	if p.claimed, err = normalizeSerial(info.Serial); err != nil {
		return p, fmt.Errorf("the key reports a bad serial: %w", err)
	}
	p.state, p.lockedBy = info.State, info.LockedBy
	st, ev, err := d.Attest(ctx)
	if err != nil {
		return p, err
	}
	var pinned []byte
	switch k, err := s.st.KeyBySerial(ctx, p.claimed); {
	case err == nil:
		pinned = k.AttestPub
	case !errors.Is(err, store.ErrNotFound):
		return p, err
	}
	facts := keys.IdentityFacts{Claimed: p.claimed, Pinned: pinned, RequireAttestation: s.requireAttestation()}
	if ev.Missing() {
		facts.Attest = keys.ErrNoAttestation
	} else {
		facts.Att, facts.Attest = s.trustedMakers().Verify(ev.Chain, ev.Message, ev.Signature, s.now())
	}
	p.identity, p.why = keys.DecideIdentity(facts)
	if p.identity.Trusted() && !ev.Missing() {
		if st.Serial != info.Serial {
			p.identity, p.why = keys.IdentityUnverified, fmt.Sprintf("its INFO says serial %s but it signs serial %s", p.claimed, st.Serial)
		}
		p.att, p.state, p.lockedBy = facts.Att, st.State, st.LockedBy // what it signed, not what it said
	}
	return p, nil
}

// requireProof returns an error unless the device proved it is key k.
func requireProof(p proof, k *store.Key) error {
	switch {
	case !p.identity.Trusted():
		return &UnverifiedDeviceError{Claimed: p.claimed, Why: p.why}
	case !strings.EqualFold(p.claimed, k.Serial):
		return &UnverifiedDeviceError{Claimed: p.claimed, Why: "it is not key " + k.Serial}
	case p.identity == keys.IdentityUnattested && k.AttestPub != nil:
		return &UnverifiedDeviceError{Claimed: p.claimed, Why: "it cannot attest, but the key has an attestation key pinned"}
	}
	return nil
}

// linkCheck is what LINK's evidence must show for key k: signatures by the
// attestation key pinned on k, from a certificate of a trusted maker that
// names k's serial; or, for a key registered without attestation while it
// is not required, no attestation at all.
func (s *Service) linkCheck(k *store.Key) proto.Check {
	return func(ev proto.Evidence) error {
		if ev.Missing() {
			if k.AttestPub == nil && !s.requireAttestation() {
				return nil
			}
			return &UnverifiedDeviceError{Claimed: k.Serial, Why: "it sent no attestation with its key agreement"}
		}
		att, err := s.trustedMakers().Verify(ev.Chain, ev.Message, ev.Signature, s.now())
		switch {
		case err != nil:
			return &UnverifiedDeviceError{Claimed: k.Serial, Why: err.Error()}
		case !strings.EqualFold(att.Serial, k.Serial):
			return &UnverifiedDeviceError{Claimed: k.Serial, Why: "its attestation certificate names " + att.Serial}
		case k.AttestPub == nil:
			return &UnverifiedDeviceError{Claimed: k.Serial, Why: "no attestation key is pinned on the key yet: unplug it and plug it in again"}
		case !bytes.Equal(att.PublicKey, k.AttestPub):
			return &UnverifiedDeviceError{Claimed: k.Serial, Why: "its attestation key is not the one pinned on the key"}
		}
		return nil
	}
}

// unverifiedDevice is a plugged-in device that did not prove the serial it
// claims.
type unverifiedDevice struct {
	plug    Plug
	claimed string
	why     string
	since   time.Time
	model   string
}

// recordUnverified remembers the device while it is plugged in, audits it
// and tells the consoles.
func (s *Service) recordUnverified(ctx context.Context, pl Plug, p proof) error {
	s.devices.addUnverified(unverifiedDevice{plug: pl, claimed: p.claimed, why: p.why, since: s.now(), model: p.info.Model})
	details := map[string]any{"why": p.why, "plug": pl.Kind, "place": pl.Place, "claimed_state": string(p.info.State)}
	if p.att.PublicKey != nil {
		details["attestation_key"] = keys.AttestationFingerprint(p.att.PublicKey)
	}
	err := s.st.Update(ctx, func(tx *store.Tx) error {
		return s.audit(ctx, tx, systemActor, "key.unverified-device", keyTarget(p.claimed), store.OutcomeFailure, details)
	})
	s.publish(KeyPlugged{Serial: p.claimed, Kind: pl.Kind, Place: pl.Place, PluggedIn: true, Status: StatusUnverifiedDevice})
	s.publish(DataChanged{What: ChangedKeys | ChangedAudit})
	return err
}

// attestationView names how a key proved itself, for KeyView.
func attestationView(k store.Key) (state, maker, fingerprint string) {
	switch {
	case k.AttestPub != nil:
		return "verified", k.AttestMaker, keys.AttestationFingerprint(k.AttestPub)
	case k.AttestMaker == store.AttestUnattested:
		return "unattested", "", ""
	}
	return "not-yet-seen", "", ""
}
