package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// TakeLease makes holder the holder of lease name until now+ttl, if nobody
// else holds it unexpired (a holder renews its own lease the same way). It
// reports whether holder holds it now.
func (s *Store) TakeLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	var held bool
	err := s.Update(ctx, func(tx *Tx) error {
		var cur string
		var exp int64
		err := tx.tx.QueryRowContext(ctx, `SELECT holder, expires_at FROM leases WHERE name = ?`, name).Scan(&cur, &exp)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		case cur != holder && exp > nanos(tx.now):
			return nil // someone else's, still valid
		}
		_, err = tx.tx.ExecContext(ctx, `INSERT INTO leases(name, holder, expires_at) VALUES (?, ?, ?)
			ON CONFLICT(name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at`, name, holder, nanos(tx.now.Add(ttl)))
		held = err == nil
		return err
	})
	if err != nil {
		return false, fmt.Errorf("take the %s lease: %w", name, err)
	}
	return held, nil
}

// ReleaseLease gives up holder's lease (a clean stop), so that another
// process takes over at once.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM leases WHERE name = ? AND holder = ?`, name, holder)
	if err != nil {
		return fmt.Errorf("release the %s lease: %w", name, err)
	}
	return nil
}

// LeaseHolder says who holds lease name and until when ("" when nobody
// does, or the lease expired).
func (s *Store) LeaseHolder(ctx context.Context, name string) (string, time.Time, error) {
	var holder string
	var exp int64
	err := s.db.QueryRowContext(ctx, `SELECT holder, expires_at FROM leases WHERE name = ?`, name).Scan(&holder, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return "", time.Time{}, nil
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("read the %s lease: %w", name, err)
	}
	t := time.Unix(0, exp).UTC()
	if !t.After(s.now()) {
		return "", time.Time{}, nil
	}
	return holder, t, nil
}

// ManagedAccount is an account whose password KeyDesk manages (a member of
// its domain's sync and password groups, of an active employee), with what
// the schedule needs: its employee's key, KeyDesk's record of its changes,
// and its change under way.
type ManagedAccount struct {
	Account
	Email     string
	KeyID     *int64 // the employee's key in use (nil: none)
	KeySerial string
	KeyStatus string
	// LastOnKey: when the key last received a password for the account
	// (nil: never).
	LastOnKey *time.Time
	// LastInAD: when KeyDesk last changed the password in AD (nil: never),
	// whether or not the key has it yet.
	LastInAD *time.Time
	// Open is the change under way, or the last change when it failed
	// (nil: none).
	Open *PasswordChange
}

// The SQL of an account a (of employee e, whose key in use is k) that
// says whether KeyDesk manages its password, when its key last received a
// password for it, and when KeyDesk last changed it in AD.
const (
	managedSQL = `(a.password_rotation = 1 AND a.in_sync_group = 1 AND a.left_reason IS NULL AND e.status = 'active')`
	onKeySQL   = `(SELECT MAX(pc.finished_at) FROM password_changes pc WHERE pc.account_id = a.id AND pc.step = 'done' AND pc.key_id = k.id)`
	inADSQL    = `(SELECT MAX(COALESCE(pc.ad_written_at, CASE WHEN pc.step = 'done' AND pc.ord <> 'key-only' THEN pc.finished_at END))
				FROM password_changes pc WHERE pc.account_id = a.id)`
)

// ManagedAccounts lists the managed accounts, by domain and
// sAMAccountName, in one query, and their latest changes in a second.
func (s *Store) ManagedAccounts(ctx context.Context) ([]ManagedAccount, error) {
	rows, err := s.db.QueryContext(ctx, `WITH m AS (
		SELECT a.*, COALESCE(e.email, '') AS m_email, k.id AS m_key, COALESCE(k.serial, '') AS m_serial, COALESCE(k.status, '') AS m_status,
			`+onKeySQL+` AS m_on_key, `+inADSQL+` AS m_in_ad
		FROM accounts a JOIN employees e ON e.id = a.employee_id
		LEFT JOIN keys k ON k.employee_id = e.id AND k.status IN `+liveKeyStatuses+`
		WHERE `+managedSQL+`)
		SELECT `+accountCols+`, m_email, m_key, m_serial, m_status, m_on_key, m_in_ad FROM m ORDER BY domain, sam_account_name, id`)
	if err != nil {
		return nil, fmt.Errorf("read the managed accounts: %w", err)
	}
	defer rows.Close()
	var out []ManagedAccount
	index := map[int64]int{}
	for rows.Next() {
		var m ManagedAccount
		var keyID, onKey, inAD sql.NullInt64
		if m.Account, err = scanAccountWith(rows, &m.Email, &keyID, &m.KeySerial, &m.KeyStatus, &onKey, &inAD); err != nil {
			return nil, fmt.Errorf("read the managed accounts: %w", err)
		}
		if keyID.Valid {
			id := keyID.Int64
			m.KeyID = &id
		}
		m.LastOnKey, m.LastInAD = fromNanos(onKey), fromNanos(inAD)
		index[m.ID] = len(out)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the managed accounts: %w", err)
	}
	rows.Close()
	// Each account's latest change: its change under way if it has one
	// (a change under way is always the account's newest), else its last
	// change, kept when it failed.
	cs, err := queryChanges(ctx, s.db, `WHERE id IN (SELECT MAX(id) FROM password_changes GROUP BY account_id) AND step <> 'done'`)
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		if i, ok := index[c.AccountID]; ok {
			out[i].Open = &c
		}
	}
	return out, nil
}
