// Package proto is KeyDesk's hardware-key USB protocol, host side: the
// CTAPHID framing (64-byte reports, init and continuation packets, channels,
// KEEPALIVE, ERROR), the CBOR message types and key derivations shared with
// the key side (package keys/simkey implements the key), and the client
// (Device, Session) that the application layer calls.
//
// No secret crosses USB in plain text: LINK sends the master secret under an
// ECDH P-256 key agreement, and credentials travel in a session encrypted
// with keys derived from the master secret, with counters that refuse
// replayed, stale and reordered messages. docs/KEY-PROTOCOL.md is the
// specification.
package proto

import "time"

// Transport moves 64-byte HID reports. USB (keys/usbhid) and the simulated
// key (keys/simkey) both implement it. A Transport is used by one Device at a
// time; Close may be called from any goroutine.
type Transport interface {
	// WriteReport sends exactly ReportSize bytes (the report ID byte, if the
	// platform needs one, is the transport's business).
	WriteReport(report []byte) error
	// ReadReport returns the next ReportSize-byte report, or an error that
	// wraps ErrTimeout when none came within timeout. Once the key is gone
	// it returns an error wrapping ErrUnplugged (ErrClosed after Close).
	ReadReport(timeout time.Duration) ([]byte, error)
	// Close releases the connection; later calls fail with ErrClosed.
	Close() error
}
