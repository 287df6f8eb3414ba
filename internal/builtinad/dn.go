package builtinad

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// normRDN is the normalized form of one RDN: lower-case type and value,
// the value escaped as RFC 4514 says. Two DNs name the same object when
// their normalized forms are equal.
func normRDN(typ, val string) string {
	return strings.ToLower(typ) + "=" + ldap.EscapeDN(strings.ToLower(val))
}

// escapeRDNValue writes an RDN value as AD does: RFC 4514 escapes, and the
// line feed of a tombstone's name as \0A.
func escapeRDNValue(v string) string {
	return strings.ReplaceAll(ldap.EscapeDN(v), "\n", `\0A`)
}

// parsedDN is a DN split into its normalized RDNs (leaf first).
type parsedDN []string

// parseDN parses a DN into normalized RDNs; the empty DN gives none.
func parseDN(dn string) (parsedDN, error) {
	if strings.TrimSpace(dn) == "" {
		return nil, nil
	}
	p, err := ldap.ParseDN(dn)
	if err != nil {
		return nil, err
	}
	out := make(parsedDN, len(p.RDNs))
	for i, r := range p.RDNs {
		if len(r.Attributes) == 0 {
			return nil, errors.New("empty RDN")
		}
		parts := make([]string, len(r.Attributes))
		for j, a := range r.Attributes {
			parts[j] = normRDN(a.Type, a.Value)
		}
		sort.Strings(parts)
		out[i] = strings.Join(parts, "+")
	}
	return out, nil
}

// suffix is the normalized DN made of the RDNs from i on.
func (p parsedDN) suffix(i int) string { return strings.Join(p[i:], ",") }

func (p parsedDN) String() string { return p.suffix(0) }

// normDN normalizes a DN; ok is false when it does not parse.
func normDN(dn string) (string, bool) {
	p, err := parseDN(dn)
	if err != nil {
		return "", false
	}
	return p.String(), true
}

// guidString renders 16 GUID bytes in the canonical string form (first
// three groups little-endian).
func guidString(b []byte) string {
	if len(b) != 16 {
		return ""
	}
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x",
		binary.LittleEndian.Uint32(b[0:4]), binary.LittleEndian.Uint16(b[4:6]),
		binary.LittleEndian.Uint16(b[6:8]), b[8:10], b[10:16])
}

// parseGUIDRef reads the value of a <GUID=...> base DN: either the
// canonical string form or 32 hex digits of the raw bytes.
func parseGUIDRef(s string) ([]byte, bool) {
	if strings.Count(s, "-") == 4 && len(s) == 36 {
		raw, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
		if err != nil || len(raw) != 16 {
			return nil, false
		}
		raw[0], raw[1], raw[2], raw[3] = raw[3], raw[2], raw[1], raw[0]
		raw[4], raw[5] = raw[5], raw[4]
		raw[6], raw[7] = raw[7], raw[6]
		return raw, true
	}
	raw, err := hex.DecodeString(s)
	if err != nil || len(raw) != 16 {
		return nil, false
	}
	return raw, true
}

// sidBytes encodes S-1-5-21-a-b-c-rid (or any S-1-5-x-...) in binary form.
func sidBytes(subAuthorities ...uint32) []byte {
	b := make([]byte, 8+4*len(subAuthorities))
	b[0] = 1
	b[1] = byte(len(subAuthorities))
	b[7] = 5 // NT authority
	for i, s := range subAuthorities {
		binary.LittleEndian.PutUint32(b[8+4*i:], s)
	}
	return b
}
