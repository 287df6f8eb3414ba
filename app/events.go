package app

import (
	"sync"
	"time"

	"keydesk/ldapsync"
)

// Event is something the application layer tells its watchers (the
// console): a sync starting, progressing or ending, data having changed.
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

// DataChanged is sent after a transaction that changed data committed.
type DataChanged struct {
	What string // "employees", "audit"
}

// ScheduleChanged is sent when the scheduler plans a domain's next sync.
type ScheduleChanged struct {
	Domain string
	Next   time.Time
}

func (SyncStarted) event()     {}
func (SyncProgressed) event()  {}
func (SyncFinished) event()    {}
func (DataChanged) event()     {}
func (ScheduleChanged) event() {}

// bus fans events out to subscribers. Publishing never blocks the
// publisher: a subscriber that falls behind loses progress events (the next
// one supersedes them) but never a start, an end or a change.
type bus struct {
	mu   sync.Mutex
	subs map[int]*subscriber
	next int
}

type subscriber struct {
	ch      chan Event
	mu      sync.Mutex
	backlog []Event
	wake    chan struct{}
	done    chan struct{}
}

const subscriberBuffer = 64

// Subscribe returns a channel of events and a function that ends the
// subscription and closes the channel.
func (s *Service) Subscribe() (<-chan Event, func()) {
	b := &s.events
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.subs == nil {
		b.subs = map[int]*subscriber{}
	}
	sub := &subscriber{ch: make(chan Event, subscriberBuffer), wake: make(chan struct{}, 1), done: make(chan struct{})}
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
		pending := sub.backlog
		sub.backlog = nil
		sub.mu.Unlock()
		for _, e := range pending {
			select {
			case sub.ch <- e:
			case <-sub.done:
				return
			}
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
		sub.mu.Lock()
		if p, ok := e.(SyncProgressed); ok && len(sub.backlog) > 0 {
			// Progress supersedes the previous progress of the same domain.
			if last, ok := sub.backlog[len(sub.backlog)-1].(SyncProgressed); ok && last.Domain == p.Domain {
				sub.backlog[len(sub.backlog)-1] = e
				sub.mu.Unlock()
				continue
			}
		}
		sub.backlog = append(sub.backlog, e)
		sub.mu.Unlock()
		select {
		case sub.wake <- struct{}{}:
		default:
		}
	}
}
