package store

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Audit outcomes.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
	OutcomePartial = "partial"
	// OutcomeDenied: the actor's role does not hold the permission; nothing
	// was done.
	OutcomeDenied = "denied"
)

// genesisHash is the previous hash of the first entry.
const genesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// AuditEntry is one line of the append-only, hash-chained audit log. Details
// must never hold a secret.
type AuditEntry struct {
	Seq      int64          `json:"seq"`
	At       time.Time      `json:"at"`
	Actor    string         `json:"actor"`
	Role     string         `json:"role,omitempty"` // the actor's role
	Auth     string         `json:"auth,omitempty"` // how the actor was authenticated
	Action   string         `json:"action"`
	Target   string         `json:"target"`
	Outcome  string         `json:"outcome"`
	Details  map[string]any `json:"details,omitempty"`
	PrevHash string         `json:"prev_hash"`
	Hash     string         `json:"hash"`
	MAC      string         `json:"mac,omitempty"` // HMAC-SHA256(audit key, Hash), hex
}

// EntryMAC is an entry's MAC: HMAC-SHA256 of its hash under the audit key.
func EntryMAC(key []byte, hash string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("keydesk audit entry v1\x00"))
	m.Write([]byte(hash))
	return hex.EncodeToString(m.Sum(nil))
}

// entryHash is SHA-256 over a canonical JSON array of the entry's fields and
// the previous entry's hash. encoding/json sorts map keys, so the details
// serialise the same way every time. Role and auth (added later) join the
// array when either is set, so that older entries keep their hashes.
func entryHash(seq, at int64, actor, role, auth, action, target, outcome, details, prev string) string {
	fields := []any{seq, at, actor, action, target, outcome, details, prev}
	if role != "" || auth != "" {
		fields = append(fields, role, auth)
	}
	b, _ := json.Marshal(fields)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// AppendAudit adds an entry to the log inside the transaction, chained to the
// newest one, with its MAC under key (none when key is nil: a log that is
// not keyed, in tests of this package). The entry's time is the
// transaction's.
func (tx *Tx) AppendAudit(ctx context.Context, e AuditEntry, key []byte) (AuditEntry, error) {
	details := "{}"
	if len(e.Details) > 0 {
		b, err := json.Marshal(e.Details)
		if err != nil {
			return e, fmt.Errorf("encode audit details: %w", err)
		}
		details = string(b)
	}
	var seq int64
	prev := genesisHash
	err := tx.tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&seq, &prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return e, fmt.Errorf("read audit head: %w", err)
	}
	seq++
	at := nanos(tx.now)
	h := entryHash(seq, at, e.Actor, e.Role, e.Auth, e.Action, e.Target, e.Outcome, details, prev)
	mac := ""
	if key != nil {
		mac = EntryMAC(key, h)
	}
	if _, err := tx.tx.ExecContext(ctx, `INSERT INTO audit_log(seq, at, actor, role, auth, action, target, outcome, details, prev_hash, hash, mac) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
		seq, at, e.Actor, e.Role, e.Auth, e.Action, e.Target, e.Outcome, details, prev, h, mac); err != nil {
		return e, fmt.Errorf("append audit entry: %w", err)
	}
	if _, err := tx.tx.ExecContext(ctx, `INSERT INTO audit_head(id, seq, hash) VALUES (1, ?, ?) ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash`, seq, h); err != nil {
		return e, fmt.Errorf("move audit head: %w", err)
	}
	e.Seq, e.At, e.PrevHash, e.Hash, e.MAC = seq, tx.now, prev, h, mac
	return e, nil
}

// Audit appends one entry, not keyed, in a transaction of its own (tests).
func (s *Store) Audit(ctx context.Context, e AuditEntry) error {
	return s.Update(ctx, func(tx *Tx) error {
		_, err := tx.AppendAudit(ctx, e, nil)
		return err
	})
}

// AuditHeadOf is the newest entry's number and hash inside the transaction
// (0 and "" for an empty log).
func (tx *Tx) AuditHeadOf(ctx context.Context) (int64, string, error) {
	var seq int64
	var h string
	err := tx.tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&seq, &h)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", nil
	}
	if err != nil {
		return 0, "", fmt.Errorf("read audit head: %w", err)
	}
	return seq, h, nil
}

// KeyedAuditEntries counts the entries that carry a MAC.
func (tx *Tx) KeyedAuditEntries(ctx context.Context) (int64, error) {
	var n int64
	if err := tx.tx.QueryRowContext(ctx, `SELECT count(*) FROM audit_log WHERE mac <> ''`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count keyed audit entries: %w", err)
	}
	return n, nil
}

// AuditHead is the sequence number of the newest entry (0 when the log is
// empty): a cheap way to notice that another process changed something.
func (s *Store) AuditHead(ctx context.Context) (int64, error) {
	var seq int64
	err := s.db.QueryRowContext(ctx, `SELECT seq FROM audit_head WHERE id = 1`).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read audit head: %w", err)
	}
	return seq, nil
}

// AuditFilter narrows a listing of the audit log.
type AuditFilter struct {
	AfterSeq int64 // entries with a larger sequence number only
	Limit    int   // 0 = all
	Newest   bool  // newest first
}

// AuditEntries calls fn for each entry, oldest first unless f.Newest.
func (s *Store) AuditEntries(ctx context.Context, f AuditFilter, fn func(AuditEntry) error) error {
	order := "ASC"
	if f.Newest {
		order = "DESC"
	}
	limit := -1
	if f.Limit > 0 {
		limit = f.Limit
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+auditCols+` FROM audit_log WHERE seq > ? ORDER BY seq `+order+` LIMIT ?`, f.AfterSeq, limit)
	if err != nil {
		return fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		e, _, err := scanAudit(rows)
		if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return rows.Err()
}

const auditCols = `seq, at, actor, role, auth, action, target, outcome, details, prev_hash, hash, mac`

func scanAudit(rows *sql.Rows) (AuditEntry, string, error) {
	var e AuditEntry
	var at int64
	var details string
	if err := rows.Scan(&e.Seq, &at, &e.Actor, &e.Role, &e.Auth, &e.Action, &e.Target, &e.Outcome, &details, &e.PrevHash, &e.Hash, &e.MAC); err != nil {
		return e, "", fmt.Errorf("read audit entry: %w", err)
	}
	e.At = time.Unix(0, at).UTC()
	if details != "" && details != "{}" {
		if err := json.Unmarshal([]byte(details), &e.Details); err != nil {
			// Keep the raw text visible rather than failing the listing.
			e.Details = map[string]any{"unparseable": details}
		}
	}
	return e, details, nil
}

// AuditReport is what VerifyAudit found.
type AuditReport struct {
	Entries  int64    `json:"entries"`
	Problems []string `json:"problems"`
	// First is the first entry found bad (0 when none or when the problem
	// is not one entry's, such as a log cut off at its end).
	First int64 `json:"first_bad_entry,omitempty"`
}

// OK reports whether the chain is intact.
func (r AuditReport) OK() bool { return len(r.Problems) == 0 }

func (r *AuditReport) problem(seq int64, format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	if seq > 0 && (r.First == 0 || seq < r.First) {
		r.First = seq
	}
}

// VerifyOptions are what the log is checked against besides itself.
type VerifyOptions struct {
	// Key is the audit key; every entry from KeyedSince on must carry its
	// MAC under it. Nil: the MACs are not checked (a log that is not keyed).
	Key        []byte
	KeyedSince int64
	// HeadSeq and HeadHash are the newest entry as recorded outside the
	// database (0: none): a log that stops short of it was cut off.
	HeadSeq  int64
	HeadHash string
}

// VerifyAudit recomputes every hash (and MAC) of the chain and reports
// entries that were edited, deleted, inserted or cut off the end, naming
// the first bad entry.
func (s *Store) VerifyAudit(ctx context.Context, o VerifyOptions) (AuditReport, error) {
	var rep AuditReport
	rows, err := s.db.QueryContext(ctx, `SELECT `+auditCols+` FROM audit_log ORDER BY seq`)
	if err != nil {
		return rep, fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	prevHash := genesisHash
	var prevSeq int64
	var orphanFrom, orphanTo int64 // entries with a MAC from before KeyedSince
	hashes := map[int64]string{}
	for rows.Next() {
		e, details, err := scanAudit(rows)
		if err != nil {
			return rep, err
		}
		rep.Entries++
		if e.Seq != prevSeq+1 {
			rep.problem(prevSeq+1, "entries %d to %d are missing (deleted)", prevSeq+1, e.Seq-1)
		}
		if e.PrevHash != prevHash {
			rep.problem(e.Seq, "entry %d does not follow the entry before it (an entry before it was changed, deleted or inserted)", e.Seq)
		}
		if got := entryHash(e.Seq, e.At.UnixNano(), e.Actor, e.Role, e.Auth, e.Action, e.Target, e.Outcome, details, e.PrevHash); got != e.Hash {
			rep.problem(e.Seq, "entry %d was edited: its content does not match its hash", e.Seq)
		}
		if o.Key != nil && e.Seq >= o.KeyedSince && !hmac.Equal([]byte(e.MAC), []byte(EntryMAC(o.Key, e.Hash))) {
			rep.problem(e.Seq, "entry %d was forged or edited: its MAC does not match (only KeyDesk, with the master key, can write one)", e.Seq)
		}
		if o.Key != nil && e.Seq < o.KeyedSince && e.MAC != "" {
			if orphanFrom == 0 {
				orphanFrom = e.Seq
			}
			orphanTo = e.Seq
		}
		if o.HeadSeq > 0 && e.Seq == o.HeadSeq {
			hashes[e.Seq] = e.Hash
		}
		prevHash, prevSeq = e.Hash, e.Seq
	}
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("read audit log: %w", err)
	}
	if orphanFrom > 0 {
		rep.problem(orphanFrom, "entries %d to %d carry MACs of an audit key that is no longer in the database (it was deleted or replaced): they cannot be checked", orphanFrom, orphanTo)
	}
	if o.Key != nil && prevSeq < o.KeyedSince {
		rep.problem(0, "the log ends at entry %d but keyed entries start at %d: the log was emptied or cut off", prevSeq, o.KeyedSince)
	}
	if o.HeadSeq > 0 {
		switch h, ok := hashes[o.HeadSeq]; {
		case prevSeq < o.HeadSeq:
			rep.problem(0, "the log ends at entry %d but entry %d was written (the head kept outside the database): entries were cut off the end", prevSeq, o.HeadSeq)
		case ok && h != o.HeadHash:
			rep.problem(o.HeadSeq, "entry %d is not the entry that was written (the head kept outside the database has another hash)", o.HeadSeq)
		}
	}
	var headSeq int64
	var headHash string
	err = s.db.QueryRowContext(ctx, `SELECT seq, hash FROM audit_head WHERE id = 1`).Scan(&headSeq, &headHash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if rep.Entries > 0 {
			rep.problem(0, "the audit head record is missing")
		}
	case err != nil:
		return rep, fmt.Errorf("read audit head: %w", err)
	case headSeq != prevSeq || headHash != prevHash:
		rep.problem(0, "the log ends at entry %d but the last entry written was %d: entries were cut off the end or the head was changed", prevSeq, headSeq)
	}
	return rep, nil
}
