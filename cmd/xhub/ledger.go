package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/xhub-gov/xhub/adapters"
)

func (c *cli) ledgerCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "ledger", Short: "Read the tamper-evident control-plane ledger"}
	var since uint64
	var dataset string
	logCmd := &cobra.Command{
		Use:   "log [--since SEQ] [--dataset D]",
		Short: "Show ledger entries: sequence, time, actor, kind, subject",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.checkOutput(); err != nil {
				return err
			}
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				all, err := cl.Entries(ctx, since, dataset)
				if err != nil {
					return err
				}
				if c.json() {
					for i := range all {
						all[i].Raw = nil
					}
					return c.printJSON(map[string]any{"entries": all})
				}
				w := c.table()
				fmt.Fprintln(w, "SEQ\tTIME\tACTOR\tKIND\tSUBJECT")
				for _, e := range all {
					fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\n", e.Seq, e.Time.Format("2006-01-02 15:04:05"), e.Actor, e.Kind, e.Subject)
				}
				return w.Flush()
			})
		},
	}
	logCmd.Flags().Uint64Var(&since, "since", 0, "entries after this sequence")
	logCmd.Flags().StringVar(&dataset, "dataset", "", "only entries about this dataset or subject")
	head := &cobra.Command{
		Use:   "head",
		Short: "Print the signed tree head (save it to prove consistency later)",
		Long: `Print the hub's signed tree head: a signed note (golang.org/x/mod/sumdb/note)
over the number of entries and the RFC 6962 Merkle root. It is verified here
against the ledger key pinned in your creds file (or --ledger-key); the note
goes to stdout, the verdict to stderr, so 'xhub ledger head > head.txt' keeps
a head to check later with 'xhub ledger proof SEQ --from-head head.txt'.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				lv, err := cl.LedgerVerifier(c.ledgerKey)
				if err != nil {
					return err
				}
				t, note, err := lv.Head(ctx)
				if err != nil {
					return err
				}
				if c.json() {
					return c.printJSON(map[string]any{"size": t.N, "root": t.Hash.String(), "signed_note": string(note), "verified": true})
				}
				fmt.Fprint(c.stdout, string(note))
				fmt.Fprintf(c.stderr, "verified: signed by the hub's ledger key; %d entries, root %s\n", t.N, t.Hash)
				return nil
			})
		},
	}

	var fromHead string
	proof := &cobra.Command{
		Use:   "proof SEQ [--from-head FILE]",
		Short: "Prove entry SEQ is in the log (and, with --from-head, that the log only grew)",
		Long: `Fetch an inclusion proof for entry SEQ against the current signed tree head
and verify it here; with --from-head FILE (a head saved with 'xhub ledger
head'), also fetch and verify a consistency proof that the current head
extends that earlier one, i.e. that nothing recorded before was rewritten.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			seq, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil || seq == 0 {
				return fmt.Errorf("SEQ %q: want an entry number (1, 2, ...)", args[0])
			}
			var earlier []byte
			if fromHead != "" {
				if earlier, err = os.ReadFile(fromHead); err != nil {
					return fmt.Errorf("--from-head: %w", err)
				}
			}
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				lv, err := cl.LedgerVerifier(c.ledgerKey)
				if err != nil {
					return err
				}
				e, t, err := lv.Inclusion(ctx, seq)
				if err != nil {
					return err
				}
				if c.json() {
					out := map[string]any{"seq": e.Seq, "kind": e.Kind, "subject": e.Subject, "actor": e.Actor, "time": e.Time,
						"inclusion_verified": true, "head_size": t.N, "head_root": t.Hash.String()}
					if earlier != nil {
						old, cur, err := lv.Consistency(ctx, earlier)
						if err != nil {
							return fmt.Errorf("consistency with %s: %w", fromHead, err)
						}
						out["consistency_verified"], out["from_size"], out["to_size"] = true, old.N, cur.N
					}
					return c.printJSON(out)
				}
				c.say("entry %d: %s %s by %s at %s", e.Seq, e.Kind, e.Subject, e.Actor, e.Time.Format(time.RFC3339))
				c.say("inclusion proof verified against the signed head of %d entries (root %s)", t.N, t.Hash)
				if earlier != nil {
					old, cur, err := lv.Consistency(ctx, earlier)
					if err != nil {
						return fmt.Errorf("consistency with %s: %w", fromHead, err)
					}
					c.say("consistency proof verified: the head of %d entries extends the saved head of %d entries (root %s)", cur.N, old.N, old.Hash)
				}
				return nil
			})
		},
	}
	proof.Flags().StringVar(&fromHead, "from-head", "", "a signed head saved earlier with 'xhub ledger head'")

	verify := &cobra.Command{
		Use:   "verify",
		Short: "Recompute every hash from the entries and name the first that does not match",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				lv, err := cl.LedgerVerifier(c.ledgerKey)
				if err != nil {
					return err
				}
				start := time.Now()
				rep, err := lv.Verify(ctx, nil)
				if err != nil {
					return err
				}
				if rep.Mismatch != nil {
					return fmt.Errorf("ledger verification failed: %v", rep.Mismatch)
				}
				if c.json() {
					return c.printJSON(map[string]any{"verified": true, "entries": rep.Entries, "root": rep.Head.Hash.String()})
				}
				c.say("verified %d entries in %s: every entry is canonical, chains to its predecessor, and the recomputed Merkle root %s equals the signed head's",
					rep.Entries, time.Since(start).Round(time.Millisecond), rep.Head.Hash)
				return nil
			})
		},
	}
	cmd.AddCommand(logCmd, head, proof, verify)
	return cmd
}
