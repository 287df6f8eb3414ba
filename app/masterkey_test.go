package app

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"keydesk/internal/simtest"
	"keydesk/keys"
	"keydesk/keys/proto"
	"keydesk/store"
)

func TestDecideUnlock(t *testing.T) {
	tests := []struct {
		name     string
		f        unlockFacts
		want     unlockAction
		wantDrop bool
		why      string
	}{
		{name: "new database, no file", f: unlockFacts{}, want: unlockCreate},
		{name: "new database, named file missing", f: unlockFacts{Named: true}, want: unlockRefuse, why: "does not exist"},
		{name: "the database's key", f: unlockFacts{File: "A", Stored: "A"}, want: unlockUse},
		{name: "the database's key, a rekey that never committed", f: unlockFacts{File: "A", Pending: "B", Stored: "A"}, want: unlockUse, wantDrop: true},
		{name: "a rekey committed, files not moved", f: unlockFacts{File: "A", Pending: "B", Stored: "B"}, want: unlockFinishRekey},
		{name: "a rekey committed, old file already moved", f: unlockFacts{Pending: "B", Stored: "B"}, want: unlockFinishRekey},
		{name: "file lost", f: unlockFacts{Stored: "A", Holds: true}, want: unlockRefuse, why: "is missing"},
		{name: "file lost, even with nothing sealed yet", f: unlockFacts{Stored: "A"}, want: unlockRefuse, why: "restore the file from backup"},
		{name: "another key in the file", f: unlockFacts{File: "C", Stored: "A", Holds: true}, want: unlockRefuse, why: "fingerprint C"},
		{name: "another key, and a stray pending one", f: unlockFacts{File: "C", Pending: "D", Stored: "A"}, want: unlockRefuse, why: "sealed under A"},
		{name: "database from before fingerprints", f: unlockFacts{File: "A", Holds: true}, want: unlockAdopt},
		{name: "database from before fingerprints, file lost", f: unlockFacts{Holds: true}, want: unlockRefuse, why: "holds sealed secrets"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			act, drop, why := decideUnlock(tt.f)
			if act != tt.want || drop != tt.wantDrop {
				t.Fatalf("decideUnlock(%+v) = %v drop %v (%s), want %v drop %v", tt.f, act, drop, why, tt.want, tt.wantDrop)
			}
			if (act == unlockRefuse) != (why != "") || !strings.Contains(why, tt.why) {
				t.Errorf("reason %q, want one containing %q (and only for a refusal)", why, tt.why)
			}
		})
	}
}

// openWithKeyFile builds a service as KeyDesk starts: the master key
// unlocked for the database from the file.
func openWithKeyFile(t *testing.T, st *store.Store, f MasterKeyFile) (*Service, error) {
	t.Helper()
	mk, err := UnlockMasterKey(context.Background(), st, f)
	if err != nil {
		return nil, err
	}
	s := newTestService(t, "corp")
	s.st.Close()
	return New(s.cfg, st, WithMasterKey(mk), WithTrustedMaker(simtest.Maker(t).Cert())), nil
}

// keyFileService is a service whose master key is a file next to its
// database (as KeyDesk runs), with that file and the service it was
// opened from.
func keyFileService(t *testing.T) (*Service, MasterKeyFile, *Service) {
	t.Helper()
	base := newTestService(t, "corp")
	f := MasterKeyFile{Path: filepath.Join(filepath.Dir(base.st.Path()), keys.MasterKeyFileName)}
	s, err := openWithKeyFile(t, base.st, f)
	if err != nil {
		t.Fatal(err)
	}
	return base, f, s
}

// TestTheMasterKeyIsNeverSilentlyReplaced: a master key file that was lost
// or swapped is refused, with what to do, instead of a new key being made
// (which would make every right activation code count as wrong).
func TestTheMasterKeyIsNeverSilentlyReplaced(t *testing.T) {
	ctx := context.Background()
	base, f, s := keyFileService(t)
	apply(t, s, "corp", full(user("corp", 1, "ann", "ann@example.com", "Ann")), nil, false)
	if err := s.AddKeys(ctx, testAdmin, []string{"K1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AssignKey(ctx, testAdmin, "K1", "ann@example.com"); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(f.Path)
	if err != nil {
		t.Fatal(err)
	}

	os.Remove(f.Path)
	if _, err := UnlockMasterKey(ctx, base.st, f); err == nil || !strings.Contains(err.Error(), "is missing") || !strings.Contains(err.Error(), "restore the file from backup") {
		t.Errorf("with the key file lost: %v, want a refusal saying to restore it", err)
	}
	if _, err := os.Stat(f.Path); !errors.Is(err, os.ErrNotExist) {
		t.Error("a new master key was created for a database sealed under another")
	}

	other, _ := keys.NewMasterKey()
	if err := keys.WriteMasterKeyFile(f.Path, other); err != nil {
		t.Fatal(err)
	}
	if _, err := UnlockMasterKey(ctx, base.st, f); err == nil || !strings.Contains(err.Error(), "restore the right file") || !strings.Contains(err.Error(), other.Fingerprint()) {
		t.Errorf("with another key in the file: %v, want a refusal naming both fingerprints", err)
	}

	os.Remove(f.Path)
	if err := os.WriteFile(f.Path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := UnlockMasterKey(ctx, base.st, f); err != nil {
		t.Errorf("with the right file restored: %v", err)
	}
}

// TestRekey puts a database under a new master key: a code issued before
// still activates its key, a key activated before still proves its secret,
// the old key is kept as a backup, and a console still holding the old key
// refuses to seal or open anything.
func TestRekey(t *testing.T) {
	ctx := context.Background()
	base, f, s := keyFileService(t)
	console, err := openWithKeyFile(t, base.st, f) // another process, started before the rekey
	if err != nil {
		t.Fatal(err)
	}
	oldKey := *s.master
	apply(t, s, "corp", full(user("corp", 1, "ann", "ann@example.com", "Ann"), user("corp", 2, "ben", "ben@example.com", "Ben")), nil, false)
	active, reserved := simtest.NewKey(t, "SIM-ACTIVE"), simtest.NewKey(t, "SIM-RESERVED")
	plugSim(t, s, active)
	plugSim(t, s, reserved)
	activate(t, s, "SIM-ACTIVE", "ann@example.com")
	pending, err := s.AssignKey(ctx, testAdmin, "SIM-RESERVED", "ben@example.com")
	if err != nil {
		t.Fatal(err)
	}

	// A password held by the journal (as a change under way would hold it).
	const held = "Held#Password-2026"
	var change store.PasswordChange
	if err := s.st.Update(ctx, func(tx *store.Tx) error {
		accts, err := tx.LoadAccounts(ctx)
		if err != nil {
			return err
		}
		sealed, err := oldKey.Seal([]byte(held), passwordBinding(accts[0].ID))
		if err != nil {
			return err
		}
		change = store.PasswordChange{AccountID: accts[0].ID, Kind: KindRotate, Order: "ad-first", Step: "ad-written", PasswordSealed: sealed, Actor: "test"}
		return tx.InsertPasswordChange(ctx, &change)
	}); err != nil {
		t.Fatal(err)
	}

	rep, err := s.RekeyMasterKey(ctx, testAdmin, f)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Secrets != 2 || rep.Passwords != 1 || rep.Backup == "" {
		t.Errorf("rekey report %+v: want 2 secrets and 1 held password re-sealed and a backup", rep)
	}
	if k, err := keys.ReadMasterKey(rep.Backup); err != nil || k != oldKey {
		t.Errorf("the backup does not hold the old key: %v", err)
	}
	if fi, err := os.Stat(rep.Backup); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	newKey, err := keys.ReadMasterKey(f.Path)
	if err != nil || newKey == oldKey {
		t.Fatalf("the key file does not hold a new key (%v)", err)
	}

	if err := s.st.Update(ctx, func(tx *store.Tx) error {
		c, err := tx.PasswordChange(ctx, change.ID)
		if err != nil {
			return err
		}
		pw, err := newKey.Open(c.PasswordSealed, passwordBinding(c.AccountID))
		if err != nil || string(pw) != held {
			t.Errorf("the held password does not open under the new key: %v", err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// A process started now unlocks the new key and works with both keys.
	after, err := openWithKeyFile(t, base.st, f)
	if err != nil {
		t.Fatal(err)
	}
	plugSim(t, after, reserved)
	if res, err := after.ActivateKey(ctx, testAdmin, "SIM-RESERVED", pending.String()); err != nil || !res.Activated {
		t.Errorf("a code issued before the rekey: %+v %v", res, err)
	}
	plugSim(t, after, active)
	c, err := after.InspectKey(ctx, testAdmin, "SIM-ACTIVE")
	if err != nil || !c.Owned {
		t.Errorf("the key activated before the rekey no longer proves its secret: %+v %v", c, err)
	}

	// The console that still holds the old key stops, and says why.
	if err := after.AddKeys(ctx, testAdmin, []string{"NEW"}); err != nil {
		t.Fatal(err)
	}
	if _, err := console.AssignKey(ctx, testAdmin, "NEW", "ann@example.com"); !errors.Is(err, ErrMasterKeyChanged) {
		t.Errorf("a console with the old key issued a code: %v, want ErrMasterKeyChanged", err)
	}
	if info := simInfo(t, active); info.State != proto.StateLinked {
		t.Errorf("the active key itself is %s", info.State)
	}
}

// TestARekeyCutOffIsFinishedOrForgotten: the rekey's steps are a pending
// key file, the database's switch, the files' switch; KeyDesk starting
// after a cut at either point ends in a consistent state.
func TestARekeyCutOffIsFinishedOrForgotten(t *testing.T) {
	ctx := context.Background()
	base, f, s := keyFileService(t)
	oldKey := *s.master

	// Cut before the database switched: only the pending file exists.
	stray, _ := keys.NewMasterKey()
	if err := keys.WriteMasterKeyFile(f.pending(), stray); err != nil {
		t.Fatal(err)
	}
	k, err := UnlockMasterKey(ctx, base.st, f)
	if err != nil || k != oldKey {
		t.Fatalf("after a rekey cut before the database switched: %v; want the old key", err)
	}
	if _, err := os.Stat(f.pending()); !errors.Is(err, os.ErrNotExist) {
		t.Error("the pending key of a rekey that never committed is left")
	}

	// Cut after the database switched, before the files moved.
	if _, err := s.RekeyMasterKey(ctx, testAdmin, f); err != nil {
		t.Fatal(err)
	}
	newKey, _ := keys.ReadMasterKey(f.Path)
	// Put the files back as they were before the switch.
	backups, _ := filepath.Glob(f.Path + ".*.bak")
	if len(backups) != 1 {
		t.Fatalf("backups %v", backups)
	}
	if err := os.Rename(f.Path, f.pending()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(backups[0], f.Path); err != nil {
		t.Fatal(err)
	}
	k, err = UnlockMasterKey(ctx, base.st, f)
	if err != nil || k != newKey {
		t.Fatalf("after a rekey cut before the files moved: %v; want the new key", err)
	}
	if got, _ := keys.ReadMasterKey(f.Path); got != newKey {
		t.Error("the new key was not put in place")
	}
	if b, _ := filepath.Glob(f.Path + ".*.bak"); len(b) != 1 {
		t.Errorf("the old key is not kept as a backup: %v", b)
	}
}
