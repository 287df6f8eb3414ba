package store

import (
	"context"
	"errors"
	"reflect"
	"sort"
	"testing"
	"time"
)

func TestLeaseHasOneHolderUntilItExpires(t *testing.T) {
	ctx := context.Background()
	s, clk := openStore(t)
	take := func(holder string) bool {
		t.Helper()
		ok, err := s.TakeLease(ctx, "scheduler", holder, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !take("a") {
		t.Fatal("a free lease was not taken")
	}
	if take("b") {
		t.Fatal("b took a lease that a holds")
	}
	if !take("a") {
		t.Fatal("a could not renew its own lease")
	}
	if h, _, err := s.LeaseHolder(ctx, "scheduler"); err != nil || h != "a" {
		t.Fatalf("holder %q %v, want a", h, err)
	}
	clk.t = clk.t.Add(2 * time.Minute) // a stopped renewing
	if h, _, _ := s.LeaseHolder(ctx, "scheduler"); h != "" {
		t.Errorf("an expired lease is still held by %q", h)
	}
	if !take("b") {
		t.Fatal("b could not take over an expired lease")
	}
	if take("a") {
		t.Fatal("a took back the lease b holds")
	}
	if err := s.ReleaseLease(ctx, "scheduler", "a"); err != nil {
		t.Fatal(err)
	}
	if h, _, _ := s.LeaseHolder(ctx, "scheduler"); h != "b" {
		t.Errorf("a released b's lease: holder %q", h)
	}
	if err := s.ReleaseLease(ctx, "scheduler", "b"); err != nil {
		t.Fatal(err)
	}
	if !take("a") {
		t.Error("a released lease was not free")
	}
}

func TestManagedAccounts(t *testing.T) {
	ctx := context.Background()
	s, clk := openStore(t)
	ann, ben := keyEmployee(t, s, "Ann"), keyEmployee(t, s, "Ben")
	accts := []Account{
		{Domain: "corp", ObjectGUID: "g1", EmployeeID: ann, SAMAccountName: "ann", InSyncGroup: true, PasswordRotation: true},
		{Domain: "branch", ObjectGUID: "g2", EmployeeID: ann, SAMAccountName: "ann", InSyncGroup: true, PasswordRotation: true},
		{Domain: "corp", ObjectGUID: "g3", EmployeeID: ben, SAMAccountName: "ben", InSyncGroup: true, PasswordRotation: true},
		{Domain: "corp", ObjectGUID: "g4", EmployeeID: ben, SAMAccountName: "ben2", InSyncGroup: true, PasswordRotation: false},
		{Domain: "corp", ObjectGUID: "g5", EmployeeID: ben, SAMAccountName: "ben3", InSyncGroup: true, PasswordRotation: true, LeftReason: "disabled"},
	}
	for i := range accts {
		insertAccount(t, s, &accts[i])
	}
	k := Key{Serial: "M-1", Status: "active", EmployeeID: &ann}
	insertKeyT(t, s, &k)
	slot := 0
	done := PasswordChange{AccountID: accts[0].ID, KeyID: &k.ID, Slot: &slot, Kind: "rotate", Order: "key-first", Step: "planned", PasswordSealed: []byte{1}, Actor: "t"}
	update(t, s, func(ctx context.Context, tx *Tx) error {
		if err := tx.InsertPasswordChange(ctx, &done); err != nil {
			return err
		}
		done.Step, done.PasswordSealed = "done", nil
		return tx.UpdatePasswordChange(ctx, &done)
	})
	open := PasswordChange{AccountID: accts[0].ID, KeyID: &k.ID, Slot: &slot, Kind: "scheduled", Order: "key-first", Step: "planned", PasswordSealed: []byte{2}, Actor: "t"}
	failed := PasswordChange{AccountID: accts[2].ID, Kind: "rotate", Order: "ad-first", Step: "failed", Discarded: true, Error: "AD refused", Actor: "t"}
	update(t, s, func(ctx context.Context, tx *Tx) error {
		if err := tx.InsertPasswordChange(ctx, &open); err != nil {
			return err
		}
		return tx.InsertPasswordChange(ctx, &failed)
	})
	ms, err := s.ManagedAccounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]ManagedAccount{}
	for _, m := range ms {
		got[m.Domain+`\`+m.SAMAccountName] = m
	}
	if len(ms) != 3 || got[`corp\ben2`].ID != 0 || got[`corp\ben3`].ID != 0 {
		t.Fatalf("managed accounts %v; want corp\\ann, branch\\ann, corp\\ben only", got)
	}
	a := got[`corp\ann`]
	if a.KeyID == nil || *a.KeyID != k.ID || a.KeySerial != "M-1" || a.LastOnKey == nil || a.LastInAD == nil || a.Open == nil || a.Open.ID != open.ID || a.Email == "" {
		t.Errorf("corp\\ann: %+v", a)
	}
	if b := got[`branch\ann`]; b.LastOnKey != nil || b.Open != nil || b.KeyID == nil {
		t.Errorf("branch\\ann (never changed): %+v", b)
	}

	// Rotate and hold: AD gets the password now, the key much later; the
	// password's age in AD counts from the first.
	held := PasswordChange{AccountID: accts[1].ID, KeyID: &k.ID, Slot: &slot, Kind: "scheduled", Order: "ad-first", Step: "planned", PasswordSealed: []byte{3}, Actor: "t"}
	update(t, s, func(ctx context.Context, tx *Tx) error {
		if err := tx.InsertPasswordChange(ctx, &held); err != nil {
			return err
		}
		held.Step = "ad-written"
		return tx.UpdatePasswordChange(ctx, &held)
	})
	written := *held.ADWrittenAt
	clk.t = clk.t.Add(20 * 24 * time.Hour)
	update(t, s, func(ctx context.Context, tx *Tx) error {
		held.Step, held.PasswordSealed = "done", nil
		return tx.UpdatePasswordChange(ctx, &held)
	})
	ms, err = s.ManagedAccounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Domain == "branch" && (m.LastInAD == nil || !m.LastInAD.Equal(written) || m.LastOnKey == nil || !m.LastOnKey.After(written.Add(19*24*time.Hour))) {
			t.Errorf("branch\\ann after rotate and hold: in AD %v (want %v), on the key %v", m.LastInAD, written, m.LastOnKey)
		}
	}
	if b := got[`corp\ben`]; b.KeyID != nil || b.Open == nil || b.Open.Error != "AD refused" {
		t.Errorf("corp\\ben (no key, last change failed): %+v", b)
	}

	// The listing's stream gives each employee the same managed accounts,
	// and their key in use, in its one pass.
	var rows []EmployeeRow
	if err := s.EachEmployee(ctx, func(r *EmployeeRow) error { rows = append(rows, *r); return nil }); err != nil {
		t.Fatal(err)
	}
	var streamed []ManagedAccount
	for _, r := range rows {
		if (r.ID == ann) != (r.Key != nil) || r.Key != nil && r.Key.Serial != "M-1" {
			t.Errorf("employee %d: key %+v", r.ID, r.Key)
		}
		streamed = append(streamed, r.Managed...)
	}
	sort.Slice(streamed, func(i, j int) bool {
		a, b := streamed[i], streamed[j]
		return a.Domain < b.Domain || a.Domain == b.Domain && a.SAMAccountName < b.SAMAccountName
	})
	if !reflect.DeepEqual(streamed, ms) {
		t.Errorf("EachEmployee's managed accounts\n%+v\nManagedAccounts\n%+v", streamed, ms)
	}
	// One employee read alone (the console's details) is as streamed:
	// accounts, key, and open changes (Ben's failed one among them).
	opens := 0
	for _, want := range rows {
		got, err := s.EmployeeRow(ctx, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("EmployeeRow(%d)\n%+v\nstreamed as\n%+v", want.ID, *got, want)
		}
		for _, m := range got.Managed {
			if m.Open != nil {
				opens++
			}
		}
	}
	if opens == 0 {
		t.Error("no employee read alone has an open change: the changes' query goes untested")
	}
	if _, err := s.EmployeeRow(ctx, 1<<40); !errors.Is(err, ErrNotFound) {
		t.Errorf("EmployeeRow of no one: %v, want ErrNotFound", err)
	}
}
