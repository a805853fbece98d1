package main

import (
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestReviewServeHelpFlagNames: `xhub serve --help` showed
// "--join-file xhub node token --out FILE", since pflag takes the first
// backquoted word of a usage string as the flag's value name. Found by
// the second outside review. Every flag of every command has a value
// name of one word (no spaces), so no usage string can do it again.
func TestReviewServeHelpFlagNames(t *testing.T) {
	var walk func(cmd *cobra.Command)
	n := 0
	walk = func(cmd *cobra.Command) {
		for _, fs := range []*pflag.FlagSet{cmd.LocalFlags(), cmd.PersistentFlags()} {
			fs.VisitAll(func(f *pflag.Flag) {
				n++
				if name, _ := pflag.UnquoteUsage(f); strings.ContainsAny(name, " \t\n") {
					t.Errorf("%s --%s: --help shows the value name %q (a backquoted phrase in its usage)", cmd.CommandPath(), f.Name, name)
				}
			})
		}
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(newRoot(io.Discard, io.Discard))
	if n < 100 {
		t.Fatalf("only %d flags seen: the walk missed commands", n)
	}
}
