package ldapsync

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// UserAttributes are the attributes read for each member.
var UserAttributes = []string{
	"objectGUID", "objectSid", "sAMAccountName", "userPrincipalName", "mail",
	"givenName", "sn", "displayName", "department", "title", "company",
	"telephoneNumber", "userAccountControl", "pwdLastSet", "distinguishedName",
	"uSNChanged", "memberOf",
}

const uacAccountDisable = 0x2

// User is one directory account as read from AD.
type User struct {
	ObjectGUID        string // canonical string form
	ObjectSID         string // S-1-5-21-...
	SAMAccountName    string
	UserPrincipalName string
	Mail              string
	GivenName         string
	SN                string
	DisplayName       string
	Department        string
	Title             string
	Company           string
	Telephone         string
	DN                string
	Disabled          bool
	PwdLastSet        *time.Time // nil = never set / must change
	USNChanged        int64
}

// userFromEntry converts a search entry; an entry without a valid objectGUID
// is an error (it cannot be anchored).
func userFromEntry(e *ldap.Entry) (User, error) {
	guid, err := FormatGUID(e.GetRawAttributeValue("objectGUID"))
	if err != nil {
		return User{}, fmt.Errorf("entry %s: %w", e.DN, err)
	}
	u := User{
		ObjectGUID:        guid,
		ObjectSID:         FormatSID(e.GetRawAttributeValue("objectSid")),
		SAMAccountName:    e.GetAttributeValue("sAMAccountName"),
		UserPrincipalName: e.GetAttributeValue("userPrincipalName"),
		Mail:              e.GetAttributeValue("mail"),
		GivenName:         e.GetAttributeValue("givenName"),
		SN:                e.GetAttributeValue("sn"),
		DisplayName:       e.GetAttributeValue("displayName"),
		Department:        e.GetAttributeValue("department"),
		Title:             e.GetAttributeValue("title"),
		Company:           e.GetAttributeValue("company"),
		Telephone:         e.GetAttributeValue("telephoneNumber"),
		DN:                e.DN,
	}
	if dn := e.GetAttributeValue("distinguishedName"); dn != "" {
		u.DN = dn
	}
	if v := e.GetAttributeValue("userAccountControl"); v != "" {
		uac, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return User{}, fmt.Errorf("entry %s: userAccountControl %q is not a number", e.DN, v)
		}
		u.Disabled = uac&uacAccountDisable != 0
	}
	u.PwdLastSet = ParseFileTime(e.GetAttributeValue("pwdLastSet"))
	if v := e.GetAttributeValue("uSNChanged"); v != "" {
		usn, err := ParseUSN(v)
		if err != nil {
			return User{}, fmt.Errorf("entry %s: %w", e.DN, err)
		}
		u.USNChanged = usn
	}
	return u, nil
}

// ParseUSN reads an update sequence number (uSNChanged): a non-negative
// decimal integer. Anything else is an error, never a silent 0, which would
// make a changed entry look unchanged.
func ParseUSN(s string) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("uSNChanged %q is not an update sequence number", s)
	}
	return v, nil
}

// FormatGUID renders a 16-byte objectGUID in its canonical string form: the
// first three groups are stored little-endian.
func FormatGUID(b []byte) (string, error) {
	if len(b) != 16 {
		return "", fmt.Errorf("objectGUID has %d bytes, want 16", len(b))
	}
	// The first three fields are little-endian, the rest in order: one
	// allocation (every member read has its GUID formatted so).
	var out [36]byte
	var le [8]byte
	binary.BigEndian.PutUint32(le[0:4], binary.LittleEndian.Uint32(b[0:4]))
	binary.BigEndian.PutUint16(le[4:6], binary.LittleEndian.Uint16(b[4:6]))
	binary.BigEndian.PutUint16(le[6:8], binary.LittleEndian.Uint16(b[6:8]))
	hex.Encode(out[0:8], le[0:4])
	hex.Encode(out[9:13], le[4:6])
	hex.Encode(out[14:18], le[6:8])
	hex.Encode(out[19:23], b[8:10])
	hex.Encode(out[24:36], b[10:16])
	out[8], out[13], out[18], out[23] = '-', '-', '-', '-'
	return string(out[:]), nil
}

// ParseGUID turns the canonical string form back into the 16 bytes AD stores.
func ParseGUID(s string) ([]byte, error) {
	h := strings.ReplaceAll(s, "-", "")
	if len(h) != 32 || len(s) != 36 {
		return nil, fmt.Errorf("%q is not a GUID", s)
	}
	raw := make([]byte, 16)
	for i := 0; i < 16; i++ {
		v, err := strconv.ParseUint(h[2*i:2*i+2], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("%q is not a GUID", s)
		}
		raw[i] = byte(v)
	}
	// Swap the first three groups back to little-endian.
	raw[0], raw[1], raw[2], raw[3] = raw[3], raw[2], raw[1], raw[0]
	raw[4], raw[5] = raw[5], raw[4]
	raw[6], raw[7] = raw[7], raw[6]
	return raw, nil
}

// GUIDFilterValue escapes a GUID's bytes for use in a search filter.
func GUIDFilterValue(guid string) (string, error) {
	raw, err := ParseGUID(guid)
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	for _, c := range raw {
		fmt.Fprintf(&sb, `\%02x`, c)
	}
	return sb.String(), nil
}

// FormatSID renders a binary objectSid as S-1-5-21-...; "" when malformed.
func FormatSID(b []byte) string {
	if len(b) < 8 {
		return ""
	}
	count := int(b[1])
	if len(b) != 8+4*count {
		return ""
	}
	var auth uint64
	for _, c := range b[2:8] {
		auth = auth<<8 | uint64(c)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "S-%d-%d", b[0], auth)
	for i := 0; i < count; i++ {
		fmt.Fprintf(&sb, "-%d", binary.LittleEndian.Uint32(b[8+4*i:]))
	}
	return sb.String()
}

// fileTimeEpochOffset is 1601-01-01 to 1970-01-01 in 100 ns intervals.
const fileTimeEpochOffset = 116444736000000000

// ParseFileTime converts an AD FILETIME (100 ns intervals since 1601) to a
// time; 0, the "never" value and garbage give nil.
func ParseFileTime(s string) *time.Time {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 || v == 0x7FFFFFFFFFFFFFFF || (v-fileTimeEpochOffset) > (1<<63-1)/100 {
		return nil
	}
	t := time.Unix(0, (v-fileTimeEpochOffset)*100).UTC()
	return &t
}
