package secretfile

import (
	"errors"

	"golang.org/x/sys/unix"
)

const noFollow = unix.O_NOFOLLOW

// renameNoReplace renames tmp to target unless target exists.
func renameNoReplace(tmp, target string) error {
	err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, target, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.ENOTSUP) {
		return linkInstead(tmp, target) // a file system without it
	}
	return err
}
