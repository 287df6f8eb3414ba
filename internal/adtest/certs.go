package adtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// certSet is a test CA and a server certificate signed by it, PEM encoded.
type certSet struct {
	CAPEM, CertPEM, KeyPEM []byte
}

// positiveSerial returns a random serial in [1, 2^127]: Go's crypto/x509 rejects negative serials
// (which Samba's self-generated certificate has).
func positiveSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	return n.Add(n, big.NewInt(1)), nil
}

// issueCerts makes a CA named after realm and a server certificate for the DC with the given
// DNS names and IP addresses as subjectAltNames (ECDSA P-256).
func issueCerts(realm string, dnsNames []string, ips []net.IP) (*certSet, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	caSerial, err := positiveSerial()
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          caSerial,
		Subject:               pkix.Name{Organization: []string{"keydesk adtest"}, CommonName: "keydesk adtest CA for " + realm},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate server key: %w", err)
	}
	serial, err := positiveSerial()
	if err != nil {
		return nil, err
	}
	cn := realm
	if len(dnsNames) > 0 {
		cn = dnsNames[0]
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{"keydesk adtest"}, CommonName: cn},
		DNSNames:     dnsNames,
		IPAddresses:  ips,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("create server certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &certSet{
		CAPEM:   pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// writeCerts issues the DC's certificates into Dir/tls (key mode 0600, as Samba demands) and
// sets CAFile.
func (d *DC) writeCerts() error {
	cs, err := issueCerts(d.Realm, []string{d.HostName, d.Domain}, []net.IP{net.ParseIP(d.Addr)})
	if err != nil {
		return err
	}
	dir := filepath.Join(d.Dir, "tls")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{"ca.pem", cs.CAPEM, 0o644},
		{"cert.pem", cs.CertPEM, 0o644},
		{"key.pem", cs.KeyPEM, 0o600},
	}
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			return err
		}
		if err := os.Chmod(p, f.mode); err != nil {
			return err
		}
	}
	d.CAFile = filepath.Join(dir, "ca.pem")
	d.caPEM = cs.CAPEM
	return nil
}

// CAPool returns a certificate pool holding only the DC's test CA.
func (d *DC) CAPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(d.caPEM)
	return p
}

// TLSConfig returns a TLS client configuration that trusts only the DC's test CA and verifies the
// DC's address (its certificate also names HostName, for callers that set ServerName to it).
func (d *DC) TLSConfig() *tls.Config {
	return &tls.Config{RootCAs: d.CAPool(), ServerName: d.Addr, MinVersion: tls.VersionTLS12}
}

const (
	pwUpper  = "ABCDEFGHJKLMNPQRSTUVWXYZ"
	pwLower  = "abcdefghijkmnopqrstuvwxyz"
	pwDigit  = "23456789"
	pwSymbol = "!%+=?@^~"
)

// genPassword returns a random password of 20 characters that satisfies AD complexity (upper,
// lower, digit and symbol) and that contains none of avoid (case-insensitively, like AD's check
// against sAMAccountName and displayName tokens). Letters never follow each other, so no name
// token of three or more letters can occur in it.
func genPassword(avoid ...string) string {
	classes := []string{pwUpper, pwDigit, pwLower, pwSymbol}
	for {
		var b strings.Builder
		for i := 0; i < 20; i++ {
			b.WriteByte(randChar(classes[i%len(classes)]))
		}
		p := b.String()
		if !containsAny(p, avoid) {
			return p
		}
	}
}

func containsAny(p string, avoid []string) bool {
	lp := strings.ToLower(p)
	for _, a := range avoid {
		if len(a) >= 3 && strings.Contains(lp, strings.ToLower(a)) {
			return true
		}
	}
	return false
}

func randChar(set string) byte {
	n, err := rand.Int(rand.Reader, big.NewInt(int64(len(set))))
	if err != nil {
		panic(err)
	}
	return set[n.Int64()]
}

// WriteUnrelatedCA writes, in a temporary directory of the test, the PEM of
// a CA that signed nothing any DC presents: a "wrong ca_file" for tests.
func WriteUnrelatedCA(t testing.TB) string {
	t.Helper()
	set, err := issueCerts("UNRELATED.TEST", []string{"unrelated.test"}, nil)
	if err != nil {
		t.Fatalf("adtest: issue an unrelated CA: %v", err)
	}
	path := filepath.Join(t.TempDir(), "unrelated-ca.pem")
	if err := os.WriteFile(path, set.CAPEM, 0o600); err != nil {
		t.Fatalf("adtest: write the unrelated CA: %v", err)
	}
	return path
}
