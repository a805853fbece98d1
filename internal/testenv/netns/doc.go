// Package netns runs a test in a network namespace of its own, holding
// only the loopback interface: how a test shows that something is refused
// before any connection is made, whatever the host's network.
package netns
