package hub

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/xhub-gov/xhub/internal/secretfile"
)

// The data dir is held by the process serving it with a flock on the
// directory itself: a second `xhub serve` would start a second embedded
// JetStream on the same store and a second writer of the views; it is
// refused before it starts anything. A lock on a file inside the dir (as
// before) was lost to anyone who removed or renamed that file while the
// node ran (the next serve made a new one and locked it); a directory
// that holds a store cannot be removed, and a lock taken is checked
// against the path, so a dir renamed or replaced meanwhile is locked
// again. lockFile, in the data dir, only names the holder's pid for the
// refusal's message: written by rename (a link put there is replaced, not
// written through), read without following a link, and removed when the
// node stops.
const lockFile = "xhub.lock"

// ErrDataDirInUse: another process serves the data dir.
var ErrDataDirInUse = errors.New("data dir in use")

// DataDirInUseError names the data dir and the process holding it.
type DataDirInUseError struct {
	Dir string
	PID int // 0 if unknown
}

func (e *DataDirInUseError) Error() string {
	who := "another process"
	if e.PID > 0 {
		who = fmt.Sprintf("another xhub process (pid %d)", e.PID)
	}
	return fmt.Sprintf("hub: data dir %s is in use by %s, which holds its lock: stop it first, or give this node its own --data-dir",
		e.Dir, who)
}

func (e *DataDirInUseError) Unwrap() error { return ErrDataDirInUse }

// lockDataDir takes the data dir's lock without waiting and writes this
// process's pid beside it; release removes the note and gives the lock
// up.
func lockDataDir(dir string) (release func(), err error) {
	for range 3 {
		d, err := openDir(dir)
		if err != nil {
			return nil, fmt.Errorf("hub: lock data dir: %w", err)
		}
		if held, err := tryLock(d); err != nil {
			d.Close()
			return nil, fmt.Errorf("hub: lock data dir %s: %w", dir, err)
		} else if held {
			d.Close()
			return nil, &DataDirInUseError{Dir: dir, PID: readPID(filepath.Join(dir, lockFile))}
		}
		// The lock holds on what was opened: the path must still name it.
		opened, err1 := d.Stat()
		now, err2 := os.Stat(dir)
		if err1 != nil || err2 != nil || !os.SameFile(opened, now) {
			d.Close()
			continue
		}
		note := filepath.Join(dir, lockFile)
		_ = secretfile.Replace(note, []byte(strconv.Itoa(os.Getpid())+"\n"))
		return func() {
			_ = os.Remove(note)
			d.Close()
		}, nil
	}
	return nil, fmt.Errorf("hub: lock data dir %s: it was removed or replaced as it was locked", dir)
}

// readPID reads a pid note, not following a link; 0 if there is none.
func readPID(path string) int {
	f, err := os.OpenFile(path, os.O_RDONLY|noFollow, 0)
	if err != nil {
		return 0
	}
	defer f.Close()
	b := make([]byte, 32)
	k, _ := f.Read(b)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b[:k])))
	return pid
}
