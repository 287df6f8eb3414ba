package store

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// journalFixture is an employee with two accounts and a key.
func journalFixture(t *testing.T, s *Store) (acc1, acc2, keyID int64) {
	t.Helper()
	emp := keyEmployee(t, s, "Ann")
	a1 := Account{Domain: "corp", ObjectGUID: "g1", EmployeeID: emp, SAMAccountName: "ann"}
	a2 := Account{Domain: "branch", ObjectGUID: "g2", EmployeeID: emp, SAMAccountName: "ann"}
	insertAccount(t, s, &a1)
	insertAccount(t, s, &a2)
	k := Key{Serial: "J-1", Status: "active", EmployeeID: &emp}
	insertKeyT(t, s, &k)
	return a1.ID, a2.ID, k.ID
}

func TestPasswordJournal(t *testing.T) {
	ctx := context.Background()
	s, _ := openStore(t)
	acc1, acc2, keyID := journalFixture(t, s)
	slot := 0
	if held, err := s.HoldsSealedData(ctx); err != nil || held {
		t.Fatalf("before any change: HoldsSealedData = %v, %v", held, err)
	}
	c := PasswordChange{AccountID: acc1, KeyID: &keyID, Slot: &slot, Kind: "scheduled", Order: "key-first", Step: "planned", PasswordSealed: []byte{1, 2, 3}, Actor: "scheduler"}
	update(t, s, func(ctx context.Context, tx *Tx) error { return tx.InsertPasswordChange(ctx, &c) })
	if held, err := s.HoldsSealedData(ctx); err != nil || !held {
		t.Errorf("a sealed journal password does not count as sealed data: %v, %v", held, err)
	}
	if c.ID == 0 || c.Version != 1 || c.FinishedAt != nil {
		t.Fatalf("inserted %+v", c)
	}
	// One change under way per account.
	second := c
	err := s.Update(ctx, func(tx *Tx) error { return tx.InsertPasswordChange(ctx, &second) })
	if !errors.Is(err, ErrChangeUnderWay) {
		t.Errorf("a second change under way: %v, want ErrChangeUnderWay", err)
	}
	other := PasswordChange{AccountID: acc2, Kind: "rotate", Order: "ad-first", Step: "planned", PasswordSealed: []byte{9}, Actor: "alice"}
	update(t, s, func(ctx context.Context, tx *Tx) error { return tx.InsertPasswordChange(ctx, &other) })

	// Steps move on with the version checked.
	stale := c
	c.Step, c.Attempts = "key-pending", 1
	update(t, s, func(ctx context.Context, tx *Tx) error { return tx.UpdatePasswordChange(ctx, &c) })
	if err := s.Update(ctx, func(tx *Tx) error { return tx.UpdatePasswordChange(ctx, &stale) }); !errors.Is(err, ErrChangeChanged) {
		t.Errorf("a stale update: %v, want ErrChangeChanged", err)
	}
	for _, keyFilter := range []int64{0, keyID} {
		open, err := s.UnfinishedPasswordChanges(ctx, keyFilter)
		if err != nil {
			t.Fatal(err)
		}
		want := 2
		if keyFilter > 0 {
			want = 1
		}
		if len(open) != want || open[0].ID != c.ID || open[0].Step != "key-pending" || *open[0].Slot != 0 {
			t.Errorf("unfinished (key %d) = %+v, want %d, the first ours at key-pending", keyFilter, open, want)
		}
	}

	// Closing destroys the password, in the same write; the store refuses
	// a closed row that keeps it.
	c.Step = "done"
	if err := s.Update(ctx, func(tx *Tx) error { return tx.UpdatePasswordChange(ctx, &c) }); err == nil || !strings.Contains(err.Error(), "CHECK") {
		t.Errorf("a done change that keeps its password: %v, want a CHECK failure", err)
	}
	c.PasswordSealed = nil
	update(t, s, func(ctx context.Context, tx *Tx) error { return tx.UpdatePasswordChange(ctx, &c) })
	if c.FinishedAt == nil || !c.Closed() {
		t.Errorf("done change %+v: want finished", c)
	}
	// A new change for the account can start once it is done.
	next := PasswordChange{AccountID: acc1, Kind: "rotate", Order: "key-first", Step: "planned", PasswordSealed: []byte{4}, Actor: "alice", KeyID: &keyID, Slot: &slot}
	update(t, s, func(ctx context.Context, tx *Tx) error { return tx.InsertPasswordChange(ctx, &next) })
	recent, err := s.RecentPasswordChanges(ctx, 10)
	if err != nil || len(recent) != 3 || recent[0].ID != next.ID {
		t.Errorf("recent = %d changes, %v; want 3, newest first", len(recent), err)
	} else if recent[0].Domain != "corp" || recent[0].SAMAccountName != "ann" || recent[1].Domain != "branch" {
		t.Errorf("recent changes' accounts: %s\\%s, %s\\%s; want each change's own account", recent[0].Domain, recent[0].SAMAccountName, recent[1].Domain, recent[1].SAMAccountName)
	}
}

func TestCredentialSlots(t *testing.T) {
	s, _ := openStore(t)
	acc1, acc2, keyID := journalFixture(t, s)
	slotOf := func(acc int64, slots int) (int, error) {
		var n int
		err := s.Update(context.Background(), func(tx *Tx) error {
			var err error
			n, err = tx.CredentialSlot(context.Background(), keyID, acc, slots)
			return err
		})
		return n, err
	}
	if n, err := slotOf(acc1, 8); err != nil || n != 0 {
		t.Fatalf("first account: slot %d, %v", n, err)
	}
	if n, err := slotOf(acc2, 8); err != nil || n != 1 {
		t.Fatalf("second account: slot %d, %v", n, err)
	}
	if n, err := slotOf(acc1, 8); err != nil || n != 0 {
		t.Errorf("the first account again: slot %d, %v; want its slot kept", n, err)
	}
	update(t, s, func(ctx context.Context, tx *Tx) error { return tx.ForgetCredentialSlots(ctx, keyID) })
	if n, err := slotOf(acc2, 8); err != nil || n != 0 {
		t.Errorf("after the key was wiped: slot %d, %v; want 0", n, err)
	}
	if _, err := slotOf(acc1, 1); err == nil || !strings.Contains(err.Error(), "no free credential slot") {
		t.Errorf("a full key: %v", err)
	}
}
