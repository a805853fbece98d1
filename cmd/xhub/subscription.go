package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/xhub-gov/xhub/adapters"
)

func (c *cli) subscriptionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "subscription",
		Short: "List and delete your department's durable subscriptions",
		Long: `A durable subscription (made by 'xhub subscribe --name N') keeps its
position in a dataset's stream between connections. A department may have a
bounded number of them (serve --max-subscriptions); one with no subscriber
for --subscription-idle is deleted by the hub, and so is one whose grant
ended or whose maker's credentials are all revoked.`,
	}
	var dataset, dept string
	list := &cobra.Command{
		Use:   "list [--dataset D]",
		Short: "List your department's subscriptions (the operator: every department's, or --dept's)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.checkOutput(); err != nil {
				return err
			}
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				subs, limit, err := cl.Subscriptions(ctx, dataset, dept)
				if err != nil {
					return err
				}
				if c.json() {
					return c.printJSON(map[string]any{"subscriptions": subs, "limit": limit})
				}
				w := c.table()
				w.row("DEPT", "DATASET", "NAME", "OPEN", "PENDING", "UNACKED", "CREATED", "BY")
				for _, s := range subs {
					w.row(s.Dept, s.Dataset, s.Name, s.Open, s.Pending, s.AckPending,
						s.Created.Format("2006-01-02 15:04"), s.CreatedBy)
				}
				if err := w.Flush(); err != nil {
					return err
				}
				c.say("%d subscriptions; a department may have %d", len(subs), limit)
				return nil
			})
		},
	}
	list.Flags().StringVar(&dataset, "dataset", "", "only this dataset")
	list.Flags().StringVar(&dept, "dept", "", "operator: only this department")
	var delDataset string
	del := &cobra.Command{
		Use:   "delete NAME [--dataset D]",
		Short: "Delete one of your department's subscriptions and its position",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				d, err := cl.DeleteSubscription(ctx, args[0], delDataset)
				if err != nil {
					return err
				}
				if ok, err := c.emitted(d, d.Name); ok {
					return err
				}
				c.say("subscription %s of %s to %s deleted", d.Name, d.Dept, d.Dataset)
				return nil
			})
		},
	}
	del.Flags().StringVar(&delDataset, "dataset", "", "the dataset, when the name is used on several")
	cmd.AddCommand(list, del)
	return cmd
}
