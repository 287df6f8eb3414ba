//go:build unix

package cli

import (
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// ownerOf is the uid that owns path, and its mode.
func ownerOf(path string) (int, fs.FileMode, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, 0, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, fmt.Errorf("%s: no owner information on this system", path)
	}
	return int(st.Uid), fi.Mode(), nil
}
