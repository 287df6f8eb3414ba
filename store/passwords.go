package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// PasswordChange is one row of the password journal (package rotation
// decides what its steps mean).
type PasswordChange struct {
	ID             int64
	AccountID      int64
	KeyID          *int64 // nil: no key holds it (yet)
	Slot           *int
	Kind           string
	Order          string
	Step           string
	PasswordSealed []byte // nil once the change is closed
	Discarded      bool
	Actor          string
	Error          string
	Attempts       int
	Version        int64 // set by the store; UpdatePasswordChange checks it
	CreatedAt      time.Time
	UpdatedAt      time.Time
	FinishedAt     *time.Time
	// ADWrittenAt is when AD got the password (set by the store when the
	// change reaches ad-written; nil before).
	ADWrittenAt *time.Time
}

// Closed reports whether nothing is left to do for the change.
func (c PasswordChange) Closed() bool { return c.Step == "done" || c.Step == "failed" && c.Discarded }

// Errors of the password journal.
var (
	// ErrChangeUnderWay: the account already has a change under way.
	ErrChangeUnderWay = errors.New("a password change is already under way for this account")
	// ErrChangeChanged: the row was changed since it was read.
	ErrChangeChanged = errors.New("the password change was changed meanwhile")
)

const changeCols = `id, account_id, key_id, slot, kind, ord, step, password_sealed, discarded, actor, error, attempts, version, created_at, updated_at, finished_at, ad_written_at`

func scanChange(sc interface{ Scan(...any) error }) (PasswordChange, error) {
	return scanChangeWith(sc)
}

// scanChangeWith scans changeCols followed by the extra columns.
func scanChangeWith(sc interface{ Scan(...any) error }, extra ...any) (PasswordChange, error) {
	var c PasswordChange
	var key, slot, finished, adWritten sql.NullInt64
	var created, updated int64
	dest := []any{&c.ID, &c.AccountID, &key, &slot, &c.Kind, &c.Order, &c.Step, &c.PasswordSealed, &c.Discarded, &c.Actor, &c.Error, &c.Attempts, &c.Version, &created, &updated, &finished, &adWritten}
	if err := sc.Scan(append(dest, extra...)...); err != nil {
		return c, err
	}
	c.ADWrittenAt = fromNanos(adWritten)
	if key.Valid {
		id, s := key.Int64, int(slot.Int64)
		c.KeyID, c.Slot = &id, &s
	}
	c.CreatedAt, c.UpdatedAt, c.FinishedAt = time.Unix(0, created).UTC(), time.Unix(0, updated).UTC(), fromNanos(finished)
	return c, nil
}

func queryChanges(ctx context.Context, q querier, where string, args ...any) ([]PasswordChange, error) {
	return queryAll(ctx, q, "password changes", `SELECT `+changeCols+` FROM password_changes `+where, scanChange, args...)
}

func nullKey(id *int64) any {
	if id == nil {
		return nil
	}
	return *id
}

func nullSlot(s *int) any {
	if s == nil {
		return nil
	}
	return *s
}

// finishedAt is the transaction's time for a closed-step row.
func (tx *Tx) finishedAt(c *PasswordChange) any {
	if c.Step == "done" || c.Step == "failed" {
		if c.FinishedAt == nil {
			t := tx.now
			c.FinishedAt = &t
		}
		return nanos(*c.FinishedAt)
	}
	c.FinishedAt = nil
	return nil
}

// InsertPasswordChange adds a change and sets its ID, version and times. An
// account with a change under way gives ErrChangeUnderWay.
func (tx *Tx) InsertPasswordChange(ctx context.Context, c *PasswordChange) error {
	res, err := tx.tx.ExecContext(ctx, `INSERT INTO password_changes(account_id, key_id, slot, kind, ord, step, password_sealed, discarded, actor, error, attempts, version, created_at, updated_at, finished_at)
		VALUES (?,?,?,?,?,?,?,?,?,?,?,1,?,?,?)`,
		c.AccountID, nullKey(c.KeyID), nullSlot(c.Slot), c.Kind, c.Order, c.Step, nullBytes(c.PasswordSealed), c.Discarded, c.Actor, c.Error, c.Attempts,
		nanos(tx.now), nanos(tx.now), tx.finishedAt(c))
	if err != nil {
		var se *sqlite.Error
		if errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE {
			return fmt.Errorf("account %d: %w", c.AccountID, ErrChangeUnderWay)
		}
		return fmt.Errorf("record a password change of account %d: %w", c.AccountID, err)
	}
	if c.ID, err = res.LastInsertId(); err != nil {
		return err
	}
	c.Version, c.CreatedAt, c.UpdatedAt = 1, tx.now, tx.now
	return nil
}

// UpdatePasswordChange writes the row's step, password, key, error and
// counters, if it is still at c.Version (else ErrChangeChanged), and
// advances the version.
func (tx *Tx) UpdatePasswordChange(ctx context.Context, c *PasswordChange) error {
	if c.Step == "ad-written" && c.ADWrittenAt == nil {
		t := tx.now
		c.ADWrittenAt = &t
	}
	var adWritten any
	if c.ADWrittenAt != nil {
		adWritten = nanos(*c.ADWrittenAt)
	}
	res, err := tx.tx.ExecContext(ctx, `UPDATE password_changes SET key_id = ?, slot = ?, step = ?, password_sealed = ?, discarded = ?, error = ?, attempts = ?,
		version = version + 1, updated_at = ?, finished_at = ?, ad_written_at = ? WHERE id = ? AND version = ?`,
		nullKey(c.KeyID), nullSlot(c.Slot), c.Step, nullBytes(c.PasswordSealed), c.Discarded, c.Error, c.Attempts, nanos(tx.now), tx.finishedAt(c), adWritten, c.ID, c.Version)
	if err != nil {
		return fmt.Errorf("record password change %d: %w", c.ID, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("record password change %d: %w", c.ID, ErrChangeChanged)
	}
	c.Version++
	c.UpdatedAt = tx.now
	return nil
}

// PasswordChange reads one change.
func (tx *Tx) PasswordChange(ctx context.Context, id int64) (*PasswordChange, error) {
	cs, err := queryChanges(ctx, tx.tx, `WHERE id = ?`, id)
	if err != nil {
		return nil, err
	}
	if len(cs) == 0 {
		return nil, fmt.Errorf("password change %d: %w", id, ErrNotFound)
	}
	return &cs[0], nil
}

// UnfinishedPasswordChanges lists the changes not closed (recovery at
// start-up), oldest first; with keyID > 0, only those of that key (when it
// is plugged in).
func (s *Store) UnfinishedPasswordChanges(ctx context.Context, keyID int64) ([]PasswordChange, error) {
	if keyID > 0 {
		return queryChanges(ctx, s.db, `WHERE password_sealed IS NOT NULL AND key_id = ? ORDER BY id`, keyID)
	}
	return queryChanges(ctx, s.db, `WHERE password_sealed IS NOT NULL ORDER BY id`)
}

// RecentChange is a change of the journal with its account's name.
type RecentChange struct {
	PasswordChange
	Domain, SAMAccountName string
}

// RecentPasswordChanges lists the newest changes, newest first, with their
// accounts' names (one query).
func (s *Store) RecentPasswordChanges(ctx context.Context, limit int) ([]RecentChange, error) {
	return queryAll(ctx, s.db, "the recent password changes", `SELECT `+prefixed("c.", changeCols)+`, a.domain, a.sam_account_name
		FROM password_changes c JOIN accounts a ON a.id = c.account_id ORDER BY c.id DESC LIMIT ?`,
		func(sc interface{ Scan(...any) error }) (r RecentChange, err error) {
			r.PasswordChange, err = scanChangeWith(sc, &r.Domain, &r.SAMAccountName)
			return r, err
		}, limit)
}

// prefixed qualifies each column of a column list with a table alias.
func prefixed(alias, cols string) string {
	parts := strings.Split(cols, ", ")
	for i, c := range parts {
		parts[i] = alias + c
	}
	return strings.Join(parts, ", ")
}

// CredentialSlot is the slot of key keyID that holds the account's
// credential, giving it the lowest free slot (below slots) the first time.
func (tx *Tx) CredentialSlot(ctx context.Context, keyID, accountID int64, slots int) (int, error) {
	slot, err := tx.ExistingCredentialSlot(ctx, keyID, accountID)
	if err != nil || slot >= 0 {
		return slot, err
	}
	rows, err := tx.tx.QueryContext(ctx, `SELECT slot FROM credential_slots WHERE key_id = ? ORDER BY slot`, keyID)
	if err != nil {
		return 0, fmt.Errorf("read the slots of key %d: %w", keyID, err)
	}
	slot = 0 // the lowest slot not in use
	for rows.Next() {
		var used int
		if err := rows.Scan(&used); err != nil {
			rows.Close()
			return 0, fmt.Errorf("read the slots of key %d: %w", keyID, err)
		}
		if used == slot {
			slot++
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("read the slots of key %d: %w", keyID, err)
	}
	if slot >= slots {
		return 0, fmt.Errorf("key %d has no free credential slot (all %d are used)", keyID, slots)
	}
	if _, err := tx.tx.ExecContext(ctx, `INSERT INTO credential_slots(key_id, slot, account_id) VALUES (?,?,?)`, keyID, slot, accountID); err != nil {
		return 0, fmt.Errorf("give account %d slot %d on key %d: %w", accountID, slot, keyID, err)
	}
	return slot, nil
}

// ForgetCredentialSlots removes a key's slot assignments (the key was
// wiped).
func (tx *Tx) ForgetCredentialSlots(ctx context.Context, keyID int64) error {
	if _, err := tx.tx.ExecContext(ctx, `DELETE FROM credential_slots WHERE key_id = ?`, keyID); err != nil {
		return fmt.Errorf("forget the slots of key %d: %w", keyID, err)
	}
	return nil
}

// OpenPasswordChanges lists, in the transaction, the changes that still
// hold a sealed password (a new master key re-seals them).
func (tx *Tx) OpenPasswordChanges(ctx context.Context) ([]PasswordChange, error) {
	return queryChanges(ctx, tx.tx, `WHERE password_sealed IS NOT NULL ORDER BY id`)
}

// ResealPasswordChange replaces an open change's sealed password with the
// same password sealed anew (a new master key); its version does not
// change.
func (tx *Tx) ResealPasswordChange(ctx context.Context, id int64, sealed []byte) error {
	res, err := tx.tx.ExecContext(ctx, `UPDATE password_changes SET password_sealed = ? WHERE id = ? AND password_sealed IS NOT NULL`, sealed, id)
	if err != nil {
		return fmt.Errorf("re-seal the password of change %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("re-seal the password of change %d: %w", id, ErrNotFound)
	}
	return nil
}

// OpenPasswordChange is the account's change that is neither done nor
// failed (nil when there is none).
func (tx *Tx) OpenPasswordChange(ctx context.Context, accountID int64) (*PasswordChange, error) {
	cs, err := queryChanges(ctx, tx.tx, `WHERE account_id = ? AND step NOT IN ('done', 'failed')`, accountID)
	if err != nil || len(cs) == 0 {
		return nil, err
	}
	return &cs[0], nil
}

// Account reads one account inside the transaction.
func (tx *Tx) Account(ctx context.Context, id int64) (*Account, error) {
	as, err := queryAccounts(ctx, tx.tx, `WHERE id = ?`, id)
	if err != nil {
		return nil, err
	}
	if len(as) == 0 {
		return nil, fmt.Errorf("account %d: %w", id, ErrNotFound)
	}
	return &as[0], nil
}

// ExistingCredentialSlot is the slot of key keyID that holds the account's
// credential (-1 when none was given).
func (tx *Tx) ExistingCredentialSlot(ctx context.Context, keyID, accountID int64) (int, error) {
	var slot int
	err := tx.tx.QueryRowContext(ctx, `SELECT slot FROM credential_slots WHERE key_id = ? AND account_id = ?`, keyID, accountID).Scan(&slot)
	if errors.Is(err, sql.ErrNoRows) {
		return -1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the slot of account %d on key %d: %w", accountID, keyID, err)
	}
	return slot, nil
}
