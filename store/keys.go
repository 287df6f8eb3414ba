package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Errors of the keys table, for errors.Is.
var (
	// ErrSerialExists: a key with this serial is already registered.
	ErrSerialExists = errors.New("a key with this serial already exists")
	// ErrEmployeeHasKey: the employee already has a key in use (reserved,
	// active, locked or suspended).
	ErrEmployeeHasKey = errors.New("the employee already has a key in use")
	// ErrKeyChanged: the key was changed by another transaction since it
	// was read (its version moved on).
	ErrKeyChanged = errors.New("the key was changed meanwhile")
)

// liveKeyStatuses are the statuses in which a key counts as its employee's
// key; the same list as the keys_one_per_employee index.
const liveKeyStatuses = `('reserved', 'active', 'locked', 'suspended')`

// Key is one hardware security key. The store keeps what it is told: the
// lifecycle rules are package keys'. Secrets are never stored in plain text:
// CodeHash is a keyed hash and SecretSealed is encrypted.
type Key struct {
	ID            int64
	Serial        string
	Status        string
	Reason        string // "" when none
	EmployeeID    *int64 // nil for a key in stock
	Model         string
	Firmware      string
	CodeHash      string // "" when the key has no activation code
	CodeExpiresAt *time.Time
	CodeAttempts  int
	SecretSealed  []byte // nil when none
	// PrevSecretSealed is the secret the device held before an unlock,
	// until it is linked with SecretSealed (nil when none).
	PrevSecretSealed []byte
	// AttestPub is the pinned attestation public key (nil: none pinned);
	// AttestMaker the maker CA it chained to, or AttestUnattested.
	AttestPub   []byte
	AttestMaker string
	// DeviceState is the state the key last reported: a claim, written
	// only by TouchKeySeen.
	DeviceState     string
	Version         int64 // set by the store; UpdateKey checks it
	CreatedAt       time.Time
	UpdatedAt       time.Time
	StatusChangedAt time.Time
	LastSeenAt      *time.Time // written only by TouchKeySeen
}

// KeyView is a key with its employee's name and email, for listings.
type KeyView struct {
	Key
	OwnerName  string // "" when the key has no employee
	OwnerEmail string
}

// AttestUnattested is AttestMaker of a key registered without attestation.
const AttestUnattested = "unattested"

const keyCols = `k.id, k.serial, k.status, k.reason, k.employee_id, k.model, k.firmware, COALESCE(k.code_hash, ''), k.code_expires_at, k.code_attempts, k.secret_sealed, k.prev_secret_sealed, k.attest_pub, k.attest_maker, k.device_state, k.version, k.created_at, k.updated_at, k.status_changed_at, k.last_seen_at`

func keyDest(k *Key, emp, expires, seen *sql.NullInt64, created, updated, changed *int64) []any {
	return []any{&k.ID, &k.Serial, &k.Status, &k.Reason, emp, &k.Model, &k.Firmware, &k.CodeHash, expires, &k.CodeAttempts, &k.SecretSealed, &k.PrevSecretSealed, &k.AttestPub, &k.AttestMaker, &k.DeviceState, &k.Version, created, updated, changed, seen}
}

func fillKey(k *Key, emp, expires, seen sql.NullInt64, created, updated, changed int64) {
	if emp.Valid {
		id := emp.Int64
		k.EmployeeID = &id
	}
	k.CodeExpiresAt = fromNanos(expires)
	k.LastSeenAt = fromNanos(seen)
	k.CreatedAt = time.Unix(0, created).UTC()
	k.UpdatedAt = time.Unix(0, updated).UTC()
	k.StatusChangedAt = time.Unix(0, changed).UTC()
}

func scanKey(sc interface{ Scan(...any) error }) (Key, error) {
	var k Key
	var emp, expires, seen sql.NullInt64
	var created, updated, changed int64
	if err := sc.Scan(keyDest(&k, &emp, &expires, &seen, &created, &updated, &changed)...); err != nil {
		return k, err
	}
	fillKey(&k, emp, expires, seen, created, updated, changed)
	return k, nil
}

func queryKeys(ctx context.Context, q querier, where string, args ...any) ([]Key, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+keyCols+` FROM keys k `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("read keys: %w", err)
	}
	defer rows.Close()
	var out []Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, fmt.Errorf("read key: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read keys: %w", err)
	}
	return out, nil
}

func oneKey(ctx context.Context, q querier, what, where string, args ...any) (*Key, error) {
	ks, err := queryKeys(ctx, q, where, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if len(ks) == 0 {
		return nil, fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return &ks[0], nil
}

func nullEmployee(id *int64) any {
	if id == nil {
		return nil
	}
	return *id
}

func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// keyConstraint turns a violated constraint into an error that says what is
// wrong; other errors are returned as they are.
func (tx *Tx) keyConstraint(ctx context.Context, k *Key, err error) error {
	var se *sqlite.Error
	if !errors.As(err, &se) || se.Code() != sqlite3.SQLITE_CONSTRAINT_UNIQUE {
		return err
	}
	msg := se.Error()
	switch {
	case strings.Contains(msg, "keys.serial"):
		return fmt.Errorf("key %s: %w", k.Serial, ErrSerialExists)
	case strings.Contains(msg, "keys.employee_id") && k.EmployeeID != nil:
		var serial, status string
		e := tx.tx.QueryRowContext(ctx, `SELECT serial, status FROM keys WHERE employee_id = ? AND id <> ? AND status IN `+liveKeyStatuses, *k.EmployeeID, k.ID).Scan(&serial, &status)
		if e != nil {
			return fmt.Errorf("key %s for employee %d: %w", k.Serial, *k.EmployeeID, ErrEmployeeHasKey)
		}
		return fmt.Errorf("key %s for employee %d: %w: key %s is %s (withdraw it first)", k.Serial, *k.EmployeeID, ErrEmployeeHasKey, serial, status)
	}
	return err
}

// InsertKey adds a key and sets its ID, version and timestamps (all the
// transaction's time). A serial already registered gives ErrSerialExists; a
// second key in use for one employee gives ErrEmployeeHasKey.
func (tx *Tx) InsertKey(ctx context.Context, k *Key) error {
	st, err := tx.stmt(ctx, `INSERT INTO keys(serial, status, reason, employee_id, model, firmware, code_hash, code_expires_at, code_attempts, secret_sealed, prev_secret_sealed, attest_pub, attest_maker, device_state, version, created_at, updated_at, status_changed_at, last_seen_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,1,?,?,?,?)`)
	if err != nil {
		return fmt.Errorf("prepare key insert: %w", err)
	}
	res, err := st.ExecContext(ctx, k.Serial, k.Status, k.Reason, nullEmployee(k.EmployeeID), k.Model, k.Firmware, nullString(k.CodeHash), nullNanos(k.CodeExpiresAt), k.CodeAttempts, nullBytes(k.SecretSealed), nullBytes(k.PrevSecretSealed), nullBytes(k.AttestPub), k.AttestMaker, k.DeviceState, nanos(tx.now), nanos(tx.now), nanos(tx.now), nullNanos(k.LastSeenAt))
	if err != nil {
		return fmt.Errorf("add key %s: %w", k.Serial, tx.keyConstraint(ctx, k, err))
	}
	id, err := res.LastInsertId()
	if err != nil {
		return fmt.Errorf("add key %s: %w", k.Serial, err)
	}
	k.ID, k.Version = id, 1
	k.CreatedAt, k.UpdatedAt, k.StatusChangedAt = tx.now, tx.now, tx.now
	return nil
}

// UpdateKey writes every field of an existing key except its serial, its
// creation time, LastSeenAt and DeviceState (see TouchKeySeen), and
// advances its version.
// StatusChangedAt becomes the transaction's time when the status differs
// from the stored one.
//
// The update applies only if the stored version is still k.Version; if the
// key was changed since k was read, nothing is written and the error wraps
// ErrKeyChanged. Read and update a key in the same transaction (Update is
// IMMEDIATE, so no one else writes in between): then a decision taken on
// what was read, such as "the key is Reserved, so activate it", cannot be
// taken twice.
func (tx *Tx) UpdateKey(ctx context.Context, k *Key) error {
	st, err := tx.stmt(ctx, `UPDATE keys SET status = ?, reason = ?, employee_id = ?, model = ?, firmware = ?, code_hash = ?, code_expires_at = ?, code_attempts = ?, secret_sealed = ?, prev_secret_sealed = ?, attest_pub = ?, attest_maker = ?, version = version + 1, updated_at = ?, status_changed_at = CASE WHEN status = ? THEN status_changed_at ELSE ? END WHERE id = ? AND version = ? RETURNING version, status_changed_at, last_seen_at`)
	if err != nil {
		return fmt.Errorf("prepare key update: %w", err)
	}
	var version, changed int64
	var seen sql.NullInt64
	err = st.QueryRowContext(ctx, k.Status, k.Reason, nullEmployee(k.EmployeeID), k.Model, k.Firmware, nullString(k.CodeHash), nullNanos(k.CodeExpiresAt), k.CodeAttempts, nullBytes(k.SecretSealed), nullBytes(k.PrevSecretSealed), nullBytes(k.AttestPub), k.AttestMaker, nanos(tx.now), k.Status, nanos(tx.now), k.ID, k.Version).Scan(&version, &changed, &seen)
	if errors.Is(err, sql.ErrNoRows) {
		var stored int64
		e := tx.tx.QueryRowContext(ctx, `SELECT version FROM keys WHERE id = ?`, k.ID).Scan(&stored)
		if errors.Is(e, sql.ErrNoRows) {
			return fmt.Errorf("update key %s (id %d): %w", k.Serial, k.ID, ErrNotFound)
		}
		if e != nil {
			return fmt.Errorf("update key %s: %w", k.Serial, e)
		}
		return fmt.Errorf("update key %s: %w (version %d, read at version %d): read it again", k.Serial, ErrKeyChanged, stored, k.Version)
	}
	if err != nil {
		return fmt.Errorf("update key %s: %w", k.Serial, tx.keyConstraint(ctx, k, err))
	}
	k.Version, k.UpdatedAt = version, tx.now
	k.StatusChangedAt = time.Unix(0, changed).UTC()
	k.LastSeenAt = fromNanos(seen)
	return nil
}

// KeyBySerial reads a key inside the transaction; ErrNotFound (wrapped) when
// there is none.
func (tx *Tx) KeyBySerial(ctx context.Context, serial string) (*Key, error) {
	return oneKey(ctx, tx.tx, "key "+serial, `WHERE k.serial = ?`, serial)
}

// KeyByID reads a key by its row id inside the transaction.
func (tx *Tx) KeyByID(ctx context.Context, id int64) (*Key, error) {
	return oneKey(ctx, tx.tx, "key id "+strconv.FormatInt(id, 10), `WHERE k.id = ?`, id)
}

// KeyForEmployee reads the employee's key in use (reserved, active, locked
// or suspended; there is at most one) inside the transaction; ErrNotFound
// (wrapped) when the employee has none. Deactivated and compromised keys
// that still name the employee are history, not returned here.
func (tx *Tx) KeyForEmployee(ctx context.Context, employeeID int64) (*Key, error) {
	return oneKey(ctx, tx.tx, "key of employee "+strconv.FormatInt(employeeID, 10), `WHERE k.employee_id = ? AND k.status IN `+liveKeyStatuses, employeeID)
}

// KeysForEmployees reads the keys in use of the given employees (as
// KeyForEmployee, for many at once: the sync deactivates the keys of those
// who left) in one query however many they are, by serial.
func (tx *Tx) KeysForEmployees(ctx context.Context, employeeIDs []int64) ([]Key, error) {
	return keysForEmployees(ctx, tx.tx, employeeIDs)
}

func keysForEmployees(ctx context.Context, q querier, ids []int64) ([]Key, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	// The ids travel as one JSON array: one statement, no limit on the
	// number of SQL variables.
	var b strings.Builder
	b.WriteByte('[')
	for i, id := range ids {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatInt(id, 10))
	}
	b.WriteByte(']')
	ks, err := queryKeys(ctx, q, `WHERE k.employee_id IN (SELECT value FROM json_each(?)) AND k.status IN `+liveKeyStatuses+` ORDER BY k.serial`, b.String())
	if err != nil {
		return nil, fmt.Errorf("keys of %d employees: %w", len(ids), err)
	}
	return ks, nil
}

// SetKeyModel records what a key says it is (model, firmware). It is
// description, not state: the key's version does not change.
func (tx *Tx) SetKeyModel(ctx context.Context, serial, model, firmware string) error {
	res, err := tx.tx.ExecContext(ctx, `UPDATE keys SET model = ?, firmware = ? WHERE serial = ?`, model, firmware, serial)
	if err != nil {
		return fmt.Errorf("record key %s model: %w", serial, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("record key %s model: %w", serial, ErrNotFound)
	}
	return nil
}

// TouchKeySeen records that the key was seen (plugged in) at at, reporting
// state (as it claims; "" leaves the recorded one), inside the transaction.
// It moves LastSeenAt forward only and changes nothing else: not the
// version, so it never makes another console's update fail.
func (tx *Tx) TouchKeySeen(ctx context.Context, serial string, at time.Time, state string) error {
	return touchKeySeen(ctx, tx.tx, serial, at, state)
}

func touchKeySeen(ctx context.Context, ex interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, serial string, at time.Time, state string) error {
	res, err := ex.ExecContext(ctx, `UPDATE keys SET last_seen_at = MAX(COALESCE(last_seen_at, ?1), ?1), device_state = CASE WHEN ?3 = '' THEN device_state ELSE ?3 END WHERE serial = ?2`, nanos(at), serial, state)
	if err != nil {
		return fmt.Errorf("record key %s seen: %w", serial, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("record key %s seen: %w", serial, ErrNotFound)
	}
	return nil
}

// KeyBySerial reads a key; ErrNotFound (wrapped) when there is none. To act
// on the key, read it again inside the Update that changes it.
func (s *Store) KeyBySerial(ctx context.Context, serial string) (*Key, error) {
	return oneKey(ctx, s.db, "key "+serial, `WHERE k.serial = ?`, serial)
}

// Keys lists every key with its employee's name and email, by serial, in one
// query.
func (s *Store) Keys(ctx context.Context) ([]KeyView, error) {
	return listKeys(ctx, s.db, `ORDER BY k.serial`)
}

// KeyView reads one key with its employee's name and email; ErrNotFound
// (wrapped) when there is none.
func (s *Store) KeyView(ctx context.Context, serial string) (*KeyView, error) {
	vs, err := listKeys(ctx, s.db, `WHERE k.serial = ?`, serial)
	if err != nil {
		return nil, err
	}
	if len(vs) == 0 {
		return nil, fmt.Errorf("key %s: %w", serial, ErrNotFound)
	}
	return &vs[0], nil
}

func listKeys(ctx context.Context, q querier, where string, args ...any) ([]KeyView, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+keyCols+`, COALESCE(e.display_name, ''), COALESCE(e.email, '') FROM keys k LEFT JOIN employees e ON e.id = k.employee_id `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	defer rows.Close()
	var out []KeyView
	for rows.Next() {
		var v KeyView
		var emp, expires, seen sql.NullInt64
		var created, updated, changed int64
		dest := append(keyDest(&v.Key, &emp, &expires, &seen, &created, &updated, &changed), &v.OwnerName, &v.OwnerEmail)
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("list keys: %w", err)
		}
		fillKey(&v.Key, emp, expires, seen, created, updated, changed)
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	return out, nil
}

// TouchKeySeen records, in a transaction of its own, that the key was seen
// at at (see Tx.TouchKeySeen).
func (s *Store) TouchKeySeen(ctx context.Context, serial string, at time.Time, state string) error {
	return s.Update(ctx, func(tx *Tx) error { return tx.TouchKeySeen(ctx, serial, at, state) })
}

// UnattestedKeys counts the keys registered without attestation.
func (s *Store) UnattestedKeys(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM keys WHERE attest_maker = ?`, AttestUnattested).Scan(&n); err != nil {
		return 0, fmt.Errorf("count keys without attestation: %w", err)
	}
	return n, nil
}
