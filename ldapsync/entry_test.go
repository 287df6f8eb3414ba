package ldapsync

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// TestExtendedDNGUID: a member value read with the extended DN control
// gives its GUID in the canonical form, and a value not in that form is an
// error that shows it.
func TestExtendedDNGUID(t *testing.T) {
	tests := []struct {
		value, want, err string
	}{
		{"<GUID=3322110055447766" + "8899aabbccddeeff>;<SID=010500>;CN=Anna,DC=corp", "00112233-4455-6677-8899-aabbccddeeff", ""},
		{"<GUID=00000000000000000000000000000000>;CN=x", "00000000-0000-0000-0000-000000000000", ""},
		{"CN=Anna,DC=corp", "", "not in the extended DN form"},
		{"<GUID=3322110055447766>;CN=x", "", "not 32 hex digits"},
		{"<GUID=zz22110055447766" + "8899aabbccddeeff>;CN=x", "", "not hex"},
		{"<GUID=3322110055447766" + "8899aabbccddeeff", "", "not in the extended DN form"},
	}
	for _, tt := range tests {
		got, err := extendedDNGUID(tt.value)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), tt.value) {
				t.Errorf("extendedDNGUID(%q) = %q, %v; want an error saying %q and showing the value", tt.value, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("extendedDNGUID(%q) = %q, %v; want %q", tt.value, got, err, tt.want)
		}
	}
}

func TestGUIDRoundTrip(t *testing.T) {
	tests := []struct {
		raw  []byte
		want string
	}{
		// The first three groups are little-endian on the wire.
		{[]byte{0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}, "00112233-4455-6677-8899-aabbccddeeff"},
		{make([]byte, 16), "00000000-0000-0000-0000-000000000000"},
		{bytes.Repeat([]byte{0xff}, 16), "ffffffff-ffff-ffff-ffff-ffffffffffff"},
	}
	for _, tt := range tests {
		got, err := FormatGUID(tt.raw)
		if err != nil || got != tt.want {
			t.Errorf("FormatGUID(%x) = %q, %v; want %q", tt.raw, got, err, tt.want)
		}
		back, err := ParseGUID(got)
		if err != nil || !bytes.Equal(back, tt.raw) {
			t.Errorf("ParseGUID(%q) = %x, %v; want %x", got, back, err, tt.raw)
		}
	}
	for _, bad := range [][]byte{nil, make([]byte, 15), make([]byte, 17)} {
		if _, err := FormatGUID(bad); err == nil {
			t.Errorf("FormatGUID accepted %d bytes", len(bad))
		}
	}
	for _, bad := range []string{"", "00112233445566778899aabbccddeeff", "0011223-4455-6677-8899-aabbccddeeffx", "zz112233-4455-6677-8899-aabbccddeeff"} {
		if _, err := ParseGUID(bad); err == nil {
			t.Errorf("ParseGUID accepted %q", bad)
		}
	}
	v, err := GUIDFilterValue("00112233-4455-6677-8899-aabbccddeeff")
	if err != nil || v != `\33\22\11\00\55\44\77\66\88\99\aa\bb\cc\dd\ee\ff` {
		t.Errorf("GUIDFilterValue = %q, %v", v, err)
	}
}

func TestFormatSID(t *testing.T) {
	// S-1-5-21-1004336348-1177238915-682003330-512
	sid := []byte{1, 5, 0, 0, 0, 0, 0, 5,
		21, 0, 0, 0,
		0xdc, 0xf4, 0xdc, 0x3b,
		0x83, 0x3d, 0x2b, 0x46,
		0x82, 0x8b, 0xa6, 0x28,
		0x00, 0x02, 0x00, 0x00}
	if got := FormatSID(sid); got != "S-1-5-21-1004336348-1177238915-682003330-512" {
		t.Errorf("FormatSID = %q", got)
	}
	if got := FormatSID(sid[:10]); got != "" {
		t.Errorf("FormatSID of a truncated SID = %q, want empty", got)
	}
}

func TestParseFileTime(t *testing.T) {
	want := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	ft := want.UnixNano()/100 + fileTimeEpochOffset
	if got := ParseFileTime(fmt.Sprint(ft)); got == nil || !got.Equal(want) {
		t.Errorf("ParseFileTime(%d) = %v, want %v", ft, got, want)
	}
	for _, never := range []string{"0", "9223372036854775807", "", "garbage", "-5", "9223372036854775806"} {
		if got := ParseFileTime(never); got != nil {
			t.Errorf("ParseFileTime(%q) = %v, want nil", never, got)
		}
	}
}

func TestUserFromEntry(t *testing.T) {
	raw := []byte{0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	e := &ldap.Entry{DN: "CN=x", Attributes: []*ldap.EntryAttribute{
		{Name: "objectGUID", Values: []string{string(raw)}, ByteValues: [][]byte{raw}},
		{Name: "userAccountControl", Values: []string{"514"}},
		{Name: "mail", Values: []string{"a@b.c"}},
		{Name: "distinguishedName", Values: []string{"CN=Smith\\, Anna,DC=x"}},
		{Name: "uSNChanged", Values: []string{"4711"}},
	}}
	u, err := userFromEntry(e)
	if err != nil {
		t.Fatal(err)
	}
	if u.ObjectGUID != "00112233-4455-6677-8899-aabbccddeeff" || !u.Disabled || u.Mail != "a@b.c" || u.DN != `CN=Smith\, Anna,DC=x` || u.USNChanged != 4711 {
		t.Errorf("user = %+v", u)
	}
	e.Attributes[1].Values = []string{"512"}
	if u, _ := userFromEntry(e); u.Disabled {
		t.Error("UAC 512 read as disabled")
	}
	e.Attributes[4].Values = []string{"47x1"}
	if _, err := userFromEntry(e); err == nil || !strings.Contains(err.Error(), `uSNChanged "47x1"`) {
		t.Errorf("an entry with a bad uSNChanged: %v, want an error naming it", err)
	}
	e.Attributes[4].Values = []string{"4711"}
	e.Attributes[0].ByteValues = [][]byte{raw[:8]}
	if _, err := userFromEntry(e); err == nil {
		t.Error("an entry with a short objectGUID was accepted")
	}
}

func TestParseUSN(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"4711", 4711, true},
		{"9223372036854775807", 9223372036854775807, true},
		{"", 0, false},
		{"-1", 0, false},
		{"12a", 0, false},
		{" 12", 0, false},
		{"9223372036854775808", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseUSN(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseUSN(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestExplain(t *testing.T) {
	ldapErr := func(code uint16, msg string) error {
		return &ldap.Error{ResultCode: code, Err: errors.New(msg)}
	}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"52e", newBindError("svc", ldapErr(49, "80090308: LdapErr: DSID-0C0903A9, comment: AcceptSecurityContext error, data 52e, v1db1")), "wrong password"},
		{"533", newBindError("svc", ldapErr(49, "... data 533, v4563")), "disabled"},
		{"775", newBindError("svc", ldapErr(49, "... data 775, v4563")), "locked out"},
		{"49 without code", newBindError("svc", ldapErr(49, "Invalid credentials")), "check bind_dn"},
		{"strong auth", ldapErr(8, "BindSimple: Transport encryption required."), "Strong(er) authentication required"},
		{"critical extension", fmt.Errorf("search: %w", ldapErr(12, "")), "Unavailable Critical Extension"},
		{"no such object", ldapErr(32, ""), "base_dn"},
		{"unknown CA", fmt.Errorf("connect: %w", x509.UnknownAuthorityError{}), "ca_file"},
		{"host name", x509.HostnameError{Certificate: &x509.Certificate{DNSNames: []string{"a"}}, Host: "b"}, "does not name the host"},
		{"expired", x509.CertificateInvalidError{Reason: x509.Expired}, "expired"},
		{"refused", fmt.Errorf("dial: %w", syscall.ECONNREFUSED), "nothing listens"},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), "did not answer in time"},
		{"nothing to add", errors.New("something else"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Explain(tt.err)
			if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
				t.Errorf("Explain(%v) = %q, want it to contain %q", tt.err, got, tt.want)
			}
		})
	}
	var be *BindError
	if err := newBindError("svc", ldapErr(49, "data 52E,")); !errors.As(err, &be) || be.DataCode != "52e" {
		t.Errorf("data code not parsed: %v", err)
	}
}

func TestFullReason(t *testing.T) {
	rd := RootDSE{DSServiceName: "CN=NTDS Settings,CN=DC1", InvocationID: "inv-1", HighestCommittedUSN: 5000}
	mark := &Mark{DSADN: rd.DSServiceName, InvocationID: "inv-1", HighestUSN: 4000}
	tests := []struct {
		name   string
		prev   *Mark
		rd     RootDSE
		forced bool
		want   string
	}{
		{"incremental", mark, rd, false, ""},
		{"forced", mark, rd, true, "requested"},
		{"first sync", nil, rd, false, "first sync"},
		{"another DC", mark, RootDSE{DSServiceName: "CN=NTDS Settings,CN=DC2", InvocationID: "inv-1", HighestCommittedUSN: 5000}, false, "another domain controller"},
		{"restored DC", mark, RootDSE{DSServiceName: rd.DSServiceName, InvocationID: "inv-2", HighestCommittedUSN: 5000}, false, "invocationId changed"},
		{"no invocationId", &Mark{DSADN: rd.DSServiceName, HighestUSN: 4000}, RootDSE{DSServiceName: rd.DSServiceName, HighestCommittedUSN: 5000}, false, "invocationId changed"},
		{"USN went back", mark, RootDSE{DSServiceName: rd.DSServiceName, InvocationID: "inv-1", HighestCommittedUSN: 3000}, false, "went back"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := fullReason(tt.prev, tt.rd, tt.forced)
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("fullReason = %q, want %q", got, tt.want)
			}
		})
	}
}
