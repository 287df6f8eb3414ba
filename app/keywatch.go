package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"keydesk/keys/proto"
	"keydesk/keys/simkey"
	"keydesk/keys/usbhid"
)

// WatchUSBKeys follows keys plugged into this machine's USB ports (polling
// about once a second) until ctx ends. Without USB support in this build
// (no cgo) it returns at once and says so.
func (s *Service) WatchUSBKeys(ctx context.Context, cfg usbhid.Config) error {
	if !usbhid.Supported() {
		return usbhid.ErrUnsupported
	}
	for ev := range usbhid.Watch(ctx, cfg, usbhid.DefaultInterval, nil) {
		switch {
		case ev.Err != nil:
			s.log.Warn("enumerate USB keys", "err", ev.Err)
			if errors.Is(ev.Err, usbhid.ErrUnsupported) {
				return ev.Err
			}
		case ev.Connected:
			if _, err := s.KeyConnected(ctx, USBPlug(ev.Device)); err != nil {
				s.log.Warn("USB key plugged in", "path", ev.Device.Path, "err", err)
			}
		default:
			s.KeyDisconnected("usb:" + ev.Device.Path)
		}
	}
	return nil
}

// USBPlug is the Plug of a key found on USB.
func USBPlug(info usbhid.DeviceInfo) Plug {
	return Plug{ID: "usb:" + info.Path, Kind: "usb", Open: func() (proto.Transport, error) { return usbhid.Open(info) }}
}

// WatchSimulatedKeys treats every simulated key file in dir as a key
// plugged into this machine, looking again every interval until ctx ends: a
// new file is a key plugged in, a file gone is a key unplugged. Simulated
// keys are a test and demo aid (keys/simkey).
func (s *Service) WatchSimulatedKeys(ctx context.Context, dir string, interval time.Duration) {
	loaded := map[string]*simkey.Key{}
	defer func() {
		for path, k := range loaded {
			k.Unplug()
			s.KeyDisconnected("sim:" + path)
		}
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s.scanSimulatedKeys(ctx, dir, loaded)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// unpluggedExt marks a simulated key file that is "unplugged": the watcher
// does not see it, and plugging it in again renames it back.
const unpluggedExt = ".unplugged"

// NewSimulatedKey creates a blank simulated key in the service's simulated
// key directory (the demo's, or --sim-keys); the watcher plugs it in.
func (s *Service) NewSimulatedKey(a Actor) (string, error) {
	if err := authorize(a, "key.add"); err != nil {
		return "", err
	}
	if s.simDir == "" {
		return "", errors.New("no simulated keys here: start the console with --sim-keys DIR or use keydesk demo")
	}
	k, err := simkey.NewInDir(s.simDir)
	if err != nil {
		return "", err
	}
	return k.Serial(), nil
}

// SetSimulatedKeyPlugged plugs a simulated key in or out (by renaming its
// file, which the watcher notices).
func (s *Service) SetSimulatedKeyPlugged(a Actor, serial string, in bool) error {
	if err := authorize(a, "key.add"); err != nil {
		return err
	}
	if s.simDir == "" {
		return errors.New("no simulated keys here")
	}
	if _, err := normalizeSerial(serial); err != nil || strings.ContainsAny(serial, `/\`) {
		return fmt.Errorf("serial %q is not a simulated key's", serial)
	}
	plugged := filepath.Join(s.simDir, serial+simkey.FileExt)
	out := plugged + unpluggedExt
	if in {
		return os.Rename(out, plugged)
	}
	return os.Rename(plugged, out)
}

// SimulatedKeys reports whether this console has simulated keys to plug.
func (s *Service) SimulatedKeys() bool { return s.simDir != "" }

// ScanSimulatedKeys looks at dir once (for commands that do not keep
// watching) and returns the serials plugged in now.
func (s *Service) ScanSimulatedKeys(ctx context.Context, dir string) []string {
	s.scanSimulatedKeys(ctx, dir, map[string]*simkey.Key{})
	return s.PluggedKeys()
}

func (s *Service) scanSimulatedKeys(ctx context.Context, dir string, loaded map[string]*simkey.Key) {
	paths, err := simkey.List(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("list simulated keys", "dir", dir, "err", err)
	}
	present := map[string]bool{}
	for _, path := range paths {
		present[path] = true
		if loaded[path] != nil {
			continue
		}
		k, err := simkey.Load(path)
		if err != nil {
			s.log.Warn("load simulated key", "path", path, "err", err)
			continue
		}
		k.SetAutoSave(path)
		loaded[path] = k
		p := Plug{ID: "sim:" + path, Kind: "simulated", Open: func() (proto.Transport, error) { return k.Plug(), nil }}
		if _, err := s.KeyConnected(ctx, p); err != nil {
			s.log.Warn("simulated key plugged in", "path", path, "err", err)
		}
	}
	for path, k := range loaded {
		if !present[path] {
			k.Unplug()
			delete(loaded, path)
			s.KeyDisconnected("sim:" + path)
		}
	}
}
