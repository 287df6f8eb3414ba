package app

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"keydesk/config"
	"keydesk/keys"
	"keydesk/store"
)

// operation is one operation of the application layer as a caller runs it.
type operation struct {
	perm Permission
	run  func(ctx context.Context, s *Service, a Actor) error
}

// operations lists every operation that takes an actor, by method, with the
// permission it needs. TestEveryOperationIsListed keeps it complete.
var operations = map[string]operation{
	"Sync": {PermSync, func(ctx context.Context, s *Service, a Actor) error {
		_, err := s.Sync(ctx, SyncRequest{Actor: a})
		return err
	}},
	"Sync/allow-removals": {PermRemovalsApply, func(ctx context.Context, s *Service, a Actor) error {
		if !a.Role.Has(PermSync) {
			a.Role = RoleHelpdesk // isolate the second check
		}
		_, err := s.Sync(ctx, SyncRequest{Actor: a, AllowRemovals: true})
		return err
	}},
	"DomainStatuses": {PermRead, func(ctx context.Context, s *Service, a Actor) error {
		_, err := s.DomainStatuses(ctx, a)
		return err
	}},
	"Doctor": {PermRead, func(ctx context.Context, s *Service, a Actor) error {
		_, err := s.Doctor(ctx, a)
		return err
	}},
	"Employees": {PermRead, func(ctx context.Context, s *Service, a Actor) error {
		_, err := s.Employees(ctx, a, "")
		return err
	}},
	"AddEmployee": {PermEmployeeAdd, func(ctx context.Context, s *Service, a Actor) error {
		_, err := s.AddEmployee(ctx, a, "new-"+string(a.Role)+"@example.com", "New")
		return err
	}},
	"RemoveEmployee": {PermEmployeeRemove, func(ctx context.Context, s *Service, a Actor) error {
		_, err := s.RemoveEmployee(ctx, a, "new-admin@example.com")
		return err
	}},
	"Keys": {PermRead, func(ctx context.Context, s *Service, a Actor) error {
		_, err := s.Keys(ctx, a)
		return err
	}},
	"Key": {PermRead, func(ctx context.Context, s *Service, a Actor) error {
		_, err := s.Key(ctx, a, "K1")
		return err
	}},
	"AddKeys": {PermKeyAdd, func(ctx context.Context, s *Service, a Actor) error {
		return s.AddKeys(ctx, a, []string{"NEW-" + string(a.Role)})
	}},
	"AssignKey": {PermKeyAssign, func(ctx context.Context, s *Service, a Actor) error {
		_, err := s.AssignKey(ctx, a, "K1", "ann@example.com")
		return err
	}},
	"RenewCode": {PermKeyRenewCode, func(ctx context.Context, s *Service, a Actor) error {
		_, err := s.RenewCode(ctx, a, "K1")
		return err
	}},
	"ActivateKey": {PermKeyActivate, func(ctx context.Context, s *Service, a Actor) error {
		_, err := s.ActivateKey(ctx, a, "K1", "123456")
		return err
	}},
	"SuspendKey": {PermKeySuspend, func(ctx context.Context, s *Service, a Actor) error {
		return s.SuspendKey(ctx, a, "K1", "")
	}},
	"UnlockKey": {PermKeyUnlock, func(ctx context.Context, s *Service, a Actor) error {
		_, err := s.UnlockKey(ctx, a, "K1", "")
		return err
	}},
	"WithdrawKey": {PermKeyWithdraw, func(ctx context.Context, s *Service, a Actor) error {
		return s.WithdrawKey(ctx, a, "K1", "")
	}},
	"CompromiseKey": {PermKeyCompromise, func(ctx context.Context, s *Service, a Actor) error {
		return s.CompromiseKey(ctx, a, "K2", keys.ReasonLost, "")
	}},
	"InspectKey": {PermKeyInspect, func(ctx context.Context, s *Service, a Actor) error {
		_, err := s.InspectKey(ctx, a, "K1")
		return err
	}},
	"NewSimulatedKey": {PermKeyAdd, func(ctx context.Context, s *Service, a Actor) error {
		_, err := s.NewSimulatedKey(ctx, a, "")
		return err
	}},
	"SetSimulatedKeyPlugged": {PermKeyAdd, func(ctx context.Context, s *Service, a Actor) error {
		return s.SetSimulatedKeyPlugged(ctx, a, "K1", true)
	}},
	"VerifyAudit": {PermAuditRead, func(ctx context.Context, s *Service, a Actor) error {
		_, err := s.VerifyAudit(ctx, a)
		return err
	}},
	"AuditEntries": {PermAuditRead, func(ctx context.Context, s *Service, a Actor) error {
		return s.AuditEntries(ctx, a, store.AuditFilter{Limit: 1}, func(store.AuditEntry) error { return nil })
	}},
	"ExportAudit": {PermAuditExport, func(ctx context.Context, s *Service, a Actor) error {
		return s.ExportAudit(ctx, a, func(store.AuditEntry) error { return nil })
	}},
	"RotatePasswords": {PermPasswordRotate, func(ctx context.Context, s *Service, a Actor) error {
		_, err := s.RotatePasswords(ctx, a, "ann@example.com", "")
		return err
	}},
	"SetPassword": {PermPasswordSet, func(ctx context.Context, s *Service, a Actor) error {
		_, err := s.SetPassword(ctx, a, "ann@example.com", "", "Kq7#vW2!pZ9rTx4m")
		return err
	}},
	"GeneratePassword": {PermPasswordSet, func(ctx context.Context, s *Service, a Actor) error {
		_, _, err := s.GeneratePassword(ctx, a, "ann@example.com", "", false)
		return err
	}},
	"RevealPassword": {PermPasswordReveal, func(ctx context.Context, s *Service, a Actor) error {
		_, err := s.RevealPassword(ctx, a, "ann@example.com", "")
		return err
	}},
	"ChangeOwnPassword": {PermPasswordSelf, func(ctx context.Context, s *Service, a Actor) error {
		_, err := s.ChangeOwnPassword(ctx, a, SelfChange{Serial: "K1", On: SelfBoth, Current: "x", New: "y"})
		return err
	}},
	"Operators": {PermRead, func(ctx context.Context, s *Service, a Actor) error {
		_, err := s.Operators(ctx, a)
		return err
	}},
	"KeyAtHand": {PermKeyActivate, func(ctx context.Context, s *Service, a Actor) error {
		_, err := s.KeyAtHand(ctx, a, "K1")
		return err
	}},
	"RotateDue": {PermPasswordRotate, func(ctx context.Context, s *Service, a Actor) error {
		_, err := s.RotateDue(ctx, a, "")
		return err
	}},
	"Rotations": {PermRead, func(ctx context.Context, s *Service, a Actor) error {
		_, err := s.Rotations(ctx, a)
		return err
	}},
	"Invite": {PermInvitationSend, func(ctx context.Context, s *Service, a Actor) error {
		_, err := s.Invite(ctx, a, []string{"ann@example.com"}, false)
		return err
	}},
	"Invitations": {PermRead, func(ctx context.Context, s *Service, a Actor) error {
		_, err := s.Invitations(ctx, a)
		return err
	}},
	"InvitationOf": {PermRead, func(ctx context.Context, s *Service, a Actor) error {
		_, err := s.InvitationOf(ctx, a, 1)
		return err
	}},
	"EachEmployee": {PermRead, func(ctx context.Context, s *Service, a Actor) error {
		return s.EachEmployee(ctx, a, "", func(EmployeeView) error { return nil })
	}},
	"Employee": {PermRead, func(ctx context.Context, s *Service, a Actor) error {
		_, err := s.Employee(ctx, a, 1)
		return err
	}},
	"DeliverMail": {PermInvitationSend, func(ctx context.Context, s *Service, a Actor) error {
		_, err := s.DeliverMail(ctx, a)
		return err
	}},
	"BeginEnrollment": {PermEnroll, func(ctx context.Context, s *Service, a Actor) error {
		_, err := s.BeginEnrollment(ctx, a, "AAAA-AAAA-AAAA-AAAA-AAAA-AAAA")
		return err
	}},
	"ConfirmEnrollment": {PermEnroll, func(ctx context.Context, s *Service, a Actor) error {
		_, err := s.ConfirmEnrollment(ctx, a, "AAAA-AAAA-AAAA-AAAA-AAAA-AAAA", "123456")
		return err
	}},
	"ResetEnrollment": {PermEnrollmentReset, func(ctx context.Context, s *Service, a Actor) error {
		_, err := s.ResetEnrollment(ctx, a, "ann@example.com")
		return err
	}},
	"RekeyMasterKey": {PermMasterRekey, func(ctx context.Context, s *Service, a Actor) error {
		_, err := s.RekeyMasterKey(ctx, a, MasterKeyFile{Path: s.st.Path() + ".master.key"})
		return err
	}},
}

// notYetOperations are permissions whose operations the next issues add
// (rotation, invitations, operators over SSH). Each moves to operations when
// its operation exists.
var notYetOperations = []Permission{PermOperatorManage}

// TestEveryOperationIsListed finds every method of Service that takes an
// Actor (or a request carrying one) and checks that operations covers it,
// so that no operation escapes the roles x permissions test below.
func TestEveryOperationIsListed(t *testing.T) {
	actorT, reqT := reflect.TypeOf(Actor{}), reflect.TypeOf(SyncRequest{})
	st := reflect.TypeOf(&Service{})
	for i := 0; i < st.NumMethod(); i++ {
		m := st.Method(i)
		if m.Name == "Can" {
			continue // a question, not an operation
		}
		for j := 1; j < m.Type.NumIn(); j++ {
			if in := m.Type.In(j); in == actorT || in == reqT {
				if _, ok := operations[m.Name]; !ok {
					t.Errorf("Service.%s takes an actor but is not in the operations table of this test", m.Name)
				}
			}
		}
	}
	used := map[Permission]bool{}
	for _, op := range operations {
		used[op.perm] = true
	}
	for _, p := range Permissions() {
		if used[p] == slices.Contains(notYetOperations, p) {
			t.Errorf("permission %s: used by an operation = %v, listed as not yet an operation = %v; exactly one must hold", p, used[p], !used[p])
		}
	}
}

// TestRolesTimesOperations runs every operation as every role: a role that
// holds the permission is not refused (the operation may still fail for its
// own reasons), any other is refused with ErrPermission, naming the role
// needed, and the refusal is in the audit log.
func TestRolesTimesOperations(t *testing.T) {
	ctx := context.Background()
	for _, role := range append(Roles(), Role("")) {
		s := keyService(t)
		if err := s.AddKeys(ctx, testAdmin, []string{"K1", "K2"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AddEmployee(ctx, testAdmin, "new-admin@example.com", "To be removed"); err != nil && role != RoleAdmin {
			t.Fatal(err)
		}
		actor := Actor{Name: "op-" + string(role), Role: role, Auth: Auth{Method: AuthOSUser, Subject: "uid=1000(op)", Session: "cli"}}
		for name, op := range operations {
			t.Run(string(roleName(role))+"/"+name, func(t *testing.T) {
				err := op.run(ctx, s, actor)
				var perr *PermissionError
				if role.Has(op.perm) {
					if errors.Is(err, ErrPermission) {
						t.Fatalf("role %s holds %s but was refused: %v", role, op.perm, err)
					}
					return
				}
				if !errors.As(err, &perr) || !errors.Is(err, ErrPermission) {
					t.Fatalf("role %s lacks %s but got %v, want a *PermissionError", role, op.perm, err)
				}
				msg := err.Error()
				for _, r := range RolesWith(op.perm) {
					if !strings.Contains(msg, string(r)) {
						t.Errorf("refusal %q does not name the role %s that would be allowed", msg, r)
					}
				}
				if !strings.Contains(msg, string(op.perm)) || !strings.Contains(msg, actor.Name) {
					t.Errorf("refusal %q does not say who was refused what", msg)
				}
			})
		}
		// Every refusal is one audit entry, with who and what.
		var denied []string
		s.st.AuditEntries(ctx, store.AuditFilter{}, func(e store.AuditEntry) error {
			if e.Outcome == store.OutcomeDenied {
				wantRole := string(role)
				if e.Action == string(PermRemovalsApply) && !role.Has(PermSync) {
					wantRole = string(RoleHelpdesk) // see Sync/allow-removals
				}
				if e.Actor != actor.Name || e.Role != wantRole || e.Auth != "os-user uid=1000(op) via cli" || e.Target == "" {
					t.Errorf("refusal entry %+v does not record the actor, role, authentication and target", e)
				}
				denied = append(denied, e.Action)
			}
			return nil
		})
		var want []string
		for _, op := range operations {
			if !role.Has(op.perm) {
				want = append(want, string(op.perm))
			}
		}
		slices.Sort(denied)
		slices.Sort(want)
		if !slices.Equal(denied, want) {
			t.Errorf("role %q: audited refusals %v, want %v", role, denied, want)
		}
	}
}

func TestRoleTable(t *testing.T) {
	// The promises the README makes about the roles.
	for _, p := range Permissions() {
		if !RoleAdmin.Has(p) {
			t.Errorf("admin lacks %s", p)
		}
		if p.Describe() == "" {
			t.Errorf("permission %s has no description", p)
		}
	}
	for _, p := range []Permission{PermKeyCompromise, PermPasswordReveal, PermPasswordSet, PermRemovalsApply, PermOperatorManage} {
		if RoleHelpdesk.Has(p) {
			t.Errorf("helpdesk holds %s", p)
		}
	}
	for _, p := range Permissions() {
		readOnly := p == PermRead || p == PermAuditRead || p == PermAuditExport
		if RoleAuditor.Has(p) != readOnly {
			t.Errorf("auditor holds %s: %v, want %v (read and audit only)", p, RoleAuditor.Has(p), readOnly)
		}
	}
	// The configuration accepts exactly these roles.
	var names []string
	for _, r := range Roles() {
		names = append(names, string(r))
	}
	if !slices.Equal(names, config.OperatorRoles) {
		t.Errorf("roles %v, but the configuration accepts %v", names, config.OperatorRoles)
	}
	if _, err := ParseRole("root"); err == nil || !strings.Contains(err.Error(), "admin, helpdesk, auditor") {
		t.Errorf("ParseRole(root) = %v", err)
	}
}

func TestLocalActor(t *testing.T) {
	ops := []config.Operator{{Name: "alice", Role: "admin", OSUser: "alice"}, {Name: "hd.bob", Role: "helpdesk", OSUser: "bob"}, {Name: "ghost", Role: "admin", OSUser: "nobody-here"}}
	uids := map[string]int{"alice": 1000, "bob": 1001}
	const svc = 999 // the keydesk account owns the data
	asOwner := LocalUser{Name: "keydesk", UID: svc, SudoUID: -1}
	sudo := func(name string, uid int) LocalUser {
		return LocalUser{Name: "keydesk", UID: svc, SudoName: name, SudoUID: uid}
	}
	tests := []struct {
		name     string
		ops      []config.Operator
		user     LocalUser
		cfgOwner int
		cfgMode  fs.FileMode
		wantName string
		wantRole Role
		wantAuth string
		wantErr  []string
	}{
		{name: "no operators: the owner is admin", user: asOwner, wantName: "keydesk", wantRole: RoleAdmin, wantAuth: "os-user uid=999(keydesk) via console"},
		{name: "no operators: through sudo, the person is admin", user: sudo("alice", 1000), wantName: "alice", wantRole: RoleAdmin,
			wantAuth: "os-user uid=1000(alice) by sudo as uid=999(keydesk) via console"},
		{name: "someone else runs keydesk: told to go through sudo", user: LocalUser{Name: "carol", UID: 1002, SudoUID: -1},
			wantErr: []string{"uid=1002(carol) does not own the data directory /var/lib/keydesk", "uid=999(keydesk) does", "sudo -u keydesk keydesk"}},
		{name: "sudo to someone else than the owner is not the owner", user: LocalUser{Name: "root", UID: 0, SudoName: "carol", SudoUID: 1002},
			wantErr: []string{"uid=0(root) does not own"}},
		{name: "listed operator through sudo, by uid", ops: ops, user: sudo("bob", 1001), wantName: "hd.bob", wantRole: RoleHelpdesk},
		{name: "a login named like an operator but with another uid is not them", ops: ops, user: sudo("bob", 4242),
			wantErr: []string{"uid=4242(bob) is not a KeyDesk operator"}},
		{name: "listed admin", ops: ops, user: sudo("alice", 1000), wantName: "alice", wantRole: RoleAdmin},
		{name: "operators listed: the owner is not implied", ops: ops, user: asOwner,
			wantErr: []string{"uid=999(keydesk) is not a KeyDesk operator", `os_user = "keydesk"`}},
		{name: "unlisted person told how to be added", ops: ops, user: sudo("carol", 1002),
			wantErr: []string{"uid=1002(carol) is not a KeyDesk operator", `os_user = "carol"`, "role = \"helpdesk\"   # or admin, auditor", "/etc/keydesk/keydesk.toml"}},
		{name: "configuration owned by someone else", ops: ops, user: sudo("alice", 1000), cfgOwner: 1002,
			wantErr: []string{"cannot be believed", "owned by uid 1002", "chown 999"}},
		{name: "configuration writable by the group", ops: ops, user: sudo("alice", 1000), cfgMode: 0o664,
			wantErr: []string{"cannot be believed", "mode 0664", "chmod go-w"}},
		{name: "configuration owned by root is fine", ops: ops, user: sudo("alice", 1000), cfgOwner: 0, cfgMode: 0o644, wantName: "alice", wantRole: RoleAdmin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfgOwner := tt.cfgOwner
			if cfgOwner == 0 && !strings.Contains(tt.name, "root") {
				cfgOwner = svc
			}
			mode := tt.cfgMode
			if mode == 0 {
				mode = 0o600
			}
			setup := LocalSetup{Operators: tt.ops, OperatorUIDs: uids, ConfigPath: "/etc/keydesk/keydesk.toml", ConfigOwnerUID: cfgOwner, ConfigMode: mode,
				DataDir: "/var/lib/keydesk", OwnerUID: svc, OwnerName: "keydesk"}
			a, err := LocalActor(setup, tt.user, "console")
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("LocalActor = %+v, want a refusal", a)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("refusal %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.Name != tt.wantName || a.Role != tt.wantRole || (tt.wantAuth != "" && a.Auth.String() != tt.wantAuth) {
				t.Errorf("LocalActor = %s (%s) %q, want %s (%s) %q", a.Name, a.Role, a.Auth, tt.wantName, tt.wantRole, tt.wantAuth)
			}
		})
	}
}

// roleTableMarkdown is the roles x permissions table as README shows it.
func roleTableMarkdown() string {
	var b strings.Builder
	b.WriteString("| permission | allows |")
	for _, r := range Roles() {
		b.WriteString(" " + string(r) + " |")
	}
	b.WriteString("\n|---|---|" + strings.Repeat("---|", len(Roles())) + "\n")
	for _, p := range Permissions() {
		b.WriteString("| `" + string(p) + "` | " + p.Describe() + " |")
		for _, r := range Roles() {
			mark := " |"
			if r.Has(p) {
				mark = " ✓ |"
			}
			b.WriteString(mark)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TestREADMEShowsTheRoleTable keeps README's table of roles and
// permissions the same as the one in the code.
func TestREADMEShowsTheRoleTable(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	want := roleTableMarkdown()
	if !strings.Contains(string(readme), want) {
		t.Errorf("README.md does not show the roles table of app/access.go; put this in it (section \"Operators and roles\"):\n\n%s", want)
	}
}
