package proto

import (
	"fmt"
	"log/slog"

	"github.com/fxamacker/cbor/v2"
)

// Sizes and limits shared by host and key.
const (
	MasterSecretSize = 32   // LINK and AUTH
	NonceSize        = 32   // CHALLENGE nonces
	InitNonceSize    = 8    // INIT nonce
	MaxLoginLen      = 512  // bytes of UTF-8
	MaxPasswordLen   = 1024 // bytes of UTF-8
	MinPINLen        = 4    // bytes of UTF-8
	MaxPINLen        = 63   // bytes of UTF-8
	MaxPINRetries    = 8    // a new or correctly verified PIN resets the counter to this
	ProtocolVersion  = 2    // CTAPHID protocol version in the INIT response
)

// INIT capability flags (CTAP 2.1, 11.2.9.1.3). A key sets a flag only for
// what it does: KeyDesk keys set CapWink and CapNMSG, never CapCBOR, since
// their CBOR messages are vendor commands and not CTAPHID_CBOR.
const (
	CapWink byte = 0x01 // the key implements CTAPHID_WINK (0x08)
	CapCBOR byte = 0x04 // the key implements CTAPHID_CBOR (0x10)
	CapNMSG byte = 0x08 // the key does NOT implement CTAPHID_MSG (0x03)
)

// KeyState is the key's life state as INFO reports it.
type KeyState string

// Key states.
const (
	StateBlank  KeyState = "blank"  // no master secret: accepts KEY_AGREEMENT and LINK
	StateLinked KeyState = "linked" // holds a master secret: AUTH, credential commands
	StateLocked KeyState = "locked" // refuses all but INFO, PING, WINK, LOCK, AUTH and WIPE
)

// Valid reports whether s is one of the three states.
func (s KeyState) Valid() bool {
	return s == StateBlank || s == StateLinked || s == StateLocked
}

// LockReason tells why a locked key is locked.
type LockReason string

// Lock reasons.
const (
	LockNone    LockReason = ""        // not locked
	LockCommand LockReason = "command" // a LOCK command
	LockPIN     LockReason = "pin"     // the PIN retry counter reached 0
)

// Info is the INFO response. It carries no secret.
type Info struct {
	Serial     string     `cbor:"1,keyasint"`
	Model      string     `cbor:"2,keyasint"`
	Firmware   string     `cbor:"3,keyasint"`
	State      KeyState   `cbor:"4,keyasint"`
	Slots      int        `cbor:"5,keyasint"` // number of credential slots (0..Slots-1)
	FreeSlots  int        `cbor:"6,keyasint"` // slots with neither a current nor a pending value
	PINSet     bool       `cbor:"7,keyasint"`
	PINRetries int        `cbor:"8,keyasint"` // wrong PINs left before the key locks
	LockedBy   LockReason `cbor:"9,keyasint,omitempty"`
}

func (i Info) check() error {
	switch {
	case !i.State.Valid():
		return fmt.Errorf("INFO state %.40q: %w", i.State, ErrProtocol)
	case i.Slots < 0 || i.Slots > 255 || i.FreeSlots < 0 || i.FreeSlots > i.Slots:
		return fmt.Errorf("INFO slots %d free %d: %w", i.Slots, i.FreeSlots, ErrProtocol)
	case i.PINRetries < 0 || i.PINRetries > MaxPINRetries:
		return fmt.Errorf("INFO PIN retries %d: %w", i.PINRetries, ErrProtocol)
	}
	return nil
}

// Credential is one slot's value. Its String, GoString and LogValue never
// show the password.
type Credential struct {
	Login    string
	Password string
}

func (c Credential) String() string { return fmt.Sprintf("{%s [redacted password]}", c.Login) }

// GoString redacts the password under %#v.
func (c Credential) GoString() string {
	return fmt.Sprintf("proto.Credential{Login:%q, Password:[redacted]}", c.Login)
}

// LogValue redacts the password in log/slog.
func (c Credential) LogValue() slog.Value {
	return slog.GroupValue(slog.String("login", c.Login), slog.String("password", "[redacted]"))
}

// Format redacts the password under every fmt verb.
func (c Credential) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, c.GoString())
		return
	}
	fmt.Fprint(f, c.String())
}

func (c Credential) check() error {
	switch {
	case c.Login == "" || len(c.Login) > MaxLoginLen:
		return fmt.Errorf("login of %d bytes, want 1..%d", len(c.Login), MaxLoginLen)
	case len(c.Password) > MaxPasswordLen:
		return fmt.Errorf("password longer than %d bytes", MaxPasswordLen)
	}
	return nil
}

// SlotInfo describes one used slot (LIST). It carries no password.
type SlotInfo struct {
	Slot    int    `cbor:"1,keyasint"`
	Login   string `cbor:"2,keyasint,omitempty"` // the current login, else the pending one
	Current bool   `cbor:"3,keyasint"`           // holds a current value
	Pending bool   `cbor:"4,keyasint"`           // holds a pending value awaiting COMMIT or DISCARD
}

// Wire messages (CBOR maps with small integer keys, as CTAP2). The field
// numbers are the protocol: see docs/KEY-PROTOCOL.md.
type (
	// KeyAgreementResponse: the key's one-use P-256 public key, uncompressed (65 bytes).
	// With attestation, the key's chain and its signature over
	// AgreementMessage.
	KeyAgreementResponse struct {
		KeyPub []byte   `cbor:"1,keyasint"`
		Chain  [][]byte `cbor:"2,keyasint,omitempty"`
		Sig    []byte   `cbor:"3,keyasint,omitempty"`
	}
	// LinkRequest: the host's P-256 public key, the key's public key it
	// agreed with, and the AES-256-GCM sealed master secret.
	LinkRequest struct {
		HostPub    []byte `cbor:"1,keyasint"`
		KeyPub     []byte `cbor:"2,keyasint"`
		Nonce      []byte `cbor:"3,keyasint"`
		Ciphertext []byte `cbor:"4,keyasint"`
	}
	// LinkResponse: HMAC proof that the key holds the master secret and,
	// with attestation, the key's signature over LinkedMessage.
	LinkResponse struct {
		Confirm []byte `cbor:"1,keyasint"`
		Sig     []byte `cbor:"2,keyasint,omitempty"`
	}
	// ChallengeRequest / ChallengeResponse: 32-byte nonces of both sides.
	ChallengeRequest struct {
		HostNonce []byte `cbor:"1,keyasint"`
	}
	ChallengeResponse struct {
		KeyNonce []byte `cbor:"1,keyasint"`
	}
	// AuthRequest / AuthResponse: HMAC proofs of host and key.
	AuthRequest struct {
		Proof []byte `cbor:"1,keyasint"`
	}
	AuthResponse struct {
		Proof []byte `cbor:"1,keyasint"`
	}
	// Envelope carries every session command and its response: the
	// message counter and the AES-256-GCM ciphertext of the inner CBOR.
	Envelope struct {
		Ctr        uint64 `cbor:"1,keyasint"`
		Ciphertext []byte `cbor:"2,keyasint"`
	}
	// SlotRequest: COMMIT, DISCARD, DELETE (inside the envelope).
	SlotRequest struct {
		Slot int `cbor:"1,keyasint"`
	}
	// WriteRequest: WRITE (inside the envelope).
	WriteRequest struct {
		Slot     int    `cbor:"1,keyasint"`
		Login    string `cbor:"2,keyasint"`
		Password string `cbor:"3,keyasint"`
	}
	// ReadRequest: READ (inside the envelope); Pending selects the pending value.
	ReadRequest struct {
		Slot    int  `cbor:"1,keyasint"`
		Pending bool `cbor:"2,keyasint,omitempty"`
	}
	// ReadResponse: READ's answer (inside the envelope).
	ReadResponse struct {
		Login    string `cbor:"1,keyasint"`
		Password string `cbor:"2,keyasint"`
	}
	// ListResponse: LIST's answer (inside the envelope).
	ListResponse struct {
		Slots []SlotInfo `cbor:"1,keyasint"`
	}
	// PINRequest: SET_PIN and VERIFY_PIN (inside the envelope).
	PINRequest struct {
		PIN string `cbor:"1,keyasint"`
	}
	// Empty is the empty map {} (requests and responses without fields).
	Empty struct{}
)

// Marshal encodes a wire message in CTAP2 canonical CBOR.
func Marshal(v any) ([]byte, error) {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		return nil, fmt.Errorf("cbor encoder: %w", err)
	}
	b, err := em.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding %T: %w", v, err)
	}
	return b, nil
}

// Unmarshal decodes one CBOR wire message, refusing trailing bytes,
// duplicate map keys, indefinite lengths and deep nesting. A failure wraps
// ErrProtocol.
func Unmarshal(data []byte, v any) error {
	dm, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		MaxNestedLevels:  4,
		MaxArrayElements: 256,
		MaxMapPairs:      256,
	}.DecMode()
	if err != nil {
		return fmt.Errorf("cbor decoder: %w", err)
	}
	if err := dm.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decoding %T: %w: %w", v, ErrProtocol, err)
	}
	return nil
}
