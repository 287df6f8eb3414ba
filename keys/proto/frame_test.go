package proto

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// rep builds a 64-byte report from hex (spaces allowed), zero-padded.
func rep(t testing.TB, h string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(h, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", h, err)
	}
	if len(b) > ReportSize {
		t.Fatalf("hex %q longer than a report", h)
	}
	r := make([]byte, ReportSize)
	copy(r, b)
	return r
}

func seqPayload(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i % 251)
	}
	return p
}

func TestEncodeVectors(t *testing.T) {
	big := seqPayload(MaxMessageSize)
	tests := []struct {
		name    string
		cid     uint32
		cmd     Command
		payload []byte
		want    map[int]string // report index -> exact report (hex, zero-padded)
		count   int
	}{
		{
			name: "INIT request on broadcast", cid: BroadcastCID, cmd: CmdInit,
			payload: []byte{1, 2, 3, 4, 5, 6, 7, 8},
			want:    map[int]string{0: "ffffffff 86 0008 0102030405060708"},
			count:   1,
		},
		{
			name: "empty INFO", cid: 0x01020304, cmd: CmdInfo,
			want: map[int]string{0: "01020304 c0 0000"}, count: 1,
		},
		{
			name: "keepalive", cid: 0xCAFEF00D, cmd: CmdKeepalive, payload: []byte{KeepaliveProcessing},
			want: map[int]string{0: "cafef00d bb 0001 01"}, count: 1,
		},
		{
			name: "error channel busy", cid: 0xCAFEF00D, cmd: CmdError, payload: []byte{byte(CodeChannelBusy)},
			want: map[int]string{0: "cafef00d bf 0001 06"}, count: 1,
		},
		{
			name: "57 bytes fill the init packet", cid: 1, cmd: CmdPing, payload: bytes.Repeat([]byte{0xAA}, 57),
			want:  map[int]string{0: "00000001 81 0039" + strings.Repeat("aa", 57)},
			count: 1,
		},
		{
			name: "60 bytes: init and one continuation", cid: 1, cmd: CmdPing, payload: bytes.Repeat([]byte{0xAA}, 60),
			want: map[int]string{
				0: "00000001 81 003c" + strings.Repeat("aa", 57),
				1: "00000001 00 aaaaaa",
			},
			count: 2,
		},
		{
			name: "largest message 7609 bytes", cid: 0x11223344, cmd: CmdWrite, payload: big,
			want: map[int]string{
				0:   "11223344 c5 1db9" + hex.EncodeToString(big[:57]),
				1:   "11223344 00" + hex.EncodeToString(big[57:116]),
				128: "11223344 7f" + hex.EncodeToString(big[7550:]),
			},
			count: 129,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reports, err := Encode(tc.cid, tc.cmd, tc.payload)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if len(reports) != tc.count {
				t.Fatalf("%d reports, want %d", len(reports), tc.count)
			}
			for i, r := range reports {
				if len(r) != ReportSize {
					t.Fatalf("report %d is %d bytes", i, len(r))
				}
			}
			for i, h := range tc.want {
				if w := rep(t, h); !bytes.Equal(reports[i], w) {
					t.Errorf("report %d\n got %x\nwant %x", i, reports[i], w)
				}
			}
			// and back through the host decoder
			dec := NewDecoder(tc.cid, tc.cmd)
			for i, r := range reports {
				got, done, err := dec.Feed(r)
				if tc.cmd == CmdKeepalive || tc.cmd == CmdError {
					break // the decoder treats these specially: see TestDecoder
				}
				if err != nil {
					t.Fatalf("Feed %d: %v", i, err)
				}
				if done != (i == len(reports)-1) {
					t.Fatalf("Feed %d: done=%v", i, done)
				}
				if done && !bytes.Equal(got, tc.payload) && !(len(got) == 0 && len(tc.payload) == 0) {
					t.Fatalf("round trip payload differs")
				}
			}
		})
	}
}

func TestEncodeRefuses(t *testing.T) {
	tests := []struct {
		name    string
		cmd     Command
		size    int
		wantErr ErrorCode
	}{
		{"message above 7609 bytes", CmdWrite, MaxMessageSize + 1, CodeInvalidLen},
		{"command with bit 7", Command(0x86), 0, CodeInvalidCmd},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Encode(1, tc.cmd, make([]byte, tc.size))
			var fe *FrameError
			if !errors.As(err, &fe) || fe.Code != tc.wantErr || !errors.Is(err, ErrProtocol) {
				t.Fatalf("Encode error %v, want FrameError %s", err, tc.wantErr)
			}
		})
	}
}

func TestParsePacket(t *testing.T) {
	tests := []struct {
		name   string
		report []byte
		want   Packet
		err    bool
	}{
		{"init", rep(t, "01020304 c5 1db9 ff"), Packet{CID: 0x01020304, Init: true, Cmd: CmdWrite, Len: 7609}, false},
		{"continuation", rep(t, "01020304 7f ff"), Packet{CID: 0x01020304, Seq: 0x7F}, false},
		{"short report", make([]byte, 63), Packet{}, true},
		{"long report", make([]byte, 65), Packet{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePacket(tc.report)
			if tc.err {
				if !errors.Is(err, ErrProtocol) {
					t.Fatalf("err %v, want ErrProtocol", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.CID != tc.want.CID || p.Init != tc.want.Init || p.Cmd != tc.want.Cmd || p.Len != tc.want.Len || p.Seq != tc.want.Seq {
				t.Fatalf("got %+v, want %+v", p, tc.want)
			}
			wantData := InitDataSize
			if !p.Init {
				wantData = ContDataSize
			}
			if len(p.Data) != wantData || p.Data[0] != 0xFF {
				t.Fatalf("data %d bytes starting %x", len(p.Data), p.Data[:1])
			}
		})
	}
}
