package simkey

import (
	"bytes"
	"fmt"
	"sync"
	"time"

	"keydesk/keys/proto"
)

// pipe is one in-memory connection: reports written go to the key's
// firmware; reports the key sends queue up for ReadReport.
type pipe struct {
	k *Key

	mu     sync.Mutex
	queue  [][]byte
	gone   error         // ErrUnplugged or ErrClosed once disconnected
	notify chan struct{} // a report was queued (capacity 1)
	done   chan struct{} // closed when gone is set
}

func newPipe(k *Key) *pipe {
	return &pipe{k: k, notify: make(chan struct{}, 1), done: make(chan struct{})}
}

// WriteReport hands a report to the key.
func (p *pipe) WriteReport(report []byte) error {
	if len(report) != proto.ReportSize {
		return fmt.Errorf("simkey: writing a report of %d bytes, want %d: %w", len(report), proto.ReportSize, proto.ErrProtocol)
	}
	if err := p.k.receive(p, report); err != nil {
		return fmt.Errorf("simkey: writing a report: %w", err)
	}
	return nil
}

// ReadReport returns the next report the key sent.
func (p *pipe) ReadReport(timeout time.Duration) ([]byte, error) {
	var expired <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expired = t.C
	}
	for {
		p.mu.Lock()
		if p.gone != nil {
			err := p.gone
			p.mu.Unlock()
			return nil, fmt.Errorf("simkey: reading a report: %w", err)
		}
		if len(p.queue) > 0 {
			r := p.queue[0]
			p.queue = p.queue[1:]
			p.mu.Unlock()
			return r, nil
		}
		p.mu.Unlock()
		if expired == nil {
			return nil, fmt.Errorf("simkey: reading a report: %w", proto.ErrTimeout)
		}
		select {
		case <-p.notify:
		case <-p.done:
		case <-expired:
			return nil, fmt.Errorf("simkey: reading a report: %w", proto.ErrTimeout)
		}
	}
}

// Close disconnects this connection only.
func (p *pipe) Close() error {
	p.k.detach(p)
	p.fail(proto.ErrClosed)
	return nil
}

// push queues reports from the key.
func (p *pipe) push(reports [][]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gone != nil {
		return
	}
	for _, r := range reports {
		p.queue = append(p.queue, bytes.Clone(r)) // each connection gets its own copy
	}
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

// fail disconnects the pipe with err (the first reason wins).
func (p *pipe) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gone != nil {
		return
	}
	p.gone = err
	p.queue = nil
	close(p.done)
}

func (p *pipe) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gone != nil {
		return p.gone
	}
	return proto.ErrUnplugged
}
