package app

import (
	"context"
	"fmt"
	"io/fs"
	"strconv"

	"keydesk/config"
)

// LocalUser is who runs a command or the console on this machine: the OS
// account of the process and, when it was started with sudo, the person
// who ran sudo.
type LocalUser struct {
	Name string // login name of the process's user
	UID  int
	// SudoName and SudoUID are who ran sudo to become this user (SUDO_USER
	// and SUDO_UID); SudoUID < 0 when the process was not started by sudo.
	SudoName string
	SudoUID  int
}

func subject(name string, uid int) string { return "uid=" + strconv.Itoa(uid) + "(" + name + ")" }

// LocalSetup is what decides who a local user is as an operator.
type LocalSetup struct {
	Operators []config.Operator
	// OperatorUIDs maps each operator's os_user to its uid on this machine
	// (logins that do not exist here are missing).
	OperatorUIDs map[string]int
	ConfigPath   string
	// ConfigOwnerUID and ConfigMode are the configuration file's owner and
	// mode: operators are only believed from a file that only the data
	// directory's owner (or root) can change.
	ConfigOwnerUID int
	ConfigMode     fs.FileMode
	DataDir        string
	OwnerUID       int    // the data directory's owner
	OwnerName      string // its login ("" if unknown)
}

// LocalActor says which operator a local user is, for a session ("cli",
// "console"). KeyDesk runs as the owner of its data directory (which holds
// the database and the master key, readable by the owner only); the person
// is the owner, or, through sudo -u OWNER, whoever ran sudo. With no
// operator configured that person is an admin. With operators configured,
// the person is the operator whose os_user has their uid, and the
// configuration must be one that only the owner or root can change (or
// anyone could name themselves admin). Everyone else is refused, with what
// to do.
func LocalActor(setup LocalSetup, u LocalUser, session string) (Actor, error) {
	auth, err := localAuth(setup, u, session)
	if err != nil {
		return Actor{}, err
	}
	person, uid := u.Name, u.UID
	if u.SudoUID >= 0 && u.SudoUID != u.UID && u.SudoName != "" {
		person, uid = u.SudoName, u.SudoUID
	}
	if len(setup.Operators) == 0 {
		return Actor{Name: person, Role: RoleAdmin, Auth: auth}, nil
	}
	if err := configTrusted(setup); err != nil {
		return Actor{}, err
	}
	for _, o := range setup.Operators {
		if ouid, ok := setup.OperatorUIDs[o.OSUser]; ok && ouid == uid && o.OSUser != "" {
			role, err := ParseRole(o.Role)
			if err != nil {
				return Actor{}, fmt.Errorf("operator %q: %w", o.Name, err)
			}
			return Actor{Name: o.Name, Role: role, Auth: auth}, nil
		}
	}
	return Actor{}, fmt.Errorf("%s is not a KeyDesk operator: no [[operator]] in %s has the os_user of uid %d; %s",
		subject(person, uid), setup.ConfigPath, uid, addOperatorHint(setup.ConfigPath, person))
}

// ServerActor is who starts keydesk serve. The server runs as the data
// directory's owner, and believes the operators (their SSH keys) only from
// a configuration that only the owner or root can change: anyone who could
// edit it could make their own key an admin's. Its sessions are the
// operators their keys prove; this actor itself has no role.
func ServerActor(setup LocalSetup, u LocalUser) (Actor, error) {
	auth, err := localAuth(setup, u, "serve")
	if err != nil {
		return Actor{}, err
	}
	if len(setup.Operators) > 0 {
		if err := configTrusted(setup); err != nil {
			return Actor{}, err
		}
	}
	return Actor{Name: "keydesk-serve", Auth: auth}, nil
}

// localAuth checks that the user runs KeyDesk as the data's owner and says
// how they are authenticated (who ran sudo, if anyone).
func localAuth(setup LocalSetup, u LocalUser, session string) (Auth, error) {
	owner := subject(setup.OwnerName, setup.OwnerUID)
	if setup.OwnerName == "" {
		owner = "uid " + strconv.Itoa(setup.OwnerUID)
	}
	if u.UID != setup.OwnerUID {
		run := "sudo -u " + setup.OwnerName + " keydesk"
		if setup.OwnerName == "" {
			run = "sudo -u '#" + strconv.Itoa(setup.OwnerUID) + "' keydesk"
		}
		return Auth{}, fmt.Errorf("%s does not own the data directory %s (%s does): KeyDesk runs as the owner of its data; run it as %s, as an operator listed in the configuration",
			subject(u.Name, u.UID), setup.DataDir, owner, run)
	}
	person, uid, how := u.Name, u.UID, ""
	if u.SudoUID >= 0 && u.SudoUID != u.UID && u.SudoName != "" {
		person, uid, how = u.SudoName, u.SudoUID, " by sudo as "+subject(u.Name, u.UID)
	}
	return Auth{Method: AuthOSUser, Subject: subject(person, uid) + how, Session: session}, nil
}

// configTrusted refuses a configuration that someone other than the data's
// owner or root can change: its operators could not be believed.
func configTrusted(setup LocalSetup) error {
	owner := subject(setup.OwnerName, setup.OwnerUID)
	if setup.OwnerName == "" {
		owner = "uid " + strconv.Itoa(setup.OwnerUID)
	}
	if o := setup.ConfigOwnerUID; (o != 0 && o != setup.OwnerUID) || setup.ConfigMode.Perm()&0o022 != 0 {
		return fmt.Errorf("the operators listed in %s cannot be believed: the file is owned by uid %d with mode %#o, and only the data directory's owner (%s) or root may be able to change it; run: chown %d %s && chmod go-w %s",
			setup.ConfigPath, o, uint32(setup.ConfigMode.Perm()), owner, setup.OwnerUID, setup.ConfigPath, setup.ConfigPath)
	}
	return nil
}

func addOperatorHint(path, login string) string {
	if path == "" {
		path = "the configuration file"
	}
	return fmt.Sprintf("an admin can add them to %s:\n\n[[operator]]\nname = %q\nrole = \"helpdesk\"   # or admin, auditor\nos_user = %q\n", path, login, login)
}

// RemoteActor is operator o, proven by auth (an SSH session that proved
// one of the operator's keys: keydesk serve decides which operator a key
// is).
func RemoteActor(o config.Operator, auth Auth) (Actor, error) {
	role, err := ParseRole(o.Role)
	if err != nil {
		return Actor{}, fmt.Errorf("operator %q: %w", o.Name, err)
	}
	return Actor{Name: o.Name, Role: role, Auth: auth}, nil
}

// Operators lists the operators of the configuration (who may use KeyDesk,
// as what, from where).
func (s *Service) Operators(ctx context.Context, a Actor) ([]config.Operator, error) {
	if err := s.authorize(ctx, a, PermRead, "operators"); err != nil {
		return nil, err
	}
	return s.cfg.Operators, nil
}
