//go:build !unix

package testenv

// lockPort reserves nothing across processes here: only the choice of
// ports below the ephemeral range keeps them apart.
func lockPort(string) (func(), bool) { return func() {}, true }
