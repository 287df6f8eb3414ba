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
