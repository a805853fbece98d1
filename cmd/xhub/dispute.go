package main

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/xhub-gov/xhub/adapters"
)

func (c *cli) disputeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "dispute", Short: "Dispute data received under a grant (数据异议), and answer disputes"}

	var reason, recordKey, field string
	open := &cobra.Command{
		Use:   "open DATASET --reason R [--record-key K] [--field F]",
		Short: "Dispute data of a dataset your department holds a grant for (officer)",
		Long: `Open a data dispute (数据异议) on DATASET, which your department holds an
active grant for: the owner's officers are told and must answer within the
hub's dispute deadline (working days; overdue disputes are marked). Name the
record with --record-key (in the dataset's own terms) and a field of your
grant with --field. Recorded in the ledger (dispute.opened).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				d, err := cl.OpenDispute(ctx, adapters.DisputeSpec{Dataset: args[0], Reason: reason, RecordKey: recordKey, Field: field})
				if err != nil {
					return err
				}
				if ok, err := c.emitted(d, d.ID); ok {
					return err
				}
				owner, _, _ := strings.Cut(d.Dataset, ".")
				c.say("dispute %s opened on %s; %s must answer by %s (%d working days), ledger entry %d", d.ID, d.Dataset, owner, d.Deadline.Local().Format("2006-01-02 15:04"), d.Days, d.Seq)
				return nil
			})
		},
	}
	open.Flags().StringVar(&reason, "reason", "", "what is wrong with the data (required)")
	open.Flags().StringVar(&recordKey, "record-key", "", "the record, in the dataset's own terms (e.g. its id)")
	open.Flags().StringVar(&field, "field", "", "the field in dispute (one of your grant's)")
	_ = open.MarkFlagRequired("reason")

	var outcome, resolveReason string
	resolve := &cobra.Command{
		Use:   "resolve D-ID --outcome corrected|rejected --reason R",
		Short: "Answer a dispute on your department's dataset (officer)",
		Long: `Answer a dispute: --outcome corrected (the data was wrong and is corrected)
or rejected (the data is right), with the reason the opener will read.
Recorded in the ledger (dispute.resolved).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				d, err := cl.ResolveDispute(ctx, args[0], outcome, resolveReason)
				if err != nil {
					return err
				}
				if ok, err := c.emitted(d, d.ID); ok {
					return err
				}
				c.say("dispute %s %s, ledger entry %d", d.ID, d.Status, d.Seq)
				return nil
			})
		},
	}
	resolve.Flags().StringVar(&outcome, "outcome", "", "corrected or rejected (required)")
	resolve.Flags().StringVar(&resolveReason, "reason", "", "the answer (required)")
	_ = resolve.MarkFlagRequired("outcome")
	_ = resolve.MarkFlagRequired("reason")

	var status, dataset string
	list := &cobra.Command{
		Use:   "list [--status open|corrected|rejected|overdue] [--dataset D]",
		Short: "List disputes your department opened or that are on its datasets",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.checkOutput(); err != nil {
				return err
			}
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				ds, err := cl.Disputes(ctx, dataset, status)
				if err != nil {
					return err
				}
				if c.json() {
					return c.printJSON(map[string]any{"disputes": ds})
				}
				w := c.table()
				w.row("ID", "DATASET", "OPENER", "FIELD", "RECORD", "STATUS", "DUE", "REASON", "ANSWER")
				for _, d := range ds {
					st := d.Status
					if d.Overdue {
						st += " (OVERDUE)"
					}
					w.row(d.ID, d.Dataset, d.Opener, d.Field, d.RecordKey, st,
						d.Deadline.Local().Format(time.DateOnly), d.Reason, d.Resolution)
				}
				return w.Flush()
			})
		},
	}
	list.Flags().StringVar(&status, "status", "", "open, corrected, rejected or overdue")
	list.Flags().StringVar(&dataset, "dataset", "", "only this dataset")

	cmd.AddCommand(open, resolve, list)
	return cmd
}
