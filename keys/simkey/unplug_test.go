package simkey_test

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"keydesk/keys/proto"
	"keydesk/keys/simkey"
)

func cmdOf(r []byte) proto.Command {
	p, err := proto.ParsePacket(r)
	if err != nil || !p.Init {
		return 0
	}
	return p.Cmd
}

// signal returns a channel and a function that sends on it without blocking.
func signal() (chan struct{}, func()) {
	c := make(chan struct{}, 1)
	return c, func() {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// TestUnplugMidExchange unplugs the key at different points of an exchange:
// the call fails with ErrUnplugged and the key's state stays consistent (a
// pending value never becomes current half-way).
func TestUnplugMidExchange(t *testing.T) {
	old := proto.Credential{Login: "carol", Password: "old-secret"}
	next := proto.Credential{Login: "carol", Password: strings.Repeat("n", 300)} // several packets
	tests := []struct {
		name string
		// run does the exchange that is cut; k is the key, s a session on
		// a tapped connection whose hooks call arm'd functions.
		run         func(t *testing.T, k *simkey.Key, s *proto.Session, hooks *armed) error
		wantCurrent proto.Credential
		wantPending *proto.Credential // nil: none
	}{
		{"during COMMIT processing", func(t *testing.T, k *simkey.Key, s *proto.Session, h *armed) error {
			if err := s.WriteCredential(ctxT(t), 0, next); err != nil {
				t.Fatal(err)
			}
			release := k.Hold()
			defer release()
			sawKeepalive, notify := signal()
			h.afterRead.Store(func(r []byte) {
				if cmdOf(r) == proto.CmdKeepalive {
					notify()
				}
			})
			errc := make(chan error, 1)
			go func() { errc <- s.Commit(ctxT(t), 0) }()
			<-sawKeepalive
			k.Unplug()
			return <-errc
		}, old, &next},
		{"while sending a multi-packet WRITE", func(t *testing.T, k *simkey.Key, s *proto.Session, h *armed) error {
			var n atomic.Int32
			h.beforeWrite.Store(func([]byte) {
				if n.Add(1) == 3 {
					k.Unplug()
				}
			})
			return s.WriteCredential(ctxT(t), 0, next)
		}, old, nil},
		{"while reading a multi-packet reply", func(t *testing.T, k *simkey.Key, s *proto.Session, h *armed) error {
			if err := s.WriteCredential(ctxT(t), 0, next); err != nil {
				t.Fatal(err)
			}
			var once sync.Once
			h.afterRead.Store(func(r []byte) {
				if cmdOf(r) == proto.CmdRead {
					once.Do(k.Unplug)
				}
			})
			_, err := s.ReadPending(ctxT(t), 0)
			return err
		}, old, &next},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := simkey.New("SIM-UNPLUG")
			h := &armed{}
			d, _ := open(t, k, h.hooks())
			if err := d.Link(ctxT(t), secret(1), nil); err != nil {
				t.Fatal(err)
			}
			s, err := d.Auth(ctxT(t), secret(1))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.WriteCredential(ctxT(t), 0, old); err != nil {
				t.Fatal(err)
			}
			if err := s.Commit(ctxT(t), 0); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err = tc.run(t, k, s, h)
			if !errors.Is(err, proto.ErrUnplugged) {
				t.Fatalf("error %v, want ErrUnplugged", err)
			}
			if time.Since(start) > 2*time.Second {
				t.Fatalf("took %v to notice the unplug", time.Since(start))
			}
			if _, err := d.Info(ctxT(t)); !errors.Is(err, proto.ErrUnplugged) {
				t.Fatalf("Info on the old connection: %v, want ErrUnplugged", err)
			}
			if err := s.Commit(ctxT(t), 0); !errors.Is(err, proto.ErrUnplugged) {
				t.Fatalf("old session after unplug: %v, want ErrUnplugged", err)
			}

			// plug it in again: the key's state is consistent
			d2, _ := open(t, k, simkey.TapHooks{})
			s2, err := d2.Auth(ctxT(t), secret(1))
			if err != nil {
				t.Fatal(err)
			}
			if got, err := s2.ReadCredential(ctxT(t), 0); err != nil || got != tc.wantCurrent {
				t.Fatalf("current after unplug = %v, %v; want %v", got, err, tc.wantCurrent)
			}
			got, err := s2.ReadPending(ctxT(t), 0)
			switch {
			case tc.wantPending == nil && keyCode(err) != proto.CodeNotFound:
				t.Fatalf("pending after unplug = %v, %v; want none", got, err)
			case tc.wantPending != nil && (err != nil || got != *tc.wantPending):
				t.Fatalf("pending after unplug = %v, %v; want %v", got, err, *tc.wantPending)
			}
		})
	}
}

// armed holds hooks that a test sets after the Tap was built.
type armed struct {
	beforeWrite, afterRead atomic.Value // func([]byte)
}

func (a *armed) hooks() simkey.TapHooks {
	call := func(v *atomic.Value) func([]byte) {
		return func(r []byte) {
			if f, ok := v.Load().(func([]byte)); ok {
				f(r)
			}
		}
	}
	return simkey.TapHooks{BeforeWrite: call(&a.beforeWrite), AfterRead: call(&a.afterRead)}
}

// TestKeepalive: a slow key sends KEEPALIVE, which the host skips; a host
// deadline shorter than the key's work gives ErrTimeout.
func TestKeepalive(t *testing.T) {
	tests := []struct {
		name       string
		delay      time.Duration
		timeout    time.Duration
		wantErr    error
		keepalives int // at least
	}{
		{"slow answer arrives", 250 * time.Millisecond, 3 * time.Second, nil, 3},
		{"too slow for the deadline", 2 * time.Second, 300 * time.Millisecond, proto.ErrTimeout, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := simkey.New("SIM-SLOW")
			d, tap := open(t, k, simkey.TapHooks{}, proto.WithTimeout(tc.timeout))
			k.SetDelay(tc.delay)
			_, err := d.Info(ctxT(t))
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("Info error %v, want %v", err, tc.wantErr)
			}
			n := 0
			for _, r := range tap.Read() {
				if cmdOf(r) == proto.CmdKeepalive {
					n++
				}
			}
			if n < tc.keepalives {
				t.Fatalf("%d keepalives, want at least %d", n, tc.keepalives)
			}
			k.Unplug() // ends the key's pending work
		})
	}
}

// TestChannelBusy: while the key works for one host, another host's request
// is answered CHANNEL_BUSY and is retried until it goes through.
func TestChannelBusy(t *testing.T) {
	k := simkey.New("SIM-BUSY")
	sawKeepalive, notifyA := signal()
	sawBusy, notifyB := signal()
	dA, _ := open(t, k, simkey.TapHooks{AfterRead: func(r []byte) {
		if cmdOf(r) == proto.CmdKeepalive {
			notifyA()
		}
	}})
	dB, tapB := open(t, k, simkey.TapHooks{AfterRead: func(r []byte) {
		p, _ := proto.ParsePacket(r)
		if p.Init && p.Cmd == proto.CmdError && p.Data[0] == byte(proto.CodeChannelBusy) {
			notifyB()
		}
	}})
	release := k.Hold()
	errA, errB := make(chan error, 1), make(chan error, 1)
	go func() { errA <- dA.Wink(ctxT(t)) }()
	<-sawKeepalive
	go func() { _, err := dB.Info(ctxT(t)); errB <- err }()
	<-sawBusy
	<-sawBusy // retried at least once while still busy
	release()
	if err := <-errA; err != nil {
		t.Fatalf("host A: %v", err)
	}
	if err := <-errB; err != nil {
		t.Fatalf("host B after busy: %v", err)
	}
	infos := 0
	for _, r := range tapB.Written() {
		if cmdOf(r) == proto.CmdInfo {
			infos++
		}
	}
	if infos < 3 {
		t.Fatalf("host B sent INFO %d times, want retries", infos)
	}
	if k.Winks() != 1 {
		t.Fatalf("winks %d", k.Winks())
	}
}

// TestStalledMessageTimesOut: a host that sends half a message and stops
// does not block the key for others beyond the CTAPHID message timeout.
func TestStalledMessageTimesOut(t *testing.T) {
	k := simkey.New("SIM-STALL")
	dA, tapA := open(t, k, simkey.TapHooks{})
	dB, _ := open(t, k, simkey.TapHooks{})
	half := mustEncode(t, dA.CID(), proto.CmdPing, make([]byte, 100))[:1]
	if err := tapA.WriteReport(half[0]); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := dB.Info(ctxT(t)); err != nil {
		t.Fatalf("host B while A stalls: %v", err)
	}
	if waited := time.Since(start); waited < 400*time.Millisecond {
		t.Fatalf("B got through after %v, before A's message timed out", waited)
	}
	r, err := tapA.ReadReport(time.Second)
	for err == nil {
		p, _ := proto.ParsePacket(r)
		if p.CID == dA.CID() {
			break
		}
		r, err = tapA.ReadReport(time.Second)
	}
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := proto.ParsePacket(r); !p.Init || p.Cmd != proto.CmdError || proto.ErrorCode(p.Data[0]) != proto.CodeMsgTimeout {
		t.Fatalf("A got %x, want ERROR message timeout", r[:8])
	}
}
