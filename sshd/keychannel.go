package sshd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/charmbracelet/ssh"
	gossh "golang.org/x/crypto/ssh"

	"keydesk/app"
	"keydesk/keys/device"
	"keydesk/keys/proto"
)

// KeyChannel is the SSH channel type in which a kiosk carries the USB
// reports of a key plugged in at it: one channel per key, opened when it is
// plugged in and closed when it is pulled out, each report exactly
// proto.ReportSize bytes, both ways. The key protocol runs end to end
// between the server and the key (its LINK, AUTH and credential writes are
// encrypted to the key), so the kiosk machine carries only bytes it cannot
// read.
const KeyChannel = "keydesk-key@keydesk"

// keyChannel accepts a key channel from a kiosk's connection (the key it
// proved must be a kiosk operator's) and hands the key to the application
// layer as plugged in at that kiosk's place, until the channel closes.
func (s *Server) keyChannel(_ *ssh.Server, _ *gossh.ServerConn, nc gossh.NewChannel, ctx ssh.Context) {
	pub, _ := ctx.Value(ssh.ContextKeyPublicKey).(ssh.PublicKey)
	var k *Key
	if pub != nil {
		k = find(s.keys, pub)
	}
	if k == nil || k.Operator.Role != string(app.RoleKiosk) || s.sink == nil {
		nc.Reject(gossh.Prohibited, "only a kiosk's key may carry keys")
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	go gossh.DiscardRequests(reqs)
	n := s.keySeq.Add(1)
	place := "kiosk:" + ctx.SessionID()
	m := newReportMux(ch)
	plug := device.Plug{ID: place + ":" + strconv.FormatInt(n, 10), Kind: "kiosk", Place: place, Open: m.open}
	go m.run()
	if _, err := s.sink.KeyConnected(ctx, plug); err != nil {
		s.log.Warn("a key plugged in at a kiosk", "kiosk", k.Operator.Name, "err", err)
	}
	<-m.done
	s.sink.KeyDisconnected(plug.ID)
}

// reportMux shares one key channel among the connections the application
// layer opens to the key (each conversation opens one, as with a USB key):
// every report read goes to every open connection; writes are whole
// reports, one at a time.
type reportMux struct {
	ch   io.ReadWriteCloser
	wmu  sync.Mutex
	mu   sync.Mutex
	subs map[*muxConn]bool
	done chan struct{}
}

func newReportMux(ch io.ReadWriteCloser) *reportMux {
	return &reportMux{ch: ch, subs: map[*muxConn]bool{}, done: make(chan struct{})}
}

// run reads reports until the channel ends (the key was pulled out, or the
// kiosk went away).
func (m *reportMux) run() {
	defer close(m.done)
	defer m.ch.Close()
	for {
		r := make([]byte, proto.ReportSize)
		if _, err := io.ReadFull(m.ch, r); err != nil {
			return
		}
		m.mu.Lock()
		for c := range m.subs {
			select {
			case c.in <- r:
			default: // a connection that does not read loses reports, as on USB
			}
		}
		m.mu.Unlock()
	}
}

func (m *reportMux) open() (proto.Transport, error) {
	select {
	case <-m.done:
		return nil, proto.ErrUnplugged
	default:
	}
	c := &muxConn{m: m, in: make(chan []byte, 256)}
	m.mu.Lock()
	m.subs[c] = true
	m.mu.Unlock()
	return c, nil
}

// muxConn is one connection to a key over its channel.
type muxConn struct {
	m      *reportMux
	in     chan []byte
	closed atomic.Bool
}

func (c *muxConn) WriteReport(r []byte) error {
	if c.closed.Load() {
		return proto.ErrClosed
	}
	if len(r) != proto.ReportSize {
		return fmt.Errorf("report of %d bytes, want %d: %w", len(r), proto.ReportSize, proto.ErrProtocol)
	}
	c.m.wmu.Lock()
	defer c.m.wmu.Unlock()
	if _, err := c.m.ch.Write(r); err != nil {
		return fmt.Errorf("write to the kiosk's key: %w", proto.ErrUnplugged)
	}
	return nil
}

func (c *muxConn) ReadReport(timeout time.Duration) ([]byte, error) {
	if c.closed.Load() {
		return nil, proto.ErrClosed
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-c.in:
		return r, nil
	case <-c.m.done:
		return nil, proto.ErrUnplugged
	case <-t.C:
		return nil, proto.ErrTimeout
	}
}

func (c *muxConn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	c.m.mu.Lock()
	delete(c.m.subs, c)
	c.m.mu.Unlock()
	return nil
}

// Forwarder is the kiosk's side: a device.Sink that carries each key
// plugged in at the kiosk to the server in a key channel of the SSH
// connection, report for report, until it is pulled out. tap, when set,
// gets a copy of every byte (a test aid: it shows what the kiosk machine
// sees).
type Forwarder struct {
	Conn gossh.Conn
	Tap  io.Writer
	Log  func(error)

	mu    sync.Mutex
	chans map[string]func()
}

// KeyConnected opens the key's channel and pumps its reports both ways.
func (f *Forwarder) KeyConnected(_ context.Context, p device.Plug) (string, error) {
	t, err := p.Open()
	if err != nil {
		return "", err
	}
	ch, reqs, err := f.Conn.OpenChannel(KeyChannel, []byte(p.Kind))
	if err != nil {
		t.Close()
		return "", fmt.Errorf("carry key %s to the server: %w", p.ID, err)
	}
	go gossh.DiscardRequests(reqs)
	var once sync.Once
	stop := func() {
		once.Do(func() {
			ch.Close()
			t.Close()
		})
	}
	f.mu.Lock()
	if f.chans == nil {
		f.chans = map[string]func(){}
	}
	f.chans[p.ID] = stop
	f.mu.Unlock()
	tap := func(b []byte) {
		if f.Tap != nil {
			f.mu.Lock()
			f.Tap.Write(b)
			f.mu.Unlock()
		}
	}
	go func() { // server -> key
		defer stop()
		for {
			r := make([]byte, proto.ReportSize)
			if _, err := io.ReadFull(ch, r); err != nil {
				return
			}
			tap(r)
			if err := t.WriteReport(r); err != nil {
				f.report(err)
				return
			}
		}
	}()
	go func() { // key -> server
		defer stop()
		for {
			r, err := t.ReadReport(time.Second)
			switch {
			case err == nil:
			case errors.Is(err, proto.ErrTimeout):
				continue
			default:
				return
			}
			tap(r)
			if _, err := ch.Write(r); err != nil {
				return
			}
		}
	}()
	return "", nil
}

// KeyDisconnected closes the key's channel: the server sees it pulled out.
func (f *Forwarder) KeyDisconnected(id string) {
	f.mu.Lock()
	stop := f.chans[id]
	delete(f.chans, id)
	f.mu.Unlock()
	if stop != nil {
		stop()
	}
}

func (f *Forwarder) report(err error) {
	if f.Log != nil {
		f.Log(err)
	}
}
