package usbhid

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/karalabe/hid"

	"keydesk/keys/proto"
)

// fakeHID is a hid.Device stand-in: it records writes and serves reads.
type fakeHID struct {
	mu      sync.Mutex
	written [][]byte
	reads   []fakeRead // served in order; then "nothing yet"
	closed  bool
}

type fakeRead struct {
	data []byte
	err  error
}

func (f *fakeHID) Write(b []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, hid.ErrDeviceClosed
	}
	f.written = append(f.written, bytes.Clone(b))
	return len(b), nil
}

func (f *fakeHID) ReadTimeout(b []byte, ms int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, hid.ErrDeviceClosed
	}
	if ms < 1 || ms > int(readSlice/time.Millisecond) {
		return 0, errors.New("bad timeout slice")
	}
	if len(f.reads) == 0 {
		return 0, nil
	}
	r := f.reads[0]
	f.reads = f.reads[1:]
	return copy(b, r.data), r.err
}

func (f *fakeHID) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

var _ hidDevice = hid.Device(nil) // the real device has what the transport needs

func TestWriteReport(t *testing.T) {
	report := bytes.Repeat([]byte{0x00}, proto.ReportSize) // a report whose first byte is 0
	report[4], report[63] = 0xC0, 0xEE
	tests := []struct {
		name     string
		reportID bool
		want     []byte
	}{
		{"report ID prepended (Linux, macOS)", true, append([]byte{0x00}, report...)},
		{"library adds it (Windows)", false, report},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeHID{}
			tr := newTransport(f, tc.reportID)
			if err := tr.WriteReport(report); err != nil {
				t.Fatal(err)
			}
			if len(f.written) != 1 || !bytes.Equal(f.written[0], tc.want) {
				t.Fatalf("wrote %x, want %x", f.written, tc.want)
			}
			if err := tr.WriteReport(report[:63]); !errors.Is(err, proto.ErrProtocol) {
				t.Fatalf("short report: %v", err)
			}
		})
	}
}

func TestReadReport(t *testing.T) {
	report := bytes.Repeat([]byte{0xAB}, proto.ReportSize)
	tests := []struct {
		name    string
		reads   []fakeRead
		want    []byte
		wantErr error
	}{
		{"64 bytes", []fakeRead{{data: report}}, report, nil},
		{"after empty polls", []fakeRead{{}, {}, {data: report}}, report, nil},
		{"65 bytes with report ID", []fakeRead{{data: append([]byte{0}, report...)}}, report, nil},
		{"short read", []fakeRead{{data: report[:10]}}, nil, proto.ErrProtocol},
		{"nothing", nil, nil, proto.ErrTimeout},
		{"device gone", []fakeRead{{err: errors.New("hidapi: LIBUSB_ERROR_NO_DEVICE")}}, nil, proto.ErrUnplugged},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTransport(&fakeHID{reads: tc.reads}, true)
			got, err := tr.ReadReport(30 * time.Millisecond)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("got %x, %v", got, err)
			}
		})
	}
}

func TestClose(t *testing.T) {
	f := &fakeHID{}
	tr := newTransport(f, true)
	done := make(chan error, 1)
	go func() { _, err := tr.ReadReport(5 * time.Second); done <- err }()
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, proto.ErrClosed) {
			t.Fatalf("read after Close: %v, want ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a read was not ended by Close")
	}
	if err := tr.WriteReport(make([]byte, 64)); !errors.Is(err, proto.ErrClosed) {
		t.Fatalf("write after Close: %v", err)
	}
	if err := tr.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestWatch(t *testing.T) {
	a := DeviceInfo{Path: "1-1:1.0", Serial: "A"}
	b := DeviceInfo{Path: "1-2:1.0", Serial: "B"}
	c := DeviceInfo{Path: "1-3:1.0", Serial: "C"}
	flaky := errors.New("libusb busy")
	type poll struct {
		devs []DeviceInfo
		err  error
	}
	tests := []struct {
		name  string
		polls []poll
		want  []Event
	}{
		{"connect and disconnect", []poll{
			{devs: nil}, {devs: []DeviceInfo{b, a}}, {devs: []DeviceInfo{a, b}}, {devs: []DeviceInfo{b}}, {devs: []DeviceInfo{c, b}}, {devs: nil},
		}, []Event{
			{Connected: true, Device: a}, {Connected: true, Device: b},
			{Connected: false, Device: a},
			{Connected: true, Device: c},
			{Connected: false, Device: b}, {Connected: false, Device: c},
		}},
		{"errors reported once, state kept", []poll{
			{devs: []DeviceInfo{a}}, {err: flaky}, {err: flaky}, {devs: []DeviceInfo{a}}, {err: flaky}, {devs: nil},
		}, []Event{
			{Connected: true, Device: a}, {Err: flaky}, {Err: flaky}, {Connected: false, Device: a},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			polls := make(chan poll)
			enumerate := func(cfg Config) ([]DeviceInfo, error) {
				if cfg != DefaultConfig() {
					t.Errorf("enumerate got config %+v", cfg)
				}
				select {
				case p := <-polls:
					return p.devs, p.err
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			events := Watch(ctx, DefaultConfig(), time.Millisecond, enumerate)
			collected := make(chan []Event)
			go func() {
				var got []Event
				for e := range events {
					got = append(got, e)
				}
				collected <- got
			}()
			for _, p := range tc.polls {
				polls <- p
			}
			// The watcher takes the next poll only after its events for the
			// previous one were received: one more poll, then stop.
			polls <- poll{devs: tc.polls[len(tc.polls)-1].devs}
			cancel()
			got := <-collected
			// The watcher may see the cancel before the last poll and end
			// with it: that is its end, not an event of the polls.
			if n := len(got); n > 0 && errors.Is(got[n-1].Err, context.Canceled) && (len(tc.want) == 0 || !errors.Is(tc.want[len(tc.want)-1].Err, context.Canceled)) {
				got = got[:n-1]
			}
			if len(got) != len(tc.want) {
				t.Fatalf("events %+v\nwant %+v", got, tc.want)
			}
			for i := range got {
				if got[i].Connected != tc.want[i].Connected || got[i].Device != tc.want[i].Device || !errors.Is(got[i].Err, tc.want[i].Err) {
					t.Fatalf("event %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func TestWatchUnsupportedEnds(t *testing.T) {
	events := Watch(context.Background(), DefaultConfig(), time.Millisecond, func(Config) ([]DeviceInfo, error) {
		return nil, ErrUnsupported
	})
	e, ok := <-events
	if !ok || !errors.Is(e.Err, ErrUnsupported) {
		t.Fatalf("first event %+v, %v", e, ok)
	}
	if _, ok := <-events; ok {
		t.Fatal("watch went on after ErrUnsupported")
	}
}

// TestSupport: with cgo the library works; without it Enumerate and Open
// say ErrUnsupported instead of failing otherwise.
func TestSupport(t *testing.T) {
	if Supported() {
		if _, err := Enumerate(DefaultConfig()); err != nil {
			t.Skipf("USB enumeration not possible here: %v", err)
		}
		return
	}
	if devs, err := Enumerate(DefaultConfig()); devs != nil || !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Enumerate without support = %v, %v", devs, err)
	}
	if _, err := Open(DeviceInfo{Path: "x"}); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Open without support: %v", err)
	}
}
