package simkey

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// FileExt is the extension of key files in a --sim-keys directory.
const FileExt = ".simkey"

// NewInDir creates a blank key with a fresh random serial such as
// "SIM-4F2A-91C3", saved as DIR/<serial>.simkey (mode 0600), with autosave to
// that file on. With a maker it gets an attestation from it naming that
// serial; with claimed != "" it claims that serial instead (a clone of
// another key, with an attestation of its own). Without a maker it cannot
// attest.
func NewInDir(dir string, m *Maker, claimed string) (*Key, error) {
	for range 16 {
		var b [4]byte
		rand.Read(b[:])
		serial := fmt.Sprintf("SIM-%02X%02X-%02X%02X", b[0], b[1], b[2], b[3])
		path := filepath.Join(dir, serial+FileExt)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue // serial taken: draw another
		}
		if err != nil {
			return nil, fmt.Errorf("creating a simulated key in %s: %w", dir, err)
		}
		f.Close()
		k := New(serial)
		if m != nil {
			claims := serial
			if claimed != "" {
				claims = claimed
			}
			if k, err = m.NewKeyClaiming(serial, claims); err != nil {
				os.Remove(path)
				return nil, fmt.Errorf("creating a simulated key in %s: %w", dir, err)
			}
		}
		if err := k.Save(path); err != nil {
			os.Remove(path)
			return nil, fmt.Errorf("creating a simulated key in %s: %w", dir, err)
		}
		k.SetAutoSave(path)
		return k, nil
	}
	return nil, fmt.Errorf("creating a simulated key in %s: no free serial found", dir)
}

// List returns the paths of the key files in dir, sorted.
func List(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("listing simulated keys: %w", err)
	}
	var paths []string
	for _, e := range entries {
		if e.Type().IsRegular() && filepath.Ext(e.Name()) == FileExt {
			paths = append(paths, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(paths)
	return paths, nil
}
