package builtinad

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"keydesk/third_party/gldap"
)

// listener is one port of a domain controller (LDAPS, or LDAP with
// StartTLS).
//
// gldap's Server listens by itself and offers no way to drop open
// connections: its Stop waits until every client has gone. A DC going
// down must cut them, so each gldap server listens on a private loopback
// port and a small TCP relay owns the public port and the client
// connections. The relay only copies bytes (TLS runs end to end between
// the client and gldap); Stop closes the public listener and every relayed
// connection, Restart listens on the same public port again.
type listener struct {
	d       *Domain
	ldaps   bool
	addr    string // public host:port, fixed after the first listen
	backend *gldap.Server
	beAddr  string

	mu    sync.Mutex
	front net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup

	stMu   sync.Mutex
	states map[int]*connState
}

// connState is what the server knows about one client connection.
type connState struct {
	mu      sync.Mutex
	tls     bool
	bound   *entry // nil: anonymous
	cursors map[string]*cursor
	order   []string // cookies, oldest first
}

func (st *connState) isTLS() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.tls
}

func (st *connState) who() *entry {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.bound
}

func (st *connState) setBound(e *entry) {
	st.mu.Lock()
	st.bound = e
	st.mu.Unlock()
}

// maxCursors is AD's MaxResultSetsPerConn: paged searches kept open per
// connection; the oldest is dropped past it.
const maxCursors = 10

func (st *connState) putCursor(cookie string, c *cursor) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.cursors == nil {
		st.cursors = map[string]*cursor{}
	}
	st.cursors[cookie] = c
	st.order = append(st.order, cookie)
	for len(st.order) > maxCursors {
		delete(st.cursors, st.order[0])
		st.order = st.order[1:]
	}
}

func (st *connState) takeCursor(cookie string) *cursor {
	st.mu.Lock()
	defer st.mu.Unlock()
	c := st.cursors[cookie]
	delete(st.cursors, cookie)
	for i, k := range st.order {
		if k == cookie {
			st.order = append(st.order[:i], st.order[i+1:]...)
			break
		}
	}
	return c
}

func (l *listener) state(id int) *connState {
	l.stMu.Lock()
	defer l.stMu.Unlock()
	st := l.states[id]
	if st == nil {
		st = &connState{tls: l.ldaps}
		l.states[id] = st
	}
	return st
}

// hcLogger adapts gldap's hclog logging to slog and learns the address
// gldap's Run listens on (it takes an address, not a listener, and logs
// the port it got).
type hcLogger struct {
	hclog.Logger
	log       *slog.Logger
	listening func(addr string)
}

func (h *hcLogger) forward(level slog.Level, msg string, args []interface{}) {
	if h.log != nil {
		h.log.Log(context.Background(), level, "gldap: "+msg, args...)
	}
}

func (h *hcLogger) Info(msg string, args ...interface{}) {
	if msg == "listening" && h.listening != nil {
		for i := 0; i+1 < len(args); i += 2 {
			if args[i] == "addr" {
				h.listening(fmt.Sprint(args[i+1]))
			}
		}
	}
	h.forward(slog.LevelDebug, msg, args)
}

// gldap logs a client's failed TLS handshake or a dropped connection as an
// error: for a test double these are events, not faults.
func (h *hcLogger) Error(msg string, args ...interface{}) { h.forward(slog.LevelDebug, msg, args) }
func (h *hcLogger) Warn(msg string, args ...interface{})  { h.forward(slog.LevelDebug, msg, args) }

// newListener starts the gldap server behind a public port on host.
func newListener(ctx context.Context, d *Domain, ldaps bool, host string) (*listener, error) {
	l := &listener{d: d, ldaps: ldaps, conns: map[net.Conn]struct{}{}, states: map[int]*connState{}}
	addrCh := make(chan string, 1)
	logger := &hcLogger{Logger: hclog.NewNullLogger(), log: d.srv.log, listening: func(a string) {
		select {
		case addrCh <- a:
		default:
		}
	}}
	srv, err := gldap.NewServer(gldap.WithLogger(logger), gldap.WithOnClose(func(id int) {
		l.stMu.Lock()
		delete(l.states, id)
		l.stMu.Unlock()
	}))
	if err != nil {
		return nil, err
	}
	mux, err := gldap.NewMux()
	if err != nil {
		return nil, err
	}
	for _, err := range []error{
		mux.Bind(l.handleBind),
		mux.Search(l.handleSearch),
		mux.Modify(l.handleModify),
		mux.Add(l.handleAdd),
		mux.Delete(l.handleDelete),
		mux.ExtendedOperation(l.handleStartTLS, gldap.ExtendedOperationStartTLS),
		mux.DefaultRoute(l.handleUnsupported),
		srv.Router(mux),
	} {
		if err != nil {
			return nil, err
		}
	}
	var opts []gldap.Option
	if ldaps {
		opts = append(opts, gldap.WithTLSConfig(d.tlsConfig))
	}
	runErr := make(chan error, 1)
	go func() { runErr <- srv.Run("127.0.0.1:0", opts...) }()
	select {
	case a := <-addrCh:
		l.beAddr = a
	case err := <-runErr:
		return nil, fmt.Errorf("start LDAP server: %v", err)
	case <-time.After(10 * time.Second):
		srv.Stop()
		return nil, errors.New("start LDAP server: gldap did not report its address")
	case <-ctx.Done():
		srv.Stop()
		return nil, ctx.Err()
	}
	l.backend = srv
	l.addr = net.JoinHostPort(host, "0")
	if err := l.listen(ctx); err != nil {
		srv.Stop()
		return nil, err
	}
	return l, nil
}

// listen opens the public port (the same one again after stop).
func (l *listener) listen(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.front != nil {
		return fmt.Errorf("%s: already listening", l.addr)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", l.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", l.addr, err)
	}
	l.addr = ln.Addr().String()
	l.front = ln
	l.wg.Add(1)
	go l.accept(ln)
	return nil
}

func (l *listener) accept(ln net.Listener) {
	defer l.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		if l.front != ln { // stopped meanwhile
			l.mu.Unlock()
			c.Close()
			return
		}
		l.conns[c] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go l.relay(c)
	}
}

// relay copies bytes between a client and the gldap server.
func (l *listener) relay(c net.Conn) {
	defer l.wg.Done()
	defer func() {
		l.mu.Lock()
		delete(l.conns, c)
		l.mu.Unlock()
		c.Close()
	}()
	b, err := net.Dial("tcp", l.beAddr)
	if err != nil {
		return
	}
	l.mu.Lock()
	if _, live := l.conns[c]; !live {
		l.mu.Unlock()
		b.Close()
		return
	}
	l.conns[b] = struct{}{}
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.conns, b)
		l.mu.Unlock()
		b.Close()
	}()
	done := make(chan struct{}, 2)
	go func() { io.Copy(b, c); done <- struct{}{} }()
	go func() { io.Copy(c, b); done <- struct{}{} }()
	<-done
	// One side ended: end both, which ends the other copy.
	c.Close()
	b.Close()
	<-done
}

// stop closes the public port and every open connection.
func (l *listener) stop() error {
	l.mu.Lock()
	ln := l.front
	l.front = nil
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	var err error
	if ln != nil {
		err = ln.Close()
	}
	l.wg.Wait()
	return err
}

// close stops the listener and its gldap server.
func (l *listener) close() error {
	err := l.stop()
	if l.backend != nil {
		err = errors.Join(err, l.backend.Stop())
	}
	return err
}
