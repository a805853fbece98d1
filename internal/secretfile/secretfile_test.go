//go:build unix

package secretfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestNeverWritesThrough: a target that exists, or a link planted at it
// (before Create or between Create and Commit), is refused and the
// planted file keeps what it held; what is written is mode 0600, whole,
// with nothing left aside.
func TestNeverWritesThrough(t *testing.T) {
	dir := t.TempDir()
	other := filepath.Join(t.TempDir(), "other")
	if err := os.WriteFile(other, []byte("theirs"), 0o644); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "secret")
	plant := func() {
		if err := os.Symlink(other, target); err != nil {
			t.Fatal(err)
		}
	}
	plant()
	if err := Write(target, []byte("s3cret")); !errors.Is(err, ErrExists) {
		t.Fatalf("Write over a link: %v, want ErrExists", err)
	}
	os.Remove(target)
	if err := os.Symlink(filepath.Join(dir, "nowhere"), target); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(target); !errors.Is(err, ErrExists) {
		t.Fatalf("Create over a dangling link: %v, want ErrExists", err)
	}
	os.Remove(target)

	f, err := Create(target)
	if err != nil {
		t.Fatal(err)
	}
	plant() // during the dial
	if _, err := f.Write([]byte("s3cret")); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); !errors.Is(err, ErrExists) {
		t.Fatalf("Commit over a link planted after Create: %v, want ErrExists", err)
	}
	f.Abort()
	if b, _ := os.ReadFile(other); string(b) != "theirs" {
		t.Fatalf("the planted link's target now holds %q", b)
	}
	os.Remove(target)

	if err := Write(target, []byte("s3cret")); err != nil {
		t.Fatal(err)
	}
	st, err := os.Lstat(target)
	if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != 0o600 {
		t.Fatalf("written: %v %v, want a regular file 0600", st.Mode(), err)
	}
	if err := Write(target, []byte("again")); !errors.Is(err, ErrExists) {
		t.Fatalf("Write over a file: %v", err)
	}

	// Replace swaps the name: a link there is replaced, its target kept.
	os.Remove(target)
	plant()
	if err := Replace(target, []byte("note")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(other); string(b) != "theirs" {
		t.Fatalf("Replace wrote through a link: %q", b)
	}
	if b, _ := os.ReadFile(target); string(b) != "note" {
		t.Fatalf("Replace: %q", b)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("left beside the target: %v", ents)
	}
}

// TestRefusesDirOthersCanWrite: a directory its group or other users can
// write, not sticky, is refused before anything is put in it (there the
// file could be swapped once written); a sticky one (like /tmp) and one
// only its owner writes are taken. Found by the second outside review
// (creds export --pem into a 0777 directory).
func TestRefusesDirOthersCanWrite(t *testing.T) {
	tests := []struct {
		mode os.FileMode
		ok   bool
	}{
		{0o700, true}, {0o755, true}, {0o777 | os.ModeSticky, true},
		{0o777, false}, {0o770, false}, {0o702, false}, {0o775, false},
	}
	for _, tc := range tests {
		t.Run(tc.mode.String(), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "d")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, tc.mode); err != nil {
				t.Fatal(err)
			}
			err := Write(filepath.Join(dir, "secret"), []byte("s3cret"))
			switch {
			case tc.ok && err != nil:
				t.Fatalf("refused: %v", err)
			case !tc.ok && !errors.Is(err, ErrUnsafeDir):
				t.Fatalf("Write: %v, want ErrUnsafeDir", err)
			}
			if names, _ := os.ReadDir(dir); !tc.ok && len(names) != 0 {
				t.Fatalf("refused, yet the directory holds %v", names)
			}
			f, err := Create(filepath.Join(dir, "other"))
			if err == nil {
				f.Abort()
			}
			if !tc.ok && !errors.Is(err, ErrUnsafeDir) {
				t.Fatalf("Create: %v, want ErrUnsafeDir", err)
			}
		})
	}
}
