package app

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"keydesk/store"
)

// Permission is the right to run one operation. Every operation of the
// application layer checks exactly one (a sync that applies held removals
// checks two).
type Permission string

// The permissions, in the order README's table lists them.
const (
	PermRead            Permission = "read"              // domains, employees, keys, doctor
	PermSync            Permission = "sync"              // sync domains now
	PermRemovalsApply   Permission = "removals.apply"    // apply removals the accident guard held
	PermEmployeeAdd     Permission = "employee.add"      // add a person who is not in AD
	PermEmployeeRemove  Permission = "employee.remove"   // mark such a person removed
	PermKeyAdd          Permission = "key.add"           // add keys to the inventory (a list, a simulated key)
	PermKeyAssign       Permission = "key.assign"        // give a ready key to an employee, with a code
	PermKeyRenewCode    Permission = "key.renew-code"    // a new activation code for a reserved key
	PermKeyActivate     Permission = "key.activate"      // enter the code of a plugged-in key on site
	PermKeySuspend      Permission = "key.suspend"       // take an active key out of service
	PermKeyUnlock       Permission = "key.unlock"        // bring a locked or suspended key back, with a new code
	PermKeyWithdraw     Permission = "key.withdraw"      // take a key from its employee
	PermKeyCompromise   Permission = "key.compromise"    // mark a key lost, stolen or broken (final)
	PermKeyInspect      Permission = "key.inspect"       // read what a plugged-in key holds
	PermAuditRead       Permission = "audit.read"        // the activity log, audit verify
	PermAuditExport     Permission = "audit.export"      // audit export
	PermPasswordRotate  Permission = "password.rotate"   // rotate domain passwords now
	PermPasswordSet     Permission = "password.set"      // set or generate a password
	PermPasswordReveal  Permission = "password.reveal"   // show a generated password
	PermPasswordSelf    Permission = "password.self"     // a person's own password change at their plugged-in key
	PermInvitationSend  Permission = "invitation.send"   // send or resend invitations
	PermEnroll          Permission = "enrollment.enroll" // enter an enrollment code and register an authenticator
	PermEnrollmentReset Permission = "enrollment.reset"  // forget a person's authenticator
	PermOperatorManage  Permission = "operator.manage"   // add, change and remove operators
	PermMasterRekey     Permission = "master.rekey"      // put every secret under a new master key
)

// permissions lists every permission with what it allows, in table order.
var permissions = []struct {
	p    Permission
	what string
}{
	{PermRead, "see domains, employees, keys; run doctor"},
	{PermSync, "sync domains now"},
	{PermRemovalsApply, "apply removals held by the accident guard"},
	{PermEmployeeAdd, "add a person who is not in AD"},
	{PermEmployeeRemove, "mark such a person removed"},
	{PermKeyAdd, "add keys to the inventory"},
	{PermKeyAssign, "assign a ready key, issuing its activation code"},
	{PermKeyRenewCode, "issue a new activation code"},
	{PermKeyActivate, "activate a plugged-in key with its code"},
	{PermKeySuspend, "suspend an active key"},
	{PermKeyUnlock, "unlock a locked or suspended key (new code)"},
	{PermKeyWithdraw, "withdraw a key from its employee"},
	{PermKeyCompromise, "mark a key lost, stolen or broken"},
	{PermKeyInspect, "read what a plugged-in key holds"},
	{PermAuditRead, "read and verify the audit log"},
	{PermAuditExport, "export the audit log"},
	{PermPasswordRotate, "rotate domain passwords now"},
	{PermPasswordSet, "set or generate a domain password"},
	{PermPasswordReveal, "reveal a generated or held password"},
	{PermPasswordSelf, "let the person at a plugged-in key change their own password (with the key's PIN or their current password)"},
	{PermInvitationSend, "send or resend invitations"},
	{PermEnroll, "enroll an authenticator app with an invitation's code"},
	{PermEnrollmentReset, "reset a person's authenticator enrollment"},
	{PermOperatorManage, "manage operators"},
	{PermMasterRekey, "re-seal every secret under a new master key"},
}

// Permissions lists every permission, in table order.
func Permissions() []Permission {
	out := make([]Permission, len(permissions))
	for i, p := range permissions {
		out[i] = p.p
	}
	return out
}

// Describe says in a few words what a permission allows.
func (p Permission) Describe() string {
	for _, x := range permissions {
		if x.p == p {
			return x.what
		}
	}
	return ""
}

// Role is a set of permissions given to operators.
type Role string

// The roles.
const (
	RoleAdmin    Role = "admin"    // everything
	RoleHelpdesk Role = "helpdesk" // day-to-day key handling: never compromise, withdraw, removals, passwords, operators
	RoleAuditor  Role = "auditor"  // read everything, change nothing
	RoleKiosk    Role = "kiosk"    // a kiosk: serves only the key plugged in at it
)

// roles is THE table of which role holds which permission. Nothing else in
// KeyDesk decides what an operator may do.
var roles = []struct {
	role  Role
	perms []Permission
}{
	{RoleAdmin, Permissions()},
	{RoleHelpdesk, []Permission{PermRead, PermSync, PermKeyAdd, PermKeyAssign, PermKeyRenewCode, PermKeyActivate,
		PermKeySuspend, PermKeyUnlock, PermPasswordSelf, PermInvitationSend, PermEnroll, PermEnrollmentReset}},
	{RoleAuditor, []Permission{PermRead, PermAuditRead, PermAuditExport}},
	{RoleKiosk, []Permission{PermKeyActivate, PermPasswordSelf, PermEnroll}},
}

// Roles lists the roles, from most to least powerful.
func Roles() []Role {
	out := make([]Role, len(roles))
	for i, r := range roles {
		out[i] = r.role
	}
	return out
}

// ParseRole checks a role named in the configuration.
func ParseRole(s string) (Role, error) {
	for _, r := range roles {
		if string(r.role) == s {
			return r.role, nil
		}
	}
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = string(r.role)
	}
	return "", fmt.Errorf("role %q: use one of %s", s, strings.Join(names, ", "))
}

// Has reports whether the role holds the permission.
func (r Role) Has(p Permission) bool {
	for _, x := range roles {
		if x.role == r {
			return slices.Contains(x.perms, p)
		}
	}
	return false
}

// RolesWith lists the roles that hold a permission.
func RolesWith(p Permission) []Role {
	var out []Role
	for _, x := range roles {
		if slices.Contains(x.perms, p) {
			out = append(out, x.role)
		}
	}
	return out
}

// AuthMethod is how an actor proved who they are.
type AuthMethod string

// The authentication methods.
const (
	// AuthOSUser: a local command or console, run by an OS user (by uid).
	AuthOSUser AuthMethod = "os-user"
	// AuthSystem: KeyDesk itself (the scheduler, a key being plugged in).
	AuthSystem AuthMethod = "system"
	// AuthSSHKey: an SSH session that proved one of the operator's keys
	// (Subject is the key's fingerprint).
	AuthSSHKey AuthMethod = "ssh-key"
)

// Auth is the proof of an actor's identity, as the audit log records it.
type Auth struct {
	Method  AuthMethod
	Subject string // os-user: "uid=1000(alice)"
	Session string // where the actor works: "cli", "console"
}

// String is the authentication as one audit field, e.g.
// "os-user uid=1000(alice) via console".
func (a Auth) String() string {
	s := string(a.Method)
	if a.Subject != "" {
		s += " " + a.Subject
	}
	if a.Session != "" {
		s += " via " + a.Session
	}
	return s
}

// Actor is who asks for an operation and how that was proven; every audit
// entry records it.
type Actor struct {
	Name string // the operator's name, or a system actor's ("scheduler")
	Role Role
	Auth Auth
	// Place is where a kiosk's keys are plugged in: a kiosk actor serves
	// only the key plugged in there.
	Place string
}

// String is the actor's name, as the audit log's actor field holds it.
func (a Actor) String() string { return a.Name }

// System actors: what KeyDesk does by itself. They hold a role like any
// actor, so that the same table decides what they may do.
var (
	// schedulerActor runs the periodic syncs (never applying held removals).
	schedulerActor = Actor{Name: "scheduler", Role: RoleHelpdesk, Auth: Auth{Method: AuthSystem}}
	// systemActor handles what a plugged-in key reports (registering it,
	// wiping a deactivated key, a PIN lock).
	systemActor = Actor{Name: "system:keys", Role: RoleAdmin, Auth: Auth{Method: AuthSystem}}
)

// ErrPermission is what every refusal by role wraps (errors.Is).
var ErrPermission = errors.New("permission denied")

// PermissionError is a refused operation: who, what, and which roles would
// have been allowed.
type PermissionError struct {
	Actor      Actor
	Permission Permission
}

func (e *PermissionError) Error() string {
	need := RolesWith(e.Permission)
	names := make([]string, len(need))
	for i, r := range need {
		names[i] = string(r)
	}
	return fmt.Sprintf("%s (role %s) may not %s (%s): that needs the role %s", e.Actor.Name, roleName(e.Actor.Role), e.Permission,
		e.Permission.Describe(), strings.Join(names, " or "))
}

func (e *PermissionError) Unwrap() error { return ErrPermission }

func roleName(r Role) string {
	if r == "" {
		return "none"
	}
	return string(r)
}

// Can reports whether the actor's role holds the permission. The console
// uses it to offer only what an operator may do; the operations check again,
// and that check is the one that counts.
func (s *Service) Can(a Actor, p Permission) bool { return a.Role.Has(p) }

// authorize checks a permission for an operation on target. A refusal is
// audited (actor, permission, target) and returned as a *PermissionError.
func (s *Service) authorize(ctx context.Context, a Actor, p Permission, target string) error {
	if s.Can(a, p) {
		return nil
	}
	err := &PermissionError{Actor: a, Permission: p}
	// The refusal is recorded even when the caller has given up meanwhile.
	ctx = context.WithoutCancel(ctx)
	aerr := s.st.Update(ctx, func(tx *store.Tx) error {
		return s.audit(ctx, tx, a, string(p), target, store.OutcomeDenied, map[string]any{"needs": RolesWith(p)})
	})
	if aerr != nil {
		s.log.Error("audit a refused operation", "actor", a.Name, "permission", p, "err", aerr)
	} else {
		s.publish(DataChanged{What: ChangedAudit})
	}
	return err
}
