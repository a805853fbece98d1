package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/internal/buildinfo"
)

// cli holds what every subcommand shares: the output streams and the
// client flags.
type cli struct {
	stdout, stderr io.Writer
	hub, creds     string
	output         string
	ledgerKey      string
	requestID      string
	contextName    string
	credsFlag      bool // --creds was given on the command line
	contextFlag    bool // --context was given on the command line
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	c := &cli{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "xhub",
		Short: "xhub: the data-sharing exchange hub for government departments",
		Long: `xhub catalogs the datasets of government departments, carries share requests
to the owning department, records every decision in a tamper-evident ledger,
and moves the granted data, checked against its schema.

'xhub serve' runs a hub node; every other command is a client of one. Clients
find the hub and their identity from --hub/--creds or XHUB_HUB/XHUB_CREDS
(the address inside the creds file is the default).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, args []string) {
			c.credsFlag, c.contextFlag = cmd.Flags().Changed("creds"), cmd.Flags().Changed("context")
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&c.hub, "hub", os.Getenv("XHUB_HUB"), "hub address host:port, or several comma-separated to fail over between (env XHUB_HUB; default: the address(es) in the creds file)")
	pf.StringVar(&c.requestID, "request-id", "", "name this call: a state-changing command retried with the same id is applied once (default: a new id per call)")
	pf.StringVar(&c.creds, "creds", os.Getenv("XHUB_CREDS"), "credentials file (env XHUB_CREDS; default: the current context's, see xhub config)")
	pf.StringVar(&c.contextName, "context", os.Getenv("XHUB_CONTEXT"), "use this context of the config file instead of the current one (env XHUB_CONTEXT)")
	pf.StringVarP(&c.output, "output", "o", "table", "output: table or json (read commands); json or id for what a change made (id: just its id, for scripts)")
	pf.StringVar(&c.ledgerKey, "ledger-key", os.Getenv("XHUB_LEDGER_KEY"), "the hub's ledger verifier key (default: the one pinned in the creds file)")
	root.AddCommand(
		c.serveCmd(), c.demoCmd(), c.deptCmd(), c.credsCmd(), c.schemaCmd(), c.catalogCmd(), c.shareCmd(), c.disputeCmd(), c.ledgerCmd(),
		c.queryCmd(), c.publishCmd(), c.subscribeCmd(), c.subscriptionCmd(), c.auditCmd(), c.adapterCmd(), c.benchCmd(), c.nodeCmd(), c.versionCmd(), c.configCmd(), c.consoleCmd(),
	)
	root.Version = buildinfo.Get().String()
	root.SetVersionTemplate("xhub {{.Version}}\n")
	refuseUnknownSubcommands(root)
	c.wireCompletion(root)
	return root
}

// refuseUnknownSubcommands makes every command group (xhub share, xhub
// catalog, ...) refuse an argument that is not one of its subcommands,
// with cobra's suggestions ("did you mean approve?") and a non-zero exit,
// instead of printing its help and exiting 0. With no argument it still
// prints its help.
func refuseUnknownSubcommands(cmd *cobra.Command) {
	for _, sub := range cmd.Commands() {
		refuseUnknownSubcommands(sub)
	}
	if cmd.Parent() == nil || !cmd.HasSubCommands() || cmd.Run != nil || cmd.RunE != nil {
		return
	}
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if cmd.SuggestionsMinimumDistance <= 0 {
			cmd.SuggestionsMinimumDistance = 2
		}
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "; did you mean " + strings.Join(s, " or ") + "?"
		}
		return fmt.Errorf("%s (see %s --help)", msg, cmd.CommandPath())
	}
}

// client dials the hub with the configured credentials.
func (c *cli) client(ctx context.Context) (*adapters.Client, error) {
	if err := c.applyContext(); err != nil {
		return nil, err
	}
	if c.creds == "" {
		return nil, errors.New("no credentials: give --creds FILE, set XHUB_CREDS, or make a context (xhub config set-context NAME --creds FILE)")
	}
	var opts []adapters.Option
	if c.hub != "" {
		opts = append(opts, adapters.WithHub(c.hub))
	}
	return adapters.Dial(ctx, c.creds, opts...)
}

// withClient runs fn with a client that is closed afterwards.
func (c *cli) withClient(cmd *cobra.Command, fn func(ctx context.Context, cl *adapters.Client) error) error {
	ctx := cmd.Context()
	if c.requestID != "" {
		ctx = adapters.WithRequestID(ctx, c.requestID)
	}
	cl, err := c.client(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	return fn(ctx, cl)
}

func (c *cli) checkOutput() error {
	if c.output != "table" && c.output != "json" {
		return fmt.Errorf("-o %q: want table or json", c.output)
	}
	return nil
}

func (c *cli) json() bool { return c.output == "json" }

// emitted prints what a command made for scripts: v as one JSON document
// with -o json, or only its id with -o id (as kubectl's -o name), and
// reports whether it printed.
func (c *cli) emitted(v any, id string) (bool, error) {
	switch c.output {
	case "json":
		return true, c.printJSON(v)
	case "id":
		_, err := fmt.Fprintln(c.stdout, id)
		return true, err
	}
	return false, nil
}

// printJSON writes any value as one JSON document (printableJSON).
func (c *cli) printJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = c.stdout.Write(append(printableJSON(b), '\n'))
	return err
}

// printableJSON escapes in JSON the characters encoding/json writes as
// they are but a terminal obeys: DEL, the C1 controls (U+009B starts an
// escape sequence) and the bidi overrides, which old ledger entries may
// hold in a purpose or a reason. The JSON means the same; only its
// spelling changes (no string in JSON holds a raw newline, so keeping
// the newlines keeps its layout).
func printableJSON(b []byte) []byte { return []byte(escapeLines(string(b))) }

// escapeLines is catalog.EscapeLine for text of several lines (a
// dataset's description, indented JSON): its newlines stay, anything
// else a terminal would obey is escaped.
func escapeLines(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = catalog.EscapeLine(l)
	}
	return strings.Join(lines, "\n")
}

// table prints rows of aligned columns on stdout.
func (c *cli) table() *table {
	return &table{tw: tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)}
}

// table is the one writer of table cells. Each cell is printed as one
// line of printable text (catalog.EscapeLine): a purpose, a reason or a
// title from an entry written before the hub refused control characters
// can neither end a row, shift its columns nor send the terminal an
// escape sequence.
type table struct{ tw *tabwriter.Writer }

// row prints one row, a cell for each value (as fmt.Sprint prints it).
func (t *table) row(cells ...any) {
	parts := make([]string, len(cells))
	for i, v := range cells {
		parts[i] = catalog.EscapeLine(fmt.Sprint(v))
	}
	fmt.Fprintln(t.tw, strings.Join(parts, "\t"))
}

// Flush writes the aligned rows.
func (t *table) Flush() error { return t.tw.Flush() }

func (c *cli) say(format string, args ...any) {
	fmt.Fprintf(c.stdout, format+"\n", args...)
}

// progress reports a long task's progress on stderr: a bar redrawn in
// place on a terminal, plain lines (at most one per 10 %) otherwise.
func (c *cli) progress(what string) func(done, total int64) {
	tty := false
	if f, ok := c.stderr.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	lastTenth := int64(-1)
	return func(done, total int64) {
		if total <= 0 {
			fmt.Fprintf(c.stderr, "%s: nothing to do\n", what)
			return
		}
		pct := done * 100 / total
		if tty {
			const width = 30
			n := int(done * width / total)
			fmt.Fprintf(c.stderr, "\r%s [%s%s] %d/%d rows (%d%%)", what, strings.Repeat("=", n), strings.Repeat(" ", width-n), done, total, pct)
			if done >= total {
				fmt.Fprintln(c.stderr)
			}
			return
		}
		if tenth := pct / 10; tenth != lastTenth || done >= total {
			lastTenth = tenth
			fmt.Fprintf(c.stderr, "%s: %d of %d rows (%d%%)\n", what, done, total, pct)
		}
	}
}
