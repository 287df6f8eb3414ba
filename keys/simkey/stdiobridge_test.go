package simkey_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"keydesk/keys/proto"
	"keydesk/keys/simkey"
)

// The stdio bridge lets a host stack in another process (python-fido2 in
// conformance_test.go) drive a simulated key: a fresh key's 64-byte HID
// reports travel over the bridge's standard input (host to key) and standard
// output (key to host), with no other framing. The test binary becomes the
// bridge when bridgeEnv is 1 (see TestMain), so it needs no build step and
// stays out of KeyDesk's own commands.

// bridgeEnv, set to 1, makes the test binary run as the stdio bridge.
const bridgeEnv = "KEYDESK_SIMKEY_STDIO_BRIDGE"

// bridgePoll is the longest single wait for a report from the key, so that
// the bridge notices the end of its input soon.
const bridgePoll = 20 * time.Millisecond

// serveReports moves reports between a key connection and a byte stream
// until in ends: every ReportSize bytes read from in are one report to the
// key, and every report the key sends (replies and unrequested ones such as
// KEEPALIVE) is written to out as it comes. EOF on a report boundary is a
// clean end (nil), after the key's last reports went out; a partial report,
// a failed write or a key that went away is an error.
func serveReports(t proto.Transport, in io.Reader, out io.Writer) error {
	inErr := make(chan error, 1)
	go func() {
		for {
			buf := make([]byte, proto.ReportSize)
			if _, err := io.ReadFull(in, buf); err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				} else {
					err = fmt.Errorf("reading a report from the host: %w", err)
				}
				inErr <- err
				return
			}
			if err := t.WriteReport(buf); err != nil {
				inErr <- fmt.Errorf("passing a report to the key: %w", err)
				return
			}
		}
	}()
	ended := false
	for {
		if !ended {
			select {
			case err := <-inErr:
				if err != nil {
					return err
				}
				ended = true // pass on what the key still sends, until it is quiet
			default:
			}
		}
		r, err := t.ReadReport(bridgePoll)
		if errors.Is(err, proto.ErrTimeout) {
			if ended {
				return nil
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("reading a report from the key: %w", err)
		}
		if _, err := out.Write(r); err != nil {
			return fmt.Errorf("passing a report to the host: %w", err)
		}
	}
}

// bridgeMain is the bridge program: it runs a fresh key and serves its
// reports on stdin and stdout. When stdin ends it writes one summary line,
// "stdiobridge: winks=N state=S", to stderr, so that the host side can check
// effects it cannot see over USB. It returns the exit code.
//
//	-serial S    the key's serial number
//	-linked      link the key to a random master secret first
//	-delay D     make the key take D for each command (it sends KEEPALIVE)
func bridgeMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("stdiobridge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	serial := fs.String("serial", "SIM-CTAP-0001", "the key's serial number")
	linked := fs.Bool("linked", false, "link the key to a random master secret first")
	delay := fs.Duration("delay", 0, "how long the key takes for each command")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	k := simkey.New(*serial)
	if *linked {
		if err := linkRandom(k); err != nil {
			fmt.Fprintf(stderr, "stdiobridge: %v\n", err)
			return 1
		}
	}
	k.SetDelay(*delay)
	t := k.Plug()
	defer t.Close()
	if err := serveReports(t, stdin, stdout); err != nil {
		fmt.Fprintf(stderr, "stdiobridge: %v\n", err)
		return 1
	}
	state, err := keyState(k)
	if err != nil {
		fmt.Fprintf(stderr, "stdiobridge: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "stdiobridge: winks=%d state=%s\n", k.Winks(), state)
	return 0
}

// linkRandom links k to a random master secret over its own connection.
func linkRandom(k *simkey.Key) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := proto.Open(ctx, k.Plug())
	if err != nil {
		return fmt.Errorf("linking the key: %w", err)
	}
	defer d.Close()
	master := make([]byte, proto.MasterSecretSize)
	rand.Read(master)
	if err := d.Link(ctx, master, nil); err != nil {
		return fmt.Errorf("linking the key: %w", err)
	}
	return nil
}

// keyState asks k for its state over a connection of its own.
func keyState(k *simkey.Key) (proto.KeyState, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := proto.Open(ctx, k.Plug())
	if err != nil {
		return "", fmt.Errorf("reading the key's state: %w", err)
	}
	defer d.Close()
	info, err := d.Info(ctx)
	if err != nil {
		return "", fmt.Errorf("reading the key's state: %w", err)
	}
	return info.State, nil
}

// TestMain runs the tests, or, when bridgeEnv is 1, the bridge program.
func TestMain(m *testing.M) {
	if os.Getenv(bridgeEnv) == "1" {
		os.Exit(bridgeMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// bridged runs a bridge over pipes: the test writes reports to in and reads
// the key's from out; done gets the bridge's result.
type bridged struct {
	in   *io.PipeWriter
	out  *io.PipeReader
	done chan error
}

// startBridge runs serveReports for a connection to k.
func startBridge(t *testing.T, k *simkey.Key) *bridged {
	t.Helper()
	tr := k.Plug()
	t.Cleanup(func() { tr.Close() })
	return startBridgeFunc(t, func(in io.Reader, out io.Writer) error { return serveReports(tr, in, out) })
}

// startBridgeFunc runs bridge in a goroutine over pipes.
func startBridgeFunc(t *testing.T, bridge func(in io.Reader, out io.Writer) error) *bridged {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	b := &bridged{in: inW, out: outR, done: make(chan error, 1)}
	go func() {
		b.done <- bridge(inR, outW)
		outW.Close()
	}()
	t.Cleanup(func() {
		inW.Close()
		outR.Close()
	})
	return b
}

func (b *bridged) send(t *testing.T, reports ...[]byte) {
	t.Helper()
	for _, r := range reports {
		if _, err := b.in.Write(r); err != nil {
			t.Fatalf("writing to the bridge: %v", err)
		}
	}
}

// recv reads one report from the bridge's output, or fails after 3 s.
func (b *bridged) recv(t *testing.T) []byte {
	t.Helper()
	got := make(chan []byte, 1)
	go func() {
		r := make([]byte, proto.ReportSize)
		if _, err := io.ReadFull(b.out, r); err != nil {
			r = nil
		}
		got <- r
	}()
	select {
	case r := <-got:
		if r == nil {
			t.Fatal("the bridge's output ended")
		}
		return r
	case <-time.After(3 * time.Second):
		t.Fatal("no report from the bridge within 3 s")
	}
	return nil
}

// end closes the bridge's input and returns serveReports' result.
func (b *bridged) end(t *testing.T) error {
	t.Helper()
	b.in.Close()
	select {
	case err := <-b.done:
		return err
	case <-time.After(3 * time.Second):
		t.Fatal("the bridge did not stop within 3 s of EOF")
	}
	return nil
}

func encode(t *testing.T, cid uint32, cmd proto.Command, payload []byte) [][]byte {
	t.Helper()
	reports, err := proto.Encode(cid, cmd, payload)
	if err != nil {
		t.Fatal(err)
	}
	return reports
}

// allocate runs INIT through the bridge and returns the new channel.
func (b *bridged) allocate(t *testing.T) uint32 {
	t.Helper()
	b.send(t, encode(t, proto.BroadcastCID, proto.CmdInit, []byte("8 nonce!"))...)
	p, _ := proto.ParsePacket(b.recv(t))
	if p.CID != proto.BroadcastCID || p.Cmd != proto.CmdInit || p.Len != 17 {
		t.Fatalf("INIT reply %+v", p)
	}
	return binary.BigEndian.Uint32(p.Data[8:12])
}

// reply reads the reply to cmd on cid through the bridge; keepalives is how
// many KEEPALIVE reports came first.
func (b *bridged) reply(t *testing.T, cid uint32, cmd proto.Command) (payload []byte, keepalives int) {
	t.Helper()
	dec := proto.NewDecoder(cid, cmd)
	for {
		payload, done, err := dec.Feed(b.recv(t))
		if err != nil {
			t.Fatalf("%s reply: %v", cmd, err)
		}
		if done {
			n, _ := dec.Keepalives()
			return payload, n
		}
	}
}

// TestServeReports: the bridge carries a multi-packet exchange both ways,
// passes on the KEEPALIVEs a slow key sends while the host writes nothing,
// and ends cleanly at EOF, but not in the middle of a report.
func TestServeReports(t *testing.T) {
	t.Run("exchange", func(t *testing.T) {
		b := startBridge(t, simkey.New("SIM-TEST-0001"))
		cid := b.allocate(t)
		payload := bytes.Repeat([]byte("bridge"), 50) // 300 bytes: 6 packets
		b.send(t, encode(t, cid, proto.CmdPing, payload)...)
		if got, _ := b.reply(t, cid, proto.CmdPing); !bytes.Equal(got, payload) {
			t.Fatalf("PING echo of %d bytes differs", len(got))
		}
		if err := b.end(t); err != nil {
			t.Fatalf("EOF: %v, want a clean end", err)
		}
	})
	t.Run("keepalive", func(t *testing.T) {
		k := simkey.New("SIM-TEST-0001")
		b := startBridge(t, k)
		cid := b.allocate(t)
		k.SetDelay(3 * simkey.KeepaliveInterval)
		b.send(t, encode(t, cid, proto.CmdPing, []byte("slow"))...)
		got, keepalives := b.reply(t, cid, proto.CmdPing)
		if string(got) != "slow" || keepalives < 2 {
			t.Fatalf("PING echo %q after %d KEEPALIVEs, want %q after 2 or more", got, keepalives, "slow")
		}
		if err := b.end(t); err != nil {
			t.Fatalf("EOF: %v, want a clean end", err)
		}
	})
	t.Run("partial report", func(t *testing.T) {
		b := startBridge(t, simkey.New("SIM-TEST-0001"))
		b.send(t, make([]byte, proto.ReportSize/2))
		if err := b.end(t); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("EOF after half a report: %v, want %v", err, io.ErrUnexpectedEOF)
		}
	})
}

// TestBridgeMain runs the bridge program: a linked key answers INIT and
// CTAPHID_WINK, and at EOF the program exits 0 and writes its summary.
func TestBridgeMain(t *testing.T) {
	var stderr bytes.Buffer
	b := startBridgeFunc(t, func(in io.Reader, out io.Writer) error {
		if code := bridgeMain([]string{"-linked", "-serial", "SIM-TEST-0002"}, in, out, &stderr); code != 0 {
			return fmt.Errorf("exit code %d", code)
		}
		return nil
	})
	cid := b.allocate(t)
	b.send(t, encode(t, cid, proto.CmdHIDWink, nil)...)
	if got, _ := b.reply(t, cid, proto.CmdHIDWink); len(got) != 0 {
		t.Fatalf("CTAPHID_WINK reply %x, want none", got)
	}
	if err := b.end(t); err != nil {
		t.Fatalf("EOF: %v (stderr %q)", err, stderr.String())
	}
	if got, want := stderr.String(), "stdiobridge: winks=1 state=linked\n"; got != want {
		t.Errorf("stderr %q, want %q", got, want)
	}
	if code := bridgeMain([]string{"-no-such-flag"}, nil, io.Discard, io.Discard); code != 2 {
		t.Errorf("exit code %d for a bad flag, want 2", code)
	}
}
