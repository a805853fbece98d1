//go:build unix

package hub

import (
	"os"
	"path/filepath"
	"testing"
)

// TestAttackDataDirLockDefeatedByRemovingLockFile: the data dir's lock is
// a flock on DIR/xhub.lock, a file that stays when the node stops (so it
// looks like a stale lock an operator or a cleanup script removes) and
// that anyone who may write the dir can remove or rename while the node
// runs. The next `xhub serve` then creates a new file, locks it, and goes
// on: by hand (xhub serve d1; rm d1/xhub.lock; xhub serve d1) the second
// process started a second embedded JetStream on d1/nats and updated
// XHUB_DATA's and XHUB_AUDIT's settings in the running node's store
// before Badger's own lock refused it. The lock must hold on something
// the path cannot be swapped under (the directory itself), or be checked
// against the path after it is taken.
func TestAttackDataDirLockDefeatedByRemovingLockFile(t *testing.T) {
	dir := t.TempDir()
	release, err := lockDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if err := os.Remove(filepath.Join(dir, lockFile)); err != nil {
		t.Fatal(err)
	}
	second, err := lockDataDir(dir)
	if err == nil {
		second()
		t.Fatal("a second lockDataDir took the data dir while the first still holds its lock: removing DIR/xhub.lock defeats it")
	}
}
