package simkey

import (
	"bytes"
	"sync"
	"time"

	"keydesk/keys/proto"
)

// TapHooks are called by a Tap for every report (test support). BeforeWrite
// runs before a report is passed on (it may, say, unplug the key), AfterRead
// after a report was read. Either may be nil.
type TapHooks struct {
	BeforeWrite func(report []byte)
	AfterRead   func(report []byte)
}

// Tap is a Transport that wraps another and records every report written to
// and read from it, so a test can capture an exchange (a LINK, a session
// message) and replay it raw later. It is safe for concurrent use.
type Tap struct {
	inner proto.Transport
	hooks TapHooks

	mu      sync.Mutex
	written [][]byte
	read    [][]byte
}

// NewTap wraps t.
func NewTap(t proto.Transport, hooks TapHooks) *Tap { return &Tap{inner: t, hooks: hooks} }

// WriteReport records and passes the report on.
func (t *Tap) WriteReport(report []byte) error {
	if t.hooks.BeforeWrite != nil {
		t.hooks.BeforeWrite(report)
	}
	t.mu.Lock()
	t.written = append(t.written, bytes.Clone(report))
	t.mu.Unlock()
	return t.inner.WriteReport(report)
}

// ReadReport passes the read on and records the report.
func (t *Tap) ReadReport(timeout time.Duration) ([]byte, error) {
	r, err := t.inner.ReadReport(timeout)
	if err != nil {
		return nil, err
	}
	t.mu.Lock()
	t.read = append(t.read, bytes.Clone(r))
	t.mu.Unlock()
	if t.hooks.AfterRead != nil {
		t.hooks.AfterRead(r)
	}
	return r, nil
}

// Close closes the wrapped transport.
func (t *Tap) Close() error { return t.inner.Close() }

// Written returns copies of the reports written so far.
func (t *Tap) Written() [][]byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return cloneAll(t.written)
}

// Read returns copies of the reports read so far.
func (t *Tap) Read() [][]byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return cloneAll(t.read)
}

// Reset forgets what was recorded.
func (t *Tap) Reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.written, t.read = nil, nil
}

func cloneAll(rs [][]byte) [][]byte {
	out := make([][]byte, len(rs))
	for i, r := range rs {
		out[i] = bytes.Clone(r)
	}
	return out
}
