//go:build !unix

package hub

import "os"

// tryLock locks nothing here (Badger's own directory lock still refuses a
// second writer, later in the start).
func tryLock(*os.File) (bool, error) { return false, nil }
