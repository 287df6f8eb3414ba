package simkey_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"keydesk/keys/proto"
	"keydesk/keys/simkey"
)

// TestLifecycle drives a key through its whole life over the in-memory
// transport, step by step.
func TestLifecycle(t *testing.T) {
	k := simkey.New("SIM-0000-0001")
	d, _ := open(t, k, simkey.TapHooks{})
	var s *proto.Session
	alice := proto.Credential{Login: "CORP\\alice", Password: "old-Passw0rd!"}
	alice2 := proto.Credential{Login: "CORP\\alice", Password: "new-Passw0rd!"}
	bob := proto.Credential{Login: "bob@corp.example", Password: "b0b"}

	wantInfo := func(state proto.KeyState, free, retries int, pinSet bool, by proto.LockReason) func(context.Context) error {
		return func(ctx context.Context) error {
			i, err := d.Info(ctx)
			if err != nil {
				return err
			}
			want := proto.Info{Serial: "SIM-0000-0001", Model: simkey.Model, Firmware: simkey.Firmware, State: state,
				Slots: simkey.DefaultSlots, FreeSlots: free, PINSet: pinSet, PINRetries: retries, LockedBy: by}
			if i != want {
				t.Errorf("Info = %+v\nwant %+v", i, want)
			}
			return nil
		}
	}
	wantRead := func(slot int, pending bool, want proto.Credential) func(context.Context) error {
		return func(ctx context.Context) error {
			read := s.ReadCredential
			if pending {
				read = s.ReadPending
			}
			got, err := read(ctx, slot)
			if err == nil && got != want {
				t.Errorf("slot %d (pending %v) = %v, want %v", slot, pending, got, want)
			}
			return err
		}
	}
	auth := func(master []byte) func(context.Context) error {
		return func(ctx context.Context) error {
			ns, err := d.Auth(ctx, master)
			if err == nil {
				s = ns
			}
			return err
		}
	}
	steps := []struct {
		name string
		do   func(context.Context) error
		want proto.ErrorCode // 0: success
		is   error           // also checked with errors.Is when set
	}{
		{"info blank", wantInfo(proto.StateBlank, 8, 8, false, ""), 0, nil},
		{"auth on a blank key", auth(secret(1)), proto.CodeWrongState, nil},
		{"lock a blank key", func(ctx context.Context) error { return d.Lock(ctx) }, proto.CodeWrongState, nil},
		{"wink", func(ctx context.Context) error { return d.Wink(ctx) }, 0, nil},
		{"link", func(ctx context.Context) error { return d.Link(ctx, secret(1), nil) }, 0, nil},
		{"info linked", wantInfo(proto.StateLinked, 8, 8, false, ""), 0, nil},
		{"link a linked key", func(ctx context.Context) error { return d.Link(ctx, secret(2), nil) }, proto.CodeWrongState, nil},
		{"auth with a wrong secret", auth(secret(2)), proto.CodeAuthFailed, proto.ErrAuth},
		{"auth", auth(secret(1)), 0, nil},
		{"read an empty slot", wantRead(0, false, proto.Credential{}), proto.CodeNotFound, nil},
		{"write slot 0 (pending)", func(ctx context.Context) error { return s.WriteCredential(ctx, 0, alice) }, 0, nil},
		{"pending is not current", wantRead(0, false, proto.Credential{}), proto.CodeNotFound, nil},
		{"read pending", wantRead(0, true, alice), 0, nil},
		{"info: slot 0 taken", wantInfo(proto.StateLinked, 7, 8, false, ""), 0, nil},
		{"commit slot 0", func(ctx context.Context) error { return s.Commit(ctx, 0) }, 0, nil},
		{"read current", wantRead(0, false, alice), 0, nil},
		{"commit without pending", func(ctx context.Context) error { return s.Commit(ctx, 0) }, proto.CodeNotFound, nil},
		{"rotation: write new pending", func(ctx context.Context) error { return s.WriteCredential(ctx, 0, alice2) }, 0, nil},
		{"current unchanged", wantRead(0, false, alice), 0, nil},
		{"discard (abort rotation)", func(ctx context.Context) error { return s.Discard(ctx, 0) }, 0, nil},
		{"pending gone", wantRead(0, true, proto.Credential{}), proto.CodeNotFound, nil},
		{"discard again is fine", func(ctx context.Context) error { return s.Discard(ctx, 0) }, 0, nil},
		{"rotation again", func(ctx context.Context) error { return s.WriteCredential(ctx, 0, alice2) }, 0, nil},
		{"commit rotation", func(ctx context.Context) error { return s.Commit(ctx, 0) }, 0, nil},
		{"new current, old gone", wantRead(0, false, alice2), 0, nil},
		{"write slot 7", func(ctx context.Context) error { return s.WriteCredential(ctx, 7, bob) }, 0, nil},
		{"list", func(ctx context.Context) error {
			got, err := s.List(ctx)
			want := []proto.SlotInfo{{Slot: 0, Login: alice.Login, Current: true}, {Slot: 7, Login: bob.Login, Pending: true}}
			if err == nil && (len(got) != 2 || got[0] != want[0] || got[1] != want[1]) {
				t.Errorf("List = %+v, want %+v", got, want)
			}
			return err
		}, 0, nil},
		{"slot 8 does not exist", func(ctx context.Context) error { return s.WriteCredential(ctx, 8, bob) }, proto.CodeBadSlot, nil},
		{"slot -1 does not exist", func(ctx context.Context) error { return s.Commit(ctx, -1) }, proto.CodeBadSlot, nil},
		{"delete slot 7", func(ctx context.Context) error { return s.DeleteCredential(ctx, 7) }, 0, nil},
		{"deleted", wantRead(7, true, proto.Credential{}), proto.CodeNotFound, nil},
		{"verify PIN without one", func(ctx context.Context) error { return s.VerifyPIN(ctx, "1234") }, proto.CodePINNotSet, nil},
		{"set PIN", func(ctx context.Context) error { return s.SetPIN(ctx, "2468") }, 0, nil},
		{"info: PIN set", wantInfo(proto.StateLinked, 7, 8, true, ""), 0, nil},
		{"new session", auth(secret(1)), 0, nil},
		{"read needs the PIN", wantRead(0, false, alice2), proto.CodePINRequired, nil},
		{"wrong PIN", func(ctx context.Context) error { return s.VerifyPIN(ctx, "0000") }, proto.CodePINInvalid, nil},
		{"info: 7 retries", wantInfo(proto.StateLinked, 7, 7, true, ""), 0, nil},
		{"right PIN", func(ctx context.Context) error { return s.VerifyPIN(ctx, "2468") }, 0, nil},
		{"info: retries reset", wantInfo(proto.StateLinked, 7, 8, true, ""), 0, nil},
		{"read after PIN", wantRead(0, false, alice2), 0, nil},
		{"lock", func(ctx context.Context) error { return d.Lock(ctx) }, 0, nil},
		{"info locked", wantInfo(proto.StateLocked, 7, 8, true, proto.LockCommand), 0, nil},
		{"lock again", func(ctx context.Context) error { return d.Lock(ctx) }, 0, nil},
		{"locked: read refused", wantRead(0, false, alice2), proto.CodeLocked, proto.ErrLocked},
		{"locked: auth still works", auth(secret(1)), 0, nil},
		{"locked: write refused", func(ctx context.Context) error { return s.WriteCredential(ctx, 1, bob) }, proto.CodeLocked, proto.ErrLocked},
		{"locked: link refused", func(ctx context.Context) error { return d.Link(ctx, secret(3), nil) }, proto.CodeWrongState, nil},
		{"wink while locked", func(ctx context.Context) error { return d.Wink(ctx) }, 0, nil},
		{"wipe (allowed while locked)", func(ctx context.Context) error { return s.Wipe(ctx) }, 0, nil},
		{"info blank again", wantInfo(proto.StateBlank, 8, 8, false, ""), 0, nil},
		{"session ended by wipe", func(ctx context.Context) error { return s.Commit(ctx, 0) }, 0, proto.ErrClosed},
		{"link again", func(ctx context.Context) error { return d.Link(ctx, secret(3), nil) }, 0, nil},
		{"old secret refused", auth(secret(1)), proto.CodeAuthFailed, proto.ErrAuth},
		{"new secret", auth(secret(3)), 0, nil},
		{"slots are empty", wantRead(0, false, proto.Credential{}), proto.CodeNotFound, nil},
	}
	for _, st := range steps {
		err := st.do(ctxT(t))
		switch {
		case st.want == 0 && st.is == nil && err != nil:
			t.Fatalf("%s: %v", st.name, err)
		case st.want != 0 && keyCode(err) != st.want:
			t.Fatalf("%s: error %v, want key error %s", st.name, err, st.want)
		case st.is != nil && !errors.Is(err, st.is):
			t.Fatalf("%s: error %v, want %v", st.name, err, st.is)
		}
		if err != nil && strings.Contains(err.Error(), "Passw0rd") {
			t.Fatalf("%s: error shows a password: %v", st.name, err)
		}
	}
	if k.Winks() != 2 {
		t.Errorf("key winked %d times, want 2", k.Winks())
	}
}

func TestPINBlocksKey(t *testing.T) {
	_, d, _, s := linked(t)
	ctx := ctxT(t)
	if err := s.WriteCredential(ctx, 0, proto.Credential{Login: "a", Password: "p"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPIN(ctx, "1357"); err != nil {
		t.Fatal(err)
	}
	for i := proto.MaxPINRetries; i > 1; i-- {
		if err := s.VerifyPIN(ctx, "9999"); keyCode(err) != proto.CodePINInvalid {
			t.Fatalf("wrong PIN with %d retries: %v", i, err)
		}
	}
	if err := s.VerifyPIN(ctx, "9999"); keyCode(err) != proto.CodePINBlocked || !errors.Is(err, proto.ErrLocked) {
		t.Fatalf("last wrong PIN: %v, want PIN blocked", err)
	}
	i := info(t, d)
	if i.State != proto.StateLocked || i.LockedBy != proto.LockPIN || i.PINRetries != 0 {
		t.Fatalf("Info after PIN block = %+v", i)
	}
	if err := s.VerifyPIN(ctx, "1357"); !errors.Is(err, proto.ErrLocked) {
		t.Fatalf("right PIN on a locked key: %v, want ErrLocked", err)
	}
	if _, err := s.ReadPending(ctx, 0); !errors.Is(err, proto.ErrLocked) {
		t.Fatalf("read on a PIN-locked key: %v, want ErrLocked", err)
	}
	if err := s.Wipe(ctx); err != nil {
		t.Fatalf("wipe of a PIN-locked key: %v", err)
	}
	if i := info(t, d); i.State != proto.StateBlank || i.PINSet || i.PINRetries != proto.MaxPINRetries {
		t.Fatalf("Info after wipe = %+v", i)
	}
}

func TestHostValidation(t *testing.T) {
	_, d, tap, s := linked(t)
	before := len(tap.Written())
	tests := []struct {
		name string
		do   func(context.Context) error
	}{
		{"short master secret for Link", func(ctx context.Context) error { return d.Link(ctx, make([]byte, 16), nil) }},
		{"short master secret for Auth", func(ctx context.Context) error { _, err := d.Auth(ctx, make([]byte, 31)); return err }},
		{"empty login", func(ctx context.Context) error { return s.WriteCredential(ctx, 0, proto.Credential{Password: "x"}) }},
		{"password too long", func(ctx context.Context) error {
			return s.WriteCredential(ctx, 0, proto.Credential{Login: "a", Password: strings.Repeat("x", proto.MaxPasswordLen+1)})
		}},
		{"PIN too short", func(ctx context.Context) error { return s.SetPIN(ctx, "12") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do(ctxT(t))
			if err == nil || keyCode(err) != 0 {
				t.Fatalf("error %v, want a host-side refusal", err)
			}
		})
	}
	if n := len(tap.Written()); n != before {
		t.Fatalf("%d reports went to the key for refused calls", n-before)
	}
}

func TestSessionEndsOnWipeFromAnotherChannel(t *testing.T) {
	k, _, _, s := linked(t)
	d2, _ := open(t, k, simkey.TapHooks{})
	s2, err := d2.Auth(ctxT(t), secret(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Wipe(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := s.Discard(ctxT(t), 0); keyCode(err) != proto.CodeNoSession {
		t.Fatalf("session on another channel after wipe: %v, want no session", err)
	}
}
