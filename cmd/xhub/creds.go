package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/secretfile"
)

func (c *cli) credsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "creds", Short: "Issue, list and revoke credentials"}

	var dept, role, name, out string
	var days int
	issue := &cobra.Command{
		Use:   "issue --dept ID --role officer|system [--name N] --out FILE",
		Short: "Issue a credential file for a department identity",
		Long: `Issue a credential: a key is made here, the hub signs its certificate with
the identity spiffe://xhub/dept/<dept>/<role>/<name>, and the bundle is written
to FILE (mode 0600). The private key never leaves this machine. The admin
issues any credential; an officer issues system credentials of its own
department.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := vocab.ParseRole(role)
			if err != nil {
				return err
			}
			if name == "" {
				name = role
			}
			id := vocab.Identity{Dept: catalog.DeptID(dept), Role: r, Name: name}
			f, err := secretfile.Create(out)
			if err != nil {
				return fmt.Errorf("--out: %w", err)
			}
			defer f.Abort()
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				cr, file, err := cl.IssueCredential(ctx, id, days)
				if err != nil {
					return err
				}
				if _, err := f.Write(file); err != nil {
					return fmt.Errorf("--out: %w", err)
				}
				if err := f.Commit(); err != nil {
					return fmt.Errorf("--out: credential %s issued but not written (revoke it): %w", cr.Serial, err)
				}
				if ok, err := c.emitted(map[string]any{"credential": cr, "file": out}, cr.Serial); ok {
					return err
				}
				c.say("issued %s, serial %s, valid until %s, ledger entry %d; written to %s",
					cr.URI, cr.Serial, day(cr.NotAfter), cr.Seq, out)
				return nil
			})
		},
	}
	issue.Flags().StringVar(&dept, "dept", "", "department id (required)")
	issue.Flags().StringVar(&role, "role", "", "officer or system (admin for another operator)")
	issue.Flags().StringVar(&name, "name", "", "credential name (default: the role)")
	issue.Flags().StringVar(&out, "out", "", "file to write (required; must not exist)")
	issue.Flags().IntVar(&days, "days", 365, "validity in days")
	for _, f := range []string{"dept", "role", "out"} {
		_ = issue.MarkFlagRequired(f)
	}

	var listDept string
	list := &cobra.Command{
		Use:   "list [--dept D]",
		Short: "List credentials (admin: all; officer: its department's)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.checkOutput(); err != nil {
				return err
			}
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				all, err := cl.Credentials(ctx, listDept)
				if err != nil {
					return err
				}
				if c.json() {
					return c.printJSON(map[string]any{"credentials": all})
				}
				w := c.table()
				w.row("SERIAL", "IDENTITY", "NOT AFTER", "STATE")
				for _, cr := range all {
					state := "active"
					if cr.Revoked {
						state = "revoked: " + cr.RevokeReason
					}
					w.row(cr.Serial, cr.URI, day(cr.NotAfter), state)
				}
				return w.Flush()
			})
		},
	}
	list.Flags().StringVar(&listDept, "dept", "", "only this department")

	var reason string
	revoke := &cobra.Command{
		Use:   "revoke SERIAL [--reason R]",
		Short: "Revoke a credential at once (recorded in the ledger)",
		Long:  "Revoke a credential. SERIAL is hex, as `openssl x509 -serial` prints it (colons allowed).",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				cr, seq, err := cl.RevokeCredential(ctx, args[0], reason)
				if err != nil {
					return err
				}
				if ok, err := c.emitted(map[string]any{"credential": cr, "seq": seq}, cr.Serial); ok {
					return err
				}
				c.say("credential %s (%s) revoked, ledger entry %d", cr.Serial, cr.URI, seq)
				return nil
			})
		},
	}
	revoke.Flags().StringVar(&reason, "reason", "", "why")

	var pemDir string
	export := &cobra.Command{
		Use:   "export FILE --pem DIR",
		Short: "Write a creds file as PEM files any TLS client can use",
		Long: `Write the credential in FILE as DIR/cert.pem (the client certificate),
DIR/key.pem (its private key) and DIR/ca.pem (the hub's CA), each mode 0600,
for TLS clients that take PEM files (grpcurl, curl, OpenSSL, Java, .NET,
Python, Node), and print the lines that call the hub with them. DIR is made
(0700) if missing; files already there are not overwritten. A DIR that its
group or other users can write is refused (they could swap a file once
written), unless it is sticky like /tmp.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cr, err := vocab.LoadCreds(args[0])
			if err != nil {
				return err
			}
			certPEM, keyPEM, caPEM, err := cr.PEM()
			if err != nil {
				return err
			}
			if err := os.MkdirAll(pemDir, 0o700); err != nil {
				return fmt.Errorf("--pem: %w", err)
			}
			files := []struct {
				name string
				data []byte
			}{{"cert.pem", certPEM}, {"key.pem", keyPEM}, {"ca.pem", caPEM}}
			// Each file is written aside and moved into place unless
			// something is at its name; all three are reserved first.
			var out []*secretfile.File
			for _, f := range files {
				fh, err := secretfile.Create(filepath.Join(pemDir, f.name))
				if err != nil {
					for _, o := range out {
						o.Abort()
					}
					if errors.Is(err, secretfile.ErrExists) {
						return fmt.Errorf("--pem: %w; nothing written (remove it, or export to another directory)", err)
					}
					return fmt.Errorf("--pem: %w; nothing written", err)
				}
				defer fh.Abort()
				if _, err := fh.Write(f.data); err != nil {
					return fmt.Errorf("--pem: %w", err)
				}
				out = append(out, fh)
			}
			for _, fh := range out {
				if err := fh.Commit(); err != nil {
					return fmt.Errorf("--pem: %w", err)
				}
			}
			hub := c.hub
			if hub == "" {
				hub = cr.Hub
			}
			hub, _, _ = strings.Cut(hub, ",")
			d := pemDir
			c.say("%s (%s) written to %s/{cert,key,ca}.pem", cr.Identity.URI(), cr.Serial, d)
			fmt.Fprintf(c.stdout, "grpcurl -cert %s/cert.pem -key %s/key.pem -cacert %s/ca.pem %s list\n", d, d, d, hub)
			fmt.Fprintf(c.stdout, "grpcurl -cert %s/cert.pem -key %s/key.pem -cacert %s/ca.pem -d '{\"page_size\": 10}' %s xhub.v1.Catalog/ListDatasets\n", d, d, d, hub)
			fmt.Fprintf(c.stdout, "curl --cert %s/cert.pem --key %s/key.pem --cacert %s/ca.pem -H 'Content-Type: application/json' -d '{\"pageSize\": 10}' https://%s/xhub.v1.Catalog/ListDatasets\n", d, d, d, hub)
			if cr.Identity.Role == vocab.RoleSystem {
				fmt.Fprintf(c.stdout, "curl --cert %s/cert.pem --key %s/key.pem --cacert %s/ca.pem -H 'Content-Type: application/json' -d '{\"dataset\": \"DATASET\", \"limit\": 10}' https://%s/xhub.v1.Exchange/Query\n", d, d, d, hub)
				fmt.Fprintf(c.stdout, "nats --tlscert %s/cert.pem --tlskey %s/key.pem --tlsca %s/ca.pem -s tls://HUB:NATS-PORT sub 'xhub.out.%s.DATASET'\n", d, d, d, cr.Identity.Dept)
			}
			return nil
		},
	}
	export.Flags().StringVar(&pemDir, "pem", "", "directory for cert.pem, key.pem and ca.pem (required)")
	_ = export.MarkFlagRequired("pem")
	cmd.AddCommand(issue, list, revoke, export)
	return cmd
}
