package app

import (
	"context"
	"testing"
	"time"

	"keydesk/internal/simtest"
	"keydesk/store"
)

// TestChangesFromAnotherProcessArePublished opens the same database twice,
// as a console and a command line would, and checks that the console's
// service announces what the other one committed, and only that.
func TestChangesFromAnotherProcessArePublished(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	console := keyService(t)
	st, err := store.Open(ctx, console.st.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cli := New(console.cfg, st, WithMasterKey(*console.master), WithTrustedMaker(simtest.Maker(t).Cert()))

	events, unsubscribe := console.Subscribe(SubscribeOptions{})
	defer unsubscribe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		console.WatchChanges(ctx, 10*time.Millisecond)
	}()
	time.Sleep(50 * time.Millisecond) // the watcher has read the head

	if err := cli.AddKeys(ctx, testAdmin, []string{"FROM-CLI"}); err != nil {
		t.Fatal(err)
	}
	e, ok := recv(t, events).(DataChanged)
	if !ok || e.What != keysChanged {
		t.Fatalf("after the other process added a key: %#v, want DataChanged of keys", e)
	}

	// A change made here is published once, not again by the watcher.
	if _, err := console.AddEmployee(ctx, testAdmin, "here@example.com", "Here"); err != nil {
		t.Fatal(err)
	}
	if e, ok := recv(t, events).(DataChanged); !ok || e.What != ChangedEmployees|ChangedAudit {
		t.Fatalf("own change: %#v", e)
	}
	if more := drain(events); len(more) != 0 {
		t.Errorf("the watcher announced this process's own change again: %v", more)
	}

	// An entry this process wrote in a transaction that rolled back is not
	// mistaken for the other process's entry that takes its number.
	if err := console.AddKeys(ctx, testAdmin, []string{"NEW-1", "FROM-CLI"}); err == nil {
		t.Fatal("adding a known serial succeeded")
	}
	if err := cli.AddKeys(ctx, testAdmin, []string{"FROM-CLI-2"}); err != nil {
		t.Fatal(err)
	}
	if e, ok := recv(t, events).(DataChanged); !ok || e.What != keysChanged {
		t.Fatalf("after a rolled-back write here and a key added there: %#v, want the other's change", e)
	}

	// A refusal in the other process is only an audit change.
	cli.AddKeys(ctx, Actor{Name: "aud", Role: RoleAuditor}, []string{"X"})
	if e, ok := recv(t, events).(DataChanged); !ok || e.What != ChangedAudit {
		t.Fatalf("a refusal elsewhere: %#v, want DataChanged of the audit log only", e)
	}
	cancel()
	<-done
}
