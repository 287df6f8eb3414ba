package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// SyncState is what KeyDesk remembers of a domain's syncs: the high-water
// mark of the last successful one (valid only for the DC that issued it) and
// the result of the last attempt.
type SyncState struct {
	Domain        string
	DSADN         string // the DC's dsServiceName
	InvocationID  string // of that DC's NTDS Settings; changes on restore
	HighestUSN    int64
	ServerURL     string
	LastSuccessAt *time.Time
	LastAttemptAt *time.Time
	LastError     string
	LastSummary   string // JSON of the last summary
	// LastFullAt is when the last successful full read was (nil: never).
	LastFullAt *time.Time
}

// SyncState reads a domain's state; a domain never synced gives a zero state
// and no error.
func (s *Store) SyncState(ctx context.Context, domain string) (SyncState, error) {
	return readSyncState(ctx, s.db, domain)
}

// SyncState reads a domain's state inside the transaction.
func (tx *Tx) SyncState(ctx context.Context, domain string) (SyncState, error) {
	return readSyncState(ctx, tx.tx, domain)
}

func readSyncState(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, domain string) (SyncState, error) {
	st := SyncState{Domain: domain}
	var ok, attempt, full sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT dsa_dn, invocation_id, highest_usn, server_url, last_success_at, last_attempt_at, last_error, last_summary, last_full_at FROM sync_state WHERE domain = ?`, domain).
		Scan(&st.DSADN, &st.InvocationID, &st.HighestUSN, &st.ServerURL, &ok, &attempt, &st.LastError, &st.LastSummary, &full)
	if errors.Is(err, sql.ErrNoRows) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("read sync state of %s: %w", domain, err)
	}
	st.LastSuccessAt, st.LastAttemptAt, st.LastFullAt = fromNanos(ok), fromNanos(attempt), fromNanos(full)
	return st, nil
}

// SyncStates reads the state of every domain ever synced.
func (s *Store) SyncStates(ctx context.Context) ([]SyncState, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT domain FROM sync_state ORDER BY domain`)
	if err != nil {
		return nil, fmt.Errorf("read sync states: %w", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		names = append(names, n)
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return nil, fmt.Errorf("read sync states: %w", err)
	}
	rows.Close()
	out := make([]SyncState, 0, len(names))
	for _, n := range names {
		st, err := s.SyncState(ctx, n)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// PutSyncState writes a domain's state.
func (tx *Tx) PutSyncState(ctx context.Context, st SyncState) error {
	_, err := tx.tx.ExecContext(ctx, `INSERT INTO sync_state(domain, dsa_dn, invocation_id, highest_usn, server_url, last_success_at, last_attempt_at, last_error, last_summary, last_full_at)
		VALUES (?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT(domain) DO UPDATE SET dsa_dn = excluded.dsa_dn, invocation_id = excluded.invocation_id, highest_usn = excluded.highest_usn,
		server_url = excluded.server_url, last_success_at = excluded.last_success_at, last_attempt_at = excluded.last_attempt_at,
		last_error = excluded.last_error, last_summary = excluded.last_summary, last_full_at = excluded.last_full_at`,
		st.Domain, st.DSADN, st.InvocationID, st.HighestUSN, st.ServerURL, nullNanos(st.LastSuccessAt), nullNanos(st.LastAttemptAt), st.LastError, st.LastSummary, nullNanos(st.LastFullAt))
	if err != nil {
		return fmt.Errorf("write sync state of %s: %w", st.Domain, err)
	}
	return nil
}

// HeldRemoval is a leaver that the accident guard kept from being applied.
type HeldRemoval struct {
	Domain     string
	ObjectGUID string
	Reason     string
	DetectedAt time.Time
}

// ReplaceHeldRemovals replaces the held removals of a domain with hs.
func (tx *Tx) ReplaceHeldRemovals(ctx context.Context, domain string, hs []HeldRemoval) error {
	if _, err := tx.tx.ExecContext(ctx, `DELETE FROM held_removals WHERE domain = ?`, domain); err != nil {
		return fmt.Errorf("clear held removals of %s: %w", domain, err)
	}
	if len(hs) == 0 {
		return nil
	}
	st, err := tx.stmt(ctx, `INSERT INTO held_removals(domain, object_guid, reason, detected_at) VALUES (?,?,?,?)`)
	if err != nil {
		return fmt.Errorf("prepare held removal insert: %w", err)
	}
	for _, h := range hs {
		if _, err := st.ExecContext(ctx, domain, h.ObjectGUID, h.Reason, nanos(h.DetectedAt)); err != nil {
			return fmt.Errorf("hold removal of %s/%s: %w", domain, h.ObjectGUID, err)
		}
	}
	return nil
}

// HeldRemovals lists the held removals of a domain ("" = all domains).
func (s *Store) HeldRemovals(ctx context.Context, domain string) ([]HeldRemoval, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT domain, object_guid, reason, detected_at FROM held_removals WHERE ? = '' OR domain = ? ORDER BY domain, object_guid`, domain, domain)
	if err != nil {
		return nil, fmt.Errorf("read held removals: %w", err)
	}
	defer rows.Close()
	var out []HeldRemoval
	for rows.Next() {
		var h HeldRemoval
		var at int64
		if err := rows.Scan(&h.Domain, &h.ObjectGUID, &h.Reason, &at); err != nil {
			return nil, fmt.Errorf("read held removal: %w", err)
		}
		h.DetectedAt = time.Unix(0, at).UTC()
		out = append(out, h)
	}
	return out, rows.Err()
}
