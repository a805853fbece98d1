package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/xhub-gov/xhub/adapters"
)

func (c *cli) deptCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "dept", Short: "Register and list departments (operator)"}
	var name string
	add := &cobra.Command{
		Use:   "add ID --name NAME",
		Short: "Register a department (admin)",
		Long:  "Register a department. ID follows [a-z][a-z0-9-]{1,31} (e.g. health, civil-affairs).",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				d, err := cl.AddDepartment(ctx, args[0], name)
				if err != nil {
					return err
				}
				if ok, err := c.emitted(d, d.ID); ok {
					return err
				}
				c.say("department %s (%s) added, ledger entry %d", d.ID, d.Name, d.Seq)
				return nil
			})
		},
	}
	add.Flags().StringVar(&name, "name", "", "display name (required)")
	_ = add.MarkFlagRequired("name")
	list := &cobra.Command{
		Use:   "list",
		Short: "List departments",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.checkOutput(); err != nil {
				return err
			}
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				all, err := cl.Departments(ctx)
				if err != nil {
					return err
				}
				if c.json() {
					return c.printJSON(map[string]any{"departments": all})
				}
				w := c.table()
				w.row("ID", "NAME", "SINCE", "SEQ")
				for _, d := range all {
					w.row(d.ID, d.Name, day(d.CreatedAt), d.Seq)
				}
				return w.Flush()
			})
		},
	}
	cmd.AddCommand(add, list, c.webhookCmd())
	return cmd
}

func (c *cli) webhookCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "webhook",
		Short: "Have the hub post your department's events to a URL",
		Long: `The hub posts each of the department's events (a request for its data, a
decision on its request, a dispute opened or answered) to the URL, as a JSON
body {delivery, event, id, dept, time}, with the headers X-Xhub-Event,
X-Xhub-Delivery, X-Xhub-Timestamp and X-Xhub-Signature-256: "sha256=" and
the hex HMAC-SHA256 of "<timestamp>.<body>" under the secret printed when the
webhook is set (setting it again rotates the secret). Each event is a durable
task of the hub, made once from the ledger, posted by any of its nodes and
retried with back-off (by default 0.5 s, 1 s, 2 s, 4 s, 8 s: six attempts; the
hub's --webhook-backoff) until a 2xx answer, on another node if the one
retrying stops; each outcome is recorded: xhub dept webhook deliveries DEPT.
The delivery id (X-Xhub-Delivery) is the same on every attempt and
redelivery: a receiver that keeps the ids it has taken can drop a repeat.
What failed can be posted again: xhub dept webhook redeliver DEPT. Loopback
and private addresses are refused unless the hub runs with
--webhook-allow-private.`,
	}
	var url string
	set := &cobra.Command{
		Use:   "set DEPT --url URL",
		Short: "Set (or rotate) the department's webhook; prints its signing secret once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				w, err := cl.SetWebhook(ctx, args[0], url)
				if err != nil {
					return err
				}
				if ok, err := c.emitted(w, w.Secret); ok {
					return err
				}
				c.say("webhook of %s set to %s (ledger entry %d)", w.Dept, w.URL, w.Seq)
				c.say("signing secret (keep it; set the webhook again to rotate it): %s", w.Secret)
				return nil
			})
		},
	}
	set.Flags().StringVar(&url, "url", "", "http(s) URL (required)")
	_ = set.MarkFlagRequired("url")
	remove := &cobra.Command{
		Use:   "remove DEPT",
		Short: "Stop posting the department's events",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				w, err := cl.SetWebhook(ctx, args[0], "")
				if err != nil {
					return err
				}
				if ok, err := c.emitted(w, w.Dept); ok {
					return err
				}
				c.say("webhook of %s removed (ledger entry %d)", w.Dept, w.Seq)
				return nil
			})
		},
	}
	var limit int
	deliveries := &cobra.Command{
		Use:   "deliveries DEPT [--limit N]",
		Short: "The department's last webhook deliveries, with their outcome",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.checkOutput(); err != nil {
				return err
			}
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				ds, err := cl.WebhookDeliveries(ctx, args[0], limit)
				if err != nil {
					return err
				}
				if c.json() {
					return c.printJSON(map[string]any{"deliveries": ds})
				}
				w := c.table()
				w.row("AT", "DELIVERY", "EVENT", "ID", "STATUS", "ATTEMPTS", "CODE", "ERROR")
				for _, d := range ds {
					w.row(d.At.Local().Format("2006-01-02 15:04:05"), d.ID, d.Event, d.Subject, d.Status, d.Attempts, d.Code, d.Error)
				}
				return w.Flush()
			})
		},
	}
	deliveries.Flags().IntVar(&limit, "limit", 50, "how many (at most 1000)")
	cmd.AddCommand(set, remove, deliveries, c.redeliverCmd())
	return cmd
}

func (c *cli) redeliverCmd() *cobra.Command {
	var id, since string
	cmd := &cobra.Command{
		Use:   "redeliver DEPT (--id DELIVERY | --since TIME)",
		Short: "Post failed webhook deliveries again (an officer of the department)",
		Long: `Queue again a delivery that failed (every attempt failed, or it was dropped:
the department's queue was full), by its id (the DELIVERY column of
xhub dept webhook deliveries), or every one whose last record is failed or
dropped since a time: after the receiver is fixed, or the webhook set to a
new URL. A delivery delivered since is not posted again. Each starts a new
schedule of attempts with the same delivery id, to the webhook's URL now.
A department queues at most the hub's --webhook-redeliver-max (100) in each
--webhook-redeliver-window (1m): past it, what is left is said, with when to
ask again. Asking again for one already queued again queues nothing and
spends none of the bound: it is said to be queued already. Only an officer
of the department may, and only while it has a webhook.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (id == "") == (since == "") {
				return fmt.Errorf("give --id DELIVERY or --since TIME (one of them)")
			}
			var from time.Time
			if since != "" {
				var err error
				if from, err = parseTime(since); err != nil {
					return err
				}
			}
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				got, err := cl.RedeliverWebhook(ctx, args[0], id, from)
				if err != nil {
					return err
				}
				ids := got.IDs
				if ok, err := c.emitted(got, strings.Join(ids, "\n")); ok {
					return err
				}
				if len(ids) == 0 && len(got.Already) == 0 && got.Left == 0 {
					c.say("no failed delivery of %s since %s", args[0], from.Local().Format(time.RFC3339))
					return nil
				}
				if len(ids) > 0 {
					c.say("%s of %s queued again: %s", plural(len(ids), "delivery", "deliveries"), args[0], strings.Join(ids, " "))
				}
				if len(got.Already) > 0 {
					c.say("%s of %s already queued (asked for before: not queued twice, nor counted against the bound): %s", plural(len(got.Already), "delivery", "deliveries"), args[0], strings.Join(got.Already, " "))
				}
				if got.Left > 0 {
					c.say("%d more not queued (the hub's bound of redeliveries): ask again after %s", got.Left, got.Next.Local().Format(time.RFC3339))
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&id, "id", "", "the delivery's id")
	cmd.Flags().StringVar(&since, "since", "", "every failed delivery recorded from this time (RFC 3339, a date, or a duration ago like 2h)")
	return cmd
}
