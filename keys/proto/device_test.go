package proto

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

const testCID = 0x0A0B0C0D

// fakeTransport is a scripted key: it answers INIT itself (echoing the nonce,
// giving testCID) and passes every other complete request to handle, whose
// reports it queues. With no handler a request gets no answer.
type fakeTransport struct {
	mu      sync.Mutex
	queue   [][]byte
	gone    error
	notify  chan struct{}
	asm     Assembler
	handle  func(cmd Command, payload []byte) [][]byte
	initFix func(reply []byte) [][]byte // rewrites the INIT reply (nil: as is)
	writes  int
}

func newFake(handle func(Command, []byte) [][]byte) *fakeTransport {
	return &fakeTransport{handle: handle, notify: make(chan struct{}, 1)}
}

func (f *fakeTransport) WriteReport(r []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gone != nil {
		return f.gone
	}
	f.writes++
	p, err := ParsePacket(r)
	if err != nil {
		return err
	}
	var payload []byte
	var done bool
	if p.Init {
		payload, done, err = f.asm.Start(p)
	} else {
		payload, done, err = f.asm.Continue(p)
	}
	if err != nil || !done {
		return err
	}
	var out [][]byte
	if p.CID == BroadcastCID && p.Cmd == CmdInit {
		reply := binary.BigEndian.AppendUint32(append([]byte{}, payload...), testCID)
		reply = append(reply, 2, 1, 0, 0, CapWink|CapNMSG)
		if f.initFix != nil {
			out = f.initFix(reply)
		} else {
			out, _ = Encode(BroadcastCID, CmdInit, reply)
		}
	} else if f.handle != nil {
		out = f.handle(p.Cmd, payload)
	}
	f.queue = append(f.queue, out...)
	select {
	case f.notify <- struct{}{}:
	default:
	}
	return nil
}

func (f *fakeTransport) ReadReport(timeout time.Duration) ([]byte, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		f.mu.Lock()
		if f.gone != nil {
			err := f.gone
			f.mu.Unlock()
			return nil, err
		}
		if len(f.queue) > 0 {
			r := f.queue[0]
			f.queue = f.queue[1:]
			f.mu.Unlock()
			return r, nil
		}
		f.mu.Unlock()
		select {
		case <-f.notify:
		case <-t.C:
			return nil, ErrTimeout
		}
	}
}

func (f *fakeTransport) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gone = ErrClosed
	return nil
}

func (f *fakeTransport) unplug() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gone = ErrUnplugged
	select {
	case f.notify <- struct{}{}:
	default:
	}
}

func enc(t testing.TB, cid uint32, cmd Command, payload []byte) [][]byte {
	t.Helper()
	r, err := Encode(cid, cmd, payload)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func infoReply(t testing.TB) [][]byte {
	b, err := Marshal(Info{Serial: "S1", Model: "M", Firmware: "1", State: StateBlank, Slots: 8, FreeSlots: 8, PINRetries: 8})
	if err != nil {
		t.Fatal(err)
	}
	return enc(t, testCID, CmdInfo, b)
}

func TestOpen(t *testing.T) {
	tests := []struct {
		name    string
		fix     func(t *testing.T) func([]byte) [][]byte
		wantErr error
	}{
		{"plain", nil, nil},
		{"another host's INIT reply first is skipped", func(t *testing.T) func([]byte) [][]byte {
			return func(reply []byte) [][]byte {
				other := append([]byte{}, reply...)
				other[0] ^= 0xFF // a different nonce
				binary.BigEndian.PutUint32(other[8:], 0x12345678)
				return append(enc(t, BroadcastCID, CmdInit, other), enc(t, BroadcastCID, CmdInit, reply)...)
			}
		}, nil},
		{"short INIT reply", func(t *testing.T) func([]byte) [][]byte {
			return func(reply []byte) [][]byte { return enc(t, BroadcastCID, CmdInit, reply[:12]) }
		}, ErrProtocol},
		{"channel 0", func(t *testing.T) func([]byte) [][]byte {
			return func(reply []byte) [][]byte {
				binary.BigEndian.PutUint32(reply[8:], 0)
				return enc(t, BroadcastCID, CmdInit, reply)
			}
		}, ErrProtocol},
		{"broadcast channel", func(t *testing.T) func([]byte) [][]byte {
			return func(reply []byte) [][]byte {
				binary.BigEndian.PutUint32(reply[8:], BroadcastCID)
				return enc(t, BroadcastCID, CmdInit, reply)
			}
		}, ErrProtocol},
		{"no answer", func(t *testing.T) func([]byte) [][]byte {
			return func([]byte) [][]byte { return nil }
		}, ErrTimeout},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(nil)
			if tc.fix != nil {
				f.initFix = tc.fix(t)
			}
			d, err := Open(context.Background(), f, WithTimeout(200*time.Millisecond))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Open error %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.CID() != testCID || d.Version().Protocol != 2 || d.Version().Caps != CapWink|CapNMSG {
				t.Fatalf("cid %08x version %+v", d.CID(), d.Version())
			}
		})
	}
}

func TestExchange(t *testing.T) {
	tests := []struct {
		name    string
		handle  func(t *testing.T, n int) [][]byte // n: how many INFO requests so far
		timeout time.Duration
		wantErr error
		wantReq int // INFO requests the key saw
	}{
		{"reply", func(t *testing.T, _ int) [][]byte { return infoReply(t) }, 0, nil, 1},
		{"keepalives then reply", func(t *testing.T, _ int) [][]byte {
			ka := enc(t, testCID, CmdKeepalive, []byte{KeepaliveProcessing})
			return append(append(ka, ka...), infoReply(t)...)
		}, 0, nil, 1},
		{"other channel's traffic ignored", func(t *testing.T, _ int) [][]byte {
			other := enc(t, 0x99999999, CmdInfo, seqPayload(100))
			return append(append(other, enc(t, 0x99999999, CmdError, []byte{6})...), infoReply(t)...)
		}, 0, nil, 1},
		{"busy twice then reply", func(t *testing.T, n int) [][]byte {
			if n < 3 {
				return enc(t, testCID, CmdError, []byte{byte(CodeChannelBusy)})
			}
			return infoReply(t)
		}, 0, nil, 3},
		{"busy until the deadline", func(t *testing.T, _ int) [][]byte {
			return enc(t, testCID, CmdError, []byte{byte(CodeChannelBusy)})
		}, 100 * time.Millisecond, ErrBusy, 0},
		{"key error", func(t *testing.T, _ int) [][]byte {
			return enc(t, testCID, CmdError, []byte{byte(CodeInvalidCmd)})
		}, 0, &KeyError{Code: CodeInvalidCmd}, 1},
		{"reply to another command", func(t *testing.T, _ int) [][]byte {
			return enc(t, testCID, CmdWink, nil)
		}, 0, ErrProtocol, 1},
		{"bad CBOR", func(t *testing.T, _ int) [][]byte {
			return enc(t, testCID, CmdInfo, []byte{0xFF})
		}, 0, ErrProtocol, 1},
		{"invalid info", func(t *testing.T, _ int) [][]byte {
			b, _ := Marshal(Info{State: "melted"})
			return enc(t, testCID, CmdInfo, b)
		}, 0, ErrProtocol, 1},
		{"no answer", func(*testing.T, int) [][]byte { return nil }, 100 * time.Millisecond, ErrTimeout, 1},
		{"keepalive forever", func(t *testing.T, _ int) [][]byte {
			return enc(t, testCID, CmdKeepalive, []byte{KeepaliveUserPresence})
		}, 100 * time.Millisecond, ErrTimeout, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			n := 0
			f := newFake(func(cmd Command, _ []byte) [][]byte {
				if cmd != CmdInfo {
					return nil
				}
				mu.Lock()
				n++
				c := n
				mu.Unlock()
				return tc.handle(t, c)
			})
			opts := []Option{WithBusyRetry(5 * time.Millisecond)}
			if tc.timeout > 0 {
				opts = append(opts, WithTimeout(tc.timeout))
			}
			d, err := Open(context.Background(), f, opts...)
			if err != nil {
				t.Fatal(err)
			}
			info, err := d.Info(context.Background())
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Info error %v, want %v", err, tc.wantErr)
				}
			} else if err != nil || info.Serial != "S1" {
				t.Fatalf("Info = %+v, %v", info, err)
			}
			mu.Lock()
			defer mu.Unlock()
			if tc.wantReq > 0 && n != tc.wantReq {
				t.Fatalf("key saw %d requests, want %d", n, tc.wantReq)
			}
		})
	}
}

func TestExchangeUnpluggedAndCancelled(t *testing.T) {
	tests := []struct {
		name    string
		act     func(f *fakeTransport, cancel context.CancelFunc)
		wantErr error
	}{
		{"unplugged while waiting", func(f *fakeTransport, _ context.CancelFunc) { f.unplug() }, ErrUnplugged},
		{"context cancelled", func(_ *fakeTransport, cancel context.CancelFunc) { cancel() }, context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			asked := make(chan struct{}, 1)
			f := newFake(func(Command, []byte) [][]byte {
				asked <- struct{}{}
				return nil
			})
			d, err := Open(context.Background(), f)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			errc := make(chan error, 1)
			go func() {
				_, err := d.Info(ctx)
				errc <- err
			}()
			<-asked
			tc.act(f, cancel)
			select {
			case err := <-errc:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Info error %v, want %v", err, tc.wantErr)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("Info did not return")
			}
		})
	}
}

func TestClosedDevice(t *testing.T) {
	f := newFake(func(Command, []byte) [][]byte { return infoReply(t) })
	d, err := Open(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Info(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Info after Close: %v, want ErrClosed", err)
	}
}

// TestSessionRepliesChecked: the host refuses key replies with a stale
// counter, sealed for another command, or tampered with.
func TestSessionRepliesChecked(t *testing.T) {
	master := bytes.Repeat([]byte{7}, MasterSecretSize)
	tests := []struct {
		name    string
		reply   func(t *testing.T, kc *SessionCipher, ctr uint64, cmd Command) []byte
		wantErr error
	}{
		{"good reply", func(t *testing.T, kc *SessionCipher, ctr uint64, cmd Command) []byte {
			return mustMarshal(t, Envelope{Ctr: ctr, Ciphertext: kc.Seal(cmd, ctr, mustMarshal(t, Empty{}))})
		}, nil},
		{"stale counter", func(t *testing.T, kc *SessionCipher, ctr uint64, cmd Command) []byte {
			return mustMarshal(t, Envelope{Ctr: ctr - 1, Ciphertext: kc.Seal(cmd, ctr-1, mustMarshal(t, Empty{}))})
		}, ErrReplay},
		{"sealed for another command", func(t *testing.T, kc *SessionCipher, ctr uint64, cmd Command) []byte {
			return mustMarshal(t, Envelope{Ctr: ctr, Ciphertext: kc.Seal(CmdWipe, ctr, mustMarshal(t, Empty{}))})
		}, ErrAuth},
		{"tampered", func(t *testing.T, kc *SessionCipher, ctr uint64, cmd Command) []byte {
			ct := kc.Seal(cmd, ctr, mustMarshal(t, Empty{}))
			ct[0] ^= 1
			return mustMarshal(t, Envelope{Ctr: ctr, Ciphertext: ct})
		}, ErrAuth},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var hostNonce, keyNonce []byte
			var kc *SessionCipher
			f := newFake(func(cmd Command, payload []byte) [][]byte {
				mu.Lock()
				defer mu.Unlock()
				switch cmd {
				case CmdChallenge:
					var req ChallengeRequest
					if err := Unmarshal(payload, &req); err != nil {
						t.Error(err)
					}
					hostNonce, keyNonce = req.HostNonce, bytes.Repeat([]byte{9}, NonceSize)
					return enc(t, testCID, cmd, mustMarshal(t, ChallengeResponse{KeyNonce: keyNonce}))
				case CmdAuth:
					kc, _ = NewSessionCipher(master, testCID, hostNonce, keyNonce, KeySide)
					return enc(t, testCID, cmd, mustMarshal(t, AuthResponse{Proof: KeyProof(master, testCID, hostNonce, keyNonce)}))
				default:
					var env Envelope
					if err := Unmarshal(payload, &env); err != nil {
						t.Error(err)
					}
					if _, err := kc.Open(cmd, env.Ctr, env.Ciphertext); err != nil {
						t.Errorf("key could not open the host's message: %v", err)
					}
					return enc(t, testCID, cmd, tc.reply(t, kc, env.Ctr, cmd))
				}
			})
			d, err := Open(context.Background(), f)
			if err != nil {
				t.Fatal(err)
			}
			s, err := d.Auth(context.Background(), master)
			if err != nil {
				t.Fatal(err)
			}
			err = s.Commit(context.Background(), 1)
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("Commit error %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestAuthRefusesImpostorKey(t *testing.T) {
	f := newFake(func(cmd Command, payload []byte) [][]byte {
		switch cmd {
		case CmdChallenge:
			return enc(t, testCID, cmd, mustMarshal(t, ChallengeResponse{KeyNonce: make([]byte, NonceSize)}))
		case CmdAuth: // a key that does not know the secret cannot prove it
			return enc(t, testCID, cmd, mustMarshal(t, AuthResponse{Proof: make([]byte, 32)}))
		}
		return nil
	})
	d, err := Open(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Auth(context.Background(), make([]byte, MasterSecretSize)); !errors.Is(err, ErrAuth) {
		t.Fatalf("Auth with an impostor: %v, want ErrAuth", err)
	}
}

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCredentialRedacted(t *testing.T) {
	c := Credential{Login: "alice", Password: "hunter2-secret"}
	for _, s := range []string{
		c.String(), c.GoString(), c.LogValue().String(),
		fmt.Sprintf("%v", c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%s", c), fmt.Sprintf("%q", c), fmt.Sprintf("%x", c),
		fmt.Sprintf("%v", &c), fmt.Sprintf("%v", []Credential{c}),
	} {
		if strings.Contains(s, "hunter2") || !strings.Contains(s, "alice") {
			t.Errorf("formatted credential %q shows the password or lost the login", s)
		}
	}
}
