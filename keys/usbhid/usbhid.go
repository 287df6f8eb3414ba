// Package usbhid connects to real KeyDesk keys over USB HID through
// github.com/karalabe/hid: it enumerates keys by vendor id, product id and
// interface, opens one as a proto.Transport, and watches for keys being
// plugged in and out by polling (the library has no hotplug notification).
//
// On Linux the library uses libusb through /dev/bus/usb (not hidraw): access
// needs a udev rule for the USB device, usage page and usage are 0 (keys are
// matched by vendor id, product id and interface), and an open key is
// detached from the kernel's HID driver while it is held.
//
// Built without cgo the library's disabled variant is used: Supported is
// false, Enumerate and Open return ErrUnsupported and Watch reports that once,
// so the program runs with keys shown as unavailable.
package usbhid

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/karalabe/hid"

	"keydesk/keys/proto"
)

// Defaults: the pid.codes test vendor and product id.
const (
	DefaultVendorID  uint16 = 0x1209
	DefaultProductID uint16 = 0x0001
	AnyInterface            = -1
)

// ErrUnsupported: USB HID is not available in this build (no cgo) or on this
// platform.
var ErrUnsupported = errors.New("USB HID keys are not supported in this build")

// Config selects the keys to talk to. Fields are taken as given: a zero
// VendorID or ProductID matches any (as in hidapi); Interface -1 matches any.
type Config struct {
	VendorID, ProductID uint16
	Interface           int
}

// DefaultConfig is 0x1209/0x0001, any interface.
func DefaultConfig() Config {
	return Config{VendorID: DefaultVendorID, ProductID: DefaultProductID, Interface: AnyInterface}
}

// DeviceInfo describes one enumerated key interface.
type DeviceInfo struct {
	Path         string // platform device path: the identity used by Watch
	Serial       string
	Manufacturer string
	Product      string
	VendorID     uint16
	ProductID    uint16
	Release      uint16
	Interface    int
}

// Supported reports whether USB HID works in this build (false without cgo).
func Supported() bool { return hid.Supported() }

// Enumerate lists the attached keys that match cfg. Without USB support it
// returns nil and ErrUnsupported.
func Enumerate(cfg Config) ([]DeviceInfo, error) {
	if !hid.Supported() {
		return nil, fmt.Errorf("enumerating USB keys: %w", ErrUnsupported)
	}
	infos, err := hid.Enumerate(cfg.VendorID, cfg.ProductID)
	if err != nil {
		return nil, fmt.Errorf("enumerating USB keys %04x:%04x: %w", cfg.VendorID, cfg.ProductID, err)
	}
	var out []DeviceInfo
	for _, i := range infos {
		if cfg.Interface != AnyInterface && i.Interface != cfg.Interface {
			continue
		}
		out = append(out, DeviceInfo{
			Path: i.Path, Serial: i.Serial, Manufacturer: i.Manufacturer, Product: i.Product,
			VendorID: i.VendorID, ProductID: i.ProductID, Release: i.Release, Interface: i.Interface,
		})
	}
	return out, nil
}

// Open opens an enumerated key as a proto.Transport.
func Open(info DeviceInfo) (proto.Transport, error) {
	if !hid.Supported() {
		return nil, fmt.Errorf("opening USB key %s: %w", info.Path, ErrUnsupported)
	}
	dev, err := hid.DeviceInfo{
		Path: info.Path, VendorID: info.VendorID, ProductID: info.ProductID, Interface: info.Interface,
	}.Open()
	if err != nil {
		return nil, fmt.Errorf("opening USB key %s: %w", info.Path, err)
	}
	// karalabe/hid prepends the report ID itself on Windows only.
	return newTransport(dev, runtime.GOOS != "windows"), nil
}
