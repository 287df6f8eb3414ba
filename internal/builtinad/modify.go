package builtinad

import (
	"slices"
	"strconv"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// change is one modification of a modify request.
type change struct {
	op   uint // ldap.AddAttribute, DeleteAttribute, ReplaceAttribute
	name string
	vals []string
}

// modify applies the changes of one request to e, atomically: either all
// of them or none. actor is the bound account (nil for the Go API, which
// may do anything). A successful modify gives e one new USN.
// Caller holds d.mu for writing.
func (d *Domain) modify(e *entry, changes []change, actor *entry, permissive bool) *ldap.Error {
	if len(changes) == 0 {
		return nil
	}
	if actor != nil && !d.canAdmin(actor) {
		return ldapErr(ldap.LDAPResultInsufficientAccessRights, diagInsuffRights)
	}
	// Work on a copy of the attributes; member changes are collected as
	// an overlay on the current set.
	work := &entry{attrs: slices.Clone(e.attrs)}
	var memberOverlay map[*entry]bool
	memberHas := func(x *entry) bool {
		if v, ok := memberOverlay[x]; ok {
			return v
		}
		_, ok := e.members[x]
		return ok
	}
	newSam, newUPN := "", ""
	for _, c := range changes {
		key := strings.ToLower(c.name)
		if i := strings.IndexByte(key, ';'); i >= 0 { // options such as ;binary
			key = key[:i]
		}
		switch {
		case key == "member":
			if e.kind != kindGroup {
				return ldapErr(ldap.LDAPResultObjectClassViolation, "00002014: objectclass violation: member on a non-group")
			}
			if memberOverlay == nil {
				memberOverlay = map[*entry]bool{}
			}
			if c.op == ldap.ReplaceAttribute || c.op == ldap.DeleteAttribute && len(c.vals) == 0 {
				for x := range e.members {
					memberOverlay[x] = false
				}
				for x, v := range memberOverlay {
					if v {
						memberOverlay[x] = false
					}
				}
			}
			for _, v := range c.vals {
				x, err := d.lookup(v, false)
				if err != nil {
					return ldapErr(ldap.LDAPResultNoSuchObject, diagNoObjectFmt, "")
				}
				switch c.op {
				case ldap.AddAttribute, ldap.ReplaceAttribute:
					if memberHas(x) && c.op == ldap.AddAttribute && !permissive {
						return ldapErr(ldap.LDAPResultEntryAlreadyExists, diagMemberExists)
					}
					memberOverlay[x] = true
				case ldap.DeleteAttribute:
					if !memberHas(x) && !permissive {
						return ldapErr(ldap.LDAPResultUnwillingToPerform, diagNotMember)
					}
					memberOverlay[x] = false
				}
			}
			continue
		case key == strings.ToLower(e.rdnType):
			return ldapErr(ldap.LDAPResultNotAllowedOnRDN, diagNotOnRDN)
		case systemOnly[key], isComputed(key):
			return ldapErr(ldap.LDAPResultUnwillingToPerform, "%s (%s is system-only)", diagSystemOnly, c.name)
		case key == "unicodepwd" || key == "userpassword":
			return ldapErr(ldap.LDAPResultUnwillingToPerform, diagWillNotPerform)
		}
		cur := work.get(key)
		var next []string
		switch c.op {
		case ldap.ReplaceAttribute:
			next = slices.Clone(c.vals)
		case ldap.AddAttribute:
			next = slices.Clone(cur)
			for _, v := range c.vals {
				if containsFold(next, v, key) {
					if permissive {
						continue
					}
					return ldapErr(ldap.LDAPResultAttributeOrValueExists, diagAttrExists, c.name)
				}
				next = append(next, v)
			}
		case ldap.DeleteAttribute:
			if len(cur) == 0 && !permissive {
				return ldapErr(ldap.LDAPResultNoSuchAttribute, diagNoAttr, c.name)
			}
			if len(c.vals) > 0 {
				next = slices.Clone(cur)
				for _, v := range c.vals {
					i := slices.IndexFunc(next, func(s string) bool { return equalValue(s, v, key) })
					if i < 0 {
						if permissive {
							continue
						}
						return ldapErr(ldap.LDAPResultNoSuchAttribute, diagNoAttr, c.name)
					}
					next = slices.Delete(next, i, i+1)
				}
			}
		default:
			return ldapErr(ldap.LDAPResultProtocolError, "unsupported modify operation %d", c.op)
		}
		switch key {
		case "useraccountcontrol", "pwdproperties", "minpwdlength", "pwdhistorylength", "maxpwdage", "minpwdage", "grouptype", "primarygroupid":
			for _, v := range next {
				if _, ok := parseInt(v); !ok {
					return ldapErr(ldap.LDAPResultInvalidAttributeSyntax, "00000057: LdapErr: DSID-0C090D8A, comment: Error in attribute conversion operation, data 0, v4563 (%s)", c.name)
				}
			}
		case "pwdlastset":
			if len(next) != 1 || next[0] != "0" && next[0] != "-1" {
				return ldapErr(ldap.LDAPResultUnwillingToPerform, "%s (pwdLastSet takes only 0 or -1)", diagWillNotPerform)
			}
			if next[0] == "-1" {
				next = []string{fileTime(d.now())}
			}
		case "samaccountname":
			if len(next) != 1 {
				return ldapErr(ldap.LDAPResultConstraintViolation, "sAMAccountName takes one value")
			}
			if x := d.bySam[strings.ToLower(next[0])]; x != nil && x != e {
				return ldapErr(ldap.LDAPResultEntryAlreadyExists, diagSamExists)
			}
			newSam = next[0]
		case "userprincipalname":
			if len(next) > 1 {
				return ldapErr(ldap.LDAPResultConstraintViolation, "userPrincipalName takes one value")
			}
			if len(next) == 1 {
				if x := d.byUPN[strings.ToLower(next[0])]; x != nil && x != e {
					return ldapErr(ldap.LDAPResultConstraintViolation, diagSamExists)
				}
				newUPN = next[0]
			} else {
				newUPN = "\x00" // removed
			}
		}
		work.set(c.name, next...)
	}
	// Commit.
	if newSam != "" {
		delete(d.bySam, strings.ToLower(e.first("samaccountname")))
		d.bySam[strings.ToLower(newSam)] = e
	}
	if newUPN != "" {
		if old := e.first("userprincipalname"); old != "" {
			delete(d.byUPN, strings.ToLower(old))
		}
		if newUPN != "\x00" {
			d.byUPN[strings.ToLower(newUPN)] = e
		}
	}
	e.attrs = work.attrs
	for x, in := range memberOverlay {
		_, was := e.members[x]
		switch {
		case in && !was:
			d.link(e, x)
		case !in && was:
			d.unlink(e, x)
		}
	}
	d.touch(e)
	return nil
}

func containsFold(vals []string, v, key string) bool {
	return slices.ContainsFunc(vals, func(s string) bool { return equalValue(s, v, key) })
}

func equalValue(a, b, key string) bool {
	if binaryAttrs[key] {
		return a == b
	}
	return strings.EqualFold(a, b)
}

// modifyPassword handles a modify request on unicodePwd: a reset (one
// Replace, by an administrator) or a change (Delete old + Add new, by
// anyone who knows the old password). Caller holds d.mu for writing.
func (d *Domain) modifyPassword(e *entry, changes []change, actor *entry, hints bool) *ldap.Error {
	isPwd := func(c change) bool { return strings.EqualFold(c.name, "unicodePwd") }
	switch {
	case len(changes) == 1 && isPwd(changes[0]) && changes[0].op == ldap.ReplaceAttribute && len(changes[0].vals) == 1:
		if !d.canAdmin(actor) {
			return ldapErr(ldap.LDAPResultInsufficientAccessRights, diagInsuffRights)
		}
		pw, ok := decodeUnicodePwd(changes[0].vals[0])
		if !ok {
			return ldapErr(ldap.LDAPResultUnwillingToPerform, diagWillNotPerform)
		}
		mode := pwReset
		if hints {
			mode = pwResetHistory
		}
		return d.setPassword(e, pw, mode)
	case len(changes) == 2 && isPwd(changes[0]) && isPwd(changes[1]) &&
		changes[0].op == ldap.DeleteAttribute && changes[1].op == ldap.AddAttribute &&
		len(changes[0].vals) == 1 && len(changes[1].vals) == 1:
		oldPw, ok1 := decodeUnicodePwd(changes[0].vals[0])
		newPw, ok2 := decodeUnicodePwd(changes[1].vals[0])
		if !ok1 || !ok2 {
			return ldapErr(ldap.LDAPResultUnwillingToPerform, diagWillNotPerform)
		}
		if !e.isAccount() {
			return ldapErr(ldap.LDAPResultUnwillingToPerform, diagWillNotPerform)
		}
		if !e.pw.matches(oldPw) {
			return ldapErr(ldap.LDAPResultConstraintViolation, diagWrongOldPwd)
		}
		return d.setPassword(e, newPw, pwChange)
	}
	return ldapErr(ldap.LDAPResultUnwillingToPerform, diagWillNotPerform)
}

// itoa is strconv.Itoa for int64.
func itoa(v int64) string { return strconv.FormatInt(v, 10) }
