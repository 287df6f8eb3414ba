// Package sshd serves KeyDesk over SSH (keydesk serve): public keys only,
// each key one of an operator's authorized keys in the configuration; the
// operator, and so the role, is decided from the key the session proved,
// in a middleware, never from the keys a client merely offered. It knows
// nothing of Bubble Tea: the console is a middleware that package ui
// provides.
package sshd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/charmbracelet/ssh"
	"github.com/charmbracelet/wish"
	"github.com/charmbracelet/wish/activeterm"
	"github.com/charmbracelet/wish/logging"
	"github.com/charmbracelet/wish/recover"
	gossh "golang.org/x/crypto/ssh"

	"keydesk/app"
	"keydesk/config"
	"keydesk/keys/device"
)

// Key is one operator's authorized key.
type Key struct {
	Operator    config.Operator
	Public      gossh.PublicKey
	Fingerprint string // SHA256:...
	Comment     string
}

// Problem is an authorized key line that could not be used.
type Problem struct {
	Operator string
	Line     int // 1-based, in the operator's authorized_keys
	Err      error
}

func (p Problem) Error() string {
	return fmt.Sprintf("operator %q: authorized_keys line %d: %v", p.Operator, p.Line, p.Err)
}

// ParseOperators reads every operator's authorized keys. A line that is
// not an OpenSSH public key, or a key that two operators list, is a
// Problem; the other keys still count.
func ParseOperators(ops []config.Operator) ([]Key, []Problem) {
	var keys []Key
	var problems []Problem
	owner := map[string]string{}
	for _, o := range ops {
		for i, line := range o.AuthorizedKeys {
			pub, comment, options, _, err := gossh.ParseAuthorizedKey([]byte(line))
			switch {
			case err != nil:
				problems = append(problems, Problem{Operator: o.Name, Line: i + 1, Err: fmt.Errorf("not an OpenSSH public key (%v): write it as in authorized_keys, e.g. \"ssh-ed25519 AAAA... alice@laptop\"", err)})
				continue
			case len(options) > 0:
				problems = append(problems, Problem{Operator: o.Name, Line: i + 1, Err: fmt.Errorf("options (%s) are not supported: give the key alone", strings.Join(options, ","))})
				continue
			}
			fp := gossh.FingerprintSHA256(pub)
			if other, dup := owner[fp]; dup && other != o.Name {
				problems = append(problems, Problem{Operator: o.Name, Line: i + 1, Err: fmt.Errorf("key %s is also operator %q's: one key is one operator, so neither gets it", fp, other)})
				keys = dropKey(keys, fp)
				continue
			}
			owner[fp] = o.Name
			keys = append(keys, Key{Operator: o, Public: pub, Fingerprint: fp, Comment: comment})
		}
	}
	return keys, problems
}

func dropKey(keys []Key, fp string) []Key {
	out := keys[:0]
	for _, k := range keys {
		if k.Fingerprint != fp {
			out = append(out, k)
		}
	}
	return out
}

// find is the key that is pub (nil when none).
func find(keys []Key, pub gossh.PublicKey) *Key {
	for i := range keys {
		if ssh.KeysEqual(keys[i].Public, pub) {
			return &keys[i]
		}
	}
	return nil
}

// actorKey holds a session's proven operator in its context.
type actorKey struct{}

// ActorOf is the operator a session proved (set by the server's role
// middleware before any handler runs).
func ActorOf(sess ssh.Session) (app.Actor, bool) {
	a, ok := sess.Context().Value(actorKey{}).(app.Actor)
	return a, ok
}

// Options configure a Server.
type Options struct {
	Config  config.SSH
	HostKey []byte // PEM of the host key (see LoadOrCreateHostKey)
	Keys    []Key  // the operators' authorized keys
	Log     *slog.Logger
	// Console serves a session whose operator is known (ActorOf): the
	// console, from package ui.
	Console wish.Middleware
	// OnStop is called when the server is told to stop, with the time the
	// sessions have left (the console shows it).
	OnStop func(grace time.Duration)
	// Sink hears about the keys plugged in at kiosks (KeyChannel): the
	// application layer. Nil: kiosks cannot carry keys.
	Sink device.Sink
}

// Server is KeyDesk's SSH server.
type Server struct {
	srv      *ssh.Server
	log      *slog.Logger
	keys     []Key
	onStop   func(time.Duration)
	sink     device.Sink
	keySeq   atomic.Int64
	sessions chan struct{} // one token per open session
	mu       sync.Mutex
	open     map[ssh.Session]bool
}

// New builds the server: public keys only (no password, no
// keyboard-interactive), an emulated pty (the session's channel is the
// terminal: nothing of the server's own to close under a running program),
// idle and maximum session timeouts, a
// limit on concurrent sessions, and these middlewares, outermost first:
// recover (a panic ends one session, not the server), logging, the session
// limit, the role (from the proven key), an active terminal, the console.
func New(o Options) (*Server, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	s := &Server{log: o.Log, keys: o.Keys, onStop: o.OnStop, sink: o.Sink, sessions: make(chan struct{}, o.Config.MaxSessions), open: map[ssh.Session]bool{}}
	srv, err := wish.NewServer(
		wish.WithAddress(o.Config.Listen),
		wish.WithHostKeyPEM(o.HostKey),
		wish.WithPublicKeyAuth(s.allowed),
		wish.WithIdleTimeout(o.Config.IdleTimeout.Duration),
		wish.WithMaxTimeout(o.Config.MaxTimeout.Duration),
		ssh.EmulatePty(),
		wish.WithMiddleware(
			o.Console,
			activeterm.Middleware(),
			s.role,
			s.limit,
			logging.MiddlewareWithLogger(slogPrinter{o.Log}),
			recover.MiddlewareWithLogger(slogPrinter{o.Log}),
		),
	)
	if err != nil {
		return nil, fmt.Errorf("set up the SSH server: %w", err)
	}
	srv.ChannelHandlers = map[string]ssh.ChannelHandler{"session": ssh.DefaultSessionHandler, KeyChannel: s.keyChannel}
	s.srv = srv
	return s, nil
}

// allowed is the public-key check of authentication: only a key of an
// operator may even try. It sees every key a client offers, including
// keys the client then cannot prove, so it decides nothing else: the role
// comes from the key the session proved (role).
func (s *Server) allowed(_ ssh.Context, key ssh.PublicKey) bool { return find(s.keys, key) != nil }

// role finds the operator of the key the session proved, and refuses a
// session without one.
func (s *Server) role(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		k := (*Key)(nil)
		if pub := sess.PublicKey(); pub != nil {
			k = find(s.keys, pub)
		}
		if k == nil {
			wish.Fatalln(sess, "keydesk: no operator proved a key in this session")
			return
		}
		a, err := app.RemoteActor(k.Operator, app.Auth{Method: app.AuthSSHKey, Subject: k.Fingerprint,
			Session: "ssh " + sess.RemoteAddr().String() + " #" + shortID(sess.Context().SessionID())})
		if err != nil {
			wish.Fatalln(sess, "keydesk: "+err.Error())
			return
		}
		if a.Role == app.RoleKiosk {
			// A kiosk serves the keys plugged in at it: a place of its own.
			a.Place = "kiosk:" + sess.Context().SessionID()
		}
		sess.Context().SetValue(actorKey{}, a)
		next(sess)
	}
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// limit refuses a session beyond the configured number open at once, and
// keeps track of the open ones (for the message at shutdown).
func (s *Server) limit(next ssh.Handler) ssh.Handler {
	return func(sess ssh.Session) {
		select {
		case s.sessions <- struct{}{}:
		default:
			wish.Fatalln(sess, "keydesk: too many sessions are open; try again later")
			return
		}
		s.mu.Lock()
		s.open[sess] = true
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			delete(s.open, sess)
			s.mu.Unlock()
			<-s.sessions
		}()
		next(sess)
	}
}

// Sessions is how many sessions are open.
func (s *Server) Sessions() int { return len(s.sessions) }

// Serve accepts sessions on l until ctx ends; then every session has grace
// to see that KeyDesk stops (the console shows it), and the server closes.
func (s *Server) Serve(ctx context.Context, l net.Listener, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("SSH server: %w", err)
	case <-ctx.Done():
	}
	if s.onStop != nil && s.Sessions() > 0 {
		s.onStop(grace)
		time.Sleep(grace)
	}
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err := s.srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = s.srv.Close() // the sessions were told: their connections end now
	}
	if err != nil && !errors.Is(err, ssh.ErrServerClosed) {
		return fmt.Errorf("stop the SSH server: %w", err)
	}
	return nil
}

// slogPrinter gives the wish middlewares' Printf to slog.
type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Printf(format string, args ...any) { p.l.Info(fmt.Sprintf(format, args...)) }
