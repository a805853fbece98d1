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
	"strings"
	"syscall"

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
// message, anything else as is.
func errorLine(err error) string {
	msg := err.Error()
	if st, ok := status.FromError(err); ok {
		msg = st.Code().String() + ": " + st.Message()
	}
	return strings.ReplaceAll(msg, "\n", "; ")
}
