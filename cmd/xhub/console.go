package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/internal/console"
)

func (c *cli) consoleCmd() *cobra.Command {
	var listen string
	var open bool
	cmd := &cobra.Command{
		Use:   "console [--listen 127.0.0.1:0] [--open]",
		Short: "The officers' web console, on this machine, with your identity",
		Long: `Serve the web console on loopback: catalog, dataset pages with "apply for
this data", the inbox (approve, narrow, reject; new requests appear as they
arrive), grants given and received (revoke), and the ledger with its
signed head verified against your pinned ledger key. It acts with your
creds file (or context) over the same mutual TLS as the CLI: the hub
decides everything. It prints an address, http://<random>.localhost:PORT/,
carrying a one-time token; the first visit exchanges it for a cookie that
the browser sends to that name only, and connections made by another user
of this machine are refused, so another user cannot use your identity.
Chinese and English.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// Listening first: a wrong --listen fails before any connection.
			lis, err := console.Listen(listen)
			if err != nil {
				return fmt.Errorf("--listen: %w", err)
			}
			defer lis.Close()
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				// The last verified head, per hub, next to the contexts.
				headFile := ""
				if dir, err := os.UserConfigDir(); err == nil {
					sum := sha256.Sum256([]byte(cl.Hub()))
					headFile = filepath.Join(dir, "xhub", "heads", fmt.Sprintf("%x.note", sum[:8]))
				}
				srv, err := console.New(console.Config{Client: cl, LedgerKey: c.ledgerKey, HeadFile: headFile})
				if err != nil {
					return err
				}
				url := srv.LoginURL(lis.Addr().String())
				c.say("xhub console for %s: open %s", cl.Identity().URI(), url)
				if open {
					if err := exec.Command("xdg-open", url).Start(); err != nil {
						fmt.Fprintf(c.stderr, "could not open a browser (%v): open the address yourself\n", err)
					}
				}
				return srv.Serve(ctx, lis)
			})
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "loopback address to serve on (port 0: any free one; the port is held on both 127.0.0.1 and ::1)")
	cmd.Flags().BoolVar(&open, "open", false, "open the address in the default browser")
	return cmd
}
