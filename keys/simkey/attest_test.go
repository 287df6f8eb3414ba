package simkey_test

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"keydesk/keys"
	"keydesk/keys/proto"
	"keydesk/keys/simkey"
)

func newMaker(t *testing.T) *simkey.Maker {
	t.Helper()
	m, err := simkey.NewMaker("Test Maker CA")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// verify checks evidence the way KeyDesk does (package keys).
func verify(t *testing.T, m *simkey.Maker, ev proto.Evidence) (keys.Attested, error) {
	t.Helper()
	return keys.NewMakers(m.Cert()).Verify(ev.Chain, ev.Message, ev.Signature, time.Now())
}

func TestAttestSignsSerialAndState(t *testing.T) {
	m := newMaker(t)
	k, err := m.NewKey("SIM-ATT-0001")
	if err != nil {
		t.Fatal(err)
	}
	d, _ := open(t, k, simkey.TapHooks{})
	st, ev, err := d.Attest(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.Serial != "SIM-ATT-0001" || st.State != proto.StateBlank {
		t.Fatalf("statement %+v", st)
	}
	att, err := verify(t, m, ev)
	if err != nil || att.Serial != "SIM-ATT-0001" {
		t.Fatalf("the maker's CA does not verify the key: %+v %v", att, err)
	}
	// The statement is what is signed: another state does not verify.
	forged := ev
	forged.Message = proto.AttestMessage(d.CID(), make([]byte, proto.NonceSize), proto.Statement{Serial: st.Serial, State: proto.StateLocked})
	if _, err := verify(t, m, forged); !errors.Is(err, keys.ErrBadAttestation) {
		t.Errorf("a statement the key did not sign verifies: %v", err)
	}
	// Another maker's CA does not vouch for it.
	if _, err := keys.NewMakers(newMaker(t).Cert()).Verify(ev.Chain, ev.Message, ev.Signature, time.Now()); err == nil || !strings.Contains(err.Error(), "not trusted") {
		t.Errorf("an untrusted maker: %v", err)
	}

	// LINK: the agreement is checked before the secret goes, and the link
	// after; the attestation survives LINK and WIPE.
	var seen []proto.Evidence
	check := func(ev proto.Evidence) error {
		seen = append(seen, ev)
		a, err := verify(t, m, ev)
		if err == nil && !bytes.Equal(a.PublicKey, att.PublicKey) {
			err = errors.New("another attestation key")
		}
		return err
	}
	if err := d.Link(ctxT(t), secret(1), check); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 2 {
		t.Fatalf("Link checked %d pieces of evidence, want 2 (agreement, link)", len(seen))
	}
	s, err := d.Auth(ctxT(t), secret(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Wipe(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if _, ev2, err := d.Attest(ctxT(t)); err != nil {
		t.Fatal(err)
	} else if a, err := verify(t, m, ev2); err != nil || !bytes.Equal(a.PublicKey, att.PublicKey) {
		t.Fatalf("after WIPE the key attests as %+v, %v", a, err)
	}

	// A check that refuses the agreement stops LINK before the secret is
	// sealed to the key: it stays blank.
	refuse := errors.New("refused")
	if err := d.Link(ctxT(t), secret(2), func(proto.Evidence) error { return refuse }); !errors.Is(err, refuse) {
		t.Fatalf("Link with a refusing check: %v", err)
	}
	if i := info(t, d); i.State != proto.StateBlank {
		t.Fatalf("the key is %s after a refused agreement", i.State)
	}
}

func TestKeyWithoutAttestation(t *testing.T) {
	k := simkey.New("SIM-NOATT")
	d, _ := open(t, k, simkey.TapHooks{})
	st, ev, err := d.Attest(ctxT(t))
	if err != nil || !ev.Missing() || st.Serial != "" {
		t.Fatalf("Attest on a key without attestation = %+v %+v %v, want empty evidence", st, ev, err)
	}
	var got []proto.Evidence
	if err := d.Link(ctxT(t), secret(1), func(ev proto.Evidence) error { got = append(got, ev); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got[0].Missing() || !got[1].Missing() {
		t.Fatalf("Link evidence of a key without attestation: %+v", got)
	}
}

func TestCloneClaimsAnotherSerial(t *testing.T) {
	m := newMaker(t)
	clone, err := m.NewKeyClaiming("SIM-CLONE", "SIM-REAL")
	if err != nil {
		t.Fatal(err)
	}
	d, _ := open(t, clone, simkey.TapHooks{})
	if i := info(t, d); i.Serial != "SIM-REAL" {
		t.Fatalf("INFO serial %q, want the claimed SIM-REAL", i.Serial)
	}
	st, ev, err := d.Attest(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	att, err := verify(t, m, ev)
	if err != nil || st.Serial != "SIM-REAL" || att.Serial != "SIM-CLONE" {
		t.Fatalf("clone: statement %+v, certificate %+v, %v", st, att, err)
	}
}

func TestAttestationPersists(t *testing.T) {
	dir := t.TempDir()
	m, err := simkey.LoadOrCreateMaker(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"maker-ca.pem", "maker-ca.key"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, fi, err)
		}
	}
	again, err := simkey.LoadOrCreateMaker(dir)
	if err != nil || !again.Cert().Equal(m.Cert()) {
		t.Fatalf("the maker CA is not kept: %v", err)
	}
	k, err := simkey.NewInDir(dir, m, "")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, k.Serial()+".simkey")
	loaded, err := simkey.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := x509.ParseCertificate(k.AttestationChain()[0])
	d, _ := open(t, loaded, simkey.TapHooks{})
	_, ev, err := d.Attest(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if a, err := verify(t, m, ev); err != nil || a.Serial != want.Subject.SerialNumber {
		t.Fatalf("a loaded key attests as %+v, %v", a, err)
	}

	// A file of version 1 (before attestation) still loads, without it.
	var st map[string]any
	b, _ := os.ReadFile(path)
	json.Unmarshal(b, &st)
	st["version"] = 1
	delete(st, "attest_key")
	delete(st, "attest_chain")
	b, _ = json.Marshal(st)
	old := filepath.Join(dir, "old.simkey")
	os.WriteFile(old, b, 0o600)
	k1, err := simkey.Load(old)
	if err != nil {
		t.Fatalf("a version 1 key file: %v", err)
	}
	if k1.AttestationChain() != nil {
		t.Error("a version 1 key has an attestation")
	}
	// An attestation certificate without its key is refused.
	delete(st, "attest_key")
	st["version"] = 2
	st["attest_chain"] = [][]byte{want.Raw}
	b, _ = json.Marshal(st)
	os.WriteFile(old, b, 0o600)
	if _, err := simkey.Load(old); err == nil || !strings.Contains(err.Error(), "attestation key without its certificate") {
		t.Errorf("a certificate without its key: %v", err)
	}
}
