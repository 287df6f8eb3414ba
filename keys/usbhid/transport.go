package usbhid

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/karalabe/hid"

	"keydesk/keys/proto"
)

// readSlice is the longest single ReadTimeout, so Close never waits longer.
const readSlice = 100 * time.Millisecond

// hidDevice is the part of hid.Device the transport uses (a fake in tests).
type hidDevice interface {
	Write(b []byte) (int, error)
	ReadTimeout(b []byte, timeoutMillis int) (int, error)
	Close() error
}

// transport is a proto.Transport over a HID device. Device calls and Close
// are serialised: hidapi must not close a handle another call is using, and a
// blocking read is never woken by Close, so reads run in short slices.
type transport struct {
	dev      hidDevice
	reportID bool // write a 0x00 report ID before the 64 bytes

	mu     sync.Mutex
	closed bool
}

func newTransport(dev hidDevice, reportID bool) *transport {
	return &transport{dev: dev, reportID: reportID}
}

// WriteReport writes 0x00 + the 64-byte report (65 bytes) where the library
// does not add the report ID itself.
func (t *transport) WriteReport(report []byte) error {
	if len(report) != proto.ReportSize {
		return fmt.Errorf("usbhid: writing a report of %d bytes, want %d: %w", len(report), proto.ReportSize, proto.ErrProtocol)
	}
	buf := report
	if t.reportID {
		buf = append([]byte{0x00}, report...)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return fmt.Errorf("usbhid: writing a report: %w", proto.ErrClosed)
	}
	n, err := t.dev.Write(buf)
	if err != nil {
		return fmt.Errorf("usbhid: writing a report: %w", t.deviceErr(err))
	}
	if n != len(buf) {
		return fmt.Errorf("usbhid: wrote %d of %d bytes: %w", n, len(buf), proto.ErrUnplugged)
	}
	return nil
}

// ReadReport reads one 64-byte input report, polling in short slices.
func (t *transport) ReadReport(timeout time.Duration) ([]byte, error) {
	deadline := time.Now().Add(timeout)
	buf := make([]byte, proto.ReportSize+1)
	for {
		slice := min(time.Until(deadline), readSlice)
		ms := max(int(slice/time.Millisecond), 1)
		r, err := t.readOnce(buf, ms)
		if err != nil || r != nil {
			return r, err
		}
		if !time.Now().Before(deadline) {
			return nil, fmt.Errorf("usbhid: reading a report: %w", proto.ErrTimeout)
		}
	}
}

func (t *transport) readOnce(buf []byte, ms int) ([]byte, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, fmt.Errorf("usbhid: reading a report: %w", proto.ErrClosed)
	}
	n, err := t.dev.ReadTimeout(buf, ms)
	switch {
	case err != nil:
		return nil, fmt.Errorf("usbhid: reading a report: %w", t.deviceErr(err))
	case n == 0:
		return nil, nil // nothing yet
	case n == proto.ReportSize:
		return append([]byte(nil), buf[:n]...), nil
	case n == proto.ReportSize+1 && buf[0] == 0x00: // a platform that keeps the report ID
		return append([]byte(nil), buf[1:n]...), nil
	}
	return nil, fmt.Errorf("usbhid: read a report of %d bytes, want %d: %w", n, proto.ReportSize, proto.ErrProtocol)
}

// deviceErr classifies a library error: a closed handle is ErrClosed, any
// other I/O failure means the key is gone (hidapi reports a disconnect so).
func (t *transport) deviceErr(err error) error {
	if errors.Is(err, hid.ErrDeviceClosed) {
		return fmt.Errorf("%w: %w", proto.ErrClosed, err)
	}
	return fmt.Errorf("%w: %w", proto.ErrUnplugged, err)
}

// Close releases the device handle (waiting for a read slice in progress).
func (t *transport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	if err := t.dev.Close(); err != nil {
		return fmt.Errorf("usbhid: closing: %w", err)
	}
	return nil
}
