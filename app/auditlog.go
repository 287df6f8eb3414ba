package app

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"keydesk/keys"
	"keydesk/store"
)

// The audit log is a hash chain whose every entry also carries a MAC under
// the audit key, a key of the database's own sealed under the master key:
// whoever can write the database file but has not the master key can
// neither rewrite history nor recompute the chain. The log starts with a
// genesis entry (an empty log is a broken one), and the newest entry is
// also kept in a file outside the database, next to the master key, so
// that a database whose log stops short of it is reported as cut off.

// auditKeyState is the audit key and the first entry it keys (entries
// written before a database had one carry no MAC).
type auditKeyState struct {
	Key   []byte `json:"key"`
	Since int64  `json:"since"`
}

// keydeskActor is who writes the log's own entries.
var keydeskActor = Actor{Name: "keydesk", Role: RoleAdmin, Auth: Auth{Method: AuthSystem}}

// auditKey opens the audit key, creating it on first use: a new key keys
// the log from the next entry on, which it writes at once (audit.genesis
// for a new log, audit.keyed for one that grew before it had a key). Without
// a master key (some tests) the log is not keyed.
func (s *Service) auditKey(ctx context.Context, tx *store.Tx) (*auditKeyState, error) {
	s.vault.mu.Lock()
	cached := s.vault.audit
	s.vault.mu.Unlock()
	if cached != nil {
		return cached, nil
	}
	if s.master == nil {
		return nil, nil
	}
	mk, err := s.masterKey(ctx, tx)
	if err != nil {
		return nil, err
	}
	sealed, err := tx.MasterState(ctx, store.StateAuditKey)
	if err != nil {
		return nil, err
	}
	if sealed == nil {
		return s.createAuditKey(ctx, tx, mk)
	}
	st, err := openAuditKey(mk, sealed)
	if err != nil {
		return nil, err
	}
	s.vault.mu.Lock()
	s.vault.audit = st
	s.vault.mu.Unlock()
	return st, nil
}

func openAuditKey(mk *keys.MasterKey, sealed []byte) (*auditKeyState, error) {
	b, err := mk.Open(sealed, dbKeyBinding(store.StateAuditKey))
	if err != nil {
		return nil, fmt.Errorf("open the audit key: %w", err)
	}
	var st auditKeyState
	if err := json.Unmarshal(b, &st); err != nil || len(st.Key) != 32 || st.Since < 1 {
		return nil, fmt.Errorf("the audit key is damaged (%v)", err)
	}
	return &st, nil
}

func (s *Service) createAuditKey(ctx context.Context, tx *store.Tx, mk *keys.MasterKey) (*auditKeyState, error) {
	seq, _, err := tx.AuditHeadOf(ctx)
	if err != nil {
		return nil, err
	}
	st := &auditKeyState{Key: make([]byte, 32), Since: seq + 1}
	if _, err := rand.Read(st.Key); err != nil {
		return nil, fmt.Errorf("generate the audit key: %w", err)
	}
	b, _ := json.Marshal(st)
	sealed, err := mk.Seal(b, dbKeyBinding(store.StateAuditKey))
	clear(b)
	if err != nil {
		return nil, err
	}
	if err := tx.PutMasterState(ctx, store.StateAuditKey, sealed); err != nil {
		return nil, err
	}
	action, details := "audit.genesis", map[string]any{"master_key": mk.Fingerprint()}
	if seq > 0 {
		action, details["keyed_from"] = "audit.keyed", st.Since
		n, err := tx.KeyedAuditEntries(ctx)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			// Keyed entries without their key: the key row was deleted or
			// the database partly restored. Keep writing (under a new key)
			// but say so; verify reports those entries for good.
			details["orphaned_keyed_entries"] = n
			s.log.Error("the audit key is missing from the database though keyed entries exist; a new one was made and `keydesk audit verify` will report the earlier entries", "entries", n)
		}
	}
	if err := s.appendAudit(ctx, tx, st, keydeskActor, action, "audit", store.OutcomeSuccess, details); err != nil {
		return nil, err
	}
	return st, nil
}

// audit appends an entry for an action of a, in the transaction of the
// change it records.
func (s *Service) audit(ctx context.Context, tx *store.Tx, a Actor, action, target, outcome string, details map[string]any) error {
	ak, err := s.auditKey(ctx, tx)
	if err != nil {
		return fmt.Errorf("write the audit log: %w", err)
	}
	return s.appendAudit(ctx, tx, ak, a, action, target, outcome, details)
}

func (s *Service) appendAudit(ctx context.Context, tx *store.Tx, ak *auditKeyState, a Actor, action, target, outcome string, details map[string]any) error {
	var key []byte
	if ak != nil {
		key = ak.Key
	}
	e, err := tx.AppendAudit(ctx, store.AuditEntry{Actor: a.Name, Role: string(a.Role), Auth: a.Auth.String(),
		Action: action, Target: target, Outcome: outcome, Details: details}, key)
	if err != nil {
		return err
	}
	s.own.add(e)
	tx.AfterCommit(func() { s.afterAudit(e) })
	return nil
}

// afterAudit keeps the head outside the database and tells the sink (the
// system log), once the entry is committed.
func (s *Service) afterAudit(e store.AuditEntry) {
	if s.headFile != "" {
		if err := writeAuditHead(s.headFile, e); err != nil {
			s.log.Error("keep the audit head outside the database", "file", s.headFile, "err", err)
		}
	}
	if s.auditSink != nil {
		s.auditSink(e)
	}
}

// auditHead is the newest entry as kept outside the database.
type auditHead struct {
	Seq       int64
	Hash, MAC string
}

const auditHeadMagic = "keydesk audit head v1"

// writeAuditHead records e as the newest entry, unless the file already
// holds a newer one (another process wrote after this one); the file is
// replaced whole (0600).
func writeAuditHead(path string, e store.AuditEntry) error {
	if cur, err := readAuditHead(path); err == nil && cur.Seq >= e.Seq {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".audit.head-*") // 0600
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	fmt.Fprintf(tmp, "%s\nseq %d\nhash %s\nmac %s\n", auditHeadMagic, e.Seq, e.Hash, e.MAC)
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func readAuditHead(path string) (auditHead, error) {
	var h auditHead
	f, err := os.Open(path)
	if err != nil {
		return h, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var lines []string
	for sc.Scan() && len(lines) < 5 {
		lines = append(lines, sc.Text())
	}
	if len(lines) < 4 || lines[0] != auditHeadMagic {
		return h, fmt.Errorf("%s is not an audit head file", path)
	}
	v := func(line, name string) string { return strings.TrimPrefix(line, name+" ") }
	if h.Seq, err = strconv.ParseInt(v(lines[1], "seq"), 10, 64); err != nil {
		return h, fmt.Errorf("%s: bad seq: %w", path, err)
	}
	h.Hash, h.MAC = v(lines[2], "hash"), v(lines[3], "mac")
	return h, nil
}

// verifyAudit checks the log against its key and the head kept outside the
// database.
func (s *Service) verifyAudit(ctx context.Context) (store.AuditReport, error) {
	var opts store.VerifyOptions
	var extra []string
	sealed, err := s.st.MasterState(ctx, store.StateAuditKey)
	if err != nil {
		return store.AuditReport{}, err
	}
	fp, err := s.st.MasterState(ctx, store.StateFingerprint)
	if err != nil {
		return store.AuditReport{}, err
	}
	switch mk, err := s.masterKey(ctx, nil); {
	case sealed == nil && fp != nil:
		extra = append(extra, "the audit key is missing from the database (deleted?): the log's MACs cannot be checked")
	case sealed != nil && err != nil:
		return store.AuditReport{}, err
	case sealed != nil:
		ak, err := openAuditKey(mk, sealed)
		if err != nil {
			extra = append(extra, err.Error())
		} else {
			opts.Key, opts.KeyedSince = ak.Key, ak.Since
		}
	}
	if s.headFile != "" && opts.Key != nil {
		switch h, err := readAuditHead(s.headFile); {
		case errors.Is(err, fs.ErrNotExist):
			extra = append(extra, "the head kept outside the database ("+s.headFile+") is missing (deleted?)")
		case err != nil:
			extra = append(extra, err.Error())
		case h.MAC != store.EntryMAC(opts.Key, h.Hash):
			extra = append(extra, "the head kept outside the database ("+s.headFile+") was forged: its MAC does not match")
		default:
			opts.HeadSeq, opts.HeadHash = h.Seq, h.Hash
		}
	}
	rep, err := s.st.VerifyAudit(ctx, opts)
	rep.Problems = append(rep.Problems, extra...)
	return rep, err
}

// OpenAuditLog makes sure the audit log is keyed: a new database gets its
// audit key and genesis entry here, when it is first opened, so that its
// log is never empty.
func (s *Service) OpenAuditLog(ctx context.Context) error {
	if s.master == nil {
		return nil
	}
	s.vault.mu.Lock()
	cached := s.vault.audit
	s.vault.mu.Unlock()
	if cached != nil {
		return nil
	}
	return s.st.Update(ctx, func(tx *store.Tx) error {
		_, err := s.auditKey(ctx, tx)
		return err
	})
}
