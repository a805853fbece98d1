// Command xhub is the data-sharing exchange hub: `xhub serve` runs a hub
// node; every other subcommand is a client of one. This package only parses
// flags and wires the packages together.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "xhub: "+errorLine(err))
		os.Exit(1)
	}
}

// run executes one xhub command line.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

// errorLine renders an error as one line: a gRPC status as its code and
// message, a hub that could not be reached as that, anything else as is.
func errorLine(err error) string {
	msg := err.Error()
	if st, ok := status.FromError(err); ok {
		msg = st.Code().String() + ": " + st.Message()
		if st.Code() == codes.Unavailable {
			if m := unreachable(st.Message()); m != "" {
				msg = m
			}
		}
	}
	// Cobra's suggestions come on lines of their own: one line, no
	// empty pieces, worded as the subcommands' are.
	var parts, suggest []string
	inSuggest := false
	for _, l := range strings.Split(msg, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "":
		case l == "Did you mean this?":
			inSuggest = true
		case inSuggest:
			suggest = append(suggest, l)
		default:
			parts = append(parts, l)
		}
	}
	out := strings.Join(parts, " ")
	if len(suggest) > 0 {
		out += "; did you mean " + strings.Join(suggest, " or ") + "?"
	}
	return out
}

// dialRE finds what the transport could not dial, in grpc-go's words.
var dialRE = regexp.MustCompile(`dial(?:ing)? (?:tcp )?([^ :]+:[0-9]+|\[[^]]+\]:[0-9]+)(?:: (.*?))?"?$`)

// unreachable words a transport failure as "cannot reach the hub at
// ADDR: REASON", or "" if msg is not one.
func unreachable(msg string) string {
	if !strings.Contains(msg, "connection error") && !strings.Contains(msg, "Error while dialing") {
		return ""
	}
	m := dialRE.FindStringSubmatch(strings.TrimSuffix(msg, `"`))
	if m == nil {
		return ""
	}
	reason := m[2]
	if i := strings.LastIndex(reason, ": "); i >= 0 {
		reason = reason[i+2:]
	}
	if reason == "" {
		reason = "no answer"
	}
	return fmt.Sprintf("cannot reach the hub at %s: %s (is it running? --hub and the creds file name where)", m[1], reason)
}
