//go:build !unix

package cli

import (
	"io/fs"
	"os"
	"os/user"
	"strconv"
)

// ownerOf is the current user's id where files have no uid owner: the
// operator who can open the data directory owns it.
func ownerOf(path string) (int, fs.FileMode, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, 0, err
	}
	u, err := user.Current()
	if err != nil {
		return 0, 0, err
	}
	uid, err := strconv.Atoi(u.Uid)
	return uid, fi.Mode() &^ 0o022, err
}
