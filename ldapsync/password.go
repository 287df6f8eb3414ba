package ldapsync

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"net"
	"time"
	"unicode/utf16"

	"github.com/go-ldap/ldap/v3"
)

// EncodePassword is the unicodePwd value of a password: the password in
// double quotes, as UTF-16LE. AD takes a password only in this form.
func EncodePassword(password string) string {
	u := utf16.Encode([]rune(`"` + password + `"`))
	b := make([]byte, 2*len(u))
	for i, r := range u {
		binary.LittleEndian.PutUint16(b[2*i:], r)
	}
	return string(b)
}

// DialLDAPS connects to addr (host:port) over TLS with cfg and binds as
// user. ctx bounds the whole exchange (its end closes the connection, the
// only way to interrupt go-ldap); timeout bounds each request after it. The
// test harness and the built-in directory use it; a sync uses Dial.
func DialLDAPS(ctx context.Context, addr string, cfg *tls.Config, user, password string, timeout time.Duration) (*ldap.Conn, error) {
	var dialer net.Dialer
	raw, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
	}
	c := ldap.NewConn(tc, true)
	c.Start()
	c.SetTimeout(timeout)
	stop := context.AfterFunc(ctx, func() { c.Close() })
	err = c.Bind(user, password)
	if !stop() {
		c.Close()
		return nil, fmt.Errorf("bind as %s: %w", user, ctx.Err())
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("bind as %s: %w", user, err)
	}
	return c, nil
}
