package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func keyIDPtr(v int64) *int64 { return &v }

// keyEmployee adds an employee for keys to point at.
func keyEmployee(t *testing.T, s *Store, name string) int64 {
	t.Helper()
	e := Employee{EmailNorm: strings.ToLower(name) + "@corp.example", Email: name + "@corp.example", DisplayName: name, Status: StatusActive, Source: SourceManual}
	insertEmployee(t, s, &e)
	return e.ID
}

func insertKeyT(t *testing.T, s *Store, k *Key) {
	t.Helper()
	update(t, s, func(ctx context.Context, tx *Tx) error { return tx.InsertKey(ctx, k) })
}

func getKey(t *testing.T, s *Store, serial string) *Key {
	t.Helper()
	k, err := s.KeyBySerial(context.Background(), serial)
	if err != nil {
		t.Fatalf("KeyBySerial(%s): %v", serial, err)
	}
	return k
}

// keyStoreSet is what the store fills in itself.
var keyStoreSet = []string{"ID", "Version", "CreatedAt", "UpdatedAt", "StatusChangedAt"}

func TestKeyRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	ann := keyEmployee(t, s, "Ann")
	bob := keyEmployee(t, s, "Bob")
	expires := time.Date(2025, 3, 17, 9, 0, 0, 123456789, time.UTC)
	seen := time.Date(2025, 3, 14, 8, 0, 0, 987654321, time.FixedZone("CET", 3600))

	full := Key{Serial: "YK-0001", Status: "reserved", Reason: "unlock", EmployeeID: keyIDPtr(ann), Model: "YubiKey 5 NFC",
		Firmware: "5.4.3", CodeHash: "hmac-sha256$v1$c2FsdA$bWFj", CodeExpiresAt: &expires, CodeAttempts: 2,
		SecretSealed: []byte{1, 0, 0xff, 0, 42}, PrevSecretSealed: []byte{7, 7}, AttestPub: []byte{4, 1, 2}, AttestMaker: "CN=Maker CA",
		DeviceState: "linked", LastSeenAt: &seen}
	requireAllSet(t, full, keyStoreSet...)
	k := full
	insertKeyT(t, s, &k)
	if k.ID == 0 || k.Version != 1 || k.CreatedAt.IsZero() || !k.UpdatedAt.Equal(k.CreatedAt) || !k.StatusChangedAt.Equal(k.CreatedAt) {
		t.Fatalf("after insert: ID %d, version %d, times %v/%v/%v; want an ID, version 1, all the insert time", k.ID, k.Version, k.CreatedAt, k.UpdatedAt, k.StatusChangedAt)
	}
	equalFields(t, "inserted", *getKey(t, s, "YK-0001"), k)

	// Every reader sees the same key.
	update(t, s, func(ctx context.Context, tx *Tx) error {
		for name, read := range map[string]func() (*Key, error){
			"Tx.KeyBySerial":    func() (*Key, error) { return tx.KeyBySerial(ctx, "YK-0001") },
			"Tx.KeyByID":        func() (*Key, error) { return tx.KeyByID(ctx, k.ID) },
			"Tx.KeyForEmployee": func() (*Key, error) { return tx.KeyForEmployee(ctx, ann) },
		} {
			got, err := read()
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			equalFields(t, name, *got, k)
		}
		ks, err := tx.KeysForEmployees(ctx, []int64{ann})
		if err != nil || len(ks) != 1 {
			t.Fatalf("KeysForEmployees = %d keys, %v; want 1", len(ks), err)
		}
		equalFields(t, "KeysForEmployees", ks[0], k)
		return nil
	})
	views, err := s.Keys(ctx)
	if err != nil || len(views) != 1 {
		t.Fatalf("Keys = %d, %v; want 1", len(views), err)
	}
	equalFields(t, "Keys", views[0].Key, k)
	if views[0].OwnerName != "Ann" || views[0].OwnerEmail != "Ann@corp.example" {
		t.Errorf("owner = %q <%q>, want Ann <Ann@corp.example>", views[0].OwnerName, views[0].OwnerEmail)
	}

	// Change every field UpdateKey writes; the status stays the same.
	expires2 := expires.Add(72 * time.Hour)
	u := *getKey(t, s, "YK-0001")
	u.Reason, u.EmployeeID, u.Model, u.Firmware = "", keyIDPtr(bob), "YubiKey 5C", "5.7.1"
	u.CodeHash, u.CodeExpiresAt, u.CodeAttempts, u.SecretSealed = "hmac-sha256$v1$b3RoZXI$bWFjMg", &expires2, 0, []byte{9, 8, 7}
	u.PrevSecretSealed, u.AttestPub, u.AttestMaker = []byte{6}, []byte{4, 9}, AttestUnattested
	update(t, s, func(ctx context.Context, tx *Tx) error { return tx.UpdateKey(ctx, &u) })
	if u.Version != 2 || !u.UpdatedAt.After(k.UpdatedAt) {
		t.Errorf("after update: version %d, UpdatedAt %v; want 2, after %v", u.Version, u.UpdatedAt, k.UpdatedAt)
	}
	if !u.StatusChangedAt.Equal(k.StatusChangedAt) {
		t.Errorf("StatusChangedAt moved to %v although the status did not change", u.StatusChangedAt)
	}
	equalFields(t, "updated", *getKey(t, s, "YK-0001"), u)

	// A status change moves StatusChangedAt; clearing gives NULLs back.
	c := u
	c.Status, c.Reason, c.CodeHash, c.CodeExpiresAt, c.CodeAttempts, c.SecretSealed = "deactivated", "withdrawal", "", nil, 0, nil
	c.PrevSecretSealed, c.AttestPub = nil, nil
	update(t, s, func(ctx context.Context, tx *Tx) error { return tx.UpdateKey(ctx, &c) })
	if c.Version != 3 || !c.StatusChangedAt.Equal(c.UpdatedAt) || !c.StatusChangedAt.After(u.StatusChangedAt) {
		t.Errorf("after a status change: version %d, StatusChangedAt %v, UpdatedAt %v", c.Version, c.StatusChangedAt, c.UpdatedAt)
	}
	got := getKey(t, s, "YK-0001")
	equalFields(t, "cleared", *got, c)
	if got.SecretSealed != nil || got.CodeExpiresAt != nil {
		t.Errorf("cleared fields read back as %v, %v; want nil", got.SecretSealed, got.CodeExpiresAt)
	}
	var nulls int
	if err := s.db.QueryRowContext(ctx, `SELECT (code_hash IS NULL) + (code_expires_at IS NULL) + (secret_sealed IS NULL) + (prev_secret_sealed IS NULL) + (attest_pub IS NULL) FROM keys WHERE id = ?`, c.ID).Scan(&nulls); err != nil || nulls != 5 {
		t.Errorf("cleared columns: %d NULLs, %v; want 5", nulls, err)
	}
}

func TestKeyInStockRoundTrip(t *testing.T) {
	s, _ := openStore(t)
	k := Key{Serial: "SN 42/ä", Status: "ready"}
	insertKeyT(t, s, &k)
	got := getKey(t, s, "SN 42/ä")
	equalFields(t, "ready key", *got, k)
	if got.EmployeeID != nil || got.CodeExpiresAt != nil || got.LastSeenAt != nil || got.SecretSealed != nil || got.CodeHash != "" {
		t.Errorf("empty fields read back set: %+v", got)
	}
	views, err := s.Keys(context.Background())
	if err != nil || len(views) != 1 || views[0].OwnerName != "" || views[0].OwnerEmail != "" {
		t.Errorf("Keys = %+v, %v; want one key without owner", views, err)
	}
}

// TestKeyAttemptsSurviveReopen: the activation attempt counter is in the
// database, so a restart does not give a guesser fresh attempts.
func TestKeyAttemptsSurviveReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), FileName)
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	emp := keyEmployee(t, s, "Cy")
	exp := time.Now().Add(time.Hour)
	k := Key{Serial: "YK-7", Status: "reserved", EmployeeID: &emp, CodeHash: "h", CodeExpiresAt: &exp}
	insertKeyT(t, s, &k)
	k.CodeAttempts = 2
	update(t, s, func(ctx context.Context, tx *Tx) error { return tx.UpdateKey(ctx, &k) })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := getKey(t, s, "YK-7"); got.CodeAttempts != 2 || got.CodeHash != "h" {
		t.Errorf("after reopening: attempts %d, hash kept %v; want 2, true", got.CodeAttempts, got.CodeHash == "h")
	}
}

func TestKeyNotFound(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	emp := keyEmployee(t, s, "Dee")
	// A deactivated key is not the employee's key.
	insertKeyT(t, s, &Key{Serial: "OLD", Status: "deactivated", EmployeeID: &emp})
	checks := map[string]func(tx *Tx) error{
		"Tx.KeyBySerial": func(tx *Tx) error { _, err := tx.KeyBySerial(ctx, "nope"); return err },
		"Tx.KeyByID":     func(tx *Tx) error { _, err := tx.KeyByID(ctx, 999); return err },
		"KeyForEmployee": func(tx *Tx) error { _, err := tx.KeyForEmployee(ctx, emp); return err },
		"UpdateKey": func(tx *Tx) error {
			return tx.UpdateKey(ctx, &Key{ID: 999, Serial: "nope", Status: "ready", Version: 1})
		},
		"Tx.TouchKeySeen": func(tx *Tx) error {
			return tx.TouchKeySeen(ctx, "nope", time.Now(), "")
		},
	}
	for name, fn := range checks {
		err := s.Update(ctx, fn)
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: error = %v, want ErrNotFound", name, err)
		}
	}
	if _, err := s.KeyBySerial(ctx, "nope"); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "nope") {
		t.Errorf("Store.KeyBySerial: error = %v, want ErrNotFound naming the serial", err)
	}
	if err := s.TouchKeySeen(ctx, "nope", time.Now(), ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("Store.TouchKeySeen: error = %v, want ErrNotFound", err)
	}
	if ks, err := s.Keys(ctx); err != nil || len(ks) != 1 {
		t.Errorf("Keys = %d, %v; want the one key", len(ks), err)
	}
}

func TestKeyDuplicateSerial(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	insertKeyT(t, s, &Key{Serial: "YK-1", Status: "ready"})
	err := s.Update(ctx, func(tx *Tx) error { return tx.InsertKey(ctx, &Key{Serial: "YK-1", Status: "ready"}) })
	if !errors.Is(err, ErrSerialExists) || !strings.Contains(err.Error(), "YK-1") {
		t.Errorf("duplicate serial: error = %v, want ErrSerialExists naming YK-1", err)
	}
	if errors.Is(err, ErrEmployeeHasKey) {
		t.Error("duplicate serial reported as an employee conflict")
	}
}

// TestOneKeyInUsePerEmployee: a second key in use for an employee fails,
// whichever way it is written; keys no longer in use do not count.
func TestOneKeyInUsePerEmployee(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		first  string
		blocks bool
	}{
		{"reserved", true},
		{"active", true},
		{"locked", true},
		{"suspended", true},
		{"deactivated", false},
		{"compromised", false},
	}
	for _, tt := range tests {
		t.Run(tt.first, func(t *testing.T) {
			s, _ := openStore(t)
			emp := keyEmployee(t, s, "Eve")
			other := keyEmployee(t, s, "Fay")
			insertKeyT(t, s, &Key{Serial: "FIRST", Status: tt.first, EmployeeID: &emp})
			insertKeyT(t, s, &Key{Serial: "OTHERS", Status: "active", EmployeeID: &other}) // another employee's key never interferes

			// By insert.
			err := s.Update(ctx, func(tx *Tx) error {
				return tx.InsertKey(ctx, &Key{Serial: "SECOND", Status: "reserved", EmployeeID: &emp})
			})
			checkEmployeeConflict(t, "insert", err, tt.blocks, tt.first)

			// By update: assigning a stock key.
			insertKeyT(t, s, &Key{Serial: "THIRD", Status: "ready"})
			err = s.Update(ctx, func(tx *Tx) error {
				k, err := tx.KeyBySerial(ctx, "THIRD")
				if err != nil {
					return err
				}
				k.Status, k.EmployeeID = "reserved", &emp
				return tx.UpdateKey(ctx, k)
			})
			if tt.blocks {
				checkEmployeeConflict(t, "update", err, true, tt.first)
			} else if !errors.Is(err, ErrEmployeeHasKey) {
				// SECOND already took the slot.
				t.Errorf("update: error = %v, want ErrEmployeeHasKey naming SECOND", err)
			}
		})
	}
}

func checkEmployeeConflict(t *testing.T, what string, err error, blocks bool, firstStatus string) {
	t.Helper()
	if !blocks {
		if err != nil {
			t.Errorf("%s: a %s key blocked a new one: %v", what, firstStatus, err)
		}
		return
	}
	if !errors.Is(err, ErrEmployeeHasKey) {
		t.Fatalf("%s: error = %v, want ErrEmployeeHasKey", what, err)
	}
	for _, w := range []string{"FIRST", firstStatus, "withdraw"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: error %q does not name %q", what, err, w)
		}
	}
}

func TestKeyConstraints(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	emp := keyEmployee(t, s, "Gil")
	exp := time.Now()
	tests := []struct {
		name string
		key  Key
	}{
		{"unknown status", Key{Serial: "A", Status: "lost"}},
		{"empty serial", Key{Serial: "", Status: "ready"}},
		{"reserved without employee", Key{Serial: "B", Status: "reserved"}},
		{"active without employee", Key{Serial: "C", Status: "active"}},
		{"ready with employee", Key{Serial: "D", Status: "ready", EmployeeID: &emp}},
		{"code without expiry", Key{Serial: "E", Status: "reserved", EmployeeID: &emp, CodeHash: "h"}},
		{"expiry without code", Key{Serial: "F", Status: "reserved", EmployeeID: &emp, CodeExpiresAt: &exp}},
		{"negative attempts", Key{Serial: "G", Status: "reserved", EmployeeID: &emp, CodeAttempts: -1}},
		{"missing employee", Key{Serial: "H", Status: "reserved", EmployeeID: keyIDPtr(4242)}},
	}
	for _, tt := range tests {
		k := tt.key
		if err := s.Update(ctx, func(tx *Tx) error { return tx.InsertKey(ctx, &k) }); err == nil {
			t.Errorf("%s: insert succeeded", tt.name)
		}
	}
	if ks, _ := s.Keys(ctx); len(ks) != 0 {
		t.Errorf("%d keys written by refused inserts", len(ks))
	}
}

// countingQuerier counts the queries run through it.
type countingQuerier struct {
	q querier
	n int
}

func (c *countingQuerier) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	c.n++
	return c.q.QueryContext(ctx, query, args...)
}

func TestKeysForEmployees(t *testing.T) {
	s, _ := openStore(t)
	var emps []int64
	for i := 0; i < 6; i++ {
		emps = append(emps, keyEmployee(t, s, fmt.Sprintf("E%d", i)))
	}
	// e0: active; e1: locked, plus an old deactivated one; e2: suspended;
	// e3: compromised only; e4: reserved; e5: none. Plus a stock key.
	for _, k := range []Key{
		{Serial: "K-E0", Status: "active", EmployeeID: &emps[0]},
		{Serial: "K-E1", Status: "locked", EmployeeID: &emps[1]},
		{Serial: "K-E1-OLD", Status: "deactivated", EmployeeID: &emps[1]},
		{Serial: "K-E2", Status: "suspended", EmployeeID: &emps[2]},
		{Serial: "K-E3", Status: "compromised", EmployeeID: &emps[3]},
		{Serial: "A-E4", Status: "reserved", EmployeeID: &emps[4]},
		{Serial: "STOCK", Status: "ready"},
	} {
		insertKeyT(t, s, &k)
	}
	// Many ids, beyond SQLite's limit on variables in one statement.
	many := []int64{emps[4], emps[1], emps[3], emps[5], 424242}
	for i := int64(0); i < 40000; i++ {
		many = append(many, 1_000_000+i)
	}
	tests := []struct {
		name string
		ids  []int64
		want []string
	}{
		{"none", nil, nil},
		{"one", []int64{emps[0]}, []string{"K-E0"}},
		{"in use only, by serial", many, []string{"A-E4", "K-E1"}},
		{"all", emps, []string{"A-E4", "K-E0", "K-E1", "K-E2"}},
		{"no keys", []int64{emps[5], emps[3]}, nil},
	}
	for _, tt := range tests {
		update(t, s, func(ctx context.Context, tx *Tx) error {
			cq := &countingQuerier{q: tx.tx}
			ks, err := keysForEmployees(ctx, cq, tt.ids)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			var got []string
			for _, k := range ks {
				got = append(got, k.Serial)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("%s: keys %v, want %v", tt.name, got, tt.want)
			}
			if wantQueries := min(1, len(tt.ids)); cq.n != wantQueries {
				t.Errorf("%s: %d queries, want %d", tt.name, cq.n, wantQueries)
			}
			// The exported method gives the same.
			ks2, err := tx.KeysForEmployees(ctx, tt.ids)
			if err != nil || len(ks2) != len(ks) {
				t.Errorf("%s: Tx.KeysForEmployees = %d keys, %v", tt.name, len(ks2), err)
			}
			return nil
		})
	}
}

func TestKeysListing(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	for i := 0; i < 30; i++ {
		emp := keyEmployee(t, s, fmt.Sprintf("P%02d", i))
		insertKeyT(t, s, &Key{Serial: fmt.Sprintf("Z-%02d", 29-i), Status: "active", EmployeeID: &emp})
	}
	insertKeyT(t, s, &Key{Serial: "A-STOCK", Status: "ready"})
	cq := &countingQuerier{q: s.db}
	views, err := listKeys(ctx, cq, `ORDER BY k.serial`)
	if err != nil {
		t.Fatal(err)
	}
	if cq.n != 1 {
		t.Errorf("listing 31 keys ran %d queries, want 1", cq.n)
	}
	if len(views) != 31 || views[0].Serial != "A-STOCK" || views[0].OwnerName != "" {
		t.Fatalf("first of %d keys = %+v, want the stock key without owner", len(views), views[0])
	}
	for i, v := range views[1:] {
		if want := fmt.Sprintf("Z-%02d", i); v.Serial != want {
			t.Errorf("key %d = %s, want %s (by serial)", i+1, v.Serial, want)
		}
		if want := fmt.Sprintf("P%02d", 29-i); v.OwnerName != want || v.OwnerEmail != want+"@corp.example" {
			t.Errorf("key %s owner = %s <%s>, want %s", v.Serial, v.OwnerName, v.OwnerEmail, want)
		}
	}
}

func TestTouchKeySeen(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	insertKeyT(t, s, &Key{Serial: "T1", Status: "ready"})
	before := getKey(t, s, "T1")
	t1 := time.Date(2025, 5, 1, 10, 0, 0, 5, time.UTC)
	if err := s.TouchKeySeen(ctx, "T1", t1, "linked"); err != nil {
		t.Fatal(err)
	}
	got := getKey(t, s, "T1")
	if got.LastSeenAt == nil || !got.LastSeenAt.Equal(t1) || got.DeviceState != "linked" {
		t.Errorf("LastSeenAt = %v, device state %q; want %v, linked", got.LastSeenAt, got.DeviceState, t1)
	}
	if got.Version != before.Version || !got.UpdatedAt.Equal(before.UpdatedAt) {
		t.Errorf("touch changed version %d->%d or UpdatedAt", before.Version, got.Version)
	}
	// Never backwards.
	if err := s.TouchKeySeen(ctx, "T1", t1.Add(-time.Hour), ""); err != nil {
		t.Fatal(err)
	}
	if got := getKey(t, s, "T1"); !got.LastSeenAt.Equal(t1) || got.DeviceState != "linked" {
		t.Errorf("an older sighting moved LastSeenAt back to %v (device state %q)", got.LastSeenAt, got.DeviceState)
	}
	// A key read before the touch can still be updated (the touch is not a
	// change of the key), and the update keeps the newer sighting.
	t2 := t1.Add(time.Hour)
	if err := s.TouchKeySeen(ctx, "T1", t2, "locked"); err != nil {
		t.Fatal(err)
	}
	stale := *got
	stale.Model = "new model"
	update(t, s, func(ctx context.Context, tx *Tx) error { return tx.UpdateKey(ctx, &stale) })
	if stale.LastSeenAt == nil || !stale.LastSeenAt.Equal(t2) {
		t.Errorf("UpdateKey left LastSeenAt %v in the struct, want the stored %v", stale.LastSeenAt, t2)
	}
	if got := getKey(t, s, "T1"); !got.LastSeenAt.Equal(t2) || got.Model != "new model" || got.DeviceState != "locked" {
		t.Errorf("after update: LastSeenAt %v, model %q, device state %q", got.LastSeenAt, got.Model, got.DeviceState)
	}
}

// TestUpdateKeyStaleVersion: a key read before another change cannot
// overwrite that change.
func TestUpdateKeyStaleVersion(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	emp := keyEmployee(t, s, "Hal")
	insertKeyT(t, s, &Key{Serial: "S1", Status: "reserved", EmployeeID: &emp})
	a := getKey(t, s, "S1") // two consoles read the key
	b := getKey(t, s, "S1")
	a.Status = "active"
	update(t, s, func(ctx context.Context, tx *Tx) error { return tx.UpdateKey(ctx, a) })
	b.Status, b.Reason = "locked", "invalid-activation-code"
	err := s.Update(ctx, func(tx *Tx) error { return tx.UpdateKey(ctx, b) })
	if !errors.Is(err, ErrKeyChanged) || !strings.Contains(err.Error(), "S1") {
		t.Fatalf("stale update: error = %v, want ErrKeyChanged naming S1", err)
	}
	if got := getKey(t, s, "S1"); got.Status != "active" || got.Version != 2 {
		t.Errorf("after the refused update: status %s, version %d; want active, 2", got.Status, got.Version)
	}
}

// TestConcurrentActivation: two consoles activate the same Reserved key at
// once, each reading and checking it inside its own Update. Exactly one
// succeeds; the other sees the key already Active.
func TestConcurrentActivation(t *testing.T) {
	ctx := context.Background()
	// The store's own clock: the test clock of openStore is not safe for
	// concurrent transactions.
	s, err := Open(ctx, filepath.Join(t.TempDir(), FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	errAlreadyActive := errors.New("key is not reserved any more")

	for round := 0; round < 20; round++ {
		emp := keyEmployee(t, s, fmt.Sprintf("R%d", round))
		serial := fmt.Sprintf("RACE-%d", round)
		exp := time.Now().Add(time.Hour)
		insertKeyT(t, s, &Key{Serial: serial, Status: "reserved", EmployeeID: &emp, CodeHash: "h", CodeExpiresAt: &exp})

		const consoles = 2
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			errs  = make([]error, consoles)
			seen  = make([]string, consoles)
		)
		for i := 0; i < consoles; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = s.Update(ctx, func(tx *Tx) error {
					k, err := tx.KeyBySerial(ctx, serial)
					if err != nil {
						return err
					}
					seen[i] = k.Status
					if k.Status != "reserved" {
						return errAlreadyActive
					}
					time.Sleep(5 * time.Millisecond) // widen the window between check and write
					k.Status, k.CodeHash, k.CodeExpiresAt, k.CodeAttempts = "active", "", nil, 0
					return tx.UpdateKey(ctx, k)
				})
			}()
		}
		close(start)
		wg.Wait()

		won, lost := 0, 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
				if seen[i] != "reserved" {
					t.Errorf("round %d: the winner saw %s", round, seen[i])
				}
			case errors.Is(err, errAlreadyActive):
				lost++
				if seen[i] != "active" {
					t.Errorf("round %d: the loser saw %s, want active (the winner's result)", round, seen[i])
				}
			default:
				t.Fatalf("round %d: console %d: unexpected error %v", round, i, err)
			}
		}
		if won != 1 || lost != 1 {
			t.Fatalf("round %d: %d activations succeeded and %d were refused; want exactly one of each", round, won, lost)
		}
		if k := getKey(t, s, serial); k.Status != "active" || k.Version != 2 {
			t.Errorf("round %d: key %s at version %d, want active at 2 (one update)", round, k.Status, k.Version)
		}
	}
}

func TestActivationProgress(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	var keyID int64
	update(t, s, func(ctx context.Context, tx *Tx) error {
		k := &Key{Serial: "K1", Status: "ready"}
		if err := tx.InsertKey(ctx, k); err != nil {
			return err
		}
		keyID = k.ID
		return nil
	})
	if a, err := s.Activation(ctx, keyID); err != nil || a != nil {
		t.Fatalf("Activation before any = %+v, %v; want none", a, err)
	}
	accepted := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	update(t, s, func(ctx context.Context, tx *Tx) error {
		return tx.PutActivation(ctx, &Activation{KeyID: keyID, Step: "check-code", KeyVersion: 3, Actor: "alice", AcceptedAt: accepted})
	})
	update(t, s, func(ctx context.Context, tx *Tx) error {
		return tx.PutActivation(ctx, &Activation{KeyID: keyID, Step: "give-secret", KeyVersion: 3, Actor: "alice", AcceptedAt: accepted})
	})
	a, err := s.Activation(ctx, keyID)
	if err != nil || a == nil || a.Step != "give-secret" || a.KeyVersion != 3 || a.Actor != "alice" || !a.AcceptedAt.Equal(accepted) || a.UpdatedAt.IsZero() {
		t.Fatalf("Activation = %+v, %v; want the latest step replacing the first", a, err)
	}
	update(t, s, func(ctx context.Context, tx *Tx) error { return tx.DeleteActivation(ctx, keyID) })
	if a, err := s.Activation(ctx, keyID); err != nil || a != nil {
		t.Errorf("Activation after delete = %+v, %v", a, err)
	}
	err = s.Update(ctx, func(tx *Tx) error {
		return tx.PutActivation(ctx, &Activation{KeyID: keyID + 100, Step: "check-code", AcceptedAt: accepted})
	})
	if err == nil {
		t.Error("progress for a key that does not exist was recorded")
	}
}

func TestSetKeyModelKeepsTheVersion(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	k := &Key{Serial: "K1", Status: "ready", Model: "old"}
	update(t, s, func(ctx context.Context, tx *Tx) error { return tx.InsertKey(ctx, k) })
	update(t, s, func(ctx context.Context, tx *Tx) error { return tx.SetKeyModel(ctx, "K1", "KeyDesk Sim", "2.0") })
	got, err := s.KeyBySerial(ctx, "K1")
	if err != nil || got.Model != "KeyDesk Sim" || got.Firmware != "2.0" || got.Version != k.Version {
		t.Errorf("after SetKeyModel: %+v %v; want the model recorded and the version %d kept", got, err, k.Version)
	}
	if err := s.Update(ctx, func(tx *Tx) error { return tx.SetKeyModel(ctx, "NOPE", "m", "f") }); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetKeyModel of an unknown key: %v", err)
	}
}
