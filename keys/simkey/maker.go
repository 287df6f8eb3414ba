package simkey

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// Files of a directory's simulation maker CA: the certificate KeyDesk may
// trust ([keys] trusted_makers; the demo and --sim-keys DIR trust it) and
// its private key, with which new simulated keys get their attestation.
const (
	MakerCertFile = "maker-ca.pem"
	makerKeyFile  = "maker-ca.key"
)

// MakerName is the common name of a simulation maker CA.
const MakerName = "KeyDesk Simulation Maker CA"

// Simulated certificates are valid from notBefore and never expire (RFC
// 5280's 99991231235959Z), as hardware attestation certificates often are:
// a key lives longer than any validity period its maker could promise.
var (
	notBefore = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	notAfter  = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
)

// Maker is a simulated key maker: a CA that gives each key it makes an
// attestation key pair and a certificate naming the key's serial. A test
// and demo aid: its private key is kept in a file in the clear (0600).
type Maker struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// NewMaker creates a maker CA with a fresh P-256 key.
func NewMaker(name string) (*Maker, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("create a maker CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randSerial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"KeyDesk simulation"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create a maker CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Maker{cert: cert, key: key}, nil
}

// LoadOrCreateMaker reads the maker CA kept in dir, creating it (both files
// 0600) the first time.
func LoadOrCreateMaker(dir string) (*Maker, error) {
	m, err := LoadMaker(dir)
	if !errors.Is(err, fs.ErrNotExist) {
		return m, err
	}
	if m, err = NewMaker(MakerName); err != nil {
		return nil, err
	}
	kb, err := x509.MarshalPKCS8PrivateKey(m.key)
	if err != nil {
		return nil, err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})
	// The key first: a certificate without its key would be useless.
	if err := writeExcl(filepath.Join(dir, makerKeyFile), keyPEM); err != nil {
		return nil, fmt.Errorf("keep the simulation maker CA: %w", err)
	}
	if err := writeExcl(filepath.Join(dir, MakerCertFile), m.CertPEM()); err != nil {
		return nil, fmt.Errorf("keep the simulation maker CA: %w", err)
	}
	return m, nil
}

// LoadMaker reads the maker CA kept in dir.
func LoadMaker(dir string) (*Maker, error) {
	cb, err := os.ReadFile(filepath.Join(dir, MakerCertFile))
	if err != nil {
		return nil, err
	}
	kb, err := os.ReadFile(filepath.Join(dir, makerKeyFile))
	if err != nil {
		return nil, err
	}
	cblk, _ := pem.Decode(cb)
	kblk, _ := pem.Decode(kb)
	if cblk == nil || kblk == nil {
		return nil, fmt.Errorf("the simulation maker CA in %s is not PEM", dir)
	}
	cert, err := x509.ParseCertificate(cblk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("the simulation maker CA in %s: %w", dir, err)
	}
	k, err := x509.ParsePKCS8PrivateKey(kblk.Bytes)
	key, ok := k.(*ecdsa.PrivateKey)
	if err != nil || !ok {
		return nil, fmt.Errorf("the simulation maker CA key in %s is not a P-256 key", dir)
	}
	return &Maker{cert: cert, key: key}, nil
}

func writeExcl(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Cert is the maker's CA certificate.
func (m *Maker) Cert() *x509.Certificate { return m.cert }

// CertPEM is the maker's CA certificate in PEM.
func (m *Maker) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: m.cert.Raw})
}

// attestation is a key's attestation key pair and certificate chain.
type attestation struct {
	key   []byte   // PKCS#8
	chain [][]byte // DER, the attestation certificate first
}

// issue makes an attestation key pair and a certificate naming serial.
func (m *Maker) issue(serial string) (attestation, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return attestation{}, fmt.Errorf("create an attestation key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: randSerial(),
		Subject:      pkix.Name{CommonName: Model + " attestation", SerialNumber: serial, Organization: []string{"KeyDesk simulation"}},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, m.cert, &key.PublicKey, m.key)
	if err != nil {
		return attestation{}, fmt.Errorf("certify the attestation key: %w", err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return attestation{}, err
	}
	return attestation{key: kb, chain: [][]byte{der}}, nil
}

// NewKey makes a blank key with serial and an attestation from this maker.
func (m *Maker) NewKey(serial string) (*Key, error) {
	return m.NewKeyClaiming(serial, serial)
}

// NewKeyClaiming makes a blank key whose attestation certificate names
// serial but which claims the serial claimed (in INFO and ATTEST): a
// test aid for a clone of another key that has an attestation of its own.
func (m *Maker) NewKeyClaiming(serial, claimed string) (*Key, error) {
	a, err := m.issue(serial)
	if err != nil {
		return nil, err
	}
	st := blankState(claimed, DefaultSlots)
	st.AttestKey, st.AttestChain = a.key, a.chain
	return newKey(st), nil
}

func randSerial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n.Add(n, big.NewInt(1))
}
