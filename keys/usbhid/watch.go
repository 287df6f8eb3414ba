package usbhid

import (
	"context"
	"errors"
	"sort"
	"time"
)

// DefaultInterval is the watcher's polling period.
const DefaultInterval = time.Second

// Event is a key plugged in (Connected) or out, or, with Err set, a failed
// enumeration (Device is then zero). An ErrUnsupported event is the last one.
type Event struct {
	Connected bool
	Device    DeviceInfo
	Err       error
}

// Watch polls enumerate (Enumerate when nil) every interval (DefaultInterval
// when <= 0), starting at once, and sends an event for every key that
// appeared or disappeared, by Path, in path order. A failing poll sends one
// Err event (not again until a poll succeeded) and keeps the last known set;
// ErrUnsupported ends the watch. The channel is closed when ctx ends or the
// watch ends.
func Watch(ctx context.Context, cfg Config, interval time.Duration, enumerate func(Config) ([]DeviceInfo, error)) <-chan Event {
	if enumerate == nil {
		enumerate = Enumerate
	}
	if interval <= 0 {
		interval = DefaultInterval
	}
	out := make(chan Event)
	go func() {
		defer close(out)
		send := func(e Event) bool {
			select {
			case out <- e:
				return true
			case <-ctx.Done():
				return false
			}
		}
		known := map[string]DeviceInfo{}
		failing := false
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			devs, err := enumerate(cfg)
			switch {
			case errors.Is(err, ErrUnsupported):
				send(Event{Err: err})
				return
			case err != nil:
				if !failing && !send(Event{Err: err}) {
					return
				}
				failing = true
			default:
				failing = false
				for _, e := range diff(known, devs) {
					if !send(e) {
						return
					}
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return out
}

// diff updates known to devs and returns the events: disconnections first,
// then connections, each in path order.
func diff(known map[string]DeviceInfo, devs []DeviceInfo) []Event {
	now := make(map[string]DeviceInfo, len(devs))
	for _, d := range devs {
		now[d.Path] = d
	}
	var gone, added []Event
	for p, d := range known {
		if _, ok := now[p]; !ok {
			gone = append(gone, Event{Connected: false, Device: d})
			delete(known, p)
		}
	}
	for p, d := range now {
		if _, ok := known[p]; !ok {
			added = append(added, Event{Connected: true, Device: d})
			known[p] = d
		}
	}
	byPath := func(es []Event) {
		sort.Slice(es, func(i, j int) bool { return es[i].Device.Path < es[j].Device.Path })
	}
	byPath(gone)
	byPath(added)
	return append(gone, added...)
}
