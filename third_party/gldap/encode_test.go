// Copyright (c) KeyDesk authors
// SPDX-License-Identifier: MIT

package gldap

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// TestSearchEntryEncodesAsThePacket: the direct encoding gives the very
// bytes of the packet tree, at every length form (short, one, two and
// three length bytes) and message IDs of every size.
func TestSearchEntryEncodesAsThePacket(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	many := make([]string, 3000)
	for i := range many {
		many[i] = "<GUID=0123456789abcdef0123456789abcdef>;CN=Person " + long(i%40) + ",OU=People,DC=corp,DC=example,DC=test"
	}
	cases := []struct {
		name  string
		id    int64
		dn    string
		attrs []*EntryAttribute
	}{
		{"empty", 1, "", nil},
		{"no values", 2, "CN=a", []*EntryAttribute{NewEntryAttribute("member", nil)}},
		{"an empty value", 127, "CN=a", []*EntryAttribute{NewEntryAttribute("description", []string{""})}},
		{"short", 128, "CN=Ann,DC=x", []*EntryAttribute{NewEntryAttribute("cn", []string{"Ann"}), NewEntryAttribute("mail", []string{"ann@x"})}},
		{"one length byte", 255, long(127), []*EntryAttribute{NewEntryAttribute("a", []string{long(128), long(255)})}},
		{"two length bytes", 256, long(300), []*EntryAttribute{NewEntryAttribute("a", []string{long(256), long(65535)})}},
		{"three length bytes", 1 << 20, "CN=g", []*EntryAttribute{NewEntryAttribute("member;range=0-2999", many)}},
		{"largest id", 1<<31 - 1, "CN=a", []*EntryAttribute{NewEntryAttribute("objectGUID", []string{"\x00\xff\x80\x7f"})}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &SearchResponseEntry{baseResponse: &baseResponse{messageID: c.id}, entry: Entry{DN: c.dn, Attributes: c.attrs}}
			want := r.packet().Bytes()
			var got bytes.Buffer
			w := bufio.NewWriter(&got)
			if err := writeSearchEntry(w, r); err != nil {
				t.Fatal(err)
			}
			w.Flush()
			if !bytes.Equal(got.Bytes(), want) {
				n := min(len(want), len(got.Bytes()), 64)
				t.Errorf("%d bytes, want %d; first bytes\n got % x\nwant % x", got.Len(), len(want), got.Bytes()[:n], want[:n])
			}
		})
	}
}
