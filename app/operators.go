package app

import (
	"fmt"
	"strconv"

	"keydesk/config"
)

// LocalUser is the OS user running a command or the console on this machine.
type LocalUser struct {
	Name string // login name
	UID  int
}

func (u LocalUser) subject() string { return "uid=" + strconv.Itoa(u.UID) + "(" + u.Name + ")" }

// LocalSetup is what decides who a local user is: the configured operators,
// and who owns the data directory (the one operator when none is listed).
type LocalSetup struct {
	Operators  []config.Operator
	ConfigPath string // for the message that says how to add an operator
	DataDir    string
	OwnerUID   int    // the data directory's owner
	OwnerName  string // its login name, for messages ("" if unknown)
}

// LocalActor says which operator a local OS user is, for a session ("cli",
// "console"): the operator whose os_user is the user's login, or, when no
// operator is configured, an admin named after the user if the user owns the
// data directory. Anyone else is refused with a message that says how to add
// them.
func LocalActor(setup LocalSetup, u LocalUser, session string) (Actor, error) {
	auth := Auth{Method: AuthOSUser, Subject: u.subject(), Session: session}
	if len(setup.Operators) == 0 {
		if u.UID == setup.OwnerUID {
			return Actor{Name: u.Name, Role: RoleAdmin, Auth: auth}, nil
		}
		owner := "uid " + strconv.Itoa(setup.OwnerUID)
		if setup.OwnerName != "" {
			owner = setup.OwnerName + " (" + owner + ")"
		}
		return Actor{}, fmt.Errorf("%s is not a KeyDesk operator: with no operator configured, only the owner of the data directory %s, %s, is (an admin); %s",
			u.subject(), setup.DataDir, owner, addOperatorHint(setup.ConfigPath, u.Name))
	}
	for _, o := range setup.Operators {
		if o.OSUser == u.Name {
			role, err := ParseRole(o.Role)
			if err != nil {
				return Actor{}, fmt.Errorf("operator %q: %w", o.Name, err)
			}
			return Actor{Name: o.Name, Role: role, Auth: auth}, nil
		}
	}
	return Actor{}, fmt.Errorf("%s is not a KeyDesk operator: no [[operator]] in %s has os_user = %q; %s",
		u.subject(), setup.ConfigPath, u.Name, addOperatorHint(setup.ConfigPath, u.Name))
}

func addOperatorHint(path, login string) string {
	if path == "" {
		path = "the configuration file"
	}
	return fmt.Sprintf("an admin can add them to %s:\n\n[[operator]]\nname = %q\nrole = \"helpdesk\"   # or admin, auditor\nos_user = %q\n", path, login, login)
}
