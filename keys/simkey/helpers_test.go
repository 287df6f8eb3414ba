package simkey_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"keydesk/keys/proto"
	"keydesk/keys/simkey"
)

// secret returns a test master secret.
func secret(b byte) []byte { return bytes.Repeat([]byte{b}, proto.MasterSecretSize) }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// open plugs into k through a recording Tap and allocates a channel.
func open(t *testing.T, k *simkey.Key, hooks simkey.TapHooks, opts ...proto.Option) (*proto.Device, *simkey.Tap) {
	t.Helper()
	tap := simkey.NewTap(k.Plug(), hooks)
	d, err := proto.Open(ctxT(t), tap, append([]proto.Option{proto.WithTimeout(3 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d, tap
}

// linked returns a key linked with secret(1) and an open session on it.
func linked(t *testing.T) (*simkey.Key, *proto.Device, *simkey.Tap, *proto.Session) {
	t.Helper()
	k := simkey.New("SIM-TEST-0001")
	d, tap := open(t, k, simkey.TapHooks{})
	if err := d.Link(ctxT(t), secret(1), nil); err != nil {
		t.Fatalf("Link: %v", err)
	}
	s, err := d.Auth(ctxT(t), secret(1))
	if err != nil {
		t.Fatalf("Auth: %v", err)
	}
	return k, d, tap, s
}

// message returns the reports of the first message with cmd among reports
// (its init packet and the continuations that follow on its channel).
func message(t *testing.T, reports [][]byte, cmd proto.Command) [][]byte {
	t.Helper()
	var out [][]byte
	for _, r := range reports {
		p, err := proto.ParsePacket(r)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case out == nil && p.Init && p.Cmd == cmd:
			out = append(out, r)
		case out != nil && !p.Init:
			out = append(out, r)
		case out != nil:
			return out
		}
	}
	if out == nil {
		t.Fatalf("no %s message recorded", cmd)
	}
	return out
}

// payloadOf assembles recorded reports back into the message payload.
func payloadOf(t *testing.T, reports [][]byte) []byte {
	t.Helper()
	var a proto.Assembler
	for i, r := range reports {
		p, _ := proto.ParsePacket(r)
		var payload []byte
		var done bool
		var err error
		if i == 0 {
			payload, done, err = a.Start(p)
		} else {
			payload, done, err = a.Continue(p)
		}
		if err != nil {
			t.Fatal(err)
		}
		if done {
			return payload
		}
	}
	t.Fatal("incomplete recorded message")
	return nil
}

// withCID rewrites the channel id of reports (an attacker can).
func withCID(reports [][]byte, cid uint32) [][]byte {
	out := make([][]byte, len(reports))
	for i, r := range reports {
		c := bytes.Clone(r)
		c[0], c[1], c[2], c[3] = byte(cid>>24), byte(cid>>16), byte(cid>>8), byte(cid)
		out[i] = c
	}
	return out
}

// raw writes reports as they are and returns the key's reply to them.
func raw(t *testing.T, tr proto.Transport, reports [][]byte) ([]byte, error) {
	t.Helper()
	for _, r := range reports {
		if err := tr.WriteReport(r); err != nil {
			return nil, err
		}
	}
	p, _ := proto.ParsePacket(reports[0])
	dec := proto.NewDecoder(p.CID, p.Cmd)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		r, err := tr.ReadReport(100 * time.Millisecond)
		if errors.Is(err, proto.ErrTimeout) {
			continue
		}
		if err != nil {
			return nil, err
		}
		payload, done, err := dec.Feed(r)
		if err != nil || done {
			return payload, err
		}
	}
	t.Fatal("no reply to the raw message")
	return nil, nil
}

func keyCode(err error) proto.ErrorCode {
	var ke *proto.KeyError
	if errors.As(err, &ke) {
		return ke.Code
	}
	return 0
}

func info(t *testing.T, d *proto.Device) proto.Info {
	t.Helper()
	i, err := d.Info(ctxT(t))
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	return i
}
