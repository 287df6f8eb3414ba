package builtinad

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"strings"

	ber "github.com/go-asn1-ber/asn1-ber"
	"github.com/go-ldap/ldap/v3"
	"keydesk/third_party/gldap"
)

// cursor is an open paged search of one connection.
type cursor struct {
	base        string
	scope       int
	filter      string
	showDeleted bool
	list        []*entry
	off         int
	usn         int64 // the domain's USN when list was made
}

func newCookie() string {
	b := make([]byte, 12)
	rand.Read(b)
	return string(b)
}

func codeOf(err *ldap.Error) int {
	return int(err.ResultCode)
}

func diagOf(err *ldap.Error) string {
	if err.Err == nil {
		return ""
	}
	return err.Err.Error()
}

func (l *listener) handleBind(w *gldap.ResponseWriter, r *gldap.Request) {
	m, err := r.GetSimpleBindMessage()
	if err != nil {
		return
	}
	st := l.state(r.ConnectionID())
	resp := r.NewBindResponse(gldap.WithResponseCode(gldap.ResultSuccess))
	reply := func(code int, diag string) {
		resp.SetResultCode(code)
		resp.SetDiagnosticMessage(diag)
		_ = w.Write(resp)
	}
	pw := string(m.Password)
	if pw == "" {
		// Anonymous (or unauthenticated) bind: allowed, as in AD; only
		// RootDSE can be read that way.
		st.setBound(nil)
		reply(gldap.ResultSuccess, "")
		return
	}
	st.setBound(nil)
	if !st.isTLS() {
		reply(gldap.ResultStrongAuthRequired, diagStrongAuth)
		return
	}
	d := l.d
	d.mu.RLock()
	e := d.resolveBindName(m.UserName)
	ok := e != nil && e.pw.matches(pw)
	var disabled, mustChange, expired bool
	if e != nil {
		disabled = e.uac()&uacAccountDisable != 0
		mustChange = e.first("pwdlastset") == "0"
		expired = d.passwordExpired(e)
	}
	d.mu.RUnlock()
	switch {
	case e == nil:
		reply(gldap.ResultInvalidCredentials, fmt.Sprintf(diagBindFmt, "525"))
	case !ok:
		reply(gldap.ResultInvalidCredentials, fmt.Sprintf(diagBindFmt, "52e"))
	case disabled:
		reply(gldap.ResultInvalidCredentials, fmt.Sprintf(diagBindFmt, "533"))
	case mustChange:
		reply(gldap.ResultInvalidCredentials, fmt.Sprintf(diagBindFmt, "773"))
	case expired:
		reply(gldap.ResultInvalidCredentials, fmt.Sprintf(diagBindFmt, "532"))
	default:
		st.setBound(e)
		reply(gldap.ResultSuccess, "")
	}
}

func (l *listener) handleStartTLS(w *gldap.ResponseWriter, r *gldap.Request) {
	st := l.state(r.ConnectionID())
	if st.isTLS() {
		resp := r.NewExtendedResponse(gldap.WithResponseCode(gldap.ResultOperationsError))
		resp.SetDiagnosticMessage("00000000: LdapErr: DSID-0C09123D, comment: TLS or SSL already in effect, data 0, v4563")
		_ = w.Write(resp)
		return
	}
	resp := r.NewExtendedResponse(gldap.WithResponseCode(gldap.ResultSuccess))
	resp.SetResponseName(gldap.ExtendedOperationStartTLS)
	if err := w.Write(resp); err != nil {
		return
	}
	if err := r.StartTLS(l.d.tlsConfig); err != nil {
		// The connection is unusable; gldap drops it on the next read.
		if l.d.srv.log != nil {
			l.d.srv.log.Debug("builtinad: StartTLS handshake failed", "domain", l.d.Name, "err", err)
		}
		return
	}
	st.mu.Lock()
	st.tls = true
	st.mu.Unlock()
}

func (l *listener) handleUnsupported(w *gldap.ResponseWriter, r *gldap.Request) {
	resp := r.NewResponse(gldap.WithResponseCode(gldap.ResultProtocolError),
		gldap.WithDiagnosticMessage("00000057: LdapErr: DSID-0C090E33, comment: the built-in directory does not support this operation, data 0, v4563"),
		gldap.WithMatchedDN(""))
	_ = w.Write(resp)
}

func (l *listener) writeOnlyAPI(w *gldap.ResponseWriter, r *gldap.Request, app int) {
	code, diag := gldap.ResultUnwillingToPerform, diagOnlyAPI
	if l.state(r.ConnectionID()).who() == nil {
		code, diag = gldap.ResultOperationsError, diagNeedBind
	}
	_ = w.Write(r.NewResponse(gldap.WithApplicationCode(app), gldap.WithResponseCode(code),
		gldap.WithDiagnosticMessage(diag), gldap.WithMatchedDN("")))
}

func (l *listener) handleAdd(w *gldap.ResponseWriter, r *gldap.Request) {
	l.writeOnlyAPI(w, r, gldap.ApplicationAddResponse)
}

func (l *listener) handleDelete(w *gldap.ResponseWriter, r *gldap.Request) {
	l.writeOnlyAPI(w, r, gldap.ApplicationDelResponse)
}

// controls is what a request's controls ask for.
type controls struct {
	paging         *gldap.ControlPaging
	showDeleted    bool
	hints          bool
	permissive     bool
	extendedDN     bool   // linked values as <GUID=hex>;<SID=hex>;DN
	unsupportedCrt string // OID of a critical control the double does not implement
}

func readControls(cs []gldap.Control) controls {
	var out controls
	for _, c := range cs {
		switch c := c.(type) {
		case *gldap.ControlPaging:
			out.paging = c
		case *gldap.ControlMicrosoftShowDeleted:
			out.showDeleted = true
		case *gldap.ControlString:
			switch c.ControlType {
			case "1.2.840.113556.1.4.2064": // show recycled
				out.showDeleted = true
			case "1.2.840.113556.1.4.2239", "1.2.840.113556.1.4.2066":
				if v, err := policyHintsValue(c.ControlValue); err == nil {
					out.hints = v
				}
			case "1.2.840.113556.1.4.1413":
				out.permissive = true
			case "1.2.840.113556.1.4.529":
				out.extendedDN = true
			}
			if c.Criticality && !ignorableControls[c.ControlType] && out.unsupportedCrt == "" {
				out.unsupportedCrt = c.ControlType
			}
		}
	}
	return out
}

func (l *listener) handleModify(w *gldap.ResponseWriter, r *gldap.Request) {
	m, err := r.GetModifyMessage()
	if err != nil {
		return
	}
	reply := func(code int, diag, matched string) {
		_ = w.Write(r.NewModifyResponse(gldap.WithResponseCode(code), gldap.WithDiagnosticMessage(diag), gldap.WithMatchedDN(matched)))
	}
	ctl := readControls(m.Controls)
	if ctl.unsupportedCrt != "" {
		reply(gldap.ResultUnavailableCriticalExtension, diagUnavailCritical, "")
		return
	}
	st := l.state(r.ConnectionID())
	changes := make([]change, len(m.Changes))
	pwd := false
	for i, c := range m.Changes {
		changes[i] = change{op: uint(c.Operation), name: c.Modification.Type, vals: setValues(c.Modification.Vals)}
		if n := strings.ToLower(c.Modification.Type); n == "unicodepwd" || n == "userpassword" {
			pwd = true
		}
	}
	if pwd && !st.isTLS() {
		reply(gldap.ResultUnwillingToPerform, diagWillNotPerform, "")
		return
	}
	actor := st.who()
	if actor == nil {
		reply(gldap.ResultOperationsError, diagNeedBind, "")
		return
	}
	d := l.d
	d.mu.Lock()
	e, lerr := d.lookup(m.DN, false)
	if lerr == nil {
		if pwd {
			lerr = d.modifyPassword(e, changes, actor, ctl.hints)
		} else {
			lerr = d.modify(e, changes, actor, ctl.permissive)
		}
	}
	d.mu.Unlock()
	if lerr != nil {
		reply(codeOf(lerr), diagOf(lerr), lerr.MatchedDN)
		return
	}
	reply(gldap.ResultSuccess, "", "")
}

// setValues works around gldap v0.1.14's modify parsing: a change's Vals
// holds one string, the encoded contents of the value SET (each value's
// OCTET STRING TLV, one after the other), not the values. They are
// decoded here with the BER library.
func setValues(raw []string) []string {
	var out []string
	for _, set := range raw {
		r := bytes.NewReader([]byte(set))
		var vals []string
		for r.Len() > 0 {
			p, err := ber.ReadPacket(r)
			if err != nil || p.ClassType != ber.ClassUniversal || p.Tag != ber.TagOctetString {
				vals = []string{set} // not a SET encoding: take it as the value
				break
			}
			vals = append(vals, p.Data.String())
		}
		out = append(out, vals...)
	}
	return out
}

func (l *listener) handleSearch(w *gldap.ResponseWriter, r *gldap.Request) {
	m, err := r.GetSearchMessage()
	if err != nil {
		return
	}
	done := r.NewSearchDoneResponse(gldap.WithResponseCode(gldap.ResultSuccess))
	finish := func(code int, diag, matched string) {
		done.SetResultCode(code)
		done.SetDiagnosticMessage(diag)
		done.SetMatchedDN(matched)
		_ = w.Write(done)
	}
	ctl := readControls(m.Controls)
	if ctl.unsupportedCrt != "" {
		finish(gldap.ResultUnavailableCriticalExtension, diagUnavailCritical, "")
		return
	}
	d := l.d
	sel := parseSel(m.Attributes)
	sel.extendedDN = ctl.extendedDN
	if strings.TrimSpace(m.BaseDN) == "" && m.Scope == gldap.BaseObject {
		d.mu.RLock()
		attrs := d.rootDSE(sel)
		d.mu.RUnlock()
		e := r.NewSearchResponseEntry("")
		for _, a := range attrs {
			if m.TypesOnly {
				a.vals = nil
			}
			e.AddAttribute(a.name, a.vals)
		}
		if w.Write(e) != nil {
			return
		}
		finish(gldap.ResultSuccess, "", "")
		return
	}
	st := l.state(r.ConnectionID())
	if st.who() == nil {
		finish(gldap.ResultOperationsError, diagNeedBind, "")
		return
	}
	if strings.TrimSpace(m.BaseDN) == "" {
		// AD answers with referrals to its naming contexts; none here.
		finish(gldap.ResultSuccess, "", "")
		return
	}
	scope := int(m.Scope)
	sizeLimit := int(m.SizeLimit)

	var (
		window  []*entry
		code    = gldap.ResultSuccess
		cookie  string
		recheck bool
		cur     *cursor
	)
	d.mu.RLock()
	if ctl.paging != nil {
		size := min(int(ctl.paging.PagingSize), maxPageSize)
		if len(ctl.paging.Cookie) > 0 {
			cur = st.takeCursor(string(ctl.paging.Cookie))
			if cur == nil || cur.base != m.BaseDN || cur.scope != scope || cur.filter != m.Filter || cur.showDeleted != ctl.showDeleted {
				d.mu.RUnlock()
				finish(gldap.ResultUnavailableCriticalExtension, diagUnavailCritical, "")
				return
			}
			recheck = cur.usn != d.usn
		} else if size > 0 {
			list, lerr := d.search(m.BaseDN, scope, m.Filter, ctl.showDeleted)
			if lerr != nil {
				d.mu.RUnlock()
				finish(codeOf(lerr), diagOf(lerr), lerr.MatchedDN)
				return
			}
			cur = &cursor{base: m.BaseDN, scope: scope, filter: m.Filter, showDeleted: ctl.showDeleted, list: list, usn: d.usn}
		}
		if cur != nil && size > 0 {
			end := min(cur.off+size, len(cur.list))
			if sizeLimit > 0 && end > sizeLimit {
				end = max(sizeLimit, cur.off)
				code = gldap.ResultSizeLimitExceeded
			}
			window = cur.list[cur.off:end]
			cur.off = end
			if cur.off < len(cur.list) && code == gldap.ResultSuccess {
				cookie = newCookie()
			}
		}
		// Page size 0 abandons the paged search: nothing more is returned.
	} else {
		list, lerr := d.search(m.BaseDN, scope, m.Filter, ctl.showDeleted)
		if lerr != nil {
			d.mu.RUnlock()
			finish(codeOf(lerr), diagOf(lerr), lerr.MatchedDN)
			return
		}
		limit := maxPageSize
		if sizeLimit > 0 && sizeLimit < limit {
			limit = sizeLimit
		}
		if len(list) > limit {
			list, code = list[:limit], gldap.ResultSizeLimitExceeded
		}
		window = list
	}
	var (
		base *entry
		f    *fnode
	)
	if recheck {
		base, _ = d.lookup(cur.base, cur.showDeleted)
		f, _ = d.compileFilter(cur.filter)
	}
	out := make([]*gldap.SearchResponseEntry, 0, len(window))
	for _, e := range window {
		if recheck && (base == nil || f == nil || !d.still(e, base, scope, f, cur.showDeleted)) {
			continue
		}
		re := r.NewSearchResponseEntry(e.dn)
		for _, a := range d.render(e, sel, m.TypesOnly) {
			re.AddAttribute(a.name, a.vals)
		}
		out = append(out, re)
	}
	d.mu.RUnlock()
	if cookie != "" {
		st.putCursor(cookie, cur)
	}
	for _, re := range out {
		if w.Write(re) != nil {
			return
		}
	}
	if ctl.paging != nil {
		done.SetControls(&gldap.ControlPaging{Cookie: []byte(cookie)})
	}
	finish(code, "", "")
}
