//go:build !unix

package cli

import (
	"os"
	"os/user"
	"strconv"
)

// ownerUID is the current user's id where files have no uid owner: the
// operator who can open the data directory owns it.
func ownerUID(path string) (int, error) {
	if _, err := os.Stat(path); err != nil {
		return 0, err
	}
	u, err := user.Current()
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(u.Uid)
}
