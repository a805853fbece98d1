package hub

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// lockFile, in the data dir, is held (flock) by the process serving it,
// and names its pid. A second `xhub serve` on the same data dir would
// start a second embedded JetStream on the same store and a second writer
// of the views; it is refused before it starts anything. The file stays
// when the node stops: the lock, not the file, says the dir is in use.
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
	return fmt.Sprintf("hub: data dir %s is in use by %s, which holds %s: stop it first, or give this node its own --data-dir",
		e.Dir, who, filepath.Join(e.Dir, lockFile))
}

func (e *DataDirInUseError) Unwrap() error { return ErrDataDirInUse }

// lockDataDir takes the data dir's lock without waiting and writes this
// process's pid in it; release gives it up.
func lockDataDir(dir string) (release func(), err error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("hub: lock data dir: %w", err)
	}
	if held, err := tryLock(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("hub: lock %s: %w", path, err)
	} else if held {
		b := make([]byte, 32)
		k, _ := f.ReadAt(b, 0)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b[:k])))
		f.Close()
		return nil, &DataDirInUseError{Dir: dir, PID: pid}
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil
}
