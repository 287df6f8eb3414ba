package simkey_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"keydesk/keys/proto"
	"keydesk/keys/simkey"
)

// TestInitReply: INIT gives protocol version 2 and only the capability flags
// whose promise the key keeps: WINK (it implements CTAPHID_WINK) and NMSG (it
// does not implement CTAPHID_MSG), never CBOR, since it does not implement
// CTAPHID_CBOR.
func TestInitReply(t *testing.T) {
	d, _ := open(t, simkey.New("SIM-TEST-0001"), simkey.TapHooks{})
	v := d.Version()
	if v.Protocol != 2 || v.Caps != proto.CapWink|proto.CapNMSG || v.Caps&proto.CapCBOR != 0 {
		t.Fatalf("INIT version %+v, want protocol 2 and capabilities 0x%02X", v, proto.CapWink|proto.CapNMSG)
	}
}

// Standard CTAPHID commands that KeyDesk keys do not implement.
const (
	ctaphidMsg  proto.Command = 0x03 // CTAPHID_MSG (U2F): ruled out by CapNMSG
	ctaphidLock proto.Command = 0x04 // CTAPHID_LOCK: optional
	ctaphidCBOR proto.Command = 0x10 // CTAPHID_CBOR: not promised (no CapCBOR)
)

// TestStandardCommands sends the standard CTAPHID commands to a linked key:
// CTAPHID_WINK winks as the vendor WINK does; MSG, CBOR and LOCK are unknown
// commands (ERR_INVALID_CMD), and CTAPHID_LOCK in particular does not lock
// the key the way KeyDesk's LOCK (0x4E) does.
func TestStandardCommands(t *testing.T) {
	tests := []struct {
		name      string
		cmd       proto.Command
		payload   []byte
		wantCode  proto.ErrorCode // 0: an empty reply
		wantWinks int
	}{
		{"CTAPHID_WINK", proto.CmdHIDWink, nil, 0, 1},
		{"CTAPHID_WINK with data", proto.CmdHIDWink, []byte{1}, proto.CodeInvalidLen, 0},
		{"CTAPHID_MSG", ctaphidMsg, []byte{0, 3, 0, 0, 0}, proto.CodeInvalidCmd, 0},
		{"CTAPHID_CBOR", ctaphidCBOR, []byte{0x04}, proto.CodeInvalidCmd, 0},
		{"CTAPHID_LOCK", ctaphidLock, []byte{10}, proto.CodeInvalidCmd, 0},
		{"CTAPHID_LOCK release", ctaphidLock, []byte{0}, proto.CodeInvalidCmd, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := simkey.New("SIM-TEST-0001")
			d, tap := open(t, k, simkey.TapHooks{})
			if err := d.Link(ctxT(t), secret(1), nil); err != nil {
				t.Fatalf("Link: %v", err)
			}
			reports, err := proto.Encode(d.CID(), tc.cmd, tc.payload)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := raw(t, tap, reports)
			switch {
			case keyCode(err) != tc.wantCode:
				t.Fatalf("%s: reply %x, error %v; want code %v", tc.cmd, resp, err, tc.wantCode)
			case err == nil && len(resp) != 0:
				t.Fatalf("%s: reply %x, want none", tc.cmd, resp)
			}
			if got := k.Winks(); got != tc.wantWinks {
				t.Errorf("winks %d, want %d", got, tc.wantWinks)
			}
			if got := info(t, d).State; got != proto.StateLinked {
				t.Errorf("state after %s: %s, want %s", tc.cmd, got, proto.StateLinked)
			}
		})
	}
}

// TestCancelIsNeverAnswered: CTAP 2.1 forbids answering CTAPHID_CANCEL,
// whatever the channel and whatever the key is doing. KeyDesk's commands
// cannot be cancelled, so a request in flight still gets its reply.
func TestCancelIsNeverAnswered(t *testing.T) {
	const unallocated = 0x0BADCAFE
	tests := []struct {
		name     string
		inFlight bool // a PING is in flight
		split    bool // the CANCEL comes between the PING's first and second packets
		hold     bool // the key holds the PING before executing it
		on       func(own, other uint32) uint32
	}{
		{"idle, own channel", false, false, false, func(own, _ uint32) uint32 { return own }},
		{"idle, unallocated channel", false, false, false, func(_, _ uint32) uint32 { return unallocated }},
		{"idle, broadcast channel", false, false, false, func(_, _ uint32) uint32 { return proto.BroadcastCID }},
		{"mid-message, own channel", true, true, false, func(own, _ uint32) uint32 { return own }},
		{"mid-message, other channel", true, true, false, func(_, other uint32) uint32 { return other }},
		{"while processing, own channel", true, false, true, func(own, _ uint32) uint32 { return own }},
		{"while processing, other channel", true, false, true, func(_, other uint32) uint32 { return other }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k := simkey.New("SIM-TEST-0001")
			other, _ := open(t, k, simkey.TapHooks{})
			// d opens after other, so that its tap does not see other's INIT.
			d, tap := open(t, k, simkey.TapHooks{})
			payload := bytes.Repeat([]byte{0xA5}, 100) // two packets
			ping, err := proto.Encode(d.CID(), proto.CmdPing, payload)
			if err != nil {
				t.Fatal(err)
			}
			cancel, err := proto.Encode(tc.on(d.CID(), other.CID()), proto.CmdCancel, nil)
			if err != nil {
				t.Fatal(err)
			}
			var sends [][]byte
			switch {
			case !tc.inFlight:
				sends = cancel
			case tc.split:
				sends = [][]byte{ping[0], cancel[0], ping[1]}
			default:
				sends = append(ping, cancel...)
			}
			release := func() {}
			if tc.hold {
				release = k.Hold()
				defer release()
			}
			for _, r := range sends {
				if err := tap.WriteReport(r); err != nil {
					t.Fatal(err)
				}
			}
			got := collect(t, tap, 150*time.Millisecond)
			release()
			got = append(got, collect(t, tap, 150*time.Millisecond)...)

			var reply [][]byte // all but KEEPALIVE on d's channel
			for _, r := range got {
				p, _ := proto.ParsePacket(r)
				if p.Init && p.CID == d.CID() && p.Cmd == proto.CmdKeepalive {
					continue
				}
				if !tc.inFlight || p.CID != d.CID() || len(reply) == 0 && p.Cmd != proto.CmdPing {
					t.Fatalf("the key sent %s (BCNT %d, data % x) on %08X", p.Cmd, p.Len, p.Data[:min(p.Len, 4)], p.CID)
				}
				reply = append(reply, r)
			}
			if tc.inFlight {
				if len(reply) != len(ping) || !bytes.Equal(payloadOf(t, reply), payload) {
					t.Fatalf("PING reply of %d reports, want the echo in %d", len(reply), len(ping))
				}
			}
			info(t, d) // the key still answers
		})
	}
}

// collect returns what the key sends within d.
func collect(t *testing.T, tr proto.Transport, d time.Duration) [][]byte {
	t.Helper()
	var out [][]byte
	for deadline := time.Now().Add(d); ; {
		r, err := tr.ReadReport(time.Until(deadline))
		if errors.Is(err, proto.ErrTimeout) { // (at once once the deadline is past)
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
}
