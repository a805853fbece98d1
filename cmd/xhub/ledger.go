package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/xhub-gov/xhub/adapters"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
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
				all := &xhubv1.ListEntriesResponse{}
				next := since
				for {
					r, err := cl.Ledger.ListEntries(ctx, &xhubv1.ListEntriesRequest{Since: next, Dataset: dataset, PageSize: 1000})
					if err != nil {
						return err
					}
					all.Entries = append(all.Entries, r.Entries...)
					if next = r.NextSince; next == 0 {
						break
					}
				}
				if c.json() {
					for _, e := range all.Entries {
						e.Raw = nil
					}
					return c.printProto(all)
				}
				w := c.table()
				fmt.Fprintln(w, "SEQ\tTIME\tACTOR\tKIND\tSUBJECT")
				for _, e := range all.Entries {
					fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\n", e.Seq, e.Time.AsTime().Format("2006-01-02 15:04:05"), e.Actor, e.Kind, e.Subject)
				}
				return w.Flush()
			})
		},
	}
	logCmd.Flags().Uint64Var(&since, "since", 0, "entries after this sequence")
	logCmd.Flags().StringVar(&dataset, "dataset", "", "only entries about this dataset or subject")
	cmd.AddCommand(logCmd)
	return cmd
}
