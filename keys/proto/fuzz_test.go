package proto

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"testing"
	"time"
)

// splitReports cuts fuzz input into 64-byte reports; a shorter tail is
// passed on as a truncated report.
func splitReports(data []byte) [][]byte {
	var out [][]byte
	for len(data) > 0 {
		n := min(len(data), ReportSize)
		out = append(out, data[:n])
		data = data[n:]
	}
	return out
}

// FuzzDecoder feeds arbitrary reports to the host's decoder: it must return
// a message, an error or "need more", never panic, and keep its invariants.
// The seed corpus is in testdata/fuzz/FuzzDecoder and runs with go test.
func FuzzDecoder(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		dec := NewDecoder(0x01020304, CmdInfo)
		failed, done := false, false
		for _, r := range splitReports(data) {
			payload, d, err := dec.Feed(r)
			switch {
			case err != nil:
				failed = true
				var ke *KeyError
				if !errors.As(err, &ke) && !errors.Is(err, ErrProtocol) {
					t.Fatalf("error %v is neither a KeyError nor ErrProtocol", err)
				}
			case d:
				if done {
					t.Fatal("a second complete message")
				}
				done = true
				if len(payload) > MaxMessageSize {
					t.Fatalf("payload of %d bytes", len(payload))
				}
			case failed:
				t.Fatal("decoder went on after an error")
			}
		}
	})
}

// replayTransport answers INIT correctly and then plays the fuzz reports as
// the key's replies; once they are used up the key is "unplugged", so an
// exchange can never hang.
type replayTransport struct {
	mu      sync.Mutex
	queue   [][]byte
	replies [][]byte
	played  bool
}

func (r *replayTransport) WriteReport(rep []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, err := ParsePacket(rep)
	if err != nil {
		return err
	}
	if p.Init && p.Cmd == CmdInit {
		reply := binary.BigEndian.AppendUint32(append([]byte{}, p.Data[:InitNonceSize]...), testCID)
		reply = append(reply, 2, 1, 0, 0, CapWink|CapNMSG)
		out, _ := Encode(BroadcastCID, CmdInit, reply)
		r.queue = append(r.queue, out...)
		return nil
	}
	if p.Init && !r.played {
		r.played = true
		r.queue = append(r.queue, r.replies...)
	}
	return nil
}

func (r *replayTransport) ReadReport(time.Duration) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.queue) == 0 {
		return nil, ErrUnplugged
	}
	rep := r.queue[0]
	r.queue = r.queue[1:]
	return rep, nil
}

func (r *replayTransport) Close() error { return nil }

// maxFuzzReplies is enough for the largest reply (129 packets) and more.
const maxFuzzReplies = 300

// FuzzClient runs a client operation (chosen by the first byte) against a
// key whose replies are the rest of the input: malformed, truncated,
// oversized or out-of-order replies give an error, never a panic or a hang.
// The seed corpus is in testdata/fuzz/FuzzClient.
func FuzzClient(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		op, replies := data[0]%5, splitReports(data[1:])
		if len(replies) > maxFuzzReplies {
			replies = replies[:maxFuzzReplies] // bounds the run time (each CHANNEL_BUSY waits)
		}
		rt := &replayTransport{replies: replies}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		d, err := Open(ctx, rt, WithBusyRetry(time.Millisecond))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		master := make([]byte, MasterSecretSize)
		switch op {
		case 0:
			_, err = d.Info(ctx)
		case 1:
			err = d.Link(ctx, master, nil)
		case 2:
			_, err = d.Auth(ctx, master)
		case 3:
			err = d.Wink(ctx)
		case 4:
			_, _, err = d.Attest(ctx)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("operation %d hung until the deadline", op)
		}
	})
}
