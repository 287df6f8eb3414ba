package keys

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Attestation, as FIDO keys do it: each key holds a P-256 attestation key
// pair and a certificate for it from its maker's CA that names the key's
// serial (the subject's serialNumber). The key signs statements (its serial
// and state, a key agreement, a LINK) with it, each over a fresh nonce of the
// host's. Makers verifies the chain against the CAs KeyDesk trusts, and
// DecideIdentity says, from that and the attestation key pinned on the
// key's row, whether a device is the key it claims to be.

// Attestation errors.
var (
	// ErrNoAttestation: the device sent no attestation (it cannot attest).
	ErrNoAttestation = errors.New("the device has no attestation")
	// ErrBadAttestation: the attestation is malformed or its signature does
	// not verify.
	ErrBadAttestation = errors.New("the device's attestation does not verify")
)

// UntrustedMakerError is an attestation chain that does not lead to a maker
// CA KeyDesk trusts. Issuer names the CA the device's certificate names.
type UntrustedMakerError struct {
	Issuer string
	Err    error
}

func (e *UntrustedMakerError) Error() string {
	return fmt.Sprintf("its maker's CA %q is not trusted: add that CA's certificate (a PEM file from the key's maker) to [keys] trusted_makers", e.Issuer)
}

func (e *UntrustedMakerError) Unwrap() error { return e.Err }

// maxChain bounds the certificates a device may send.
const maxChain = 4

// Makers are the key makers' CA certificates KeyDesk trusts.
type Makers struct {
	roots *x509.CertPool
	names []string // subjects, for diagnostics
}

// NewMakers trusts the given CA certificates.
func NewMakers(cas ...*x509.Certificate) *Makers {
	m := &Makers{roots: x509.NewCertPool()}
	m.Add(cas...)
	return m
}

// Add trusts more CA certificates.
func (m *Makers) Add(cas ...*x509.Certificate) {
	for _, c := range cas {
		m.roots.AddCert(c)
		m.names = append(m.names, c.Subject.String())
	}
}

// Names are the trusted CAs' subjects.
func (m *Makers) Names() []string { return append([]string(nil), m.names...) }

// LoadMakers reads PEM files of maker CA certificates ([keys]
// trusted_makers). Each file must hold at least one CA certificate.
func LoadMakers(paths []string) (*Makers, error) {
	m := NewMakers()
	for _, p := range paths {
		cas, err := ReadCertificates(p)
		if err != nil {
			return nil, fmt.Errorf("trusted maker %s: %w", p, err)
		}
		for _, c := range cas {
			if !c.IsCA {
				return nil, fmt.Errorf("trusted maker %s: %q is not a CA certificate", p, c.Subject.String())
			}
		}
		m.Add(cas...)
	}
	return m, nil
}

// ReadCertificates reads the certificates of a PEM file.
func ReadCertificates(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse a certificate: %w", err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM CERTIFICATE in the file")
	}
	return out, nil
}

// Attested is what a verified attestation proves.
type Attested struct {
	// PublicKey is the attestation public key, uncompressed P-256 (65
	// bytes): the key's row pins it.
	PublicKey []byte
	// Serial is the serial the certificate names.
	Serial string
	// Maker is the subject of the trusted CA the chain leads to.
	Maker string
}

// Verify checks an attestation: the chain (the attestation certificate
// first, then intermediates) leads to a trusted maker CA at now, the
// attestation certificate holds a P-256 key, and sig (ECDSA with SHA-256,
// ASN.1) by that key is valid over msg. A device that sent no chain gives
// ErrNoAttestation.
func (m *Makers) Verify(chain [][]byte, msg, sig []byte, now time.Time) (Attested, error) {
	if len(chain) == 0 && len(sig) == 0 {
		return Attested{}, ErrNoAttestation
	}
	if len(chain) == 0 || len(chain) > maxChain {
		return Attested{}, fmt.Errorf("%w: a chain of %d certificates", ErrBadAttestation, len(chain))
	}
	certs := make([]*x509.Certificate, len(chain))
	for i, der := range chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return Attested{}, fmt.Errorf("%w: certificate %d: %v", ErrBadAttestation, i+1, err)
		}
		certs[i] = c
	}
	leaf := certs[0]
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return Attested{}, fmt.Errorf("%w: the attestation key is not P-256", ErrBadAttestation)
	}
	raw, err := pub.ECDH()
	if err != nil {
		return Attested{}, fmt.Errorf("%w: %v", ErrBadAttestation, err)
	}
	serial := leaf.Subject.SerialNumber
	if serial == "" {
		return Attested{}, fmt.Errorf("%w: the attestation certificate names no serial", ErrBadAttestation)
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	paths, err := leaf.Verify(x509.VerifyOptions{Roots: m.roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		var ua x509.UnknownAuthorityError
		if errors.As(err, &ua) {
			issuer := leaf.Issuer.String()
			if len(certs) > 1 {
				issuer = certs[len(certs)-1].Issuer.String()
			}
			return Attested{}, &UntrustedMakerError{Issuer: issuer, Err: err}
		}
		return Attested{}, fmt.Errorf("%w: its certificate: %v", ErrBadAttestation, err)
	}
	if err := verifySig(raw.Bytes(), msg, sig); err != nil {
		return Attested{}, err
	}
	chainTop := paths[0][len(paths[0])-1]
	return Attested{PublicKey: raw.Bytes(), Serial: serial, Maker: chainTop.Subject.String()}, nil
}

// VerifySignedBy checks sig over msg by the pinned attestation public key
// (uncompressed P-256).
func VerifySignedBy(pub, msg, sig []byte) error { return verifySig(pub, msg, sig) }

func verifySig(pub, msg, sig []byte) error {
	k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pub)
	if err != nil {
		return fmt.Errorf("%w: public key: %v", ErrBadAttestation, err)
	}
	h := sha256.Sum256(msg)
	if !ecdsa.VerifyASN1(k, h[:], sig) {
		return fmt.Errorf("%w: the signature is not the attestation key's", ErrBadAttestation)
	}
	return nil
}

// AttestationFingerprint names an attestation public key briefly (the first
// 8 bytes of its SHA-256, in hex), for the audit log and the console.
func AttestationFingerprint(pub []byte) string {
	if len(pub) == 0 {
		return ""
	}
	h := sha256.Sum256(pub)
	return hex.EncodeToString(h[:8])
}

// Identity is what a plugged-in device proved about the serial it claims.
type Identity string

// The identities.
const (
	// IdentityVerified: its attestation key is the one pinned on the key.
	IdentityVerified Identity = "verified"
	// IdentityPin: it proved the serial with a trusted maker's attestation
	// and the key has no attestation key pinned yet: pin it.
	IdentityPin Identity = "pin"
	// IdentityUnattested: it cannot attest, and attestation is not
	// required ([keys] require_attestation = false).
	IdentityUnattested Identity = "unattested"
	// IdentityUnverified: it did not prove the serial it claims; nothing
	// about the key with that serial changes.
	IdentityUnverified Identity = "unverified"
)

// IdentityFacts are what DecideIdentity decides from.
type IdentityFacts struct {
	Claimed string   // the serial the device claims
	Attest  error    // the outcome of Makers.Verify (nil: Att is valid)
	Att     Attested // when Attest is nil
	// Pinned is the attestation public key pinned on the row of the
	// claimed serial (nil: none, or no such row).
	Pinned             []byte
	RequireAttestation bool
}

// DecideIdentity says whether a device is the key it claims to be, and why
// not. It is pure.
func DecideIdentity(f IdentityFacts) (Identity, string) {
	switch {
	case errors.Is(f.Attest, ErrNoAttestation):
		if f.Pinned != nil {
			return IdentityUnverified, fmt.Sprintf("it cannot attest, but key %s was registered with attestation key %s: it is another device", f.Claimed, AttestationFingerprint(f.Pinned))
		}
		if f.RequireAttestation {
			return IdentityUnverified, "it cannot attest (no attestation certificate): for keys made without one, set [keys] require_attestation = false"
		}
		return IdentityUnattested, ""
	case f.Attest != nil:
		return IdentityUnverified, f.Attest.Error()
	case !strings.EqualFold(f.Att.Serial, f.Claimed):
		return IdentityUnverified, fmt.Sprintf("it claims serial %s, but its attestation certificate names %s", f.Claimed, f.Att.Serial)
	case f.Pinned == nil:
		return IdentityPin, ""
	case !bytes.Equal(f.Pinned, f.Att.PublicKey):
		return IdentityUnverified, fmt.Sprintf("its attestation key %s is not the one pinned on key %s (%s): a clone or another device", AttestationFingerprint(f.Att.PublicKey), f.Claimed, AttestationFingerprint(f.Pinned))
	}
	return IdentityVerified, ""
}

// Trusted reports whether an identity lets the device act as its key.
func (i Identity) Trusted() bool { return i != IdentityUnverified }
