package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"keydesk/keys"
	"keydesk/store"
)

// The master key seals everything secret that the database holds: each
// key's master secret, and the database's own keys (the activation codes'
// pepper, the audit log's MAC key). The database records the fingerprint of
// the master key it was sealed with, and KeyDesk refuses to go on with
// another key, or to create a new one for a database that holds sealed data:
// a key file lost or swapped is restored from backup, never silently
// replaced (which would make every right activation code count as wrong).

// ErrMasterKeyChanged: the database is sealed under another master key than
// this process holds (a rekey by another process): restart.
var ErrMasterKeyChanged = errors.New("the database's master key changed since KeyDesk started (keydesk admin rekey?): restart KeyDesk")

// MasterKeyFile is where the master key lives.
type MasterKeyFile struct {
	Path  string
	Named bool // named by KEYDESK_MASTER_KEY_FILE: it must exist, it is never created
}

// pending is the file a rekey writes the new key to before the database
// switches to it.
func (f MasterKeyFile) pending() string { return f.Path + ".new" }

// unlockAction is what UnlockMasterKey does with the key files.
type unlockAction int

const (
	unlockUse         unlockAction = iota // the file holds the database's key
	unlockCreate                          // a database that holds nothing sealed yet: make its key
	unlockAdopt                           // a database from before fingerprints: record the file's
	unlockFinishRekey                     // a rekey committed but was cut off before the files moved
	unlockRefuse
)

// unlockFacts are what the decision needs: the fingerprints of the key
// file, of a pending new one and of the database ("" for each that is
// missing), whether the database holds sealed data, and whether the file
// was named by the environment.
type unlockFacts struct {
	File, Pending, Stored string
	Holds, Named          bool
}

// decideUnlock says what to do at start, and whether to remove a pending
// key file (a rekey that never committed). It is pure; a table tests it.
func decideUnlock(f unlockFacts) (act unlockAction, dropPending bool, why string) {
	switch {
	case f.Stored != "" && f.File == f.Stored:
		return unlockUse, f.Pending != "", ""
	case f.Stored != "" && f.Pending == f.Stored:
		return unlockFinishRekey, false, ""
	case f.Stored != "" && f.File == "":
		return unlockRefuse, false, "is missing, and this database's secrets are sealed under it (fingerprint " + f.Stored + "): restore the file from backup"
	case f.Stored != "":
		return unlockRefuse, false, "holds the key with fingerprint " + f.File + ", but this database's secrets are sealed under " + f.Stored + ": restore the right file from backup"
	case f.File != "":
		return unlockAdopt, f.Pending != "", ""
	case f.Holds:
		return unlockRefuse, false, "is missing, and this database holds sealed secrets: restore the file from backup"
	case f.Named:
		return unlockRefuse, false, "does not exist: create it (or unset KEYDESK_MASTER_KEY_FILE to keep the key in the data directory)"
	}
	return unlockCreate, false, ""
}

// UnlockMasterKey reads the master key for the database, checks that it is
// the key the database's secrets are sealed under, and creates one for a
// new database; it also finishes a rekey that was cut off after the
// database switched to the new key.
func UnlockMasterKey(ctx context.Context, st *store.Store, f MasterKeyFile) (keys.MasterKey, error) {
	read := func(path string) (*keys.MasterKey, string, error) {
		k, err := keys.ReadMasterKey(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, "", nil
		}
		if err != nil {
			return nil, "", err
		}
		return &k, k.Fingerprint(), nil
	}
	file, fileFP, err := read(f.Path)
	if err != nil {
		return keys.MasterKey{}, err
	}
	pending, pendingFP, err := read(f.pending())
	if err != nil {
		return keys.MasterKey{}, err
	}
	stored, err := st.MasterState(ctx, store.StateFingerprint)
	if err != nil {
		return keys.MasterKey{}, err
	}
	holds, err := st.HoldsSealedData(ctx)
	if err != nil {
		return keys.MasterKey{}, err
	}
	act, drop, why := decideUnlock(unlockFacts{File: fileFP, Pending: pendingFP, Stored: string(stored), Holds: holds, Named: f.Named})
	if drop {
		if err := os.Remove(f.pending()); err != nil {
			return keys.MasterKey{}, fmt.Errorf("remove the unused key %s of an interrupted rekey: %w", f.pending(), err)
		}
	}
	switch act {
	case unlockUse:
		return *file, nil
	case unlockFinishRekey:
		if _, err := switchKeyFiles(f); err != nil {
			return keys.MasterKey{}, err
		}
		return *pending, nil
	case unlockCreate:
		k, err := keys.NewMasterKey()
		if err != nil {
			return k, err
		}
		if err := keys.WriteMasterKeyFile(f.Path, k); errors.Is(err, fs.ErrExist) {
			return UnlockMasterKey(ctx, st, f) // another process created it meanwhile
		} else if err != nil {
			return k, err
		}
		return k, recordFingerprint(ctx, st, k)
	case unlockAdopt:
		if holds {
			if err := probeMasterKey(ctx, st, *file); err != nil {
				return keys.MasterKey{}, fmt.Errorf("master key file %s: %w", f.Path, err)
			}
		}
		return *file, recordFingerprint(ctx, st, *file)
	}
	return keys.MasterKey{}, fmt.Errorf("master key file %s %s", f.Path, why)
}

func recordFingerprint(ctx context.Context, st *store.Store, k keys.MasterKey) error {
	return st.Update(ctx, func(tx *store.Tx) error {
		if cur, err := tx.MasterState(ctx, store.StateFingerprint); err != nil || cur != nil {
			if err == nil && string(cur) != k.Fingerprint() {
				return fmt.Errorf("another KeyDesk recorded another master key (%s) meanwhile: check the data directory", cur)
			}
			return err
		}
		return tx.PutMasterState(ctx, store.StateFingerprint, []byte(k.Fingerprint()))
	})
}

// probeMasterKey checks, for a database from before fingerprints, that the
// key opens the database's sealed secrets (one of each kind).
func probeMasterKey(ctx context.Context, st *store.Store, k keys.MasterKey) error {
	return st.Update(ctx, func(tx *store.Tx) error {
		ks, err := tx.SealedKeys(ctx)
		if err != nil {
			return err
		}
		if len(ks) > 0 {
			sealed := ks[0].SecretSealed
			if sealed == nil {
				sealed = ks[0].PrevSecretSealed
			}
			secret, err := k.Open(sealed, keys.SecretBinding(ks[0].ID, ks[0].Serial))
			if err != nil {
				return fmt.Errorf("it does not open this database's sealed secrets (%w): restore the right file from backup", err)
			}
			clear(secret)
		}
		for _, name := range []string{store.StateCodePepper, store.StateAuditKey} {
			if sealed, err := tx.MasterState(ctx, name); err != nil {
				return err
			} else if sealed != nil {
				if _, err := k.Open(sealed, dbKeyBinding(name)); err != nil {
					return fmt.Errorf("it does not open this database's %s (%w): restore the right file from backup", name, err)
				}
			}
		}
		return nil
	})
}

// switchKeyFiles puts a rekey's new key in place: the old file is kept as
// a dated backup (0600), the pending one becomes the key file. It returns
// the backup's name ("" when there was no old file).
func switchKeyFiles(f MasterKeyFile) (string, error) {
	var backup string
	if _, err := os.Stat(f.Path); err == nil {
		backup = f.Path + "." + time.Now().UTC().Format("20060102T150405.000000000Z") + ".bak"
		if err := os.Rename(f.Path, backup); err != nil {
			return "", fmt.Errorf("keep the old master key as %s: %w", backup, err)
		}
	}
	if err := os.Rename(f.pending(), f.Path); err != nil {
		return backup, fmt.Errorf("put the new master key in place (%s): %w; the new key is in %s", f.Path, err, f.pending())
	}
	keys.SyncDir(filepath.Dir(f.Path))
	return backup, nil
}

// dbKeys are the database's own keys, opened from their sealed form.
type dbKeys struct {
	mu    sync.Mutex
	keys  map[string][]byte
	audit *auditKeyState
}

func dbKeyBinding(name string) string { return "database:" + name }

// masterKey is the master key, once the database confirms it is the key
// its secrets are sealed under (one small query: another process may have
// rekeyed the database).
func (s *Service) masterKey(ctx context.Context, tx *store.Tx) (*keys.MasterKey, error) {
	if s.master == nil {
		return nil, ErrNoMasterKey
	}
	var fp []byte
	var err error
	if tx != nil {
		fp, err = tx.MasterState(ctx, store.StateFingerprint)
	} else {
		fp, err = s.st.MasterState(ctx, store.StateFingerprint)
	}
	if err != nil {
		return nil, err
	}
	if fp != nil && string(fp) != s.master.Fingerprint() {
		return nil, ErrMasterKeyChanged
	}
	return s.master, nil
}

// dbKey opens one of the database's own keys, creating it (32 random bytes,
// sealed under the master key) on first use. A key created by this
// transaction is cached only once it has been read back after commit.
func (s *Service) dbKey(ctx context.Context, tx *store.Tx, name string) ([]byte, error) {
	mk, err := s.masterKey(ctx, tx)
	if err != nil {
		return nil, err
	}
	s.vault.mu.Lock()
	k, ok := s.vault.keys[name]
	s.vault.mu.Unlock()
	if ok {
		return k, nil
	}
	sealed, err := tx.MasterState(ctx, name)
	if err != nil {
		return nil, err
	}
	if sealed == nil {
		k := make([]byte, 32)
		if _, err := rand.Read(k); err != nil {
			return nil, fmt.Errorf("generate the %s: %w", name, err)
		}
		if sealed, err = mk.Seal(k, dbKeyBinding(name)); err != nil {
			return nil, err
		}
		return k, tx.PutMasterState(ctx, name, sealed)
	}
	if k, err = mk.Open(sealed, dbKeyBinding(name)); err != nil {
		return nil, fmt.Errorf("open the database's %s: %w", name, err)
	}
	s.vault.mu.Lock()
	if s.vault.keys == nil {
		s.vault.keys = map[string][]byte{}
	}
	s.vault.keys[name] = k
	s.vault.mu.Unlock()
	return k, nil
}

// codePepper keys the activation code hashes.
func (s *Service) codePepper(ctx context.Context, tx *store.Tx) ([]byte, error) {
	return s.dbKey(ctx, tx, store.StateCodePepper)
}

// RekeyReport says what a rekey did.
type RekeyReport struct {
	Secrets   int // key secrets re-sealed
	Passwords int // passwords held by the password journal, re-sealed
	// Invitations not sent yet and authenticator secrets, re-sealed.
	Invitations, Authenticators int
	Backup                      string // where the old key file is kept
	Path                        string // the key file, now holding the new key
}

// reseal opens sealed under old and seals it under nk.
func reseal(old *keys.MasterKey, nk keys.MasterKey, sealed []byte, binding string) ([]byte, error) {
	plain, err := old.Open(sealed, binding)
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	return nk.Seal(plain, binding)
}

// RekeyMasterKey puts every secret of the database under a new master key,
// in one transaction: each key's master secret, the passwords the password
// journal holds, the codes of invitations not sent yet, the authenticator
// secrets, the activation and enrollment codes' pepper (so outstanding
// codes stay valid) and the audit log's MAC key.
// The new key is written first, to a pending file; the database switches
// in the transaction; then the old file is kept as a dated backup (0600)
// and the new one takes its place. A rekey cut off at any point is
// finished, or forgotten, when KeyDesk next starts (UnlockMasterKey).
func (s *Service) RekeyMasterKey(ctx context.Context, a Actor, f MasterKeyFile) (RekeyReport, error) {
	var rep RekeyReport
	if err := s.authorize(ctx, a, PermMasterRekey, "master-key"); err != nil {
		return rep, err
	}
	old, err := s.masterKey(ctx, nil)
	if err != nil {
		return rep, err
	}
	if _, err := os.Stat(f.pending()); err == nil {
		return rep, fmt.Errorf("%s exists: another rekey is under way, or was cut off (start KeyDesk once to finish or forget it)", f.pending())
	}
	nk, err := keys.NewMasterKey()
	if err != nil {
		return rep, err
	}
	if err := keys.WriteMasterKeyFile(f.pending(), nk); err != nil {
		return rep, err
	}
	err = s.st.Update(ctx, func(tx *store.Tx) error {
		ks, err := tx.SealedKeys(ctx)
		if err != nil {
			return err
		}
		// The entry first, under the audit key as the old master key opens
		// it: after this the database answers only to the new one.
		if err := s.audit(ctx, tx, a, "master.rekey", "master-key", store.OutcomeSuccess,
			map[string]any{"secrets": len(ks), "old": old.Fingerprint(), "new": nk.Fingerprint()}); err != nil {
			return err
		}
		for _, k := range ks {
			binding := keys.SecretBinding(k.ID, k.Serial)
			var resealed [2][]byte
			for i, sealed := range [2][]byte{k.SecretSealed, k.PrevSecretSealed} {
				if sealed == nil {
					continue
				}
				secret, err := old.Open(sealed, binding)
				if err != nil {
					return fmt.Errorf("open the secret of key %s: %w", k.Serial, err)
				}
				resealed[i], err = nk.Seal(secret, binding)
				clear(secret)
				if err != nil {
					return err
				}
			}
			if err := tx.SetKeySecrets(ctx, k.ID, resealed[0], resealed[1]); err != nil {
				return err
			}
		}
		rep.Secrets = len(ks)
		// The passwords the journal holds until their change is closed.
		open, err := tx.OpenPasswordChanges(ctx)
		if err != nil {
			return err
		}
		for _, c := range open {
			binding := passwordBinding(c.AccountID)
			pw, err := old.Open(c.PasswordSealed, binding)
			if err != nil {
				return fmt.Errorf("open the password of change %d: %w", c.ID, err)
			}
			sealed, err := nk.Seal(pw, binding)
			clear(pw)
			if err != nil {
				return err
			}
			if err := tx.ResealPasswordChange(ctx, c.ID, sealed); err != nil {
				return err
			}
		}
		rep.Passwords = len(open)
		// The codes of invitations not sent yet, and the authenticators.
		msgs, err := tx.SealedMessages(ctx)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if m.InvitationID == nil {
				// Sealed under a binding this version does not know: it
				// would be lost, so nothing is changed.
				return fmt.Errorf("outbox message %d holds a sealed payload of kind %q that this KeyDesk cannot re-seal", m.ID, m.Kind)
			}
			sealed, err := reseal(old, nk, m.PayloadSealed, invitationBinding(*m.InvitationID))
			if err != nil {
				return fmt.Errorf("the code of outbox message %d: %w", m.ID, err)
			}
			if err := tx.ResealMessage(ctx, m.ID, sealed); err != nil {
				return err
			}
		}
		ens, err := tx.SealedEnrollments(ctx)
		if err != nil {
			return err
		}
		for _, e := range ens {
			var resealed [2][]byte
			for i, sealed := range [2][]byte{e.SecretSealed, e.PendingSealed} {
				if sealed == nil {
					continue
				}
				if resealed[i], err = reseal(old, nk, sealed, enrollmentBinding(e.EmployeeID)); err != nil {
					return fmt.Errorf("the authenticator of employee %d: %w", e.EmployeeID, err)
				}
			}
			if err := tx.ResealEnrollment(ctx, e.EmployeeID, resealed[0], resealed[1]); err != nil {
				return err
			}
		}
		rep.Invitations, rep.Authenticators = len(msgs), len(ens)
		for _, name := range []string{store.StateCodePepper, store.StateAuditKey} {
			sealed, err := tx.MasterState(ctx, name)
			if err != nil || sealed == nil {
				if err != nil {
					return err
				}
				continue
			}
			k, err := old.Open(sealed, dbKeyBinding(name))
			if err != nil {
				return fmt.Errorf("open the database's %s: %w", name, err)
			}
			if sealed, err = nk.Seal(k, dbKeyBinding(name)); err != nil {
				return err
			}
			if err := tx.PutMasterState(ctx, name, sealed); err != nil {
				return err
			}
		}
		return tx.PutMasterState(ctx, store.StateFingerprint, []byte(nk.Fingerprint()))
	})
	if err != nil {
		os.Remove(f.pending())
		return rep, fmt.Errorf("rekey: %w; nothing was changed", err)
	}
	s.master = &nk
	backup, err := switchKeyFiles(f)
	if err != nil {
		return rep, fmt.Errorf("rekey: the database is sealed under the new key, but %w; start KeyDesk once to finish", err)
	}
	rep.Path, rep.Backup = f.Path, backup
	s.publish(DataChanged{What: ChangedAudit})
	return rep, nil
}
