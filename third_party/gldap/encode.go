// Copyright (c) KeyDesk authors
// SPDX-License-Identifier: MIT

package gldap

import "bufio"

// KeyDesk's addition: a search entry's BER encoding written straight into
// a buffer, with no packet tree. It gives the bytes that
// SearchResponseEntry.packet().Bytes() gives (the entry's string Values;
// ByteValues are not sent, as there).

// berLen is the size of a definite length's encoding.
func berLen(n int) int {
	if n < 0x80 {
		return 1
	}
	k := 1
	for ; n > 0; n >>= 8 {
		k++
	}
	return k
}

// tlv is the size of an element whose content is n bytes.
func tlv(n int) int { return 1 + berLen(n) + n }

func writeHeader(w *bufio.Writer, tag byte, n int) {
	w.WriteByte(tag)
	if n < 0x80 {
		w.WriteByte(byte(n))
		return
	}
	k := berLen(n) - 1
	w.WriteByte(0x80 | byte(k))
	for i := k - 1; i >= 0; i-- {
		w.WriteByte(byte(n >> (8 * i)))
	}
}

// intBytes is the content of a BER INTEGER: the shortest two's complement.
func intBytes(v int64) []byte {
	var b [8]byte
	n := 8
	for i := 7; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
	i := 0
	for i < n-1 && (b[i] == 0 && b[i+1]&0x80 == 0 || b[i] == 0xff && b[i+1]&0x80 != 0) {
		i++
	}
	return b[i:]
}

const (
	tagSequence    = 0x30 // universal, constructed, SEQUENCE
	tagSet         = 0x31 // universal, constructed, SET
	tagOctetString = 0x04 // universal, primitive, OCTET STRING
	tagInteger     = 0x02 // universal, primitive, INTEGER
	tagSearchEntry = 0x60 | ApplicationSearchResultEntry
)

func writeSearchEntry(w *bufio.Writer, r *SearchResponseEntry) error {
	attrs := 0
	for _, a := range r.entry.Attributes {
		attrs += tlv(attrContent(a))
	}
	op := tlv(len(r.entry.DN)) + tlv(attrs)
	id := intBytes(r.messageID)
	writeHeader(w, tagSequence, tlv(len(id))+tlv(op))
	writeHeader(w, tagInteger, len(id))
	w.Write(id)
	writeHeader(w, tagSearchEntry, op)
	writeHeader(w, tagOctetString, len(r.entry.DN))
	w.WriteString(r.entry.DN)
	writeHeader(w, tagSequence, attrs)
	for _, a := range r.entry.Attributes {
		writeHeader(w, tagSequence, attrContent(a))
		writeHeader(w, tagOctetString, len(a.Name))
		w.WriteString(a.Name)
		writeHeader(w, tagSet, valuesContent(a))
		for _, v := range a.Values {
			writeHeader(w, tagOctetString, len(v))
			if _, err := w.WriteString(v); err != nil {
				return err
			}
		}
	}
	// bufio.Writer keeps its first error and returns it from every write.
	_, err := w.Write(nil)
	return err
}

func valuesContent(a *EntryAttribute) int {
	n := 0
	for _, v := range a.Values {
		n += tlv(len(v))
	}
	return n
}

func attrContent(a *EntryAttribute) int {
	return tlv(len(a.Name)) + tlv(valuesContent(a))
}
