package usbhid

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"keydesk/keys/device"
)

// recordingSink records what a driver tells the application layer.
type recordingSink struct {
	mu     sync.Mutex
	events []string
	fail   map[string]error // KeyConnected fails for these plug IDs
}

func (r *recordingSink) KeyConnected(_ context.Context, p device.Plug) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, fmt.Sprintf("+%s %s %s", p.ID, p.Kind, p.Place))
	return "", r.fail[p.ID]
}

func (r *recordingSink) KeyDisconnected(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, "-"+id)
}

func (r *recordingSink) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

func TestFeedTellsTheSinkAndReportsProblems(t *testing.T) {
	polls := [][]DeviceInfo{
		{{Path: "p1"}, {Path: "p2"}},
		nil, // enumeration fails (below)
		{{Path: "p2"}},
	}
	var mu sync.Mutex
	n := 0
	enumerate := func(Config) ([]DeviceInfo, error) {
		mu.Lock()
		defer mu.Unlock()
		i := n
		n++
		switch {
		case i == 1:
			return nil, errors.New("libusb busy")
		case i < len(polls):
			return polls[i], nil
		}
		return polls[len(polls)-1], nil
	}
	sink := &recordingSink{fail: map[string]error{"usb:p2": errors.New("key p2 does not answer")}}
	var reports []string
	var rmu sync.Mutex
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- feed(ctx, Config{}, time.Millisecond, enumerate, sink, func(err error) {
			rmu.Lock()
			reports = append(reports, err.Error())
			rmu.Unlock()
		})
	}()
	deadline := time.Now().Add(5 * time.Second)
	for len(sink.got()) < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("feed: %v", err)
	}
	want := fmt.Sprint([]string{"+usb:p1 usb local", "+usb:p2 usb local", "-usb:p1"})
	if got := fmt.Sprint(sink.got()); got != want {
		t.Errorf("sink heard %s, want %s", got, want)
	}
	rmu.Lock()
	defer rmu.Unlock()
	if fmt.Sprint(reports) != "[key p2 does not answer enumerate USB keys: libusb busy]" {
		t.Errorf("reported %q; want the key's failure and the failed enumeration, not dropped", reports)
	}
}

func TestFeedEndsWhenUnsupported(t *testing.T) {
	err := feed(context.Background(), Config{}, time.Millisecond, func(Config) ([]DeviceInfo, error) { return nil, ErrUnsupported },
		&recordingSink{}, func(error) { t.Error("ErrUnsupported reported as a problem") })
	if !errors.Is(err, ErrUnsupported) {
		t.Errorf("feed = %v, want ErrUnsupported", err)
	}
}
