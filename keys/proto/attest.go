package proto

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
)

// Attestation: a key proves who it is with an attestation key pair (P-256)
// and a certificate chain from its maker's CA naming its serial. It signs
// (ECDSA P-256 with SHA-256, ASN.1 DER) every statement the host relies on,
// each over a fresh 32-byte nonce of the host's: ATTEST (its serial and
// state), KEY_AGREEMENT (its one-use ECDH public key) and LINK (both ECDH
// public keys). The host checks the chain and the signature (package keys)
// before it believes the statement; a key without attestation sends no
// chain and no signature.

// Labels of the signed statements (domain separation).
const (
	labelAttest    = "keydesk attest v1"
	labelAgreement = "keydesk agreement v1"
	labelLinked    = "keydesk linked v1"
)

// Evidence is a statement signed by a key's attestation key.
type Evidence struct {
	Chain     [][]byte // the attestation certificate first (DER), then intermediates; nil: none sent
	Message   []byte   // the bytes signed
	Signature []byte   // ECDSA P-256 SHA-256, ASN.1 DER
}

// Missing reports whether the key sent no attestation at all.
func (e Evidence) Missing() bool { return len(e.Chain) == 0 && len(e.Signature) == 0 }

// Check decides whether evidence proves what the host needs (package keys
// verifies it); a non-nil error stops the exchange.
type Check func(Evidence) error

// Statement is what ATTEST signs about the key: its serial and its state.
type Statement struct {
	Serial   string
	State    KeyState
	LockedBy LockReason
}

// Wire messages of attestation.
type (
	// AttestRequest: the host's fresh nonce.
	AttestRequest struct {
		Nonce []byte `cbor:"1,keyasint"`
	}
	// AttestResponse: the chain, the signature over AttestMessage, and the
	// serial and state it signs.
	AttestResponse struct {
		Chain    [][]byte   `cbor:"1,keyasint"`
		Sig      []byte     `cbor:"2,keyasint"`
		Serial   string     `cbor:"3,keyasint"`
		State    KeyState   `cbor:"4,keyasint"`
		LockedBy LockReason `cbor:"5,keyasint,omitempty"`
	}
	// KeyAgreementRequest: the host's fresh nonce, which the key's
	// signatures of KEY_AGREEMENT and LINK cover.
	KeyAgreementRequest struct {
		Nonce []byte `cbor:"1,keyasint"`
	}
)

// AttestMessage is what ATTEST signs:
// "keydesk attest v1" || CID || nonce || len(serial) || serial ||
// len(state) || state || len(lockedBy) || lockedBy (lengths one byte).
func AttestMessage(cid uint32, nonce []byte, st Statement) []byte {
	return concat([]byte(labelAttest), cidBytes(cid), nonce, lp(st.Serial), lp(string(st.State)), lp(string(st.LockedBy)))
}

// AgreementMessage is what KEY_AGREEMENT signs:
// "keydesk agreement v1" || CID || nonce || key public key.
func AgreementMessage(cid uint32, nonce, keyPub []byte) []byte {
	return concat([]byte(labelAgreement), cidBytes(cid), nonce, keyPub)
}

// LinkedMessage is what LINK signs once the key holds the secret:
// "keydesk linked v1" || CID || nonce || key public key || host public key
// || confirmation.
func LinkedMessage(cid uint32, nonce, keyPub, hostPub, confirm []byte) []byte {
	return concat([]byte(labelLinked), cidBytes(cid), nonce, keyPub, hostPub, confirm)
}

func lp(s string) []byte {
	if len(s) > 255 {
		s = s[:255]
	}
	return append([]byte{byte(len(s))}, s...)
}

// Attest asks the key to sign its serial and state over a fresh nonce. A
// key that cannot attest (it answers INVALID_CMD) gives empty Evidence and
// no error; the caller decides (package keys).
func (d *Device) Attest(ctx context.Context) (Statement, Evidence, error) {
	nonce := make([]byte, NonceSize)
	rand.Read(nonce)
	var resp AttestResponse
	err := d.call(ctx, CmdAttest, AttestRequest{Nonce: nonce}, &resp)
	var ke *KeyError
	if errors.As(err, &ke) && ke.Code == CodeInvalidCmd {
		return Statement{}, Evidence{}, nil
	}
	if err != nil {
		return Statement{}, Evidence{}, fmt.Errorf("attesting the key: %w", err)
	}
	st := Statement{Serial: resp.Serial, State: resp.State, LockedBy: resp.LockedBy}
	if !st.State.Valid() || len(resp.Chain) == 0 || len(resp.Sig) == 0 {
		return Statement{}, Evidence{}, fmt.Errorf("attesting the key: an incomplete answer: %w", ErrProtocol)
	}
	return st, Evidence{Chain: resp.Chain, Message: AttestMessage(d.CID(), nonce, st), Signature: resp.Sig}, nil
}
