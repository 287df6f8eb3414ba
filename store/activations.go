package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Activation is the recorded progress of a key's activation (package keys
// decides what it means).
type Activation struct {
	KeyID      int64
	Step       string
	KeyVersion int64
	Actor      string
	AcceptedAt time.Time
	UpdatedAt  time.Time
}

// Activation reads the progress recorded for a key; nil when there is none.
func (tx *Tx) Activation(ctx context.Context, keyID int64) (*Activation, error) {
	return activation(ctx, tx.tx, keyID)
}

// Activation reads the progress recorded for a key outside a transaction;
// nil when there is none.
func (s *Store) Activation(ctx context.Context, keyID int64) (*Activation, error) {
	return activation(ctx, s.db, keyID)
}

func activation(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}, keyID int64) (*Activation, error) {
	a := Activation{KeyID: keyID}
	var accepted, updated int64
	err := q.QueryRowContext(ctx, `SELECT step, key_version, actor, accepted_at, updated_at FROM activations WHERE key_id = ?`, keyID).
		Scan(&a.Step, &a.KeyVersion, &a.Actor, &accepted, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read activation of key %d: %w", keyID, err)
	}
	a.AcceptedAt, a.UpdatedAt = time.Unix(0, accepted).UTC(), time.Unix(0, updated).UTC()
	return &a, nil
}

// PutActivation records an activation's progress (replacing what was
// recorded for the key); UpdatedAt is the transaction's time.
func (tx *Tx) PutActivation(ctx context.Context, a *Activation) error {
	_, err := tx.tx.ExecContext(ctx, `INSERT INTO activations(key_id, step, key_version, actor, accepted_at, updated_at) VALUES (?,?,?,?,?,?)
		ON CONFLICT(key_id) DO UPDATE SET step = excluded.step, key_version = excluded.key_version, actor = excluded.actor,
		accepted_at = excluded.accepted_at, updated_at = excluded.updated_at`,
		a.KeyID, a.Step, a.KeyVersion, a.Actor, nanos(a.AcceptedAt), nanos(tx.now))
	if err != nil {
		return fmt.Errorf("record activation of key %d: %w", a.KeyID, err)
	}
	a.UpdatedAt = tx.now
	return nil
}

// DeleteActivation removes a key's recorded progress (none is fine).
func (tx *Tx) DeleteActivation(ctx context.Context, keyID int64) error {
	if _, err := tx.tx.ExecContext(ctx, `DELETE FROM activations WHERE key_id = ?`, keyID); err != nil {
		return fmt.Errorf("forget activation of key %d: %w", keyID, err)
	}
	return nil
}
