package store

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// auditTestKey keys the fixture's log; keyed checks it.
var (
	auditTestKey = []byte("0123456789abcdef0123456789abcdef")
	keyed        = VerifyOptions{Key: auditTestKey, KeyedSince: 1}
)

// auditEntries reads the whole log with AuditEntries.
func auditEntries(t *testing.T, s *Store, f AuditFilter) []AuditEntry {
	t.Helper()
	var out []AuditEntry
	if err := s.AuditEntries(context.Background(), f, func(e AuditEntry) error {
		out = append(out, e)
		return nil
	}); err != nil {
		t.Fatalf("AuditEntries(%+v): %v", f, err)
	}
	return out
}

func seqs(es []AuditEntry) []int64 {
	out := []int64{}
	for _, e := range es {
		out = append(out, e.Seq)
	}
	return out
}

// auditFixture writes six entries: three in transactions of their own, then
// three in one transaction. It returns what AppendAudit returned.
func auditFixture(t *testing.T, s *Store) []AuditEntry {
	t.Helper()
	var written []AuditEntry
	for i, target := range []string{"corp", "lab", "corp"} {
		update(t, s, func(ctx context.Context, tx *Tx) error {
			e, err := tx.AppendAudit(ctx, AuditEntry{
				Actor: "scheduler", Action: "sync", Target: target, Outcome: OutcomeSuccess,
				Details: map[string]any{"added": i, "domain": target},
			}, auditTestKey)
			written = append(written, e)
			return err
		})
	}
	update(t, s, func(ctx context.Context, tx *Tx) error {
		for _, e := range []AuditEntry{
			{Actor: "alice", Role: "admin", Auth: "os-user uid=1000(alice) via cli", Action: "employee.add", Target: "employee 1", Outcome: OutcomeSuccess},
			{Actor: "alice", Action: "employee.remove", Target: "employee 2", Outcome: OutcomeFailure, Details: map[string]any{"error": "not found"}},
			{Actor: "alice", Action: "sync", Target: "all", Outcome: OutcomePartial, Details: map[string]any{"domains": []any{"corp", "lab"}}},
		} {
			got, err := tx.AppendAudit(ctx, e, auditTestKey)
			if err != nil {
				return err
			}
			written = append(written, got)
		}
		return nil
	})
	update(t, s, func(ctx context.Context, tx *Tx) error { // an empty entry is still an entry
		_, err := tx.AppendAudit(ctx, AuditEntry{}, auditTestKey)
		return err
	})
	return written
}

func TestAuditAppendAndVerify(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	if head, err := s.AuditHead(ctx); err != nil || head != 0 {
		t.Fatalf("AuditHead of an empty log = %d, %v; want 0", head, err)
	}

	rep, err := s.VerifyAudit(ctx, VerifyOptions{})
	if err != nil || !rep.OK() || rep.Entries != 0 {
		t.Fatalf("VerifyAudit of an empty log that is not keyed = %+v, %v; want OK with 0 entries", rep, err)
	}
	// A keyed log starts with an entry: empty, it was emptied.
	if rep, err := s.VerifyAudit(ctx, keyed); err != nil || rep.OK() || !strings.Contains(strings.Join(rep.Problems, " "), "emptied") {
		t.Errorf("VerifyAudit of an empty keyed log = %+v, %v; want it broken", rep, err)
	}

	written := auditFixture(t, s)
	if head, err := s.AuditHead(ctx); err != nil || head != int64(len(written)+1) {
		t.Errorf("AuditHead = %d, %v; want %d", head, err, len(written)+1)
	}
	rep, err = s.VerifyAudit(ctx, keyed)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || rep.Entries != int64(len(written)+1) {
		t.Fatalf("VerifyAudit = %+v, want OK with %d entries", rep, len(written)+1)
	}

	stored := auditEntries(t, s, AuditFilter{})
	if len(stored) != len(written)+1 {
		t.Fatalf("AuditEntries returned %d entries, want %d", len(stored), len(written)+1)
	}
	prev := genesisHash
	for i, e := range stored {
		if e.Seq != int64(i+1) {
			t.Errorf("entry %d has seq %d", i+1, e.Seq)
		}
		if e.PrevHash != prev {
			t.Errorf("entry %d: PrevHash %s, want the previous entry's hash %s", e.Seq, e.PrevHash, prev)
		}
		if len(e.Hash) != 64 || e.Hash == e.PrevHash {
			t.Errorf("entry %d: hash %q is not a new SHA-256", e.Seq, e.Hash)
		}
		prev = e.Hash
		if i < len(written) {
			w := written[i]
			if w.Seq != e.Seq || w.Hash != e.Hash || w.PrevHash != e.PrevHash || !w.At.Equal(e.At) || w.Actor != e.Actor || w.Role != e.Role || w.Auth != e.Auth || w.Action != e.Action || w.Target != e.Target || w.Outcome != e.Outcome {
				t.Errorf("entry %d: AppendAudit returned %+v, stored %+v", e.Seq, w, e)
			}
		}
	}
	// Entries of one transaction share its time; separate ones do not.
	if !stored[3].At.Equal(stored[4].At) || !stored[4].At.Equal(stored[5].At) {
		t.Errorf("entries of one transaction have times %v, %v, %v", stored[3].At, stored[4].At, stored[5].At)
	}
	if !stored[1].At.After(stored[0].At) || !stored[3].At.After(stored[2].At) {
		t.Errorf("entries of separate transactions do not have increasing times")
	}
}

func TestAuditTriggersForbidChanges(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	auditFixture(t, s)
	for _, q := range []string{
		`UPDATE audit_log SET actor = 'mallory' WHERE seq = 2`,
		`UPDATE audit_log SET details = '{}'`,
		`DELETE FROM audit_log WHERE seq = 3`,
		`DELETE FROM audit_log`,
	} {
		_, err := s.db.ExecContext(ctx, q)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: error = %v, want the append-only trigger to abort it", q, err)
		}
	}
	rep, err := s.VerifyAudit(ctx, keyed)
	if err != nil || !rep.OK() {
		t.Errorf("VerifyAudit after refused changes = %+v, %v", rep, err)
	}
}

func TestVerifyAuditFindsTampering(t *testing.T) {
	// The fixture has seven entries.
	const last = 7
	tests := []struct {
		name        string
		tamper      []string // SQL run with the triggers dropped
		forge       func(t *testing.T, s *Store)
		wantEntries int64
		want        []string
	}{
		{name: "edited details",
			tamper:      []string{`UPDATE audit_log SET details = '{"added":99,"domain":"corp"}' WHERE seq = 3`},
			wantEntries: last, want: []string{"entry 3 was edited"}},
		{name: "edited actor",
			tamper:      []string{`UPDATE audit_log SET actor = 'mallory' WHERE seq = 5`},
			wantEntries: last, want: []string{"entry 5 was edited"}},
		{name: "edited role",
			tamper:      []string{`UPDATE audit_log SET role = 'helpdesk' WHERE seq = 4`},
			wantEntries: last, want: []string{"entry 4 was edited"}},
		{name: "role and authentication removed",
			tamper:      []string{`UPDATE audit_log SET role = '', auth = '' WHERE seq = 4`},
			wantEntries: last, want: []string{"entry 4 was edited"}},
		{name: "authentication given to an entry without one",
			tamper:      []string{`UPDATE audit_log SET auth = 'ssh-key SHA256:x' WHERE seq = 5`},
			wantEntries: last, want: []string{"entry 5 was edited"}},
		{name: "edited outcome of the last entry",
			tamper:      []string{`UPDATE audit_log SET outcome = 'success' WHERE seq = 7`},
			wantEntries: last, want: []string{"entry 7 was edited"}},
		{name: "edited time",
			tamper:      []string{`UPDATE audit_log SET at = at + 1 WHERE seq = 1`},
			wantEntries: last, want: []string{"entry 1 was edited"}},
		{name: "edited and rehashed",
			forge:       func(t *testing.T, s *Store) { rehash(t, s, 4, "actor", "mallory") },
			wantEntries: last, want: []string{"entry 5 does not follow"}},
		{name: "deleted middle entry",
			tamper:      []string{`DELETE FROM audit_log WHERE seq = 4`},
			wantEntries: last - 1, want: []string{"entries 4 to 4 are missing", "entry 5 does not follow"}},
		{name: "deleted first entries",
			tamper:      []string{`DELETE FROM audit_log WHERE seq <= 2`},
			wantEntries: last - 2, want: []string{"entries 1 to 2 are missing", "entry 3 does not follow"}},
		{name: "cut off the end",
			tamper:      []string{`DELETE FROM audit_log WHERE seq = 7`},
			wantEntries: last - 1, want: []string{"the log ends at entry 6 but the last entry written was 7"}},
		{name: "everything deleted",
			tamper:      []string{`DELETE FROM audit_log`},
			wantEntries: 0, want: []string{"the log ends at entry 0 but the last entry written was 7"}},
		{name: "head deleted",
			tamper:      []string{`DELETE FROM audit_head`},
			wantEntries: last, want: []string{"audit head record is missing"}},
		{name: "forged entry appended with a valid hash",
			forge:       func(t *testing.T, s *Store) { forgeEntry(t, s, last+1, true) },
			wantEntries: last + 1, want: []string{"the log ends at entry 8 but the last entry written was 7"}},
		{name: "forged entry appended with a made-up hash",
			forge:       func(t *testing.T, s *Store) { forgeEntry(t, s, last+1, false) },
			wantEntries: last + 1, want: []string{"entry 8 was edited", "the log ends at entry 8"}},
		{name: "forged entry in place of a deleted one",
			tamper:      []string{`DELETE FROM audit_log WHERE seq = 3`},
			forge:       func(t *testing.T, s *Store) { forgeEntry(t, s, 3, true) },
			wantEntries: last, want: []string{"entry 4 does not follow"}},
		{name: "forged entry inserted between two",
			tamper: []string{
				// Make room by moving the tail up one sequence number.
				`UPDATE audit_log SET seq = seq + 100 WHERE seq >= 4`,
				`UPDATE audit_log SET seq = seq - 99 WHERE seq >= 104`,
			},
			forge:       func(t *testing.T, s *Store) { forgeEntry(t, s, 4, true) },
			wantEntries: last + 1, want: []string{"entry 5 was edited", "entry 5 does not follow"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, _ := openStore(t)
			auditFixture(t, s)
			if rep, err := s.VerifyAudit(ctx, keyed); err != nil || !rep.OK() || rep.Entries != last {
				t.Fatalf("VerifyAudit before tampering = %+v, %v", rep, err)
			}
			dropAuditTriggers(t, s)
			for _, q := range tt.tamper {
				if _, err := s.db.ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			if tt.forge != nil {
				tt.forge(t, s)
			}
			rep, err := s.VerifyAudit(ctx, keyed)
			if err != nil {
				t.Fatalf("VerifyAudit: %v", err)
			}
			if rep.OK() {
				t.Fatalf("VerifyAudit found nothing wrong (%d entries)", rep.Entries)
			}
			if rep.Entries != tt.wantEntries {
				t.Errorf("VerifyAudit counted %d entries, want %d", rep.Entries, tt.wantEntries)
			}
			all := strings.Join(rep.Problems, "\n")
			for _, w := range tt.want {
				if !strings.Contains(all, w) {
					t.Errorf("problems %q do not mention %q", rep.Problems, w)
				}
			}
		})
	}
}

func dropAuditTriggers(t *testing.T, s *Store) {
	t.Helper()
	for _, q := range []string{`DROP TRIGGER audit_log_no_update`, `DROP TRIGGER audit_log_no_delete`} {
		if _, err := s.db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// rehash edits one column of an entry and recomputes that entry's hash, as
// someone who knows the hash function would.
func rehash(t *testing.T, s *Store, seq int64, column, value string) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.db.ExecContext(ctx, `UPDATE audit_log SET `+column+` = ? WHERE seq = ?`, value, seq); err != nil {
		t.Fatal(err)
	}
	var at int64
	var actor, role, auth, action, target, outcome, details, prev string
	if err := s.db.QueryRowContext(ctx, `SELECT at, actor, role, auth, action, target, outcome, details, prev_hash FROM audit_log WHERE seq = ?`, seq).
		Scan(&at, &actor, &role, &auth, &action, &target, &outcome, &details, &prev); err != nil {
		t.Fatal(err)
	}
	h := entryHash(seq, at, actor, role, auth, action, target, outcome, details, prev)
	if _, err := s.db.ExecContext(ctx, `UPDATE audit_log SET hash = ? WHERE seq = ?`, h, seq); err != nil {
		t.Fatal(err)
	}
}

// forgeEntry inserts an entry at seq, chained to the entry before it (with a
// correctly computed hash when valid is set).
func forgeEntry(t *testing.T, s *Store, seq int64, valid bool) {
	t.Helper()
	ctx := context.Background()
	prev := genesisHash
	var at int64
	if err := s.db.QueryRowContext(ctx, `SELECT at, hash FROM audit_log WHERE seq = ?`, seq-1).Scan(&at, &prev); err != nil {
		t.Fatalf("entry before %d: %v", seq, err)
	}
	details := `{"reason":"forged"}`
	h := strings.Repeat("ab", 32)
	if valid {
		h = entryHash(seq, at, "mallory", "", "", "employee.add", "employee 9", OutcomeSuccess, details, prev)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO audit_log(seq, at, actor, action, target, outcome, details, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?)`,
		seq, at, "mallory", "employee.add", "employee 9", OutcomeSuccess, details, prev, h); err != nil {
		t.Fatal(err)
	}
}

func TestAuditEntriesFilter(t *testing.T) {
	s, _ := openStore(t)
	auditFixture(t, s) // seq 1..7
	tests := []struct {
		name string
		f    AuditFilter
		want []int64
	}{
		{"all oldest first", AuditFilter{}, []int64{1, 2, 3, 4, 5, 6, 7}},
		{"newest first", AuditFilter{Newest: true}, []int64{7, 6, 5, 4, 3, 2, 1}},
		{"limit", AuditFilter{Limit: 3}, []int64{1, 2, 3}},
		{"newest with limit", AuditFilter{Newest: true, Limit: 2}, []int64{7, 6}},
		{"after seq", AuditFilter{AfterSeq: 5}, []int64{6, 7}},
		{"after seq with limit", AuditFilter{AfterSeq: 2, Limit: 2}, []int64{3, 4}},
		{"after seq newest first", AuditFilter{AfterSeq: 4, Newest: true}, []int64{7, 6, 5}},
		{"after the last", AuditFilter{AfterSeq: 7}, []int64{}},
		{"negative limit means all", AuditFilter{Limit: -1}, []int64{1, 2, 3, 4, 5, 6, 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := seqs(auditEntries(t, s, tt.f)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("AuditEntries(%+v) seqs = %v, want %v", tt.f, got, tt.want)
			}
		})
	}

	// An error from the callback stops the listing and is returned.
	errStop := errors.New("stop")
	calls := 0
	err := s.AuditEntries(context.Background(), AuditFilter{}, func(AuditEntry) error {
		calls++
		return errStop
	})
	if !errors.Is(err, errStop) || calls != 1 {
		t.Errorf("AuditEntries with a failing callback: error %v after %d calls, want errStop after 1", err, calls)
	}
}

func TestAuditDetailsRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		details map[string]any
	}{
		{"nil", nil},
		{"empty", map[string]any{}},
		{"strings", map[string]any{"domain": "corp", "guid": "5f1c…", "quote": `"'\`}},
		{"numbers and booleans", map[string]any{"added": 3, "share": 0.25, "big": int64(1) << 50, "held": true, "dry": false}},
		{"nested", map[string]any{"domains": []string{"corp", "lab"}, "counts": map[string]int{"corp": 2}, "none": nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, _ := openStore(t)
			if err := s.Audit(ctx, AuditEntry{Actor: "a", Action: "b", Target: "c", Outcome: OutcomeSuccess, Details: tt.details}); err != nil {
				t.Fatal(err)
			}
			es := auditEntries(t, s, AuditFilter{})
			if len(es) != 1 {
				t.Fatalf("%d entries, want 1", len(es))
			}
			// What a JSON round trip of the details gives (numbers become
			// float64, slices []any); no details read back as nil.
			var want map[string]any
			if len(tt.details) > 0 {
				b, err := json.Marshal(tt.details)
				if err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(b, &want); err != nil {
					t.Fatal(err)
				}
			}
			if !reflect.DeepEqual(es[0].Details, want) {
				t.Errorf("details = %#v, want %#v", es[0].Details, want)
			}
			if rep, err := s.VerifyAudit(ctx, VerifyOptions{}); err != nil || !rep.OK() {
				t.Errorf("VerifyAudit = %+v, %v", rep, err)
			}
		})
	}

	// Details that cannot be encoded are refused and nothing is written.
	ctx := context.Background()
	s, _ := openStore(t)
	err := s.Audit(ctx, AuditEntry{Actor: "a", Details: map[string]any{"ch": make(chan int)}})
	if err == nil || !strings.Contains(err.Error(), "encode audit details") {
		t.Errorf("Audit with unencodable details: error = %v", err)
	}
	if es := auditEntries(t, s, AuditFilter{}); len(es) != 0 {
		t.Errorf("%d entries written despite the error", len(es))
	}
}

// rechain recomputes every hash from entry from on, and the head, as an
// attacker who can write the file and knows the hash function would after
// editing an entry.
func rechain(t *testing.T, s *Store, from int64) {
	t.Helper()
	ctx := context.Background()
	var prev string
	if err := s.db.QueryRowContext(ctx, `SELECT hash FROM audit_log WHERE seq = ?`, from-1).Scan(&prev); err != nil {
		prev = genesisHash
	}
	es := auditEntries(t, s, AuditFilter{AfterSeq: from - 1})
	for _, e := range es {
		details := "{}"
		if len(e.Details) > 0 {
			b, _ := json.Marshal(e.Details)
			details = string(b)
		}
		h := entryHash(e.Seq, e.At.UnixNano(), e.Actor, e.Role, e.Auth, e.Action, e.Target, e.Outcome, details, prev)
		if _, err := s.db.ExecContext(ctx, `UPDATE audit_log SET prev_hash = ?, hash = ? WHERE seq = ?`, prev, h, e.Seq); err != nil {
			t.Fatal(err)
		}
		prev = h
	}
	if _, err := s.db.ExecContext(ctx, `UPDATE audit_head SET hash = ?, seq = (SELECT MAX(seq) FROM audit_log)`, prev); err != nil {
		t.Fatal(err)
	}
}

// TestKeyedChainResistsRewriting: whoever can write the database but has
// not the audit key rewrites history and recomputes the whole chain, or
// cuts the end off and fixes the head: the MACs and the head kept outside
// the database give them away, and the report names the first bad entry.
func TestKeyedChainResistsRewriting(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name      string
		tamper    func(t *testing.T, s *Store)
		opts      func(head AuditEntry) VerifyOptions
		want      string
		wantFirst int64
	}{
		{name: "history rewritten and rechained",
			tamper: func(t *testing.T, s *Store) {
				s.db.ExecContext(ctx, `UPDATE audit_log SET actor = 'mallory' WHERE seq = 2`)
				rechain(t, s, 2)
			},
			opts: func(AuditEntry) VerifyOptions { return keyed },
			want: "entry 2 was forged or edited: its MAC does not match", wantFirst: 2},
		{name: "an entry forged at the end with a valid hash",
			tamper: func(t *testing.T, s *Store) { forgeEntry(t, s, 8, true); rechain(t, s, 8) },
			opts:   func(AuditEntry) VerifyOptions { return keyed },
			want:   "entry 8 was forged", wantFirst: 8},
		{name: "the end cut off and the head fixed",
			tamper: func(t *testing.T, s *Store) {
				s.db.ExecContext(ctx, `DELETE FROM audit_log WHERE seq >= 6`)
				rechain(t, s, 6)
			},
			opts: func(head AuditEntry) VerifyOptions {
				o := keyed
				o.HeadSeq, o.HeadHash = head.Seq, head.Hash
				return o
			},
			want: "the log ends at entry 5 but entry 7 was written"},
		{name: "everything deleted, head and all",
			tamper: func(t *testing.T, s *Store) {
				s.db.ExecContext(ctx, `DELETE FROM audit_log`)
				s.db.ExecContext(ctx, `DELETE FROM audit_head`)
			},
			opts: func(AuditEntry) VerifyOptions { return keyed },
			want: "the log was emptied"},
		{name: "the key replaced by a new one from a later entry",
			tamper: func(t *testing.T, s *Store) {},
			opts: func(AuditEntry) VerifyOptions {
				o := keyed
				o.Key, o.KeyedSince = []byte("another key, made after the old one was deleted"), 8
				return o
			},
			want: "entries 1 to 7 carry MACs of an audit key that is no longer in the database", wantFirst: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openStore(t)
			auditFixture(t, s)
			head := auditEntries(t, s, AuditFilter{Newest: true, Limit: 1})[0]
			before := keyed
			before.HeadSeq, before.HeadHash = head.Seq, head.Hash
			if rep, err := s.VerifyAudit(ctx, before); err != nil || !rep.OK() {
				t.Fatalf("before tampering: %+v %v", rep, err)
			}
			dropAuditTriggers(t, s)
			tt.tamper(t, s)
			if rep, err := s.VerifyAudit(ctx, VerifyOptions{}); err == nil && rep.OK() && tt.wantFirst > 0 {
				t.Logf("without the key the chain looks intact (%d entries): this is the attack the MAC stops", rep.Entries)
			}
			rep, err := s.VerifyAudit(ctx, tt.opts(head))
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() || !strings.Contains(strings.Join(rep.Problems, "\n"), tt.want) || rep.First != tt.wantFirst {
				t.Errorf("report %+v; want a problem %q and the first bad entry %d", rep, tt.want, tt.wantFirst)
			}
		})
	}
}
