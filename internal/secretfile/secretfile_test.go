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
