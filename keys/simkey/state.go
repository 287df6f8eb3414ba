package simkey

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"keydesk/keys/proto"
)

// Key identity defaults.
const (
	Model        = "KeyDesk Sim"
	Firmware     = "1.0.0"
	DefaultSlots = 8
	fileVersion  = 2 // 2: attestation; version 1 files (no attestation) still load
)

// state is what the key keeps in "flash": everything that survives an
// unplug and is written by Save. It holds the key's secrets.
type state struct {
	Version    int              `json:"version"`
	Serial     string           `json:"serial"`
	Model      string           `json:"model"`
	Firmware   string           `json:"firmware"`
	State      proto.KeyState   `json:"state"`
	LockedBy   proto.LockReason `json:"locked_by,omitempty"`
	Master     []byte           `json:"master,omitempty"`
	PINHash    []byte           `json:"pin_hash,omitempty"`
	PINRetries int              `json:"pin_retries"`
	Slots      []slot           `json:"slots"`
	// The attestation key (PKCS#8) and its certificate chain (DER, the
	// attestation certificate first); none for a key that cannot attest.
	// They survive WIPE and LINK: they are the key's identity.
	AttestKey   []byte   `json:"attest_key,omitempty"`
	AttestChain [][]byte `json:"attest_chain,omitempty"`
}

type slot struct {
	Current *cred `json:"current,omitempty"`
	Pending *cred `json:"pending,omitempty"`
}

type cred struct {
	Login    string `json:"login"`
	Password string `json:"password"`
}

func blankState(serial string, slots int) state {
	return state{
		Version:    fileVersion,
		Serial:     serial,
		Model:      Model,
		Firmware:   Firmware,
		State:      proto.StateBlank,
		PINRetries: proto.MaxPINRetries,
		Slots:      make([]slot, slots),
	}
}

// blanked is the state after WIPE: blank, with the same serial, slots and
// attestation.
func (s state) blanked() state {
	b := blankState(s.Serial, len(s.Slots))
	b.AttestKey, b.AttestChain = s.AttestKey, s.AttestChain
	return b
}

func (s state) clone() state {
	c := s
	c.Master = bytes.Clone(s.Master)
	c.PINHash = bytes.Clone(s.PINHash)
	c.Slots = make([]slot, len(s.Slots))
	for i, sl := range s.Slots {
		if sl.Current != nil {
			v := *sl.Current
			c.Slots[i].Current = &v
		}
		if sl.Pending != nil {
			v := *sl.Pending
			c.Slots[i].Pending = &v
		}
	}
	return c
}

func (s state) freeSlots() int {
	n := 0
	for _, sl := range s.Slots {
		if sl.Current == nil && sl.Pending == nil {
			n++
		}
	}
	return n
}

// check validates a state read from a file. Messages never quote secrets.
func (s state) check() error {
	switch {
	case s.Version != 1 && s.Version != fileVersion:
		return fmt.Errorf("file version %d, want %d", s.Version, fileVersion)
	case (s.AttestKey == nil) != (len(s.AttestChain) == 0):
		return errors.New("an attestation key without its certificate, or the reverse")
	case s.AttestKey != nil && parseAttestKey(s.AttestKey) == nil:
		return errors.New("an attestation key that is not a P-256 key")
	case s.Serial == "":
		return errors.New("no serial")
	case !s.State.Valid():
		return fmt.Errorf("state %q", s.State)
	case len(s.Slots) < 1 || len(s.Slots) > 255:
		return fmt.Errorf("%d slots, want 1..255", len(s.Slots))
	case s.PINRetries < 0 || s.PINRetries > proto.MaxPINRetries:
		return fmt.Errorf("PIN retries %d", s.PINRetries)
	case s.State == proto.StateBlank && (s.Master != nil || s.PINHash != nil || s.freeSlots() != len(s.Slots)):
		return errors.New("a blank key with a secret or credentials")
	case s.State != proto.StateBlank && len(s.Master) != proto.MasterSecretSize:
		return errors.New("a linked key without a valid master secret")
	}
	return nil
}

// save writes the state atomically (temporary file in the same directory,
// fsync, rename) with mode 0600: the file holds the key's secrets.
func (s state) save(path string) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("saving simulated key %s: encoding: %w", s.Serial, err)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".simkey-*.tmp")
	if err != nil {
		return fmt.Errorf("saving simulated key %s: %w", s.Serial, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op after the rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("saving simulated key %s: %w", s.Serial, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("saving simulated key %s: %w", s.Serial, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("saving simulated key %s: %w", s.Serial, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("saving simulated key %s: %w", s.Serial, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("saving simulated key %s: %w", s.Serial, err)
	}
	return nil
}

func loadState(path string) (state, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return state{}, fmt.Errorf("loading simulated key: %w", err)
	}
	var s state
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		// json's messages can quote input: do not pass the file's text on.
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return state{}, fmt.Errorf("loading simulated key %s: invalid JSON at offset %d", path, se.Offset)
		case errors.As(err, &te):
			return state{}, fmt.Errorf("loading simulated key %s: field %q has the wrong type", path, te.Field)
		}
		return state{}, fmt.Errorf("loading simulated key %s: invalid file", path)
	}
	if err := s.check(); err != nil {
		return state{}, fmt.Errorf("loading simulated key %s: %w", path, err)
	}
	return s, nil
}
