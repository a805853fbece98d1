//go:build !linux

package netns

import "testing"

// Mode says how Run sets up the namespace.
type Mode int

const (
	// LoopbackOnly: loopback up and nothing else.
	LoopbackOnly Mode = iota
	// AllLocal: loopback up, every address routed to it as local.
	AllLocal
)

// Run skips: network namespaces are Linux's.
func Run(t *testing.T, mode Mode) bool {
	t.Skip("network namespaces are Linux's")
	return false
}
