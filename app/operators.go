package app

import (
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
	owner := subject(setup.OwnerName, setup.OwnerUID)
	if setup.OwnerName == "" {
		owner = "uid " + strconv.Itoa(setup.OwnerUID)
	}
	if u.UID != setup.OwnerUID {
		run := "sudo -u " + setup.OwnerName + " keydesk"
		if setup.OwnerName == "" {
			run = "sudo -u '#" + strconv.Itoa(setup.OwnerUID) + "' keydesk"
		}
		return Actor{}, fmt.Errorf("%s does not own the data directory %s (%s does): KeyDesk runs as the owner of its data; run it as %s, as an operator listed in the configuration",
			subject(u.Name, u.UID), setup.DataDir, owner, run)
	}
	person, uid, how := u.Name, u.UID, ""
	if u.SudoUID >= 0 && u.SudoUID != u.UID && u.SudoName != "" {
		person, uid, how = u.SudoName, u.SudoUID, " by sudo as "+subject(u.Name, u.UID)
	}
	auth := Auth{Method: AuthOSUser, Subject: subject(person, uid) + how, Session: session}
	if len(setup.Operators) == 0 {
		return Actor{Name: person, Role: RoleAdmin, Auth: auth}, nil
	}
	if o := setup.ConfigOwnerUID; (o != 0 && o != setup.OwnerUID) || setup.ConfigMode.Perm()&0o022 != 0 {
		return Actor{}, fmt.Errorf("the operators listed in %s cannot be believed: the file is owned by uid %d with mode %#o, and only the data directory's owner (%s) or root may be able to change it; run: chown %d %s && chmod go-w %s",
			setup.ConfigPath, o, uint32(setup.ConfigMode.Perm()), owner, setup.OwnerUID, setup.ConfigPath, setup.ConfigPath)
	}
	for _, o := range setup.Operators {
		if ouid, ok := setup.OperatorUIDs[o.OSUser]; ok && ouid == uid {
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

func addOperatorHint(path, login string) string {
	if path == "" {
		path = "the configuration file"
	}
	return fmt.Sprintf("an admin can add them to %s:\n\n[[operator]]\nname = %q\nrole = \"helpdesk\"   # or admin, auditor\nos_user = %q\n", path, login, login)
}
