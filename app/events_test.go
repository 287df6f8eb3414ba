package app

import (
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

func TestEventsInOrderAndProgressCoalesced(t *testing.T) {
	s := newTestService(t, "corp")
	ch, cancel := s.Subscribe()
	// Nobody reads while these are published: the publisher must not block,
	// and only the newest progress of a run survives.
	s.publish(SyncStarted{Domain: "corp"})
	for i := 1; i <= 500; i++ {
		s.publish(SyncProgressed{Domain: "corp", Progress: ldapsync.Progress{Pages: i}})
	}
	s.publish(SyncFinished{Domain: "corp"})
	s.publish(DataChanged{What: "sync"})

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

func TestEmployeeChangesArePublished(t *testing.T) {
	s := newTestService(t, "corp")
	ch, cancel := s.Subscribe()
	defer cancel()
	if _, err := s.AddEmployee(t.Context(), testAdmin, "x@example.com", "X"); err != nil {
		t.Fatal(err)
	}
	if e, ok := recv(t, ch).(DataChanged); !ok || e.What != "employees" {
		t.Fatalf("got %#v, want DataChanged employees", e)
	}
}
