package keys

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA is a maker CA for the tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t testing.TB, name string) testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour * 24 * 365),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return testCA{c, key}
}

// device is a key's attestation: its key pair and certificate.
type device struct {
	key  *ecdsa.PrivateKey
	cert []byte
}

func (ca testCA) issue(t testing.TB, serial string, notAfter time.Time) device {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "key", SerialNumber: serial},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return device{key, der}
}

func (d device) sign(msg []byte) []byte {
	h := sha256.Sum256(msg)
	sig, _ := ecdsa.SignASN1(rand.Reader, d.key, h[:])
	return sig
}

func (d device) pub() []byte {
	p, _ := d.key.PublicKey.ECDH()
	return p.Bytes()
}

func TestMakersVerify(t *testing.T) {
	maker, other := newTestCA(t, "Maker CA"), newTestCA(t, "Rogue CA")
	makers := NewMakers(maker.cert)
	good := maker.issue(t, "KD-0001", time.Now().Add(time.Hour))
	expired := maker.issue(t, "KD-0002", time.Now().Add(-time.Minute))
	rogue := other.issue(t, "KD-0001", time.Now().Add(time.Hour))
	msg := []byte("statement")
	tests := []struct {
		name       string
		chain      [][]byte
		sig        []byte
		wantSerial string
		wantErr    error
		wantText   string
	}{
		{"a trusted maker's key", [][]byte{good.cert}, good.sign(msg), "KD-0001", nil, ""},
		{"no attestation at all", nil, nil, "", ErrNoAttestation, ""},
		{"a signature without a chain", nil, good.sign(msg), "", ErrBadAttestation, ""},
		{"another key's signature under a copied certificate", [][]byte{good.cert}, rogue.sign(msg), "", ErrBadAttestation, "not the attestation key's"},
		{"a signature over another statement", [][]byte{good.cert}, good.sign([]byte("other")), "", ErrBadAttestation, ""},
		{"an untrusted maker", [][]byte{rogue.cert}, rogue.sign(msg), "", nil, `maker's CA "CN=Rogue CA" is not trusted: add that CA's certificate`},
		{"an expired certificate", [][]byte{expired.cert}, expired.sign(msg), "", ErrBadAttestation, "expired"},
		{"garbage for a certificate", [][]byte{[]byte("not DER")}, good.sign(msg), "", ErrBadAttestation, "certificate 1"},
		{"too long a chain", [][]byte{good.cert, good.cert, good.cert, good.cert, good.cert}, good.sign(msg), "", ErrBadAttestation, "5 certificates"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			att, err := makers.Verify(tt.chain, msg, tt.sig, time.Now())
			if tt.wantSerial != "" {
				if err != nil || att.Serial != tt.wantSerial || string(att.PublicKey) != string(good.pub()) || att.Maker != "CN=Maker CA" {
					t.Fatalf("Verify = %+v, %v; want serial %s from CN=Maker CA", att, err, tt.wantSerial)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify accepted it: %+v", att)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("Verify error %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("Verify error %q does not say %q", err, tt.wantText)
			}
		})
	}
	if err := VerifySignedBy(good.pub(), msg, good.sign(msg)); err != nil {
		t.Errorf("VerifySignedBy refuses the pinned key's signature: %v", err)
	}
	if err := VerifySignedBy(good.pub(), msg, rogue.sign(msg)); !errors.Is(err, ErrBadAttestation) {
		t.Errorf("VerifySignedBy accepts another key's signature: %v", err)
	}
}

func TestLoadMakers(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, "Maker CA")
	leaf := ca.issue(t, "KD-1", time.Now().Add(time.Hour))
	write := func(name string, blocks ...[]byte) string {
		var b []byte
		for _, der := range blocks {
			b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
		}
		p := filepath.Join(dir, name)
		os.WriteFile(p, b, 0o644)
		return p
	}
	good, notCA, empty := write("ca.pem", ca.cert.Raw), write("leaf.pem", leaf.cert), write("empty.pem")
	if m, err := LoadMakers([]string{good}); err != nil || len(m.Names()) != 1 {
		t.Fatalf("LoadMakers(ca.pem) = %v, %v", m, err)
	}
	for path, want := range map[string]string{notCA: "is not a CA certificate", empty: "no PEM CERTIFICATE", filepath.Join(dir, "missing.pem"): "no such file"} {
		if _, err := LoadMakers([]string{path}); err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
			t.Errorf("LoadMakers(%s) = %v, want an error naming the file and saying %q", path, err, want)
		}
	}
}

func TestDecideIdentity(t *testing.T) {
	pinned, other := []byte("pinned-key"), []byte("other-key")
	ok := Attested{PublicKey: pinned, Serial: "KD-1", Maker: "CN=Maker"}
	untrusted := &UntrustedMakerError{Issuer: "CN=Rogue"}
	tests := []struct {
		name    string
		f       IdentityFacts
		want    Identity
		wantWhy string
	}{
		{"first attestation of a new key", IdentityFacts{Claimed: "KD-1", Att: ok, RequireAttestation: true}, IdentityPin, ""},
		{"the pinned key again", IdentityFacts{Claimed: "KD-1", Att: ok, Pinned: pinned, RequireAttestation: true}, IdentityVerified, ""},
		{"serial compared without case", IdentityFacts{Claimed: "kd-1", Att: ok, Pinned: pinned}, IdentityVerified, ""},
		{"a clone with its own attestation", IdentityFacts{Claimed: "KD-1", Att: Attested{PublicKey: other, Serial: "KD-9"}, Pinned: pinned, RequireAttestation: true}, IdentityUnverified, "claims serial KD-1, but its attestation certificate names KD-9"},
		{"a clone of a key not yet registered", IdentityFacts{Claimed: "KD-1", Att: Attested{PublicKey: other, Serial: "KD-9"}}, IdentityUnverified, "names KD-9"},
		{"same serial, another attestation key", IdentityFacts{Claimed: "KD-1", Att: Attested{PublicKey: other, Serial: "KD-1"}, Pinned: pinned}, IdentityUnverified, "is not the one pinned"},
		{"an untrusted maker", IdentityFacts{Claimed: "KD-1", Attest: untrusted, RequireAttestation: true}, IdentityUnverified, "CN=Rogue"},
		{"a bad signature", IdentityFacts{Claimed: "KD-1", Attest: ErrBadAttestation, Pinned: pinned}, IdentityUnverified, "does not verify"},
		{"no attestation, required", IdentityFacts{Claimed: "KD-1", Attest: ErrNoAttestation, RequireAttestation: true}, IdentityUnverified, "require_attestation = false"},
		{"no attestation, not required", IdentityFacts{Claimed: "KD-1", Attest: ErrNoAttestation}, IdentityUnattested, ""},
		{"no attestation from a key registered with one", IdentityFacts{Claimed: "KD-1", Attest: ErrNoAttestation, Pinned: pinned}, IdentityUnverified, "cannot attest, but key KD-1 was registered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := DecideIdentity(tt.f)
			if got != tt.want || !strings.Contains(why, tt.wantWhy) || (tt.wantWhy == "" && why != "") {
				t.Errorf("DecideIdentity = %s %q, want %s %q", got, why, tt.want, tt.wantWhy)
			}
			if got.Trusted() == (got == IdentityUnverified) {
				t.Errorf("%s.Trusted() = %v", got, got.Trusted())
			}
		})
	}
}

// BenchmarkVerifyAttestation is the host's check of one attestation: the
// chain to the maker CA and the ECDSA signature.
func BenchmarkVerifyAttestation(b *testing.B) {
	ca := newTestCA(b, "Maker CA")
	dev := ca.issue(b, "KD-1", time.Now().Add(time.Hour))
	makers, msg := NewMakers(ca.cert), []byte("statement")
	sig := dev.sign(msg)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := makers.Verify([][]byte{dev.cert}, msg, sig, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}
