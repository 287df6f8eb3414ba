package simkey_test

import (
	"testing"

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
