package app

import (
	"slices"
	"sync"
	"time"

	"keydesk/ldapsync"
)

// Event is something the application layer tells its watchers (the
// consoles): a sync starting, progressing or ending, data having changed, a
// key plugged in.
type Event interface{ event() }

// SyncStarted is sent when a domain's sync begins.
type SyncStarted struct {
	Domain  string
	Trigger string // "manual", "schedule"
	At      time.Time
}

// SyncProgressed is sent after every page read.
type SyncProgressed struct {
	Domain   string
	Progress ldapsync.Progress
}

// SyncFinished is sent when a domain's sync ends, successfully or not.
type SyncFinished struct {
	Domain  string
	Summary DomainSummary
}

// Change is a set of kinds of data that committed changes touched, so that a
// watcher reloads only those.
type Change uint8

// The kinds of data.
const (
	ChangedEmployees Change = 1 << iota // employees, their accounts, their key flags
	ChangedKeys                         // the key inventory
	ChangedDomains                      // sync states, held removals, member counts
	ChangedAudit                        // the audit log
	ChangedPasswords                    // the password journal and schedule
	ChangedAll       = ChangedEmployees | ChangedKeys | ChangedDomains | ChangedAudit | ChangedPasswords
)

// Has reports whether c includes any of x.
func (c Change) Has(x Change) bool { return c&x != 0 }

// DataChanged is sent after a transaction that changed data committed, in
// this process or (within a second, see WatchChanges) in another one. Events
// waiting for a slow watcher are merged into one.
type DataChanged struct {
	What Change
}

// ScheduleChanged is sent when the scheduler plans a domain's next sync.
type ScheduleChanged struct {
	Domain string
	Next   time.Time
}

// EventsLost is sent to a watcher that fell so far behind that its backlog
// was dropped: it should reload everything.
type EventsLost struct{}

// Stopping is sent when KeyDesk is about to stop (keydesk serve got
// SIGTERM): sessions end In from now.
type Stopping struct{ In time.Duration }

func (SyncStarted) event()     {}
func (SyncProgressed) event()  {}
func (SyncFinished) event()    {}
func (DataChanged) event()     {}
func (ScheduleChanged) event() {}
func (EventsLost) event()      {}
func (Stopping) event()        {}

// SubscribeOptions say what a watcher wants to hear.
type SubscribeOptions struct {
	// Places are the places whose plugged-in keys this watcher serves: it
	// hears KeyPlugged only for keys plugged in there (PlaceLocal for a
	// console on this machine). Every watcher hears that the inventory
	// changed.
	Places []string
}

// bus fans events out to subscribers. Publishing never blocks the
// publisher. Each subscriber's backlog is bounded: data changes merge into
// one event, a domain's progress and schedule keep only the latest, and a
// backlog that still grows past maxBacklog is replaced by EventsLost.
type bus struct {
	mu   sync.Mutex
	subs map[int]*subscriber
	next int
}

type subscriber struct {
	places  []string
	ch      chan Event
	mu      sync.Mutex
	backlog []Event
	wake    chan struct{}
	done    chan struct{}
}

// maxBacklog bounds the events waiting for one subscriber.
const maxBacklog = 256

// Subscribe returns a channel of events and a function that ends the
// subscription and closes the channel.
func (s *Service) Subscribe(o SubscribeOptions) (<-chan Event, func()) {
	b := &s.events
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.subs == nil {
		b.subs = map[int]*subscriber{}
	}
	sub := &subscriber{places: slices.Clone(o.Places), ch: make(chan Event), wake: make(chan struct{}, 1), done: make(chan struct{})}
	id := b.next
	b.next++
	b.subs[id] = sub
	go sub.pump()
	var once sync.Once
	return sub.ch, func() {
		once.Do(func() {
			b.mu.Lock()
			delete(b.subs, id)
			b.mu.Unlock()
			close(sub.done)
		})
	}
}

// pump moves the backlog into the channel, in order, without holding up
// publishers.
func (sub *subscriber) pump() {
	defer close(sub.ch)
	for {
		sub.mu.Lock()
		var e Event
		if len(sub.backlog) > 0 {
			e = sub.backlog[0]
			sub.backlog[0] = nil
			sub.backlog = sub.backlog[1:]
		}
		sub.mu.Unlock()
		if e != nil {
			select {
			case sub.ch <- e:
			case <-sub.done:
				return
			}
			continue
		}
		select {
		case <-sub.wake:
		case <-sub.done:
			return
		}
	}
}

func (s *Service) publish(e Event) {
	b := &s.events
	b.mu.Lock()
	subs := make([]*subscriber, 0, len(b.subs))
	for _, sub := range b.subs {
		subs = append(subs, sub)
	}
	b.mu.Unlock()
	for _, sub := range subs {
		if place, ok := placeOf(e); ok && !slices.Contains(sub.places, place) {
			continue
		}
		sub.mu.Lock()
		sub.backlog = enqueue(sub.backlog, e)
		sub.mu.Unlock()
		select {
		case sub.wake <- struct{}{}:
		default:
		}
	}
}

// placeOf is the place an event is about, for the events that go only to
// the watchers attached there.
func placeOf(e Event) (string, bool) {
	switch e := e.(type) {
	case KeyPlugged:
		return e.Place, true
	case KeyProblem:
		return e.Place, true
	}
	return "", false
}

// domainOf is the domain a sync event is about ("" for others).
func domainOf(e Event) string {
	switch e := e.(type) {
	case SyncStarted:
		return e.Domain
	case SyncFinished:
		return e.Domain
	case SyncProgressed:
		return e.Domain
	case ScheduleChanged:
		return e.Domain
	}
	return ""
}

// enqueue adds e to a subscriber's backlog, merging it with what is already
// waiting where a later event makes an earlier one redundant. Every merge
// keeps the data a watcher ends up with the same: a data change is reloaded
// when its event is handled, whatever came between; a domain's progress or
// schedule replaces the waiting one only within the same run (never across
// the start or the end of a sync of that domain).
func enqueue(backlog []Event, e Event) []Event {
scan:
	for i := len(backlog) - 1; i >= 0; i-- {
		switch old := backlog[i].(type) {
		case SyncStarted, SyncFinished:
			if d := domainOf(e); d != "" && d == domainOf(old) {
				break scan // a run's boundary: nothing before it merges
			}
		case DataChanged:
			if n, ok := e.(DataChanged); ok {
				backlog[i] = DataChanged{What: old.What | n.What}
				return backlog
			}
		case SyncProgressed:
			if n, ok := e.(SyncProgressed); ok && n.Domain == old.Domain {
				backlog[i] = n
				return backlog
			}
		case ScheduleChanged:
			if n, ok := e.(ScheduleChanged); ok && n.Domain == old.Domain {
				backlog[i] = n
				return backlog
			}
		case EventsLost:
			if _, ok := e.(DataChanged); ok {
				return backlog // a full reload is coming anyway
			}
		}
	}
	if len(backlog) >= maxBacklog {
		clear(backlog)
		return append(backlog[:0], EventsLost{})
	}
	return append(backlog, e)
}

// keysChanged is what a change to a key touches: the inventory, its owner's
// key flag in the employee list, and the audit entry.
const keysChanged = ChangedKeys | ChangedEmployees | ChangedAudit
