//go:build unix

package cli

import (
	"fmt"
	"os"
	"syscall"
)

// ownerUID is the uid that owns path.
func ownerUID(path string) (int, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, fmt.Errorf("%s: no owner information on this system", path)
	}
	return int(st.Uid), nil
}
