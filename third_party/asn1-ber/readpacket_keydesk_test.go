package ber

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
	"testing/iotest"
)

// KeyDesk's change: ReadPacket decodes a definite-length packet from one
// buffer. It must give the packets the streaming decoder gives (the same
// identifiers, values and children), and fail where it fails; where the
// streaming decoder's data of a constructed packet re-encodes the
// children, ReadPacket keeps the bytes read.
func FuzzReadPacketAsStreamed(f *testing.F) {
	for _, tc := range testCases {
		data, err := os.ReadFile(tc.File)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	// An LDAP search entry: a message ID, then an application-tagged
	// sequence of the DN and attributes with their value sets.
	entry := Encode(ClassUniversal, TypeConstructed, TagSequence, nil, "")
	entry.AppendChild(NewInteger(ClassUniversal, TypePrimitive, TagInteger, 7, ""))
	res := Encode(ClassApplication, TypeConstructed, 4, nil, "")
	res.AppendChild(NewString(ClassUniversal, TypePrimitive, TagOctetString, "CN=Zoë,DC=corp", ""))
	attrs := Encode(ClassUniversal, TypeConstructed, TagSequence, nil, "")
	for _, a := range []string{"mail", "memberOf"} {
		at := Encode(ClassUniversal, TypeConstructed, TagSequence, nil, "")
		at.AppendChild(NewString(ClassUniversal, TypePrimitive, TagOctetString, a, ""))
		vals := Encode(ClassUniversal, TypeConstructed, TagSet, nil, "")
		vals.AppendChild(NewString(ClassUniversal, TypePrimitive, TagOctetString, strings.Repeat(a, 40), ""))
		vals.AppendChild(NewString(ClassUniversal, TypePrimitive, TagOctetString, "", ""))
		at.AppendChild(vals)
		attrs.AppendChild(at)
	}
	res.AppendChild(attrs)
	entry.AppendChild(res)
	f.Add(entry.Bytes())
	f.Add([]byte{0x30, 0x80, 0x04, 0x01, 'x', 0x00, 0x00})             // indefinite
	f.Add([]byte{0x30, 0x06, 0x30, 0x80, 0x04, 0x01, 'x', 0x00, 0x00}) // indefinite inside definite
	f.Add([]byte{0x30, 0x03, 0x04, 0x05, 'a', 'b', 'c', 'd', 'e'})     // child longer than its parent
	f.Add([]byte{0x30, 0x05, 0x04, 0x81, 0x02, 'a', 'b'})              // long-form length
	f.Fuzz(func(t *testing.T, data []byte) {
		got, gotErr := ReadPacket(bytes.NewReader(data))
		want, _, wantErr := readPacket(iotest.OneByteReader(bytes.NewReader(data)), 0)
		if (gotErr == nil) != (wantErr == nil) {
			t.Fatalf("ReadPacket: %v; streamed: %v", gotErr, wantErr)
		}
		if gotErr != nil {
			return
		}
		if g, w := dump(got), dump(want); g != w {
			t.Fatalf("ReadPacket gave\n%s\nstreamed\n%s", g, w)
		}
		if got.TagType == TypePrimitive && !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("encodings differ: %x, %x", got.Bytes(), want.Bytes())
		}
	})
}

func dump(p *Packet) string {
	var b strings.Builder
	var walk func(p *Packet, depth int)
	walk = func(p *Packet, depth int) {
		fmt.Fprintf(&b, "%s%v %v %v %#v %x", strings.Repeat(" ", depth), p.ClassType, p.TagType, p.Tag, p.Value, p.ByteValue)
		if p.TagType == TypePrimitive {
			fmt.Fprintf(&b, " data %x", p.Data.Bytes())
		}
		b.WriteString("\n")
		for _, c := range p.Children {
			walk(c, depth+1)
		}
	}
	walk(p, 0)
	return b.String()
}

// A packet ReadPacket gave may be rewritten in place, as go-ldap does with
// a control's value (Truncate, then AppendChild): its parents' bytes and
// its siblings' values stay as read.
func TestReadPacketRewriteInPlace(t *testing.T) {
	msg := Encode(ClassUniversal, TypeConstructed, TagSequence, nil, "")
	msg.AppendChild(NewString(ClassUniversal, TypePrimitive, TagOctetString, "first", ""))
	msg.AppendChild(NewString(ClassUniversal, TypePrimitive, TagOctetString, "second", ""))
	raw := msg.Bytes()
	p, err := ReadPacket(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	first := p.Children[0]
	first.Data.Truncate(0)
	first.AppendChild(NewString(ClassUniversal, TypePrimitive, TagOctetString, "xyz", ""))
	if !bytes.Equal(p.Data.Bytes(), raw[2:]) || string(p.Children[1].ByteValue) != "second" || string(first.ByteValue) != "first" {
		t.Errorf("rewriting a child in place changed what was read: parent %q, sibling %q, its value %q", p.Data.Bytes(), p.Children[1].ByteValue, first.ByteValue)
	}
}
