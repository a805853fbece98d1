//go:build !unix

package api

// fdLimit is the process's open-file limit (0: unknown).
func fdLimit() uint64 { return 0 }
