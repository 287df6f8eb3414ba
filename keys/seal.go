package keys

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"
)

// Master key file.
const (
	// EnvMasterKeyFile names the master key file, overriding the default
	// <data directory>/master.key. A file it names must already exist.
	EnvMasterKeyFile = "KEYDESK_MASTER_KEY_FILE"
	// MasterKeyFileName is the default master key file in the data
	// directory, created on first use.
	MasterKeyFileName = "master.key"
	// SecretLen is the size of a per-key master secret.
	SecretLen = 32
)

// Purposes of the sub-keys derived from the master key.
const (
	// PurposeCodePepper keys the activation code hashes (HashCode) where a
	// database has no pepper of its own (tests).
	PurposeCodePepper = "activation-code-pepper"
	// PurposeSecretSeal encrypts the secrets sealed under the master key
	// (Seal, Open).
	PurposeSecretSeal = "master-secret-seal"
	// purposeFingerprint names the master key without revealing it.
	purposeFingerprint = "fingerprint"
)

// Errors of the master key and of sealing.
var (
	// ErrInsecureFile: the master key file is accessible by group or others.
	ErrInsecureFile = errors.New("master key file is accessible by group or others")
	// ErrMasterKeyFormat: the file does not hold a master key.
	ErrMasterKeyFormat = errors.New("not a master key file")
	// ErrNoMasterKey: a zero MasterKey was used (never loaded).
	ErrNoMasterKey = errors.New("no master key loaded")
	// ErrOpen: a sealed secret failed authentication: a different master
	// key, altered bytes, or a ciphertext taken from another key's row.
	ErrOpen = errors.New("cannot open sealed secret: wrong master key, altered data, or sealed for another key")
)

// MasterKey is the 32-byte key that protects KeyDesk's secrets at rest. It
// is used for one thing only: as the input of HKDF (Derive); every use has
// its own derived sub-key.
//
// It never prints: every fmt verb, %#v included, and log/slog show
// "MasterKey(redacted)".
type MasterKey [32]byte

// Format redacts the key for every fmt verb.
func (k MasterKey) Format(f fmt.State, _ rune) { io.WriteString(f, "MasterKey(redacted)") }

// String redacts the key.
func (k MasterKey) String() string { return "MasterKey(redacted)" }

// GoString redacts the key.
func (k MasterKey) GoString() string { return "MasterKey(redacted)" }

// LogValue redacts the key in log/slog.
func (k MasterKey) LogValue() slog.Value { return slog.StringValue("MasterKey(redacted)") }

// Derive returns the 32-byte sub-key for purpose (HKDF-SHA256 of the master
// key, with "keydesk/v1/"+purpose as the info), such as PurposeCodePepper.
func (k MasterKey) Derive(purpose string) []byte {
	b, err := hkdf.Key(sha256.New, k[:], nil, "keydesk/v1/"+purpose, 32)
	if err != nil {
		// Only a length over 255*32 bytes fails; 32 is constant.
		panic("keys: hkdf: " + err.Error())
	}
	return b
}

// Fingerprint names the key (16 bytes of a sub-key, in hex): a database
// records the fingerprint of the key it was sealed with, so that another
// key is noticed before it opens or seals anything. It reveals nothing of
// the key.
func (k MasterKey) Fingerprint() string { return hex.EncodeToString(k.Derive(purposeFingerprint)[:16]) }

// NewMasterKey returns a new random master key.
func NewMasterKey() (MasterKey, error) {
	var k MasterKey
	if _, err := rand.Read(k[:]); err != nil {
		return k, fmt.Errorf("generate master key: %w", err)
	}
	return k, nil
}

// sealVersion is the first byte of a sealed secret, so that the format can
// change later.
const sealVersion = 1

// sealAD is the additional data of a sealed secret: the format and the
// binding.
func sealAD(binding string) []byte { return []byte("keydesk sealed secret v1\x00" + binding) }

// SecretBinding is the binding of a key's sealed master secret: its row id
// and serial, so that a ciphertext copied to another key's row fails to
// open.
func SecretBinding(id int64, serial string) string {
	return "key:" + serial + ":" + strconv.FormatInt(id, 10)
}

// NewSecret returns a new per-key master secret: SecretLen bytes from
// crypto/rand.
func NewSecret() ([]byte, error) {
	b := make([]byte, SecretLen)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("generate master secret: %w", err)
	}
	return b, nil
}

// Seal encrypts secret with XChaCha20-Poly1305 under the PurposeSecretSeal
// sub-key, with binding (see SecretBinding) as additional data. The result
// is a version byte, the random 24-byte nonce and the ciphertext with its
// tag.
func (k MasterKey) Seal(secret []byte, binding string) ([]byte, error) {
	if k == (MasterKey{}) {
		return nil, fmt.Errorf("seal secret: %w", ErrNoMasterKey)
	}
	if len(secret) == 0 {
		return nil, errors.New("seal secret: the secret is empty")
	}
	if binding == "" {
		return nil, errors.New("seal secret: the binding is empty; use SecretBinding")
	}
	aead, err := chacha20poly1305.NewX(k.Derive(PurposeSecretSeal))
	if err != nil {
		return nil, fmt.Errorf("seal secret: %w", err)
	}
	out := make([]byte, 1+aead.NonceSize(), 1+aead.NonceSize()+len(secret)+aead.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("seal secret: nonce: %w", err)
	}
	return aead.Seal(out, out[1:], secret, sealAD(binding)), nil
}

// Open decrypts what Seal returned for the same binding. Any mismatch
// (another master key, a changed byte, another binding) gives ErrOpen.
func (k MasterKey) Open(sealed []byte, binding string) ([]byte, error) {
	if k == (MasterKey{}) {
		return nil, fmt.Errorf("open secret: %w", ErrNoMasterKey)
	}
	aead, err := chacha20poly1305.NewX(k.Derive(PurposeSecretSeal))
	if err != nil {
		return nil, fmt.Errorf("open secret: %w", err)
	}
	if len(sealed) < 1+aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("open secret for %s: sealed data is truncated (%d bytes)", binding, len(sealed))
	}
	if sealed[0] != sealVersion {
		return nil, fmt.Errorf("open secret for %s: unknown format version %d", binding, sealed[0])
	}
	nonce, ct := sealed[1:1+aead.NonceSize()], sealed[1+aead.NonceSize():]
	secret, err := aead.Open(nil, nonce, ct, sealAD(binding))
	if err != nil {
		return nil, fmt.Errorf("open secret for %s: %w", binding, ErrOpen)
	}
	return secret, nil
}

// MasterKeyPath is the master key file: the one named by the environment
// variable EnvMasterKeyFile (read with env; nil means no variables), else
// <dataDir>/master.key. named says it came from the variable (such a file
// must exist: it is never created).
func MasterKeyPath(dataDir string, env func(string) string) (path string, named bool) {
	if env != nil {
		if p := env(EnvMasterKeyFile); p != "" {
			return p, true
		}
	}
	return filepath.Join(dataDir, MasterKeyFileName), false
}

// LoadOrCreateMasterKey reads the master key, creating it on first use.
//
// The file is MasterKeyPath's; one named by EnvMasterKeyFile must exist,
// <dataDir>/master.key is created when missing (with the data directory,
// 0700) as 0600 with 32 bytes from crypto/rand. Either way it holds the key
// as 64 hex digits, optionally followed by a newline (text, so that it can
// be backed up and restored by hand).
//
// A file that group or others may read or write is refused, with the chmod
// that fixes it; so is a file of any other length or content. Creation is
// atomic: two processes starting at once end up with the same key.
//
// Losing the file makes every sealed master secret unreadable: a database
// records the fingerprint of its key, and the application layer refuses to
// create a new key for a database that holds sealed secrets.
func LoadOrCreateMasterKey(dataDir string, env func(string) string) (MasterKey, error) {
	if dataDir == "" && (env == nil || env(EnvMasterKeyFile) == "") {
		return MasterKey{}, errors.New("load master key: no data directory")
	}
	path, named := MasterKeyPath(dataDir, env)
	k, err := ReadMasterKey(path)
	switch {
	case named && errors.Is(err, fs.ErrNotExist):
		return MasterKey{}, fmt.Errorf("master key file %s (named by %s) does not exist: restore it from backup, or unset %s to use %s in the data directory: %w",
			path, EnvMasterKeyFile, EnvMasterKeyFile, MasterKeyFileName, err)
	case !errors.Is(err, fs.ErrNotExist):
		return k, err
	}
	k, err = NewMasterKey()
	if err != nil {
		return k, err
	}
	if err := WriteMasterKeyFile(path, k); err != nil && !errors.Is(err, fs.ErrExist) {
		return MasterKey{}, err
	}
	return ReadMasterKey(path) // another process may have got there first
}

// maxKeyFile bounds what is read of a master key file.
const maxKeyFile = 256

// ReadMasterKey reads a master key file; a missing file is an error
// wrapping fs.ErrNotExist.
func ReadMasterKey(path string) (MasterKey, error) {
	var k MasterKey
	f, err := os.Open(path)
	if err != nil {
		return k, fmt.Errorf("read master key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return k, fmt.Errorf("read master key %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return k, fmt.Errorf("master key file %s: %w: it is not a regular file", path, ErrMasterKeyFormat)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return k, fmt.Errorf("%w: %s has mode %#o; run: chmod 600 %s", ErrInsecureFile, path, uint32(perm), path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return k, fmt.Errorf("read master key %s: %w", path, err)
	}
	text := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if len(text) != hex.EncodedLen(len(k)) {
		return k, fmt.Errorf("master key file %s: %w: want %d hex digits (%d bytes) and an optional newline, found %d bytes",
			path, ErrMasterKeyFormat, hex.EncodedLen(len(k)), len(k), len(b))
	}
	if _, err := hex.Decode(k[:], []byte(text)); err != nil {
		clear(k[:])
		return k, fmt.Errorf("master key file %s: %w: it holds a character that is not a hex digit", path, ErrMasterKeyFormat)
	}
	if k == (MasterKey{}) {
		return k, fmt.Errorf("master key file %s: %w: the key is all zeros", path, ErrMasterKeyFormat)
	}
	return k, nil
}

// WriteMasterKeyFile writes k to a new file at path (mode 0600, its
// directory created 0700 if missing): to a private temporary file first,
// synced, then linked into place, which fails with fs.ErrExist if the file
// exists (it is never overwritten).
func WriteMasterKeyFile(path string, k MasterKey) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create directory %s: %w", dir, err)
	}
	text := []byte(hex.EncodeToString(k[:]) + "\n")
	defer clear(text)
	tmp, err := os.CreateTemp(dir, ".master.key-*") // mode 0600
	if err != nil {
		return fmt.Errorf("create master key in %s: %w", dir, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(text); err != nil {
		tmp.Close()
		return fmt.Errorf("write master key %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write master key %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write master key %s: %w", tmp.Name(), err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		return fmt.Errorf("create master key %s: %w", path, err)
	}
	SyncDir(dir)
	return nil
}

// SyncDir makes the names in a directory durable (best effort).
func SyncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
