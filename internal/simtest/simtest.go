// Package simtest is test support only: one simulation maker CA per test
// binary, which the tests' services trust, and simulated keys attested by
// it. Only tests import it.
package simtest

import (
	"sync"
	"testing"

	"keydesk/keys/simkey"
)

// The maker is made once per test binary (a P-256 CA takes a moment, and
// every service and key of the binary must agree on it).
var (
	once     sync.Once
	maker    *simkey.Maker
	makerErr error
)

// Maker is the test binary's simulation maker CA.
func Maker(tb testing.TB) *simkey.Maker {
	tb.Helper()
	once.Do(func() { maker, makerErr = simkey.NewMaker("Test Maker CA") })
	if makerErr != nil {
		tb.Fatal(makerErr)
	}
	return maker
}

// NewKey is a blank simulated key with an attestation from Maker naming
// serial.
func NewKey(tb testing.TB, serial string) *simkey.Key {
	tb.Helper()
	k, err := Maker(tb).NewKey(serial)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}
