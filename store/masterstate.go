package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Names of the values in master_state.
const (
	// StateFingerprint is the fingerprint of the master key the database's
	// secrets are sealed under (text).
	StateFingerprint = "master-fingerprint"
	// StateCodePepper is the activation codes' pepper, sealed.
	StateCodePepper = "code-pepper"
	// StateAuditKey is the audit log's MAC key, sealed.
	StateAuditKey = "audit-key"
)

// MasterState reads a value of master_state (nil when there is none).
func (s *Store) MasterState(ctx context.Context, name string) ([]byte, error) {
	return masterState(ctx, s.db, name)
}

// MasterState reads a value of master_state inside the transaction (nil
// when there is none).
func (tx *Tx) MasterState(ctx context.Context, name string) ([]byte, error) {
	return masterState(ctx, tx.tx, name)
}

func masterState(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}, name string) ([]byte, error) {
	var v []byte
	err := q.QueryRowContext(ctx, `SELECT value FROM master_state WHERE name = ?`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return v, nil
}

// PutMasterState sets a value of master_state.
func (tx *Tx) PutMasterState(ctx context.Context, name string, value []byte) error {
	if _, err := tx.tx.ExecContext(ctx, `INSERT INTO master_state(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value`, name, value); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// HoldsSealedData reports whether the database holds anything its master
// key protects: a sealed key secret, an activation or enrollment code hash,
// a password held in the password journal, an invitation's code waiting in
// the outbox, an authenticator secret, or a sealed key of its own.
func (s *Store) HoldsSealedData(ctx context.Context) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM keys WHERE secret_sealed IS NOT NULL OR prev_secret_sealed IS NOT NULL OR code_hash IS NOT NULL)
		+ (SELECT COUNT(*) FROM password_changes WHERE password_sealed IS NOT NULL)
		+ (SELECT COUNT(*) FROM outbox WHERE payload_sealed IS NOT NULL)
		+ (SELECT COUNT(*) FROM enrollments WHERE secret_sealed IS NOT NULL OR pending_sealed IS NOT NULL)
		+ (SELECT COUNT(*) FROM invitations)
		+ (SELECT COUNT(*) FROM master_state WHERE name <> ?)`, StateFingerprint).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("look for sealed data: %w", err)
	}
	return n > 0, nil
}

// SealedKeys reads the keys that hold a sealed secret (or a previous one).
func (tx *Tx) SealedKeys(ctx context.Context) ([]Key, error) {
	return queryKeys(ctx, tx.tx, `WHERE k.secret_sealed IS NOT NULL OR k.prev_secret_sealed IS NOT NULL ORDER BY k.id`)
}

// SetKeySecrets replaces a key's sealed secret and previous secret with the
// same secrets sealed anew (a new master key; nil: none): the key's version
// does not change.
func (tx *Tx) SetKeySecrets(ctx context.Context, id int64, sealed, prev []byte) error {
	res, err := tx.tx.ExecContext(ctx, `UPDATE keys SET secret_sealed = ?, prev_secret_sealed = ? WHERE id = ?`, nullBytes(sealed), nullBytes(prev), id)
	if err != nil {
		return fmt.Errorf("re-seal the secret of key %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return fmt.Errorf("re-seal the secret of key %d: %w", id, ErrNotFound)
	}
	return nil
}
