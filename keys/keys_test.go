package keys_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"keydesk/keys"
	"keydesk/store"
)

func openStore(t *testing.T) (*store.Store, string) {
	t.Helper()
	dir := t.TempDir()
	s, err := store.Open(context.Background(), filepath.Join(dir, store.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

func addEmployee(t *testing.T, s *store.Store, email string) int64 {
	t.Helper()
	e := store.Employee{EmailNorm: email, Email: email, DisplayName: email, Status: store.StatusActive, Source: store.SourceManual}
	if err := s.Update(context.Background(), func(tx *store.Tx) error { return tx.InsertEmployee(context.Background(), &e) }); err != nil {
		t.Fatal(err)
	}
	return e.ID
}

// TestStoreAgreesWithStatuses: the database accepts exactly this package's
// statuses, and its one-key-per-employee index counts exactly the statuses
// for which Status.Assigned is true.
func TestStoreAgreesWithStatuses(t *testing.T) {
	ctx := context.Background()
	for _, st := range keys.Statuses() {
		t.Run(string(st), func(t *testing.T) {
			s, _ := openStore(t)
			emp := addEmployee(t, s, "x@example.com")
			k := store.Key{Serial: "FIRST", Status: string(st)}
			if st != keys.StatusReady {
				k.EmployeeID = &emp
			}
			if err := s.Update(ctx, func(tx *store.Tx) error { return tx.InsertKey(ctx, &k) }); err != nil {
				t.Fatalf("the store refuses status %s: %v", st, err)
			}
			second := store.Key{Serial: "SECOND", Status: string(keys.StatusReserved), EmployeeID: &emp}
			err := s.Update(ctx, func(tx *store.Tx) error { return tx.InsertKey(ctx, &second) })
			if blocked := errors.Is(err, store.ErrEmployeeHasKey); blocked != st.Assigned() {
				t.Errorf("a %s key blocks a second key: %v (error %v); Assigned() = %v", st, blocked, err, st.Assigned())
			}
		})
	}
	s, _ := openStore(t)
	err := s.Update(ctx, func(tx *store.Tx) error { return tx.InsertKey(ctx, &store.Key{Serial: "X", Status: "missing"}) })
	if err == nil {
		t.Error("the store accepts a status this package does not know")
	}
}

// TestAssignAndActivateWithStore plays the application layer: assign a key
// (code hash and sealed secret bound to the row), three activation attempts
// across reopened stores, and checks that neither the code nor the secret
// is anywhere in the database files.
func TestAssignAndActivateWithStore(t *testing.T) {
	ctx := context.Background()
	s, dir := openStore(t)
	mk, err := keys.LoadOrCreateMasterKey(filepath.Join(dir, "secrets"), nil)
	if err != nil {
		t.Fatal(err)
	}
	pepper := mk.Derive(keys.PurposeCodePepper)
	emp := addEmployee(t, s, "ann@example.com")
	k := store.Key{Serial: "YK-100", Status: string(keys.StatusReady)}
	if err := s.Update(ctx, func(tx *store.Tx) error { return tx.InsertKey(ctx, &k) }); err != nil {
		t.Fatal(err)
	}

	// Assign: Ready -> Reserved, with a code and a sealed secret.
	code, err := keys.NewCode()
	if err != nil {
		t.Fatal(err)
	}
	secret, err := keys.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	err = s.Update(ctx, func(tx *store.Tx) error {
		key, err := tx.KeyBySerial(ctx, "YK-100")
		if err != nil {
			return err
		}
		to, reason, err := keys.Apply(keys.Status(key.Status), keys.ActionAssign, "")
		if err != nil {
			return err
		}
		h, err := keys.HashCode(code, pepper, keys.SecretBinding(key.ID, key.Serial))
		if err != nil {
			return err
		}
		sealed, err := mk.Seal(secret, keys.SecretBinding(key.ID, key.Serial))
		if err != nil {
			return err
		}
		exp := tx.Now().Add(72 * time.Hour)
		key.Status, key.Reason, key.EmployeeID = string(to), string(reason), &emp
		key.CodeHash, key.CodeExpiresAt, key.CodeAttempts, key.SecretSealed = string(h), &exp, 0, sealed
		return tx.UpdateKey(ctx, key)
	})
	if err != nil {
		t.Fatal(err)
	}

	// A wrong code, committed (the counter must survive), then the right one.
	wrong, _ := keys.ParseCode("000000")
	if wrong.String() == code.String() {
		wrong, _ = keys.ParseCode("000001")
	}
	attempt := func(c keys.Code) keys.Verdict {
		var v keys.Verdict
		err := s.Update(ctx, func(tx *store.Tx) error {
			key, err := tx.KeyBySerial(ctx, "YK-100")
			if err != nil {
				return err
			}
			if _, err := keys.Transition(keys.Status(key.Status), keys.ActionActivate); err != nil {
				return err
			}
			st := keys.CodeState{Hash: keys.CodeHash(key.CodeHash), Attempts: key.CodeAttempts, Binding: keys.SecretBinding(key.ID, key.Serial)}
			if key.CodeExpiresAt != nil {
				st.ExpiresAt = *key.CodeExpiresAt
			}
			a := keys.CheckCode(st, c, pepper, tx.Now())
			v = a.Verdict
			key.CodeAttempts = a.Attempts
			if a.Verdict == keys.CodeAccepted {
				got, err := mk.Open(key.SecretSealed, keys.SecretBinding(key.ID, key.Serial))
				if err != nil || !bytes.Equal(got, secret) {
					t.Errorf("the sealed secret does not open to the assigned one: %v", err)
				}
				to, reason, err := keys.Apply(keys.Status(key.Status), keys.ActionActivate, "")
				if err != nil {
					return err
				}
				key.Status, key.Reason, key.CodeHash, key.CodeExpiresAt, key.CodeAttempts = string(to), string(reason), "", nil, 0
			}
			return tx.UpdateKey(ctx, key)
		})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if v := attempt(wrong); v != keys.CodeWrong {
		t.Fatalf("wrong code: verdict %v", v)
	}
	if got, _ := s.KeyBySerial(ctx, "YK-100"); got.CodeAttempts != 1 {
		t.Errorf("attempts after a wrong code = %d, want 1", got.CodeAttempts)
	}

	// Nothing secret in the database files (WAL included) at this point.
	files, _ := filepath.Glob(filepath.Join(dir, store.FileName+"*"))
	if len(files) == 0 {
		t.Fatal("no database files found")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		digits := []byte(code.String()[:3] + code.String()[4:])
		if bytes.Contains(b, digits) || bytes.Contains(b, []byte(code.String())) {
			t.Errorf("%s contains the activation code", filepath.Base(f))
		}
		if bytes.Contains(b, secret) {
			t.Errorf("%s contains the master secret", filepath.Base(f))
		}
		if bytes.Contains(b, mk.Derive(keys.PurposeSecretSeal)) || bytes.Contains(b, pepper) {
			t.Errorf("%s contains a sub-key", filepath.Base(f))
		}
	}

	if v := attempt(code); v != keys.CodeAccepted {
		t.Fatalf("right code: verdict %v", v)
	}
	got, _ := s.KeyBySerial(ctx, "YK-100")
	if got.Status != string(keys.StatusActive) || got.CodeHash != "" || got.CodeExpiresAt != nil {
		t.Errorf("after activation: status %s, code kept %v", got.Status, got.CodeHash != "")
	}
	// A second activation is refused by the table.
	err = s.Update(ctx, func(tx *store.Tx) error {
		key, err := tx.KeyBySerial(ctx, "YK-100")
		if err != nil {
			return err
		}
		_, err = keys.Transition(keys.Status(key.Status), keys.ActionActivate)
		return err
	})
	if !errors.Is(err, keys.ErrForbidden) {
		t.Errorf("second activation: error = %v, want ErrForbidden", err)
	}
}
