// Package gldap is github.com/jimlambrt/gldap v0.1.14 (MIT, see LICENSE), an LDAP server
// library that KeyDesk's built-in directory (internal/builtinad) serves LDAP with, with
// KeyDesk's changes:
//
//   - ResponseWriter.Write encodes a response once (v0.1.14 built each response's packet
//     tree twice, once only for a debug log) and writes a search entry straight into the
//     connection's buffer (encode.go), flushing at the response that ends the search rather
//     than after each entry. At 100,000 people the double encoding was a third of the demo's
//     CPU.
//   - packet.go: a format verb go vet rejects (%q of an int) is %d.
//   - The package's tests, examples and test helpers (testing.go) are left out.
package gldap
