package simkey

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"keydesk/keys/device"
	"keydesk/keys/proto"
)

// sink records what the directory tells the application layer, and talks
// to each key plugged in as the application layer would (INFO).
type sink struct {
	mu     sync.Mutex
	events []string
}

func (s *sink) KeyConnected(ctx context.Context, p device.Plug) (string, error) {
	t, err := p.Open()
	if err != nil {
		return "", err
	}
	d, err := proto.Open(ctx, t)
	if err != nil {
		return "", err
	}
	defer d.Close()
	info, err := d.Info(ctx)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, fmt.Sprintf("+%s %s %s", info.Serial, p.Kind, p.Place))
	return info.Serial, nil
}

func (s *sink) KeyDisconnected(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, "-"+filepath.Base(id))
}

func (s *sink) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.events
	s.events = nil
	return out
}

func TestDirPlugsKeysInAndOut(t *testing.T) {
	ctx := context.Background()
	d, err := NewDir(filepath.Join(t.TempDir(), "keys"))
	if err != nil {
		t.Fatal(err)
	}
	sk := &sink{}
	serial, err := d.New()
	if err != nil {
		t.Fatal(err)
	}
	if errs := d.Scan(ctx, sk); errs != nil {
		t.Fatal(errs)
	}
	if got := fmt.Sprint(sk.take()); got != fmt.Sprintf("[+%s simulated local]", serial) {
		t.Errorf("first scan: %s", got)
	}
	if errs := d.Scan(ctx, sk); errs != nil || len(sk.take()) != 0 {
		t.Errorf("a second scan with nothing changed told the sink something (errors %v)", errs)
	}
	if err := d.SetPlugged(serial, false); err != nil {
		t.Fatal(err)
	}
	d.Scan(ctx, sk)
	if got := fmt.Sprint(sk.take()); got != fmt.Sprintf("[-%s%s]", serial, FileExt) {
		t.Errorf("after unplugging: %s", got)
	}
	if err := d.SetPlugged(serial, true); err != nil {
		t.Fatal(err)
	}
	d.Scan(ctx, sk)
	if got := fmt.Sprint(sk.take()); got != fmt.Sprintf("[+%s simulated local]", serial) {
		t.Errorf("after plugging in again: %s", got)
	}
	for _, bad := range []string{"../x", "a/b", ".hidden", ""} {
		if err := d.SetPlugged(bad, true); err == nil {
			t.Errorf("SetPlugged(%q) accepted a name outside the directory", bad)
		}
	}
}

func TestDirFeedUnplugsEverythingAtTheEnd(t *testing.T) {
	d, err := NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	serial, err := d.New()
	if err != nil {
		t.Fatal(err)
	}
	sk := &sink{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Feed(ctx, time.Millisecond, sk, func(err error) { t.Errorf("problem: %v", err) })
	}()
	deadline := time.Now().Add(5 * time.Second)
	var got []string
	for len(got) == 0 && time.Now().Before(deadline) {
		got = append(got, sk.take()...)
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	got = append(got, sk.take()...)
	want := fmt.Sprintf("[+%s simulated local -%s%s]", serial, serial, FileExt)
	if fmt.Sprint(got) != want {
		t.Errorf("feed told %v, want %s", got, want)
	}
}
