package sshd

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	gossh "golang.org/x/crypto/ssh"
)

// HostKeyFile is the host key's name in the data directory.
const HostKeyFile = "ssh_host_ed25519_key"

// LoadOrCreateHostKey reads the server's ed25519 host key from path, or
// creates it (mode 0600, never over an existing file) on first start. A
// key file that group or others can read, or a symlink in its place, is
// refused. It returns the key as PEM and its fingerprint, for clients to
// check.
func LoadOrCreateHostKey(path string) (pemBytes []byte, fingerprint string, err error) {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return createHostKey(path)
	case err != nil:
		return nil, "", fmt.Errorf("SSH host key %s: %w", path, err)
	case fi.Mode()&fs.ModeSymlink != 0 || !fi.Mode().IsRegular():
		return nil, "", fmt.Errorf("SSH host key %s is not a regular file: replace it with the key itself", path)
	case fi.Mode().Perm()&0o077 != 0:
		return nil, "", fmt.Errorf("SSH host key %s has mode %#o, readable by others: run chmod 600 %s", path, uint32(fi.Mode().Perm()), path)
	}
	pemBytes, err = os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("read the SSH host key: %w", err)
	}
	signer, err := gossh.ParsePrivateKey(pemBytes)
	if err != nil {
		return nil, "", fmt.Errorf("SSH host key %s: %w", path, err)
	}
	return pemBytes, gossh.FingerprintSHA256(signer.PublicKey()), nil
}

func createHostKey(path string) ([]byte, string, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, "", err
	}
	block, err := gossh.MarshalPrivateKey(priv, "keydesk host key")
	if err != nil {
		return nil, "", err
	}
	pemBytes := pem.EncodeToMemory(block)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, "", err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, "", fmt.Errorf("create the SSH host key: %w", err)
	}
	if _, err := f.Write(pemBytes); err != nil {
		f.Close()
		os.Remove(path)
		return nil, "", fmt.Errorf("write the SSH host key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, "", err
	}
	if err := f.Close(); err != nil {
		return nil, "", err
	}
	sshPub, err := gossh.NewPublicKey(pub)
	if err != nil {
		return nil, "", err
	}
	return pemBytes, gossh.FingerprintSHA256(sshPub), nil
}
