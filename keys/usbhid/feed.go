package usbhid

import (
	"context"
	"errors"
	"fmt"
	"time"

	"keydesk/keys/device"
	"keydesk/keys/proto"
)

// Plug is the device.Plug of a key found on this machine's USB ports.
func Plug(info DeviceInfo) device.Plug {
	return device.Plug{ID: "usb:" + info.Path, Kind: "usb", Place: device.PlaceLocal,
		Open: func() (proto.Transport, error) { return Open(info) }}
}

// Feed follows the keys on this machine's USB ports (Watch, polling every
// interval) until ctx ends, and tells sink about every key plugged in or
// out. Problems (a failed enumeration, a key that could not be handled) go
// to report and the watch goes on. Without USB support in this build it
// returns ErrUnsupported at once.
func Feed(ctx context.Context, cfg Config, interval time.Duration, sink device.Sink, report func(error)) error {
	if !Supported() {
		return ErrUnsupported
	}
	return feed(ctx, cfg, interval, Enumerate, sink, report)
}

func feed(ctx context.Context, cfg Config, interval time.Duration, enumerate func(Config) ([]DeviceInfo, error), sink device.Sink, report func(error)) error {
	for ev := range Watch(ctx, cfg, interval, enumerate) {
		switch {
		case errors.Is(ev.Err, ErrUnsupported):
			return ev.Err
		case ev.Err != nil:
			report(fmt.Errorf("enumerate USB keys: %w", ev.Err))
		case ev.Connected:
			if _, err := sink.KeyConnected(ctx, Plug(ev.Device)); err != nil {
				report(err)
			}
		default:
			sink.KeyDisconnected(Plug(ev.Device).ID)
		}
	}
	return nil
}

// Scan tells sink about the keys plugged in now, once (for a command that
// does not keep watching), and returns the problems met. Without USB support
// it returns nothing.
func Scan(ctx context.Context, cfg Config, sink device.Sink) []error {
	if !Supported() {
		return nil
	}
	devs, err := Enumerate(cfg)
	if err != nil {
		return []error{fmt.Errorf("enumerate USB keys: %w", err)}
	}
	var errs []error
	for _, info := range devs {
		if _, err := sink.KeyConnected(ctx, Plug(info)); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}
