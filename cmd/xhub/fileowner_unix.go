//go:build unix

package main

import (
	"os"
	"syscall"
)

// ownedByAnother says whether fi belongs to another user than this
// process's: that user reads the file whatever its mode.
func ownedByAnother(fi os.FileInfo) (uid int, other bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), int(st.Uid) != os.Getuid()
}
