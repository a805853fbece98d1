package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/internal/secretfile"
)

func (c *cli) nodeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "node",
		Short: "Add hub nodes to the deployment (operator)",
		Long: `Hub nodes of one deployment share the NATS cluster, the CA and the ledger
key. To add one: make a join token here (--out FILE writes it, mode 0600),
bring the file to the new machine, readable only by the user that runs the
node, and there run
  xhub serve --data-dir DIR --join-file FILE [--listen ADDR] [--nats-url URL]
(or put the token in XHUB_JOIN; never on a command line: every local user
can read those). The token names the nodes to join through (--via,
default the hub this command dialled), pins the hub CA's fingerprint, and
holds a one-time secret of which the ledger keeps only the public key it
seeds. The new node never sends the secret: it signs with it a claim that
names a key it makes, and the CA and ledger key come back sealed to that
key (and the NATS URL with its password only if it was given no NATS of
its own). The token admits one node before it expires; both steps are
ledger entries, and node list shows the key each token was used with
(the joining node logs the same fingerprint). To remove a node, stop it
(SIGTERM drains its streams; clients move to the other nodes), delete
its data dir (the log and the streams live in the NATS cluster), and run
xhub node forget NAME, so new creds files no longer list it.`,
	}
	var name string
	var ttl time.Duration
	var via []string
	var out string
	token := &cobra.Command{
		Use:   "token [--name N] [--ttl 1h] [--via HOST:PORT,...] [--out FILE]",
		Short: "Make a one-time join token for a new hub node",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// The file is reserved before the hub is dialled: one that
			// exists, or a link planted at its name meanwhile, is never
			// written through (it would keep its owner, who could read
			// the token).
			var f *secretfile.File
			if out != "" {
				var err error
				if f, err = secretfile.Create(out); errors.Is(err, secretfile.ErrExists) {
					c.say("%s exists: no new token made (delete it for a new one)", out)
					return nil
				} else if err != nil {
					return fmt.Errorf("--out: %w", err)
				}
				defer f.Abort()
			}
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				tok, info, err := cl.CreateJoinToken(ctx, name, ttl, via)
				if err != nil {
					return err
				}
				if f != nil {
					if _, err := f.Write([]byte(tok + "\n")); err != nil {
						return fmt.Errorf("--out: %w", err)
					}
					if err := f.Commit(); err != nil {
						return fmt.Errorf("--out: join token %s made but not written: %w", info.ID, err)
					}
					c.say("join token %s written to %s (ledger entry %d); it admits one node until %s", info.ID, out, info.Seq, info.ExpiresAt.Format(time.RFC3339))
					return nil
				}
				if c.json() {
					return c.printJSON(map[string]any{"token": tok, "id": info.ID, "expires_at": info.ExpiresAt, "seq": info.Seq})
				}
				c.say("%s", tok)
				fmt.Fprintf(c.stderr, "join token %s (ledger entry %d): admits one node until %s; keep it secret.\non the new node, from a file only its user can read: xhub serve --data-dir DIR --join-file FILE (or the token in XHUB_JOIN)\n",
					info.ID, info.Seq, info.ExpiresAt.Format(time.RFC3339))
				return nil
			})
		},
	}
	token.Flags().StringVar(&name, "name", "", "the new node's name, for the record")
	token.Flags().DurationVar(&ttl, "ttl", time.Hour, "how long the token may be used (at most 24h)")
	token.Flags().StringSliceVar(&via, "via", nil, "hub addresses the new node dials to join (default: --hub)")
	token.Flags().StringVar(&out, "out", "", "write the token to this file (mode 0600) instead of printing it; an existing file is left as it is")

	list := &cobra.Command{
		Use:   "list",
		Short: "List the hub nodes (which are up) and the join tokens",
		Long: `List the deployment's hub nodes, each as its last heartbeat shows it: up
when heard from within three of its heartbeat intervals (xhub serve
--heartbeat-interval, 10s), else down; when it was last seen, the ledger sequence it
had applied then, its version and the addresses it advertises
(--advertise). A node not heard from for a week is forgotten (at once:
xhub node forget NAME). Then the
join tokens and the nodes that used them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.checkOutput(); err != nil {
				return err
			}
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				nodes, err := cl.Nodes(ctx)
				if err != nil {
					return err
				}
				all, err := cl.JoinTokens(ctx)
				if err != nil {
					return err
				}
				if c.json() {
					return c.printJSON(map[string]any{"nodes": nodes, "tokens": all})
				}
				w := c.table()
				w.row("NODE", "STATUS", "LAST SEEN", "APPLIED", "VERSION", "ADDRESSES")
				for _, nd := range nodes {
					up := "down"
					if nd.Up {
						up = "up"
					}
					w.row(nd.Name, up, nd.LastSeen.Format("2006-01-02 15:04:05"), nd.Applied, nd.Version, strings.Join(nd.Addrs, ","))
				}
				w.row() // a blank line ends the first table
				w.row("TOKEN", "NAME", "STATUS", "CREATED", "EXPIRES", "JOINED AS", "JOINED", "JOINER KEY")
				for _, t := range all {
					joinedAt := ""
					if !t.JoinedAt.IsZero() {
						joinedAt = t.JoinedAt.Format("2006-01-02 15:04")
					}
					w.row(t.ID, t.Name, t.Status, t.CreatedAt.Format("2006-01-02 15:04"), t.ExpiresAt.Format("2006-01-02 15:04"), t.JoinedAs, joinedAt, t.JoinerKey)
				}
				return w.Flush()
			})
		},
	}
	var force bool
	forget := &cobra.Command{
		Use:   "forget NAME [--force]",
		Short: "Forget a removed hub node: node list and new creds files no longer name it",
		Long: `Remove the last heartbeat of the node named NAME (its --name) from the
stream XHUB_NODES: node list no longer shows it, and creds files issued
from then on no longer list its addresses (they list the nodes heard from
within serve --creds-nodes-within, an hour by default). Creds files issued
before keep them; a client tries the next address. A node that is up is
refused: stop it first (--force forgets it anyway, and its next heartbeat
brings it back).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				nd, err := cl.ForgetNode(ctx, args[0], force)
				if err != nil {
					return err
				}
				if c.json() {
					return c.printJSON(map[string]any{"forgotten": nd})
				}
				c.say("node %s forgotten (last seen %s, addresses %s)", nd.Name, nd.LastSeen.Format(time.RFC3339), strings.Join(nd.Addrs, ","))
				return nil
			})
		},
	}
	forget.Flags().BoolVar(&force, "force", false, "forget the node even if it is up (its next heartbeat brings it back)")
	cmd.AddCommand(token, list, forget)
	return cmd
}
