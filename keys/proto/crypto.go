package proto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// Labels that separate every derived key and proof (domain separation).
const (
	labelLink        = "keydesk link v1"
	labelLinkConfirm = "keydesk link confirm v1"
	labelAuthHost    = "keydesk auth host v1"
	labelAuthKey     = "keydesk auth key v1"
	labelSession     = "keydesk session v1"
)

// LinkKey derives LINK's AES-256 key from the ECDH shared secret:
// HKDF-SHA256(ikm = shared, salt = keyPub || hostPub, info = "keydesk link v1").
func LinkKey(shared, keyPub, hostPub []byte) ([]byte, error) {
	k, err := hkdf.Key(sha256.New, shared, concat(keyPub, hostPub), labelLink, 32)
	if err != nil {
		return nil, fmt.Errorf("deriving the link key: %w", err)
	}
	return k, nil
}

// SealLink encrypts the master secret for LINK with AES-256-GCM under the
// link key, with keyPub || hostPub as additional data and a random nonce.
func SealLink(linkKey, keyPub, hostPub, secret []byte) (nonce, ciphertext []byte, err error) {
	aead, err := newGCM(linkKey)
	if err != nil {
		return nil, nil, err
	}
	nonce = make([]byte, aead.NonceSize())
	rand.Read(nonce)
	return nonce, aead.Seal(nil, nonce, secret, concat(keyPub, hostPub)), nil
}

// OpenLink is SealLink's inverse; a failure wraps ErrAuth.
func OpenLink(linkKey, keyPub, hostPub, nonce, ciphertext []byte) ([]byte, error) {
	aead, err := newGCM(linkKey)
	if err != nil {
		return nil, err
	}
	if len(nonce) != aead.NonceSize() {
		return nil, fmt.Errorf("link nonce of %d bytes: %w", len(nonce), ErrProtocol)
	}
	secret, err := aead.Open(nil, nonce, ciphertext, concat(keyPub, hostPub))
	if err != nil {
		return nil, fmt.Errorf("opening the link message: %w", ErrAuth)
	}
	return secret, nil
}

// LinkConfirm is the key's proof, after LINK, that it received the secret:
// HMAC-SHA256(master, "keydesk link confirm v1" || keyPub || hostPub).
func LinkConfirm(master, keyPub, hostPub []byte) []byte {
	return mac(master, []byte(labelLinkConfirm), keyPub, hostPub)
}

// HostProof is the host's AUTH proof:
// HMAC-SHA256(master, "keydesk auth host v1" || CID || hostNonce || keyNonce).
func HostProof(master []byte, cid uint32, hostNonce, keyNonce []byte) []byte {
	return mac(master, []byte(labelAuthHost), cidBytes(cid), hostNonce, keyNonce)
}

// KeyProof is the key's AUTH proof (same inputs, its own label), so the host
// knows it talks to the key it linked.
func KeyProof(master []byte, cid uint32, hostNonce, keyNonce []byte) []byte {
	return mac(master, []byte(labelAuthKey), cidBytes(cid), hostNonce, keyNonce)
}

// Side says which end of a session a SessionCipher serves.
type Side int

// The two ends.
const (
	HostSide Side = iota
	KeySide
)

// SessionCipher seals and opens session envelopes. Keys:
// HKDF-SHA256(ikm = master, salt = hostNonce || keyNonce,
// info = "keydesk session v1" || CID) gives 64 bytes: host-to-key key, then
// key-to-host key. Nonce = 4 zero bytes || counter (8 bytes big-endian);
// additional data = CID (4) || CMD (1). Each side seals with its own
// direction's key, so a counter value is never used twice under one key.
type SessionCipher struct {
	cid        uint32
	send, recv cipher.AEAD
}

// NewSessionCipher derives a session's keys after a successful AUTH.
func NewSessionCipher(master []byte, cid uint32, hostNonce, keyNonce []byte, side Side) (*SessionCipher, error) {
	keys, err := hkdf.Key(sha256.New, master, concat(hostNonce, keyNonce), labelSession+string(cidBytes(cid)), 64)
	if err != nil {
		return nil, fmt.Errorf("deriving session keys: %w", err)
	}
	h2k, err := newGCM(keys[:32])
	if err != nil {
		return nil, err
	}
	k2h, err := newGCM(keys[32:])
	if err != nil {
		return nil, err
	}
	c := &SessionCipher{cid: cid, send: h2k, recv: k2h}
	if side == KeySide {
		c.send, c.recv = k2h, h2k
	}
	return c, nil
}

// Seal encrypts an outgoing message of command cmd with counter ctr.
func (c *SessionCipher) Seal(cmd Command, ctr uint64, plaintext []byte) []byte {
	return c.send.Seal(nil, sessionNonce(ctr), plaintext, c.aad(cmd))
}

// Open decrypts an incoming message; a failure wraps ErrAuth.
func (c *SessionCipher) Open(cmd Command, ctr uint64, ciphertext []byte) ([]byte, error) {
	pt, err := c.recv.Open(nil, sessionNonce(ctr), ciphertext, c.aad(cmd))
	if err != nil {
		return nil, fmt.Errorf("opening %s message %d: %w", cmd, ctr, ErrAuth)
	}
	return pt, nil
}

func (c *SessionCipher) aad(cmd Command) []byte { return append(cidBytes(c.cid), byte(cmd)) }

func sessionNonce(ctr uint64) []byte {
	n := make([]byte, 12)
	binary.BigEndian.PutUint64(n[4:], ctr)
	return n
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("AES key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("AES-GCM: %w", err)
	}
	return aead, nil
}

func mac(key []byte, parts ...[]byte) []byte {
	h := hmac.New(sha256.New, key)
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

func cidBytes(cid uint32) []byte { return binary.BigEndian.AppendUint32(nil, cid) }

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
