package app

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"keydesk/internal/simtest"
	"keydesk/keys"
	"keydesk/keys/proto"
	"keydesk/keys/simkey"
	"keydesk/store"
)

// plugAs plugs a simulated key in under a plug id of its own and returns
// what KeyConnected said.
func plugAs(s *Service, id string, k *simkey.Key) error {
	_, err := s.KeyConnected(context.Background(), Plug{ID: id, Kind: "simulated", Open: func() (proto.Transport, error) { return k.Plug(), nil }})
	return err
}

func keyRow(t *testing.T, s *Service, serial string) *store.Key {
	t.Helper()
	k, err := s.st.KeyBySerial(context.Background(), serial)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// secretOf opens a sealed secret of key row k.
func secretOf(t *testing.T, s *Service, k *store.Key, sealed []byte) []byte {
	t.Helper()
	sec, err := s.master.Open(sealed, keys.SecretBinding(k.ID, k.Serial))
	if err != nil {
		t.Fatal(err)
	}
	return sec
}

// simSession opens a session on a simulated key with a secret.
func simSession(t *testing.T, k *simkey.Key, secret []byte) (*proto.Device, *proto.Session) {
	t.Helper()
	d, err := proto.Open(context.Background(), k.Plug())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	sess, err := d.Auth(context.Background(), secret)
	if err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	return d, sess
}

// TestAClonedKeyChangesNothing: devices that claim a key's serial without
// proving it (a clone with its own attestation, one that copied the key's
// public certificate, one that cannot attest, one from a maker KeyDesk does
// not trust) are refused: shown and audited as unverified devices, and the
// key they claim to be changes in no way, not even when they say they are
// blank (which would wipe a Deactivated key back to stock and destroy its
// secret) or locked (which would lock an Active key).
func TestAClonedKeyChangesNothing(t *testing.T) {
	rogue, err := simkey.NewMaker("Rogue Maker CA")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		withdraw bool // the real key is Deactivated (else Active)
		device   func(t *testing.T, real *simkey.Key) *simkey.Key
		why      string
	}{
		{"a blank clone with an attestation of its own", true, func(t *testing.T, _ *simkey.Key) *simkey.Key {
			k, err := simtest.Maker(t).NewKeyClaiming("SIM-CLONE", "SIM-REAL")
			if err != nil {
				t.Fatal(err)
			}
			return k
		}, "it claims serial SIM-REAL, but its attestation certificate names SIM-CLONE"},
		{"a clone that copied the real key's certificate", true, func(t *testing.T, real *simkey.Key) *simkey.Key {
			k := simtest.NewKey(t, "SIM-REAL")
			k.PresentChain(real.AttestationChain())
			return k
		}, "the signature is not the attestation key's"},
		{"a device that cannot attest", true, func(*testing.T, *simkey.Key) *simkey.Key { return simkey.New("SIM-REAL") },
			"it cannot attest, but key SIM-REAL was registered with attestation key"},
		{"a key from a maker KeyDesk does not trust", true, func(t *testing.T, _ *simkey.Key) *simkey.Key {
			k, err := rogue.NewKey("SIM-REAL")
			if err != nil {
				t.Fatal(err)
			}
			return k
		}, `its maker's CA "CN=Rogue Maker CA,O=KeyDesk simulation" is not trusted: add that CA's certificate`},
		{"a clone that says it is locked", false, func(t *testing.T, _ *simkey.Key) *simkey.Key {
			k, err := simtest.Maker(t).NewKeyClaiming("SIM-CLONE", "SIM-REAL")
			if err != nil {
				t.Fatal(err)
			}
			d, err := proto.Open(context.Background(), k.Plug())
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if err := d.Link(context.Background(), make([]byte, proto.MasterSecretSize), nil); err != nil {
				t.Fatal(err)
			}
			if err := d.Lock(context.Background()); err != nil {
				t.Fatal(err)
			}
			return k
		}, "names SIM-CLONE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s := keyService(t)
			real := activeSim(t, s, "SIM-REAL", "ann@example.com")
			if tt.withdraw {
				if err := s.WithdrawKey(ctx, testAdmin, "SIM-REAL", "returned"); err != nil {
					t.Fatal(err)
				}
			}
			s.KeyDisconnected("sim:SIM-REAL")
			before := keyRow(t, s, "SIM-REAL")

			err := plugAs(s, "sim:impostor", tt.device(t, real))
			var ue *UnverifiedDeviceError
			if !errors.As(err, &ue) || !errors.Is(err, ErrUnverifiedDevice) || ue.Claimed != "SIM-REAL" || !strings.Contains(ue.Why, tt.why) {
				t.Fatalf("plugging it in: %v; want an unverified device claiming SIM-REAL because %q", err, tt.why)
			}
			after := keyRow(t, s, "SIM-REAL")
			if after.Status != before.Status || after.Version != before.Version || !bytes.Equal(after.SecretSealed, before.SecretSealed) ||
				!bytes.Equal(after.AttestPub, before.AttestPub) || after.DeviceState != before.DeviceState {
				t.Errorf("the real key changed: %+v -> %+v", before, after)
			}
			ks, err := s.Keys(ctx, testAdmin)
			if err != nil {
				t.Fatal(err)
			}
			var shown *KeyView
			for i := range ks {
				if ks[i].Status == StatusUnverifiedDevice {
					shown = &ks[i]
				} else if ks[i].Serial == "SIM-REAL" && ks[i].PluggedIn {
					t.Error("the real key shows as plugged in")
				}
			}
			if shown == nil || shown.Serial != "SIM-REAL" || !strings.Contains(shown.Unverified, tt.why) || !shown.PluggedIn {
				t.Errorf("key list: %+v; want an unverified device claiming SIM-REAL saying why", shown)
			}
			if got := auditActions(t, s, "key:SIM-REAL"); got[len(got)-1] != "key.unverified-device:failure" {
				t.Errorf("audit %v: want the unverified device last", got)
			}
			if _, err := s.ActivateKey(ctx, testAdmin, "SIM-REAL", "123456"); !errors.Is(err, ErrNotPluggedIn) {
				t.Errorf("activating through the impostor: %v, want ErrNotPluggedIn", err)
			}
			s.KeyDisconnected("sim:impostor")
			if ks, _ := s.Keys(ctx, testAdmin); ks[len(ks)-1].Status == StatusUnverifiedDevice {
				t.Error("the unverified device is still listed after it was unplugged")
			}
		})
	}
}

// TestAttestationIsPinned: a key's attestation key is pinned the first
// time it proves its serial (plugged in new, or listed by serial before),
// and shown.
func TestAttestationIsPinned(t *testing.T) {
	ctx := context.Background()
	s := keyService(t)
	if err := s.AddKeys(ctx, testAdmin, []string{"SIM-LISTED"}); err != nil {
		t.Fatal(err)
	}
	for _, serial := range []string{"SIM-NEW", "SIM-LISTED"} {
		k := simtest.NewKey(t, serial)
		plugSim(t, s, k)
		row := keyRow(t, s, serial)
		v := keyStatus(t, s, serial)
		if row.AttestPub == nil || !strings.Contains(row.AttestMaker, "Test Maker CA") || v.Attestation != "verified" ||
			v.AttestationKey != keys.AttestationFingerprint(row.AttestPub) || v.DeviceState != "blank" {
			t.Errorf("%s: row %+v, view %+v; want its attestation key pinned and shown", serial, row, v)
		}
	}
	got := strings.Join(auditActions(t, s, "key:SIM-LISTED"), " ")
	if !strings.Contains(got, "key.attestation-pinned:success") {
		t.Errorf("audit %v: want the pinning of a listed key", got)
	}
}

// TestAPINLockedKeyIsLockedWithProof: an Active key that its own PIN locked
// is recorded Locked once it proved, in the conversation that records it,
// who it is and that it holds the key's secret.
func TestAPINLockedKeyIsLockedWithProof(t *testing.T) {
	ctx := context.Background()
	s := keyService(t)
	k := activeSim(t, s, "SIM-PIN", "ann@example.com")
	s.KeyDisconnected("sim:SIM-PIN")
	row := keyRow(t, s, "SIM-PIN")
	_, sess := simSession(t, k, secretOf(t, s, row, row.SecretSealed))
	if err := sess.SetPIN(ctx, "2468"); err != nil {
		t.Fatal(err)
	}
	for range proto.MaxPINRetries {
		sess.VerifyPIN(ctx, "0000")
	}
	if info := simInfo(t, k); info.State != proto.StateLocked {
		t.Fatalf("the key is %s after %d wrong PINs", info.State, proto.MaxPINRetries)
	}
	plugSim(t, s, k)
	if v := keyStatus(t, s, "SIM-PIN"); v.Status != "locked" || v.Reason != "invalid-pin" || v.DeviceState != "locked" {
		t.Errorf("key = %+v; want locked (invalid-pin)", v)
	}
}

// TestUnlockGivesANewSecret: an unlocked key (suspended, or locked by its
// PIN) gets a new secret at its next activation: the old one may have been
// copied while the key was out of its owner's hands. The activation wipes
// the key with the old secret and links it with the new one.
func TestUnlockGivesANewSecret(t *testing.T) {
	for _, how := range []string{"suspended", "locked by its PIN"} {
		t.Run(how, func(t *testing.T) {
			ctx := context.Background()
			s := keyService(t)
			k := activeSim(t, s, "SIM-UNL", "ann@example.com")
			old := keyRow(t, s, "SIM-UNL")
			oldSecret := secretOf(t, s, old, old.SecretSealed)
			if how == "suspended" {
				if err := s.SuspendKey(ctx, testAdmin, "SIM-UNL", "left on a train"); err != nil {
					t.Fatal(err)
				}
			} else {
				s.KeyDisconnected("sim:SIM-UNL")
				_, sess := simSession(t, k, oldSecret)
				sess.SetPIN(ctx, "2468")
				for range proto.MaxPINRetries {
					sess.VerifyPIN(ctx, "0000")
				}
				plugSim(t, s, k)
				if v := keyStatus(t, s, "SIM-UNL"); v.Status != "locked" {
					t.Fatalf("key %+v, want locked", v)
				}
			}
			code, err := s.UnlockKey(ctx, testAdmin, "SIM-UNL", "found it")
			if err != nil {
				t.Fatal(err)
			}
			unlocked := keyRow(t, s, "SIM-UNL")
			if bytes.Equal(unlocked.SecretSealed, old.SecretSealed) || !bytes.Equal(unlocked.PrevSecretSealed, old.SecretSealed) {
				t.Fatal("unlock kept the secret; want a new one, the old kept as the previous one")
			}
			if res, err := s.ActivateKey(ctx, testAdmin, "SIM-UNL", code.String()); err != nil || !res.Activated {
				t.Fatalf("activate after unlock: %+v %v", res, err)
			}
			active := keyRow(t, s, "SIM-UNL")
			if active.PrevSecretSealed != nil {
				t.Error("the previous secret is still kept after the activation")
			}
			d, err := proto.Open(ctx, k.Plug())
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			if _, err := d.Auth(ctx, oldSecret); !errors.Is(err, proto.ErrAuth) {
				t.Errorf("AUTH with the old secret after the activation: %v, want ErrAuth", err)
			}
			if _, err := d.Auth(ctx, secretOf(t, s, active, active.SecretSealed)); err != nil {
				t.Errorf("AUTH with the new secret: %v", err)
			}
		})
	}
}

// TestKeysWithoutAttestation: with require_attestation = false, a key that
// cannot attest is registered as unattested and works; a key registered
// with attestation is still refused when a device claiming it cannot
// attest.
func TestKeysWithoutAttestation(t *testing.T) {
	ctx := context.Background()
	s := keyServiceConf(t, "[keys]\nrequire_attestation = false\n")
	plain := simkey.New("SIM-PLAIN")
	plugSim(t, s, plain)
	if v := keyStatus(t, s, "SIM-PLAIN"); v.Status != "ready" || v.Attestation != "unattested" {
		t.Fatalf("a key without attestation: %+v, want ready, unattested", v)
	}
	code, err := s.AssignKey(ctx, testAdmin, "SIM-PLAIN", "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if res, err := s.ActivateKey(ctx, testAdmin, "SIM-PLAIN", code.String()); err != nil || !res.Activated {
		t.Fatalf("activate a key without attestation: %+v %v", res, err)
	}
	plugSim(t, s, simtest.NewKey(t, "SIM-ATT"))
	if err := plugAs(s, "sim:plain-claims-att", simkey.New("SIM-ATT")); !errors.Is(err, ErrUnverifiedDevice) {
		t.Errorf("a device without attestation claiming an attested key: %v, want it unverified", err)
	}
	// The same device, where attestation is required, is refused.
	strict := keyService(t)
	if err := plugAs(strict, "sim:plain", plain); err == nil || !strings.Contains(err.Error(), "cannot attest") {
		t.Errorf("with attestation required, a key without it: %v", err)
	}
}

// TestLinkRefusesAnUntrustedMaker: a key whose maker is no longer trusted
// is refused, at plug-in and at LINK, saying which CA to add.
func TestLinkRefusesAnUntrustedMaker(t *testing.T) {
	ctx := context.Background()
	s := keyService(t)
	k := simtest.NewKey(t, "SIM-MAKER")
	plugSim(t, s, k)
	if _, err := s.AssignKey(ctx, testAdmin, "SIM-MAKER", "ann@example.com"); err != nil {
		t.Fatal(err)
	}
	other := New(s.cfg, s.st, WithMasterKey(*s.master)) // trusts no maker
	want := `maker's CA "CN=Test Maker CA,O=KeyDesk simulation" is not trusted: add that CA's certificate`
	if err := plugAs(other, "sim:SIM-MAKER", k); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("plugged in where its maker is not trusted: %v, want %q", err, want)
	}
	d, err := proto.Open(ctx, k.Plug())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = d.Link(ctx, make([]byte, proto.MasterSecretSize), other.linkCheck(keyRow(t, s, "SIM-MAKER")))
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("LINK where its maker is not trusted: %v, want %q", err, want)
	}
	if info := simInfo(t, k); info.State != proto.StateBlank {
		t.Errorf("the key is %s: the secret went to a key whose maker is not trusted", info.State)
	}
}

// BenchmarkKeyPluggedIn is the cost of a known key being plugged in: a
// channel, INFO, ATTEST over a fresh nonce, the chain and signature checks,
// and the transaction that records the sighting.
func BenchmarkKeyPluggedIn(b *testing.B) {
	ctx := context.Background()
	s := newTestService(b, "corp")
	k := simtest.NewKey(b, "SIM-BENCH")
	p := Plug{ID: "sim:bench", Kind: "simulated", Open: func() (proto.Transport, error) { return k.Plug(), nil }}
	if _, err := s.KeyConnected(ctx, p); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		s.KeyDisconnected(p.ID)
		if _, err := s.KeyConnected(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
}

// TestAKioskServesOnlyTheKeyPluggedInAtIt: a kiosk actor may read and
// activate the key plugged in at its place, and nothing plugged in
// elsewhere (refused and audited), whatever it asks.
func TestAKioskServesOnlyTheKeyPluggedInAtIt(t *testing.T) {
	ctx := context.Background()
	s := keyService(t)
	here, there := simtest.NewKey(t, "SIM-HERE"), simtest.NewKey(t, "SIM-THERE")
	if _, err := s.KeyConnected(ctx, Plug{ID: "kiosk-a:1", Kind: "simulated", Place: "kiosk:a", Open: func() (proto.Transport, error) { return here.Plug(), nil }}); err != nil {
		t.Fatal(err)
	}
	plugSim(t, s, there) // on this machine
	hereCode, err := s.AssignKey(ctx, testAdmin, "SIM-HERE", "ann@example.com")
	if err != nil {
		t.Fatal(err)
	}
	thereCode, err := s.AssignKey(ctx, testAdmin, "SIM-THERE", "ben@example.com")
	if err != nil {
		t.Fatal(err)
	}
	kiosk := Actor{Name: "kiosk-a", Role: RoleKiosk, Auth: Auth{Method: AuthSSHKey, Subject: "SHA256:x"}, Place: "kiosk:a"}
	if v, err := s.KeyAtHand(ctx, kiosk, "SIM-HERE"); err != nil || v.Owner == "" {
		t.Fatalf("the kiosk's own key: %+v %v", v, err)
	}
	if _, err := s.KeyAtHand(ctx, kiosk, "SIM-THERE"); !errors.Is(err, ErrNotHere) {
		t.Errorf("a key plugged in elsewhere, read by the kiosk: %v", err)
	}
	if _, err := s.ActivateKey(ctx, kiosk, "SIM-THERE", thereCode.String()); !errors.Is(err, ErrNotHere) {
		t.Errorf("a key plugged in elsewhere, activated by the kiosk: %v", err)
	}
	if _, err := s.ChangeOwnPassword(ctx, kiosk, SelfChange{Serial: "SIM-THERE", On: SelfKeyOnly, Current: "x", New: "y"}); !errors.Is(err, ErrNotHere) {
		t.Errorf("a key plugged in elsewhere, password changed by the kiosk: %v", err)
	}
	if res, err := s.ActivateKey(ctx, kiosk, "SIM-HERE", hereCode.String()); err != nil || !res.Activated {
		t.Errorf("the kiosk's own key, activated: %+v %v", res, err)
	}
	if _, err := s.Keys(ctx, kiosk); !errors.Is(err, ErrPermission) {
		t.Errorf("the kiosk listed the keys: %v", err)
	}
	if got := keyStatus(t, s, "SIM-THERE").Status; got != "reserved" {
		t.Errorf("the key elsewhere is %s", got)
	}
	if acts := auditActions(t, s, "key:SIM-THERE"); !containsStr(acts, "kiosk.refused:failure") {
		t.Errorf("the kiosk's refusals are not audited: %v", acts)
	}
}
