package proto

import (
	"bytes"
	"errors"
	"testing"
)

func TestDecoder(t *testing.T) {
	const cid = 0x01020304
	two := seqPayload(60)
	twoReports, _ := Encode(cid, CmdInfo, two)
	bigReports, _ := Encode(cid, CmdInfo, seqPayload(MaxMessageSize))

	type want struct {
		payload    []byte
		more       bool      // still waiting, no error
		code       ErrorCode // a *KeyError with this code
		protocol   bool      // an ErrProtocol
		keepalives int
	}
	tests := []struct {
		name    string
		reports [][]byte
		want    want
	}{
		{"single packet", [][]byte{rep(t, "01020304 c0 0002 a0b0")}, want{payload: []byte{0xa0, 0xb0}}},
		{"empty reply", [][]byte{rep(t, "01020304 c0 0000")}, want{payload: []byte{}}},
		{"two packets", twoReports, want{payload: two}},
		{"largest message", bigReports, want{payload: seqPayload(MaxMessageSize)}},
		{"keepalives skipped", [][]byte{
			rep(t, "01020304 bb 0001 01"), rep(t, "01020304 bb 0001 02"), rep(t, "01020304 c0 0001 a0"),
		}, want{payload: []byte{0xa0}, keepalives: 2}},
		{"other channels and broadcast ignored", [][]byte{
			rep(t, "99999999 c0 0001 ff"), rep(t, "ffffffff 86 0011 00"), twoReports[0],
			rep(t, "99999999 00 ff"), rep(t, "99999999 bf 0001 06"), twoReports[1],
		}, want{payload: two}},
		{"waiting for continuation", twoReports[:1], want{more: true}},
		{"only keepalive", [][]byte{rep(t, "01020304 bb 0001 01")}, want{more: true, keepalives: 1}},
		{"error packet", [][]byte{rep(t, "01020304 bf 0001 06")}, want{code: CodeChannelBusy}},
		{"vendor error packet", [][]byte{rep(t, "01020304 bf 0001 42")}, want{code: CodeReplay}},
		{"error without code", [][]byte{rep(t, "01020304 bf 0000")}, want{protocol: true}},
		{"reply to another command", [][]byte{rep(t, "01020304 c1 0000")}, want{protocol: true}},
		{"BCNT above 7609", [][]byte{rep(t, "01020304 c0 1dba")}, want{protocol: true}},
		{"BCNT 0xFFFF", [][]byte{rep(t, "01020304 c0 ffff")}, want{protocol: true}},
		{"continuation without init", [][]byte{rep(t, "01020304 00 ff")}, want{protocol: true}},
		{"SEQ skipped", [][]byte{twoReports[0], rep(t, "01020304 01 ff")}, want{protocol: true}},
		{"SEQ repeated", [][]byte{bigReports[0], bigReports[1], bigReports[1]}, want{protocol: true}},
		{"init while continuation expected", [][]byte{twoReports[0], twoReports[0]}, want{protocol: true}},
		{"keepalive mid-reply", [][]byte{twoReports[0], rep(t, "01020304 bb 0001 01")}, want{protocol: true}},
		{"error mid-reply", [][]byte{twoReports[0], rep(t, "01020304 bf 0001 7f")}, want{protocol: true}},
		{"truncated report", [][]byte{make([]byte, 10)}, want{protocol: true}},
		{"oversized report", [][]byte{make([]byte, 65)}, want{protocol: true}},
		{"report after the reply", [][]byte{rep(t, "01020304 c0 0000"), rep(t, "01020304 c0 0000")}, want{protocol: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dec := NewDecoder(cid, CmdInfo)
			var (
				payload []byte
				done    bool
				err     error
				doneAt  = -1
			)
			for i, r := range tc.reports {
				var p []byte
				var d bool
				p, d, err = dec.Feed(r)
				if d {
					payload, done, doneAt = p, true, i
				}
				if err != nil {
					break
				}
			}
			if n, _ := dec.Keepalives(); n != tc.want.keepalives {
				t.Errorf("keepalives %d, want %d", n, tc.want.keepalives)
			}
			switch {
			case tc.want.code != 0:
				var ke *KeyError
				if !errors.As(err, &ke) || ke.Code != tc.want.code || ke.Cmd != CmdInfo {
					t.Fatalf("err %v, want KeyError %s", err, tc.want.code)
				}
			case tc.want.protocol:
				if !errors.Is(err, ErrProtocol) {
					t.Fatalf("err %v (done %v), want ErrProtocol", err, done)
				}
			case tc.want.more:
				if err != nil || done {
					t.Fatalf("err %v done %v, want more", err, done)
				}
			default:
				if err != nil || !done || doneAt != len(tc.reports)-1 {
					t.Fatalf("err %v done %v at %d", err, done, doneAt)
				}
				if !bytes.Equal(payload, tc.want.payload) {
					t.Fatalf("payload %x, want %x", payload, tc.want.payload)
				}
			}
			if err != nil {
				// errors are sticky
				if _, _, err2 := dec.Feed(rep(t, "01020304 c0 0000")); err2 == nil {
					t.Fatal("decoder accepted a report after an error")
				}
			}
		})
	}
}

func TestKeyErrorIs(t *testing.T) {
	tests := []struct {
		code ErrorCode
		is   error
		not  error
	}{
		{CodeAuthFailed, ErrAuth, ErrReplay},
		{CodeReplay, ErrReplay, ErrAuth},
		{CodeLocked, ErrLocked, ErrAuth},
		{CodePINBlocked, ErrLocked, ErrReplay},
		{CodeChannelBusy, ErrBusy, ErrLocked},
		{CodeNotFound, nil, ErrLocked},
	}
	for _, tc := range tests {
		t.Run(tc.code.String(), func(t *testing.T) {
			err := error(&KeyError{Cmd: CmdRead, Code: tc.code})
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("%v is not %v", err, tc.is)
			}
			if errors.Is(err, tc.not) {
				t.Errorf("%v is %v", err, tc.not)
			}
		})
	}
}
