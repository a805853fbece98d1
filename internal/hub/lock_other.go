//go:build !unix

package hub

import "os"

const noFollow = 0

func openDir(dir string) (*os.File, error) { return os.Open(dir) }

// tryLock locks nothing here (Badger's own directory lock still refuses a
// second writer, before the embedded NATS starts).
func tryLock(*os.File) (bool, error) { return false, nil }
