package simkey_test

import (
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"testing"

	"keydesk/keys/proto"
	"keydesk/keys/simkey"
)

// TestReplayedLinkRefused records a real LINK and replays it in the ways an
// attacker on the USB bus could; the key must refuse every one and stay blank.
func TestReplayedLinkRefused(t *testing.T) {
	tests := []struct {
		name   string
		replay func(t *testing.T, k *simkey.Key, d *proto.Device, tap *simkey.Tap, ka, link [][]byte) error
		want   proto.ErrorCode
	}{
		{"same channel, after wipe", func(t *testing.T, _ *simkey.Key, _ *proto.Device, tap *simkey.Tap, _, link [][]byte) error {
			_, err := raw(t, tap, link)
			return err
		}, proto.CodeReplay},
		{"after a fresh key agreement", func(t *testing.T, _ *simkey.Key, d *proto.Device, tap *simkey.Tap, _, link [][]byte) error {
			ka, _ := proto.Encode(d.CID(), proto.CmdKeyAgreement, nil)
			if _, err := raw(t, tap, ka); err != nil {
				t.Fatal(err)
			}
			_, err := raw(t, tap, link)
			return err
		}, proto.CodeReplay},
		{"key agreement replayed too", func(t *testing.T, _ *simkey.Key, _ *proto.Device, tap *simkey.Tap, ka, link [][]byte) error {
			if _, err := raw(t, tap, ka); err != nil {
				t.Fatal(err)
			}
			_, err := raw(t, tap, link)
			return err
		}, proto.CodeReplay},
		{"fresh agreement key spliced into the recording", func(t *testing.T, _ *simkey.Key, d *proto.Device, tap *simkey.Tap, ka, link [][]byte) error {
			resp, err := raw(t, tap, ka)
			if err != nil {
				t.Fatal(err)
			}
			var fresh proto.KeyAgreementResponse
			var req proto.LinkRequest
			if err := proto.Unmarshal(resp, &fresh); err != nil {
				t.Fatal(err)
			}
			if err := proto.Unmarshal(payloadOf(t, link), &req); err != nil {
				t.Fatal(err)
			}
			req.KeyPub = fresh.KeyPub
			b, _ := proto.Marshal(req)
			forged, _ := proto.Encode(d.CID(), proto.CmdLink, b)
			_, err = raw(t, tap, forged)
			return err
		}, proto.CodeAuthFailed},
		{"another blank key, channel rewritten", func(t *testing.T, _ *simkey.Key, _ *proto.Device, _ *simkey.Tap, ka, link [][]byte) error {
			other := simkey.New("SIM-OTHER")
			d2, tap2 := open(t, other, simkey.TapHooks{})
			if _, err := raw(t, tap2, withCID(ka, d2.CID())); err != nil {
				t.Fatal(err)
			}
			_, err := raw(t, tap2, withCID(link, d2.CID()))
			if i := info(t, d2); i.State != proto.StateBlank {
				t.Errorf("other key's state %s after replay", i.State)
			}
			return err
		}, proto.CodeReplay},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := simkey.New("SIM-REPLAY")
			d, tap := open(t, k, simkey.TapHooks{})
			tap.Reset()
			if err := d.Link(ctxT(t), secret(1), nil); err != nil {
				t.Fatal(err)
			}
			ka := message(t, tap.Written(), proto.CmdKeyAgreement)
			link := message(t, tap.Written(), proto.CmdLink)
			s, err := d.Auth(ctxT(t), secret(1))
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Wipe(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			err = tc.replay(t, k, d, tap, ka, link)
			if keyCode(err) != tc.want {
				t.Fatalf("replayed LINK: %v, want key error %s", err, tc.want)
			}
			if i := info(t, d); i.State != proto.StateBlank {
				t.Fatalf("key state %s after a replayed LINK, want blank", i.State)
			}
			if _, err := d.Auth(ctxT(t), secret(1)); err == nil {
				t.Fatal("the recorded secret opens a session after replay")
			}
		})
	}
}

// TestLinkOnLinkedKeyRefused: a recorded LINK cannot re-link a linked key either.
func TestLinkOnLinkedKeyRefused(t *testing.T) {
	_, d, tap, _ := linked(t)
	link := message(t, tap.Written(), proto.CmdLink)
	if _, err := raw(t, tap, link); keyCode(err) != proto.CodeWrongState {
		t.Fatalf("LINK replayed on a linked key: %v, want wrong state", err)
	}
	if err := d.Link(ctxT(t), secret(9), nil); keyCode(err) != proto.CodeWrongState {
		t.Fatalf("LINK on a linked key: %v, want wrong state", err)
	}
	if _, err := d.Auth(ctxT(t), secret(1)); err != nil {
		t.Fatalf("the original secret no longer works: %v", err)
	}
}

// hostCipher rebuilds the host's session cipher from a recorded
// CHALLENGE/AUTH (test only: it needs the master secret).
func hostCipher(t *testing.T, tap *simkey.Tap, cid uint32, master []byte) *proto.SessionCipher {
	t.Helper()
	var req proto.ChallengeRequest
	var resp proto.ChallengeResponse
	if err := proto.Unmarshal(payloadOf(t, message(t, tap.Written(), proto.CmdChallenge)), &req); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(payloadOf(t, message(t, tap.Read(), proto.CmdChallenge)), &resp); err != nil {
		t.Fatal(err)
	}
	c, err := proto.NewSessionCipher(master, cid, req.HostNonce, resp.KeyNonce, proto.HostSide)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func envelope(t *testing.T, c *proto.SessionCipher, cid uint32, cmd proto.Command, ctr uint64, inner any) [][]byte {
	t.Helper()
	pt, _ := proto.Marshal(inner)
	b, _ := proto.Marshal(proto.Envelope{Ctr: ctr, Ciphertext: c.Seal(cmd, ctr, pt)})
	r, err := proto.Encode(cid, cmd, b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSessionReplayRefused: replayed, stale, reordered, re-targeted or
// re-channelled session messages are refused and change nothing.
func TestSessionReplayRefused(t *testing.T) {
	cred := func(p string) proto.WriteRequest { return proto.WriteRequest{Slot: 2, Login: "eve", Password: p} }
	tests := []struct {
		name   string
		attack func(t *testing.T, k *simkey.Key, d *proto.Device, tap *simkey.Tap, c *proto.SessionCipher) error
		want   proto.ErrorCode
	}{
		{"recorded WRITE replayed", func(t *testing.T, _ *simkey.Key, _ *proto.Device, tap *simkey.Tap, _ *proto.SessionCipher) error {
			_, err := raw(t, tap, message(t, tap.Written(), proto.CmdWrite))
			return err
		}, proto.CodeReplay},
		{"reordered: 9 after 10", func(t *testing.T, _ *simkey.Key, d *proto.Device, tap *simkey.Tap, c *proto.SessionCipher) error {
			if _, err := raw(t, tap, envelope(t, c, d.CID(), proto.CmdDiscard, 10, proto.SlotRequest{Slot: 5})); err != nil {
				t.Fatalf("counter 10: %v", err)
			}
			_, err := raw(t, tap, envelope(t, c, d.CID(), proto.CmdWrite, 9, cred("forged")))
			return err
		}, proto.CodeReplay},
		{"same counter twice", func(t *testing.T, _ *simkey.Key, d *proto.Device, tap *simkey.Tap, c *proto.SessionCipher) error {
			if _, err := raw(t, tap, envelope(t, c, d.CID(), proto.CmdDiscard, 10, proto.SlotRequest{Slot: 5})); err != nil {
				t.Fatalf("counter 10: %v", err)
			}
			_, err := raw(t, tap, envelope(t, c, d.CID(), proto.CmdWrite, 10, cred("forged")))
			return err
		}, proto.CodeReplay},
		{"sealed for DISCARD, sent as WRITE", func(t *testing.T, _ *simkey.Key, d *proto.Device, tap *simkey.Tap, c *proto.SessionCipher) error {
			m := envelope(t, c, d.CID(), proto.CmdDiscard, 20, cred("forged"))
			m[0][4] = 0x80 | byte(proto.CmdWrite)
			_, err := raw(t, tap, m)
			return err
		}, proto.CodeAuthFailed},
		{"recorded WRITE on another channel", func(t *testing.T, k *simkey.Key, _ *proto.Device, tap *simkey.Tap, _ *proto.SessionCipher) error {
			d2, tap2 := open(t, k, simkey.TapHooks{})
			if _, err := d2.Auth(ctxT(t), secret(1)); err != nil {
				t.Fatal(err)
			}
			_, err := raw(t, tap2, withCID(message(t, tap.Written(), proto.CmdWrite), d2.CID()))
			return err
		}, proto.CodeAuthFailed},
		{"recorded WRITE on a channel without session", func(t *testing.T, k *simkey.Key, _ *proto.Device, tap *simkey.Tap, _ *proto.SessionCipher) error {
			d2, tap2 := open(t, k, simkey.TapHooks{})
			_, err := raw(t, tap2, withCID(message(t, tap.Written(), proto.CmdWrite), d2.CID()))
			return err
		}, proto.CodeNoSession},
	}

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, d, tap, s := linked(t)
			c := hostCipher(t, tap, d.CID(), secret(1))
			if err := s.WriteCredential(ctxT(t), 2, proto.Credential{Login: "eve", Password: "genuine"}); err != nil {
				t.Fatal(err)
			}
			if err := s.Commit(ctxT(t), 2); err != nil {
				t.Fatal(err)
			}
			err := tc.attack(t, k, d, tap, c)
			if keyCode(err) != tc.want {
				t.Fatalf("attack: %v, want key error %s", err, tc.want)
			}
			if errors.Is(err, proto.ErrReplay) != (tc.want == proto.CodeReplay) {
				t.Fatalf("errors.Is(%v, ErrReplay) wrong", err)
			}
			s2, err := d.Auth(ctxT(t), secret(1))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s2.ReadPending(ctxT(t), 2); keyCode(err) != proto.CodeNotFound {
				t.Fatalf("a pending value appeared: %v", err)
			}
			if got, err := s2.ReadCredential(ctxT(t), 2); err != nil || got.Password != "genuine" {
				t.Fatalf("slot 2 changed: %v", err)
			}
		})
	}
}

// TestStaleSessionRefused: once a later counter was accepted, the genuine
// session's next (lower) counter is refused too, and the session is
// replaced by a new AUTH.
func TestStaleSessionRefused(t *testing.T) {
	_, d, tap, s := linked(t)
	c := hostCipher(t, tap, d.CID(), secret(1))
	if _, err := raw(t, tap, envelope(t, c, d.CID(), proto.CmdDiscard, 100, proto.SlotRequest{Slot: 0})); err != nil {
		t.Fatal(err)
	}
	if err := s.Discard(ctxT(t), 0); !errors.Is(err, proto.ErrReplay) {
		t.Fatalf("stale counter: %v, want ErrReplay", err)
	}
	s2, err := d.Auth(ctxT(t), secret(1))
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Discard(ctxT(t), 0); err != nil {
		t.Fatalf("a new session after the stale one: %v", err)
	}
}

// TestAgreementKeyUsedOnce: a LINK attempt uses up the key agreement even
// when it fails, so a LINK made for that agreement key is refused later.
func TestAgreementKeyUsedOnce(t *testing.T) {
	k := simkey.New("SIM-AGREE")
	d, tap := open(t, k, simkey.TapHooks{})
	resp, err := raw(t, tap, mustEncode(t, d.CID(), proto.CmdKeyAgreement, nil))
	if err != nil {
		t.Fatal(err)
	}
	var ka proto.KeyAgreementResponse
	if err := proto.Unmarshal(resp, &ka); err != nil {
		t.Fatal(err)
	}
	keyPub, err := ecdh.P256().NewPublicKey(ka.KeyPub)
	if err != nil {
		t.Fatal(err)
	}
	eph, _ := ecdh.P256().GenerateKey(rand.Reader)
	shared, _ := eph.ECDH(keyPub)
	hostPub := eph.PublicKey().Bytes()
	lk, _ := proto.LinkKey(shared, ka.KeyPub, hostPub)
	nonce, ct, _ := proto.SealLink(lk, ka.KeyPub, hostPub, secret(4))
	good, _ := proto.Marshal(proto.LinkRequest{HostPub: hostPub, KeyPub: ka.KeyPub, Nonce: nonce, Ciphertext: ct})
	bad, _ := proto.Marshal(proto.LinkRequest{HostPub: hostPub, KeyPub: ka.KeyPub, Nonce: nonce, Ciphertext: append([]byte{1}, ct[1:]...)})

	if _, err := raw(t, tap, mustEncode(t, d.CID(), proto.CmdLink, bad)); keyCode(err) != proto.CodeAuthFailed {
		t.Fatalf("tampered LINK: %v, want auth failed", err)
	}
	if _, err := raw(t, tap, mustEncode(t, d.CID(), proto.CmdLink, good)); keyCode(err) != proto.CodeReplay {
		t.Fatalf("LINK on a used agreement key: %v, want replay", err)
	}
	if i := info(t, d); i.State != proto.StateBlank {
		t.Fatalf("state %s", i.State)
	}
}

func mustEncode(t *testing.T, cid uint32, cmd proto.Command, payload []byte) [][]byte {
	t.Helper()
	r, err := proto.Encode(cid, cmd, payload)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
