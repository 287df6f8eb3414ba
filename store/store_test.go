package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testClock is a deterministic clock: every call is one second later.
type testClock struct{ t time.Time }

func newTestClock() *testClock {
	return &testClock{t: time.Date(2025, 3, 14, 9, 26, 53, 589793238, time.UTC)}
}

func (c *testClock) now() time.Time {
	c.t = c.t.Add(time.Second)
	return c.t
}

// openStore opens a fresh database in a temporary directory, with a
// deterministic clock, and closes it at the end of the test.
func openStore(t *testing.T) (*Store, *testClock) {
	t.Helper()
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "data", FileName))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	clk := newTestClock()
	s.SetClock(clk.now)
	return s, clk
}

// update runs fn in a transaction and fails the test on an error.
func update(t *testing.T, s *Store, fn func(ctx context.Context, tx *Tx) error) {
	t.Helper()
	ctx := context.Background()
	if err := s.Update(ctx, func(tx *Tx) error { return fn(ctx, tx) }); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func latestMigration(t *testing.T) (version, count int) {
	t.Helper()
	ms, err := loadMigrations()
	if err != nil {
		t.Fatalf("loadMigrations: %v", err)
	}
	if len(ms) == 0 {
		t.Fatal("no migrations embedded")
	}
	return ms[len(ms)-1].version, len(ms)
}

func TestOpenCreatesPrivateDatabase(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "new", "data dir")
	path := filepath.Join(dir, FileName)
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if s.Path() != path {
		t.Errorf("Path() = %q, want %q", s.Path(), path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("database file not created: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("database file mode = %v, want 0600", fi.Mode().Perm())
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm()&0o077 != 0 {
		t.Errorf("data directory mode = %v, want no group or other access", di.Mode().Perm())
	}

	// Write something so that the WAL is in use: its files hold row data
	// and must be as private as the database.
	if err := s.Audit(ctx, AuditEntry{Actor: "test", Action: "write", Target: "t", Outcome: OutcomeSuccess}); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		fi, err := os.Stat(path + suffix)
		if err != nil {
			t.Errorf("%s file: %v (WAL mode off?)", suffix, err)
			continue
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s file mode = %v, want no group or other access", suffix, fi.Mode().Perm())
		}
	}

	version, _ := latestMigration(t)
	got, err := s.SchemaVersion(ctx)
	if err != nil || got != version {
		t.Errorf("SchemaVersion = %d, %v; want %d", got, err, version)
	}
	for _, table := range []string{"employees", "accounts", "sync_state", "held_removals", "audit_log", "audit_head", "schema_migrations"} {
		var n int
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, table).Scan(&n); err != nil || n != 1 {
			t.Errorf("table %s: count %d, %v; want it created", table, n, err)
		}
	}
}

func TestOpenAgainIsIdempotent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), FileName)
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := s.Audit(ctx, AuditEntry{Actor: "admin", Action: "employee.add", Target: "e1", Outcome: OutcomeSuccess}); err != nil {
		t.Fatal(err)
	}
	v1, err := s.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Loosen the mode: opening must restrict it again.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		s, err = Open(ctx, path)
		if err != nil {
			t.Fatalf("Open #%d: %v", i+2, err)
		}
		v, err := s.SchemaVersion(ctx)
		if err != nil || v != v1 {
			t.Errorf("SchemaVersion after reopening = %d, %v; want %d", v, err, v1)
		}
		_, count := latestMigration(t)
		var rows int
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&rows); err != nil || rows != count {
			t.Errorf("schema_migrations has %d rows (%v), want %d: migrations applied twice?", rows, err, count)
		}
		rep, err := s.VerifyAudit(ctx, VerifyOptions{})
		if err != nil || !rep.OK() || rep.Entries != 1 {
			t.Errorf("VerifyAudit after reopening = %+v, %v; want 1 entry, no problems", rep, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("database file mode after reopening = %v, want 0600", fi.Mode().Perm())
		}
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), FileName)
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	latest, _ := latestMigration(t)
	future := latest + 1
	if _, err := s.db.ExecContext(ctx, `INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, 'future.sql', 0)`, future); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(ctx, path)
	if err == nil {
		s.Close()
		t.Fatal("Open succeeded on a database with a newer schema")
	}
	msg := err.Error()
	for _, w := range []string{path, "schema version " + strconv.Itoa(future), "only up to " + strconv.Itoa(latest), "newer keydesk"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not contain %q", msg, w)
		}
	}
}

func TestConnectionPragmas(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	// Hold several connections at once so that the pool must open new ones:
	// every connection needs the pragmas, not only the first.
	for i := 0; i < 3; i++ {
		conn, err := s.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var mode string
		var fk, busy, sync int
		if err := conn.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil || sync != 2 {
			t.Errorf("connection %d: synchronous=%d (%v), want 2 (FULL)", i+1, sync, err)
		}
		if err := conn.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil {
			t.Fatal(err)
		}
		if err := conn.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&busy); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" || fk != 1 || busy != busyTimeoutMS {
			t.Errorf("connection %d: journal_mode=%s foreign_keys=%d busy_timeout=%d; want wal, 1, %d", i+1, mode, fk, busy, busyTimeoutMS)
		}
	}

	// Foreign keys are enforced, not only switched on.
	err := s.Update(ctx, func(tx *Tx) error {
		return tx.InsertAccount(ctx, &Account{Domain: "corp", ObjectGUID: "g1", EmployeeID: 4242})
	})
	if err == nil || !strings.Contains(err.Error(), "FOREIGN KEY") {
		t.Errorf("account of a missing employee: error = %v, want a FOREIGN KEY failure", err)
	}
}

// contents summarises what a transaction can write, to check commits and
// rollbacks.
func contents(t *testing.T, s *Store) (employees int, audit int64, syncStates, held int) {
	t.Helper()
	ctx := context.Background()
	c, err := s.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.VerifyAudit(ctx, VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Errorf("audit chain broken: %q", rep.Problems)
	}
	ss, err := s.SyncStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hs, err := s.HeldRemovals(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	return c.Employees, rep.Entries, len(ss), len(hs)
}

func TestUpdateAllOrNothing(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name      string
		end       func() error // how fn ends after writing
		wantPanic bool
		wantErr   error
		wantKept  bool
	}{
		{name: "nil commits", end: func() error { return nil }, wantKept: true},
		{name: "error rolls back", end: func() error { return errBoom }, wantErr: errBoom},
		{name: "panic rolls back", end: func() error { panic("boom") }, wantPanic: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, _ := openStore(t)
			var txNow time.Time
			var err error
			committed := false
			panicked := func() (p any) {
				defer func() { p = recover() }()
				err = s.Update(ctx, func(tx *Tx) error {
					txNow = tx.Now()
					tx.AfterCommit(func() { committed = true })
					e := &Employee{EmailNorm: "a@example.com", Email: "a@example.com", DisplayName: "A", Status: StatusActive, Source: SourceAD}
					if err := tx.InsertEmployee(ctx, e); err != nil {
						return err
					}
					if err := tx.InsertAccount(ctx, &Account{Domain: "corp", ObjectGUID: "g1", EmployeeID: e.ID}); err != nil {
						return err
					}
					if _, err := tx.AppendAudit(ctx, AuditEntry{Actor: "t", Action: "a", Target: "x", Outcome: OutcomeSuccess}, nil); err != nil {
						return err
					}
					if err := tx.PutSyncState(ctx, SyncState{Domain: "corp", HighestUSN: 7}); err != nil {
						return err
					}
					if err := tx.ReplaceHeldRemovals(ctx, "corp", []HeldRemoval{{ObjectGUID: "g2", Reason: LeftGroup, DetectedAt: tx.Now()}}); err != nil {
						return err
					}
					return tt.end()
				})
				return nil
			}()
			if (panicked != nil) != tt.wantPanic {
				t.Fatalf("panic = %v, want panic %v", panicked, tt.wantPanic)
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Update error = %v, want %v", err, tt.wantErr)
			}
			if committed != tt.wantKept {
				t.Errorf("AfterCommit ran: %v, want %v (only after a commit)", committed, tt.wantKept)
			}
			if txNow.IsZero() || txNow.Location() != time.UTC {
				t.Errorf("tx.Now() = %v, want a UTC time from the clock", txNow)
			}

			// The next write must not wait for a transaction left open.
			if err := s.Update(ctx, func(tx *Tx) error { return tx.PutSyncState(ctx, SyncState{Domain: "after"}) }); err != nil {
				t.Fatalf("Update after the first: %v", err)
			}
			emps, audit, states, held := contents(t, s)
			want := [4]int{0, 0, 1, 0}
			if tt.wantKept {
				want = [4]int{1, 1, 2, 1}
			}
			if got := [4]int{emps, int(audit), states, held}; got != want {
				t.Errorf("after Update: employees, audit entries, sync states, held removals = %v, want %v", got, want)
			}
			var accs []Account
			for _, e := range listed(t, s) {
				for _, a := range e.Accounts {
					if a.Domain == "corp" {
						accs = append(accs, a)
					}
				}
			}
			if (len(accs) == 1) != tt.wantKept {
				t.Errorf("corp accounts = %d, want kept %v", len(accs), tt.wantKept)
			}
		})
	}
}

func TestTxTimestamp(t *testing.T) {
	s, clk := openStore(t)
	var first, second time.Time
	update(t, s, func(ctx context.Context, tx *Tx) error {
		first = tx.Now()
		e := &Employee{DisplayName: "A", Status: StatusActive, Source: SourceManual}
		if err := tx.InsertEmployee(ctx, e); err != nil {
			return err
		}
		if !e.CreatedAt.Equal(first) || !e.UpdatedAt.Equal(first) {
			t.Errorf("employee times %v/%v, want the transaction's %v", e.CreatedAt, e.UpdatedAt, first)
		}
		return nil
	})
	if !first.Equal(clk.t) {
		t.Errorf("tx.Now() = %v, want the clock's %v", first, clk.t)
	}
	update(t, s, func(ctx context.Context, tx *Tx) error { second = tx.Now(); return nil })
	if !second.After(first) {
		t.Errorf("second transaction time %v is not after the first %v", second, first)
	}
	es := listed(t, s)
	if len(es) != 1 {
		t.Fatalf("listed %v, want 1 employee", es)
	}
	if !es[0].CreatedAt.Equal(first) {
		t.Errorf("stored CreatedAt = %v, want %v", es[0].CreatedAt, first)
	}
}

func TestIntegrityCheck(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	problems, err := s.IntegrityCheck(ctx)
	if err != nil || len(problems) != 0 {
		t.Fatalf("IntegrityCheck on a fresh database = %q, %v; want none", problems, err)
	}

	// An orphan account, written with foreign keys off on one connection,
	// must be reported.
	conn, err := s.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`PRAGMA foreign_keys = OFF`,
		`INSERT INTO accounts(domain, object_guid, employee_id, first_seen, updated_at) VALUES ('corp', 'g1', 99, 0, 0)`,
		`PRAGMA foreign_keys = ON`,
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	conn.Close()
	problems, err = s.IntegrityCheck(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 1 || !strings.Contains(problems[0], "accounts") || !strings.Contains(problems[0], "employees") {
		t.Errorf("IntegrityCheck with an orphan account = %q, want one problem naming accounts and employees", problems)
	}
}

func TestSyncState(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)

	st, err := s.SyncState(ctx, "corp")
	if err != nil {
		t.Fatalf("SyncState of an unknown domain: %v", err)
	}
	if !reflect.DeepEqual(st, SyncState{Domain: "corp"}) {
		t.Errorf("SyncState of an unknown domain = %+v, want the zero state", st)
	}
	update(t, s, func(ctx context.Context, tx *Tx) error {
		st, err := tx.SyncState(ctx, "corp")
		if err != nil || !reflect.DeepEqual(st, SyncState{Domain: "corp"}) {
			t.Errorf("tx.SyncState of an unknown domain = %+v, %v", st, err)
		}
		return nil
	})

	success := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	attempt := time.Date(2025, 1, 2, 4, 0, 0, 999999999, time.FixedZone("CET", 3600))
	full := SyncState{
		Domain:        "corp",
		DSADN:         "CN=NTDS Settings,CN=DC1,CN=Servers,CN=Site,CN=Sites,CN=Configuration,DC=corp",
		InvocationID:  "7b1e3c2a-0000-4000-8000-000000000001",
		HighestUSN:    1234567890123,
		ServerURL:     "ldaps://dc1.corp.example.com:636",
		LastSuccessAt: &success,
		LastAttemptAt: &attempt,
		LastError:     "",
		LastSummary:   `{"added":3,"removed":1}`,
	}
	failed := full
	failed.Domain = "lab"
	failed.LastSuccessAt = nil
	failed.LastError = "dial tcp: connection refused"
	failed.HighestUSN = 0

	tests := []struct {
		name string
		put  []SyncState
	}{
		{"successful sync", []SyncState{full}},
		{"failed sync without success", []SyncState{failed}},
		{"overwrite clears a time", []SyncState{full, {Domain: "corp", LastError: "again", LastAttemptAt: &success}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, p := range tt.put {
				update(t, s, func(ctx context.Context, tx *Tx) error { return tx.PutSyncState(ctx, p) })
			}
			want := tt.put[len(tt.put)-1]
			got, err := s.SyncState(ctx, want.Domain)
			if err != nil {
				t.Fatal(err)
			}
			checkSyncState(t, got, want)
		})
	}

	all, err := s.SyncStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, st := range all {
		names = append(names, st.Domain)
	}
	if !reflect.DeepEqual(names, []string{"corp", "lab"}) {
		t.Fatalf("SyncStates domains = %q, want [corp lab]", names)
	}
	checkSyncState(t, all[1], failed)
	if all[0].LastError != "again" {
		t.Errorf("SyncStates[0] = %+v, want the overwritten corp state", all[0])
	}
}

func checkSyncState(t *testing.T, got, want SyncState) {
	t.Helper()
	if !timePtrEqual(got.LastSuccessAt, want.LastSuccessAt) || !timePtrEqual(got.LastAttemptAt, want.LastAttemptAt) {
		t.Errorf("%s times = %v, %v; want %v, %v", want.Domain, got.LastSuccessAt, got.LastAttemptAt, want.LastSuccessAt, want.LastAttemptAt)
	}
	got.LastSuccessAt, got.LastAttemptAt, want.LastSuccessAt, want.LastAttemptAt = nil, nil, nil, nil
	if got != want {
		t.Errorf("sync state = %+v, want %+v", got, want)
	}
}

// timePtrEqual compares optional times: both nil, or both set to the same
// instant.
func timePtrEqual(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(*b)
}

func TestReplaceHeldRemovals(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	at := time.Date(2025, 6, 1, 12, 0, 0, 42, time.UTC)
	hr := func(guid, reason string) HeldRemoval {
		return HeldRemoval{ObjectGUID: guid, Reason: reason, DetectedAt: at}
	}
	type step struct {
		domain string
		hs     []HeldRemoval
	}
	tests := []struct {
		name    string
		steps   []step
		wantErr bool
		want    map[string][]string // domain -> guids
	}{
		{"first hold", []step{{"corp", []HeldRemoval{hr("g2", LeftGroup), hr("g1", LeftDisabled)}}, {"lab", []HeldRemoval{hr("l1", LeftDeleted)}}}, false,
			map[string][]string{"corp": {"g1", "g2"}, "lab": {"l1"}}},
		{"replace one domain", []step{{"corp", []HeldRemoval{hr("g3", LeftGroup)}}}, false,
			map[string][]string{"corp": {"g3"}, "lab": {"l1"}}},
		{"duplicate rolls back", []step{{"corp", []HeldRemoval{hr("g4", LeftGroup), hr("g4", LeftGroup)}}}, true,
			map[string][]string{"corp": {"g3"}, "lab": {"l1"}}},
		{"empty clears one domain", []step{{"corp", nil}}, false,
			map[string][]string{"lab": {"l1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Update(ctx, func(tx *Tx) error {
				for _, st := range tt.steps {
					if err := tx.ReplaceHeldRemovals(ctx, st.domain, st.hs); err != nil {
						return err
					}
				}
				return nil
			})
			if (err != nil) != tt.wantErr {
				t.Fatalf("Update error = %v, want error %v", err, tt.wantErr)
			}
			all, err := s.HeldRemovals(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][]string{}
			for _, h := range all {
				got[h.Domain] = append(got[h.Domain], h.ObjectGUID)
				if !h.DetectedAt.Equal(at) {
					t.Errorf("%s/%s DetectedAt = %v, want %v", h.Domain, h.ObjectGUID, h.DetectedAt, at)
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("held removals = %v, want %v", got, tt.want)
			}
			for domain, guids := range tt.want {
				hs, err := s.HeldRemovals(ctx, domain)
				if err != nil {
					t.Fatal(err)
				}
				if len(hs) != len(guids) {
					t.Errorf("HeldRemovals(%q) = %d entries, want %d", domain, len(hs), len(guids))
				}
			}
		})
	}

	hs, err := s.HeldRemovals(ctx, "lab")
	if err != nil || len(hs) != 1 {
		t.Fatalf("HeldRemovals(lab) = %v, %v", hs, err)
	}
	if hs[0].Reason != LeftDeleted || hs[0].Domain != "lab" {
		t.Errorf("HeldRemovals(lab)[0] = %+v, want reason %q", hs[0], LeftDeleted)
	}
}

// TestOpenRestrictsEveryFileFirst: a database whose -wal and -shm files
// were left readable by others (the WAL holds rows too) is restricted
// before SQLite reads them; a file replaced by a link is refused.
func TestOpenRestrictsEveryFileFirst(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), FileName)
	first, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	// While the first connection is open the -wal and -shm files exist.
	if err := first.Audit(ctx, AuditEntry{Actor: "a", Action: "x", Target: "y", Outcome: OutcomeSuccess}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatalf("loosen %s: %v", p, err)
		}
	}
	second, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	second.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v after Open, want 0600", p, fi.Mode().Perm())
		}
	}

	dir := t.TempDir()
	linked := filepath.Join(dir, FileName)
	elsewhere := filepath.Join(t.TempDir(), "stolen-wal")
	if err := os.WriteFile(elsewhere, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, linked+"-wal"); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(ctx, linked); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		if s != nil {
			s.Close()
		}
		t.Errorf("Open with a -wal file linked elsewhere: %v, want a refusal", err)
	}
}
