package simkey

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"keydesk/keys/device"
	"keydesk/keys/proto"
)

// unpluggedExt marks a key file that is "unplugged": the directory's watcher
// does not see it, and plugging it in again renames it back.
const unpluggedExt = ".unplugged"

// Dir is a directory of simulated key files, each a key plugged into this
// machine (a test and demo aid: --sim-keys DIR, and the demo's own). It
// creates keys and plugs them in and out for the application layer, and
// tells a device.Sink about them as a USB port would.
type Dir struct {
	path   string
	maker  *Maker
	loaded map[string]*Key // by file path, while plugged in
}

// NewDir is the simulated keys of the directory at path (created 0700 if
// missing), with the directory's simulation maker CA (created the first
// time: MakerCertFile).
func NewDir(path string) (*Dir, error) {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("create the simulated key directory: %w", err)
	}
	m, err := LoadOrCreateMaker(path)
	if err != nil {
		return nil, err
	}
	return &Dir{path: path, maker: m, loaded: map[string]*Key{}}, nil
}

// Maker is the directory's simulation maker CA, whose keys the demo and
// --sim-keys trust.
func (d *Dir) Maker() *Maker { return d.maker }

// Path is the directory.
func (d *Dir) Path() string { return d.path }

// New creates a blank key in the directory, attested by the directory's
// maker, and returns its serial; the watcher plugs it in.
func (d *Dir) New() (string, error) {
	k, err := NewInDir(d.path, d.maker, "")
	if err != nil {
		return "", err
	}
	return k.Serial(), nil
}

// NewClaiming creates a key that claims serial claimed but whose
// attestation (from the directory's maker) names its own serial, which is
// returned (its file is <own serial>.simkey): a clone, for showing that
// KeyDesk refuses one.
func (d *Dir) NewClaiming(claimed string) (string, error) {
	k, err := NewInDir(d.path, d.maker, claimed)
	if err != nil {
		return "", err
	}
	b, _ := x509.ParseCertificate(k.AttestationChain()[0])
	return b.Subject.SerialNumber, nil
}

// SetPlugged plugs a key in or out by renaming its file, which the watcher
// notices.
func (d *Dir) SetPlugged(serial string, in bool) error {
	if serial == "" || strings.ContainsAny(serial, `/\`) || serial != filepath.Base(serial) || strings.HasPrefix(serial, ".") {
		return fmt.Errorf("serial %q is not a simulated key's", serial)
	}
	plugged := filepath.Join(d.path, serial+FileExt)
	out := plugged + unpluggedExt
	if in {
		return os.Rename(out, plugged)
	}
	return os.Rename(plugged, out)
}

// Feed looks at the directory every interval until ctx ends and tells sink
// about each key file that appeared (plugged in) or went (unplugged); when
// ctx ends every key is unplugged. Problems go to report.
func (d *Dir) Feed(ctx context.Context, interval time.Duration, sink device.Sink, report func(error)) {
	defer func() {
		for path, k := range d.loaded {
			k.Unplug()
			delete(d.loaded, path)
			sink.KeyDisconnected(plugID(path))
		}
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		for _, err := range d.Scan(ctx, sink) {
			report(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Scan looks at the directory once, tells sink about what changed since the
// last look, and returns the problems met. A Dir is scanned by one
// goroutine at a time.
func (d *Dir) Scan(ctx context.Context, sink device.Sink) []error {
	var errs []error
	paths, err := List(d.path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	present := map[string]bool{}
	for _, path := range paths {
		present[path] = true
		if d.loaded[path] != nil {
			continue
		}
		k, err := Load(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("load simulated key %s: %w", path, err))
			continue
		}
		k.SetAutoSave(path)
		d.loaded[path] = k
		p := device.Plug{ID: plugID(path), Kind: "simulated", Place: device.PlaceLocal, Open: func() (proto.Transport, error) { return k.Plug(), nil }}
		if _, err := sink.KeyConnected(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}
	for path, k := range d.loaded {
		if !present[path] {
			k.Unplug()
			delete(d.loaded, path)
			sink.KeyDisconnected(plugID(path))
		}
	}
	return errs
}

func plugID(path string) string { return "sim:" + path }
