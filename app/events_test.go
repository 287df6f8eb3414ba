package app

import (
	"fmt"
	"testing"
	"time"

	"keydesk/ldapsync"
)

func recv(t *testing.T, ch <-chan Event) Event {
	t.Helper()
	select {
	case e, ok := <-ch:
		if !ok {
			t.Fatal("event channel closed")
		}
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	return nil
}

// drain reads what the channel holds within a short while.
func drain(ch <-chan Event) []Event {
	var out []Event
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				return out
			}
			out = append(out, e)
		case <-time.After(100 * time.Millisecond):
			return out
		}
	}
}

func TestEventsInOrderAndProgressCoalesced(t *testing.T) {
	s := newTestService(t, "corp")
	ch, cancel := s.Subscribe(SubscribeOptions{})
	// Nobody reads while these are published: the publisher must not block,
	// and only the newest progress of a run survives.
	s.publish(SyncStarted{Domain: "corp"})
	for i := 1; i <= 500; i++ {
		s.publish(SyncProgressed{Domain: "corp", Progress: ldapsync.Progress{Pages: i}})
	}
	s.publish(SyncFinished{Domain: "corp"})
	s.publish(DataChanged{What: ChangedAll})

	if e, ok := recv(t, ch).(SyncStarted); !ok || e.Domain != "corp" {
		t.Fatalf("first event %#v, want SyncStarted", e)
	}
	last := 0
	var e Event
	for {
		e = recv(t, ch)
		p, ok := e.(SyncProgressed)
		if !ok {
			break
		}
		if p.Progress.Pages <= last {
			t.Fatalf("progress out of order: %d after %d", p.Progress.Pages, last)
		}
		last = p.Progress.Pages
	}
	if last != 500 {
		t.Errorf("last progress seen %d, want 500 (the newest is never dropped)", last)
	}
	if _, ok := e.(SyncFinished); !ok {
		t.Fatalf("after progress: %#v, want SyncFinished", e)
	}
	if _, ok := recv(t, ch).(DataChanged); !ok {
		t.Fatal("DataChanged lost")
	}
	cancel()
	for range ch {
	}
}

func TestDataChangesMergeWhileTheWatcherIsBusy(t *testing.T) {
	s := newTestService(t, "corp")
	ch, cancel := s.Subscribe(SubscribeOptions{})
	defer cancel()
	s.publish(DataChanged{What: ChangedKeys})
	// The pump holds the first event until it is read; what follows waits
	// in the backlog and merges there.
	time.Sleep(20 * time.Millisecond)
	for i := 0; i < 1000; i++ {
		s.publish(DataChanged{What: ChangedEmployees})
		s.publish(ScheduleChanged{Domain: "corp", Next: time.Unix(int64(i), 0)})
	}
	s.publish(DataChanged{What: ChangedAudit})
	got := drain(ch)
	want := fmt.Sprint([]Event{DataChanged{What: ChangedKeys}, DataChanged{What: ChangedEmployees | ChangedAudit}, ScheduleChanged{Domain: "corp", Next: time.Unix(999, 0)}})
	if fmt.Sprint(got) != want {
		t.Errorf("events %v\nwant %v", got, want)
	}
}

func TestBacklogIsBounded(t *testing.T) {
	s := newTestService(t, "corp")
	ch, cancel := s.Subscribe(SubscribeOptions{})
	defer cancel()
	s.publish(SyncStarted{Domain: "held by the pump"})
	time.Sleep(20 * time.Millisecond)
	// A watcher that reads nothing while a flood of distinct events arrives
	// (a stalled SSH client) must not grow memory without limit.
	for i := 0; i < 100*maxBacklog; i++ {
		s.publish(SyncStarted{Domain: fmt.Sprint(i)})
	}
	s.events.mu.Lock()
	for _, sub := range s.events.subs {
		sub.mu.Lock()
		if n := len(sub.backlog); n > maxBacklog {
			t.Errorf("backlog holds %d events, more than %d", n, maxBacklog)
		}
		sub.mu.Unlock()
	}
	s.events.mu.Unlock()
	got := drain(ch)
	if len(got) < 2 || len(got) > maxBacklog+1 {
		t.Fatalf("%d events delivered", len(got))
	}
	lost := 0
	for _, e := range got {
		if _, ok := e.(EventsLost); ok {
			lost++
		}
	}
	if lost == 0 {
		t.Error("a watcher whose backlog was dropped is not told (EventsLost)")
	}
	if last, ok := got[len(got)-1].(SyncStarted); !ok || last.Domain != fmt.Sprint(100*maxBacklog-1) {
		t.Errorf("the newest event is not the last delivered: %#v", got[len(got)-1])
	}
}

func TestKeyPluggedGoesOnlyToItsPlace(t *testing.T) {
	s := newTestService(t, "corp")
	here, cancelHere := s.Subscribe(SubscribeOptions{Places: []string{PlaceLocal}})
	defer cancelHere()
	remote, cancelRemote := s.Subscribe(SubscribeOptions{})
	defer cancelRemote()
	s.publish(KeyPlugged{Serial: "K1", Place: PlaceLocal, PluggedIn: true, Status: "reserved"})
	s.publish(DataChanged{What: keysChanged})
	if e, ok := recv(t, here).(KeyPlugged); !ok || e.Serial != "K1" {
		t.Fatalf("the console at the key's place got %#v, want KeyPlugged", e)
	}
	if e, ok := recv(t, remote).(DataChanged); !ok || !e.What.Has(ChangedKeys) {
		t.Fatalf("a console elsewhere got %#v first, want only DataChanged (no prompt for a key it cannot touch)", e)
	}
}

func TestEmployeeChangesArePublished(t *testing.T) {
	s := newTestService(t, "corp")
	ch, cancel := s.Subscribe(SubscribeOptions{})
	defer cancel()
	if _, err := s.AddEmployee(t.Context(), testAdmin, "x@example.com", "X"); err != nil {
		t.Fatal(err)
	}
	if e, ok := recv(t, ch).(DataChanged); !ok || !e.What.Has(ChangedEmployees) || e.What.Has(ChangedKeys) {
		t.Fatalf("got %#v, want DataChanged of employees only", e)
	}
}

// TestProgressNeverCrossesARunsEnd: a second sync's progress waiting behind
// the first sync's end stays behind it (the end clears the progress shown).
func TestProgressNeverCrossesARunsEnd(t *testing.T) {
	backlog := []Event{SyncProgressed{Domain: "corp", Progress: ldapsync.Progress{Pages: 1}}, SyncFinished{Domain: "corp"}, SyncStarted{Domain: "corp"}}
	backlog = enqueue(backlog, SyncProgressed{Domain: "corp", Progress: ldapsync.Progress{Pages: 2}})
	want := fmt.Sprint([]Event{SyncProgressed{Domain: "corp", Progress: ldapsync.Progress{Pages: 1}}, SyncFinished{Domain: "corp"}, SyncStarted{Domain: "corp"},
		SyncProgressed{Domain: "corp", Progress: ldapsync.Progress{Pages: 2}}})
	if fmt.Sprint(backlog) != want {
		t.Errorf("backlog %v\nwant %v", backlog, want)
	}
	// Another domain's progress still merges across corp's end.
	backlog = []Event{SyncProgressed{Domain: "branch"}, SyncFinished{Domain: "corp"}}
	if backlog = enqueue(backlog, SyncProgressed{Domain: "branch", Progress: ldapsync.Progress{Pages: 9}}); len(backlog) != 2 {
		t.Errorf("branch's progress did not merge across corp's end: %v", backlog)
	}
}

func TestKeyProblemGoesOnlyToItsPlace(t *testing.T) {
	s := newTestService(t, "corp")
	remote, cancel := s.Subscribe(SubscribeOptions{})
	defer cancel()
	s.publish(KeyProblem{PlugID: "usb:1", Place: PlaceLocal, Err: "boom"})
	s.publish(DataChanged{What: ChangedAudit})
	if e, ok := recv(t, remote).(DataChanged); !ok {
		t.Errorf("a console elsewhere got %#v, want only the data change", e)
	}
}
