// Package secretfile writes the files that hold secrets (keys, join
// tokens, credentials, passwords) and the few files written beside them,
// so that only their owner can read them and nothing found at their path
// is written through.
//
// A file is written aside first, in its target's directory, created
// O_CREATE|O_EXCL|O_NOFOLLOW with mode 0600 (a file or link someone else
// put at that name is never opened), synced, then moved to its target
// in one step: [Create] and [Write] refuse a target that exists, a link
// included, both when they start and when the file is moved into place
// (renameat2 RENAME_NOREPLACE, or a hard link, never a Stat then a
// write); [Replace] swaps the target's name for the new file (a link at
// the target is replaced, its target untouched). A reader never sees half
// a file, and a path planted while the secret was being made (a dial, a
// ledger append) makes the write fail rather than land in another user's
// file, keeping that user's owner and mode.
//
// A directory that another user can write (group or other write, not
// sticky) is refused before anything is written ([ErrUnsafeDir]): there
// the file could be swapped for theirs once it is in place. A sticky
// directory such as /tmp is accepted: only the file's owner (or the
// directory's, or root) may rename or remove what is in it.
package secretfile

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrExists: the target exists (a file, a directory, a link, dangling or
// not); nothing was written.
var ErrExists = errors.New("already exists")

// ErrUnsafeDir: the target's directory can be written by a user other
// than its owner (group or other write, and not sticky); nothing was
// written.
var ErrUnsafeDir = errors.New("a directory others can write")

// File is a secret file being written aside; Commit puts it at its
// target, Abort removes it. Create it before the secret is made (before
// a dial): a target that exists is refused before anything is spent.
type File struct {
	f           *os.File
	target, tmp string
	replace     bool
	done        bool
}

// Create starts writing target, which must not exist.
func Create(target string) (*File, error) { return create(target, false) }

// Write writes data to target, which must not exist, readable by its
// owner only.
func Write(target string, data []byte) error { return write(target, data, false) }

// Replace writes data to target, mode 0600, in place of whatever is at
// that name (a link is replaced, not written through).
func Replace(target string, data []byte) error { return write(target, data, true) }

func write(target string, data []byte, replace bool) error {
	f, err := create(target, replace)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Commit()
}

func create(target string, replace bool) (*File, error) {
	dir, base := filepath.Split(target)
	if dir == "" {
		dir = "."
	}
	if err := checkDir(filepath.Clean(dir)); err != nil {
		return nil, fmt.Errorf("write %s: %w", target, err)
	}
	if !replace {
		if err := absent(target); err != nil {
			return nil, err
		}
	}
	for range 8 {
		b := make([]byte, 8)
		if _, err := rand.Read(b); err != nil {
			return nil, err
		}
		tmp := filepath.Join(dir, "."+base+"."+hex.EncodeToString(b)+".tmp")
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|noFollow, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("write %s: %w", target, err)
		}
		// A default ACL of the directory may have widened the mode.
		if err := f.Chmod(0o600); err != nil {
			f.Close()
			os.Remove(tmp)
			return nil, fmt.Errorf("write %s: %w", target, err)
		}
		return &File{f: f, target: target, tmp: tmp, replace: replace}, nil
	}
	return nil, fmt.Errorf("write %s: no free name for the file written aside in %s", target, dir)
}

func absent(target string) error {
	if _, err := os.Lstat(target); err == nil {
		return fmt.Errorf("%s: %w", target, ErrExists)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("write %s: %w", target, err)
	}
	return nil
}

// Name is the target's path.
func (f *File) Name() string { return f.target }

// Write writes to the file aside.
func (f *File) Write(p []byte) (int, error) { return f.f.Write(p) }

// Commit syncs the file and puts it at its target: refused with
// ErrExists if something appeared there since Create (unless Replace).
func (f *File) Commit() error {
	if f.done {
		return errors.New("secretfile: already committed or aborted")
	}
	f.done = true
	err := f.f.Sync()
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if f.replace {
			err = os.Rename(f.tmp, f.target)
		} else {
			err = renameNoReplace(f.tmp, f.target)
		}
	}
	if err != nil {
		os.Remove(f.tmp)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s: %w (it appeared while the file was being made; not written through)", f.target, ErrExists)
		}
		return fmt.Errorf("write %s: %w", f.target, err)
	}
	if d, err := os.Open(filepath.Dir(f.target)); err == nil {
		_ = d.Sync() // the rename itself, on a crash
		d.Close()
	}
	return nil
}

// Abort removes the file aside; after Commit it does nothing. Deferred
// by every caller.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.f.Close()
	os.Remove(f.tmp)
}

// linkInstead moves tmp to target by a hard link, which fails if target
// exists (a link included), then removes tmp's name.
func linkInstead(tmp, target string) error {
	if err := os.Link(tmp, target); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return err
		}
		var le *os.LinkError
		if errors.As(err, &le) {
			err = le.Err
		}
		return fmt.Errorf("no way to move a file into place without replacing what may be there (%w)", err)
	}
	return os.Remove(tmp)
}
