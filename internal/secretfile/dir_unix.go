//go:build unix

package secretfile

import (
	"fmt"
	"os"
)

// checkDir refuses a directory that a user other than its owner can
// write, unless it is sticky: there another user could rename or remove
// the file once it is written and put their own at its name (a CA that
// trusts their hub, a key of theirs), which no care in writing it can
// stop. In a sticky directory (/tmp, mode 1777) only a file's owner, the
// directory's owner and root may rename or remove it, so the file stays
// as written: it is accepted. A name planted there first is refused
// like any target that exists.
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil // the write itself says what is wrong with it
	}
	m := fi.Mode()
	if m&os.ModeSticky != 0 || m.Perm()&0o022 == 0 {
		return nil
	}
	who := "other users"
	switch m.Perm() & 0o022 {
	case 0o020:
		who = "its group"
	case 0o022:
		who = "its group and other users"
	}
	return fmt.Errorf("%s is mode %04o: %s can write it, and could swap the file once written: %w; use a directory only you can write (install -d -m 700 %s)",
		dir, m.Perm(), who, ErrUnsafeDir, dir)
}
