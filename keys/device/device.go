// Package device is the edge between a key's driver and the application
// layer: a key plugged in (Plug), where it is plugged (its place), and the
// small interface that drivers tell about keys coming and going (Sink).
//
// Drivers (keys/usbhid for USB, keys/simkey for simulated keys) depend on
// this package; the application layer implements Sink and never imports a
// driver.
package device

import (
	"context"

	"keydesk/keys/proto"
)

// PlaceLocal is this machine: its USB ports and its simulated key directory.
// A console started on this machine serves the keys plugged in here.
const PlaceLocal = "local"

// Plug is a key connected somewhere, however it is connected. Open gives a
// new connection to it each time it is called.
type Plug struct {
	// ID is the connection's identity, unique among everything plugged in:
	// "usb:<path>", "sim:<file>".
	ID string
	// Kind is "usb" or "simulated".
	Kind string
	// Place is where the key is plugged (PlaceLocal; later a kiosk or an
	// SSH session). Only consoles attached to that place are asked to act
	// on it (the activation screen).
	Place string
	// Open connects to the key.
	Open func() (proto.Transport, error)
}

// Sink hears about keys plugged in and out. The application layer is one.
type Sink interface {
	// KeyConnected handles a key that was just plugged in and returns the
	// serial it proved or reported.
	KeyConnected(ctx context.Context, p Plug) (serial string, err error)
	// KeyDisconnected handles a key that was unplugged (by Plug.ID).
	KeyDisconnected(id string)
}
