// Package simkey is a simulated KeyDesk hardware key: the key's side of the
// protocol in keys/proto (docs/KEY-PROTOCOL.md), answering report by report
// over an in-memory "USB connection" (Plug). It keeps the key's state (blank,
// linked, locked), master secret, credential slots with pending values, the
// PIN and its retry counter, and can persist all of it to a file so a demo
// key keeps its state between runs.
//
// A key file holds the simulated key's secrets in the clear (mode 0600): it
// is a simulation and test aid, not a secure store.
package simkey

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"sync"
	"time"

	"keydesk/keys/proto"
)

// KeepaliveInterval is how often a key that is still working on a command
// sends KEEPALIVE (the first one goes out at once).
const KeepaliveInterval = 100 * time.Millisecond

// msgTimeout is how long a partly received message may wait for its next
// packet before another channel may take the key over (CTAPHID: 500 ms).
const msgTimeout = 500 * time.Millisecond

// maxChannels bounds the allocated channels; the oldest is dropped beyond.
const maxChannels = 16

// capabilities are the INIT capability flags: the key implements
// CTAPHID_WINK and not CTAPHID_MSG. It does not set CapCBOR: it does not
// implement CTAPHID_CBOR (its CBOR messages are vendor commands).
const capabilities = proto.CapWink | proto.CapNMSG

// Key is one simulated key. It is safe for concurrent use.
type Key struct {
	mu     sync.Mutex
	st     state             // persistent
	attest *ecdsa.PrivateKey // st.AttestKey, parsed; nil: the key cannot attest

	autosave string
	delay    time.Duration
	hold     chan struct{} // non-nil while held; closed on release
	winks    int

	// volatile ("RAM"): lost on Unplug
	pipes     map[*pipe]struct{}
	unplugged chan struct{} // closed by Unplug; then replaced
	channels  map[uint32]*channel
	order     []uint32 // channel allocation order
	asm       proto.Assembler
	asmAt     time.Time
	job       *job // a command being processed slowly
}

// channel is the per-channel volatile state.
type channel struct {
	agreement *ecdh.PrivateKey // one-use KEY_AGREEMENT key
	nonce     []byte           // the host's nonce sent with it
	challenge *challenge       // one-use CHALLENGE nonces
	session   *session
}

type challenge struct{ hostNonce, keyNonce []byte }

type session struct {
	cipher  *proto.SessionCipher
	lastCtr uint64
	pinOK   bool
}

type job struct{ cid uint32 }

// New returns a blank key with DefaultSlots slots.
func New(serial string) *Key { return newKey(blankState(serial, DefaultSlots)) }

func newKey(st state) *Key {
	return &Key{
		st:        st,
		attest:    parseAttestKey(st.AttestKey),
		pipes:     map[*pipe]struct{}{},
		unplugged: make(chan struct{}),
		channels:  map[uint32]*channel{},
	}
}

func parseAttestKey(der []byte) *ecdsa.PrivateKey {
	if der == nil {
		return nil
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil
	}
	ek, _ := k.(*ecdsa.PrivateKey)
	return ek
}

// AttestationChain is the key's attestation certificate chain (public):
// nil for a key that cannot attest.
func (k *Key) AttestationChain() [][]byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([][]byte(nil), k.st.AttestChain...)
}

// PresentChain makes the key present chain as its attestation chain while
// it keeps signing with its own attestation key: a test aid for a clone
// that copied another key's (public) certificate.
func (k *Key) PresentChain(chain [][]byte) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.st.AttestChain = chain
}

// Load reads a key written by Save. Autosave is off until SetAutoSave.
func Load(path string) (*Key, error) {
	st, err := loadState(path)
	if err != nil {
		return nil, err
	}
	return newKey(st), nil
}

// Save writes the key's persistent state to path atomically, mode 0600.
func (k *Key) Save(path string) error {
	k.mu.Lock()
	st := k.st.clone()
	k.mu.Unlock()
	return st.save(path)
}

// SetAutoSave makes the key write its state to path after every change
// (an empty path turns it off). A failed write fails the command that made
// the change (CodeOther) and leaves the state as it was.
func (k *Key) SetAutoSave(path string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.autosave = path
}

// Serial is the key's serial number.
func (k *Key) Serial() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.st.Serial
}

// SetDelay makes the key take d for every command (after the whole request
// arrived), sending KEEPALIVE meanwhile, as a real key waiting for a touch.
func (k *Key) SetDelay(d time.Duration) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.delay = d
}

// Hold makes the key stop before executing each command it receives, sending
// KEEPALIVE, until release is called (a test can then unplug mid-exchange
// deterministically). Release is idempotent.
func (k *Key) Hold() (release func()) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.hold == nil {
		k.hold = make(chan struct{})
	}
	h := k.hold
	var once sync.Once
	return func() {
		once.Do(func() {
			k.mu.Lock()
			defer k.mu.Unlock()
			close(h)
			if k.hold == h {
				k.hold = nil
			}
		})
	}
}

// Winks is how many WINK (or CTAPHID_WINK) commands the key executed.
func (k *Key) Winks() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.winks
}

// Plug opens a new in-memory "USB connection" to the key. Several may be
// open at once: like a HID device, the key's reports reach every open
// connection, and each host keeps to its own channel.
func (k *Key) Plug() proto.Transport {
	k.mu.Lock()
	defer k.mu.Unlock()
	p := newPipe(k)
	k.pipes[p] = struct{}{}
	return p
}

// Unplug disconnects the key: every open transport fails with ErrUnplugged
// from now on, also in the middle of an exchange, and the key loses its
// volatile state (channels, sessions, a half-received message, a command not
// yet executed) as a real key losing power. Persistent state is untouched.
// Plug connects it again.
func (k *Key) Unplug() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for p := range k.pipes {
		p.fail(proto.ErrUnplugged)
	}
	k.pipes = map[*pipe]struct{}{}
	close(k.unplugged)
	k.unplugged = make(chan struct{})
	k.channels = map[uint32]*channel{}
	k.order = nil
	k.asm.Reset()
	k.job = nil
}

// String names the key without revealing anything secret.
func (k *Key) String() string { return fmt.Sprintf("simkey %s", k.Serial()) }

// Typed is one credential as the key types it at a login screen.
type Typed struct {
	Slot int
	proto.Credential
}

// ErrPINNeeded: the key has a PIN and types nothing without it.
var ErrPINNeeded = errors.New("the key has a PIN: give it to have the key type")

// Type is what the key would type at a login screen, one credential per
// used slot (its current value; a pending value is never typed), as a
// person pressing the key's button would get it. A key with a PIN needs it
// (a wrong PIN counts against the retries, as on the device); a locked or
// blank key types nothing.
func (k *Key) Type(pin string) ([]Typed, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	switch k.st.State {
	case proto.StateLinked:
	default:
		return nil, fmt.Errorf("the key is %s: it types nothing", k.st.State)
	}
	if k.st.PINHash != nil {
		if pin == "" {
			return nil, ErrPINNeeded
		}
		var s session
		if _, code := k.verifyPIN(&s, pin); code != 0 {
			return nil, fmt.Errorf("the PIN: %w", &proto.KeyError{Cmd: proto.CmdVerifyPIN, Code: code})
		}
	}
	var out []Typed
	for i, sl := range k.st.Slots {
		if sl.Current != nil {
			out = append(out, Typed{Slot: i, Credential: proto.Credential{Login: sl.Current.Login, Password: sl.Current.Password}})
		}
	}
	return out, nil
}
