package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/ledger"
)

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func (c *cli) shareCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "share",
		Short: "Request, decide and revoke access to datasets",
		Long: `The share workflow. An officer requests another department's dataset with
a purpose; open datasets are granted at once by the open-sharing policy,
conditional ones wait for the owner's officer to approve (possibly narrowed)
or reject (with a reason), and datasets shared as none are refused with the
reason. Grants expire on their own; the owner may revoke one, with a reason.
Every step is a ledger entry.`,
	}

	var fields, purpose string
	var days int
	request := &cobra.Command{
		Use:   "request DATASET --purpose P [--fields a,b] [--days N]",
		Short: "Request access to a dataset (officer)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				r, err := cl.RequestShare(ctx, args[0], splitList(fields), purpose, days)
				if err != nil {
					return err
				}
				if ok, err := c.emitted(r, r.Request.ID); ok {
					return err
				}
				if r.Grant != nil {
					c.say("request %s granted at once (open dataset): grant %s on %s, fields %s, until %s, ledger entry %d",
						r.Request.ID, r.Grant.ID, r.Grant.Dataset, strings.Join(r.Grant.Fields, ","), day(r.Grant.ExpiresAt), r.Seq)
					return nil
				}
				c.say("request %s for %s is pending with %s's officers (answer due by %s), ledger entry %d",
					r.Request.ID, r.Request.Dataset, strings.SplitN(r.Request.Dataset, ".", 2)[0], day(r.Request.Deadline), r.Seq)
				return nil
			})
		},
	}
	request.Flags().StringVar(&purpose, "purpose", "", "what the data is for (required)")
	request.Flags().StringVar(&fields, "fields", "", "comma-separated fields (default: all)")
	request.Flags().IntVar(&days, "days", 0, "duration in days (default: the hub's maximum)")
	_ = request.MarkFlagRequired("purpose")

	var watch bool
	inbox := &cobra.Command{
		Use:   "inbox [--watch]",
		Short: "Pending requests for your department's datasets (overdue ones marked)",
		Long: `Pending requests for your department's datasets, overdue ones marked.
With --watch, then follow: each new request, each decision on your
department's requests, each dispute opened or answered is printed as it
happens (one line each; JSON lines with -o json), until Ctrl-C, which exits
quietly.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.checkOutput(); err != nil {
				return err
			}
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				all, err := cl.Inbox(ctx)
				if err != nil {
					return err
				}
				if err := c.printRequests(all); err != nil || !watch {
					return err
				}
				return cl.WatchInbox(ctx, func() {
					if !c.json() {
						fmt.Fprintln(c.stderr, "watching for new requests, decisions and disputes (Ctrl-C to stop)")
					}
				}, func(e adapters.InboxEvent) error {
					if c.json() {
						b, err := json.Marshal(e)
						if err != nil {
							return err
						}
						_, err = c.stdout.Write(append(printableJSON(b), '\n'))
						return err
					}
					c.say("%s  %s", time.Now().Format("2006-01-02 15:04:05"), catalog.EscapeLine(eventLine(e)))
					return nil
				})
			})
		},
	}
	inbox.Flags().BoolVar(&watch, "watch", false, "then print new requests, decisions and disputes as they happen")

	var apFields, reason string
	var apDays int
	approve := &cobra.Command{
		Use:   "approve REQ [--fields a,b] [--days N] [--reason R]",
		Short: "Approve a pending request for your dataset, possibly narrowed (officer)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				r, err := cl.Approve(ctx, args[0], splitList(apFields), apDays, reason)
				if err != nil {
					return err
				}
				if ok, err := c.emitted(r, r.Grant.ID); ok {
					return err
				}
				c.say("request %s approved: grant %s to %s on %s, fields %s, until %s, ledger entry %d",
					r.Request.ID, r.Grant.ID, r.Grant.Grantee, r.Grant.Dataset, strings.Join(r.Grant.Fields, ","), day(r.Grant.ExpiresAt), r.Seq)
				return nil
			})
		},
	}
	approve.Flags().StringVar(&apFields, "fields", "", "grant only these fields (a subset of the request)")
	approve.Flags().IntVar(&apDays, "days", 0, "grant for fewer days than requested")
	approve.Flags().StringVar(&reason, "reason", "", "note recorded with the approval")

	var rjReason string
	reject := &cobra.Command{
		Use:   "reject REQ --reason R",
		Short: "Reject a pending request, stating the basis (officer)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				r, err := cl.Reject(ctx, args[0], rjReason)
				if err != nil {
					return err
				}
				if ok, err := c.emitted(r, r.Request.ID); ok {
					return err
				}
				c.say("request %s rejected: %s, ledger entry %d", r.Request.ID, r.Request.Reason, r.Seq)
				return nil
			})
		},
	}
	reject.Flags().StringVar(&rjReason, "reason", "", "the basis for refusing (required)")
	_ = reject.MarkFlagRequired("reason")

	withdraw := &cobra.Command{
		Use:   "withdraw REQ",
		Short: "Withdraw your department's pending request (officer)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				r, err := cl.Withdraw(ctx, args[0])
				if err != nil {
					return err
				}
				if ok, err := c.emitted(r, r.Request.ID); ok {
					return err
				}
				c.say("request %s withdrawn, ledger entry %d", r.Request.ID, r.Seq)
				return nil
			})
		},
	}

	var rvReason string
	revoke := &cobra.Command{
		Use:   "revoke GRANT --reason R",
		Short: "End a grant on your dataset before its term (officer)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				r, err := cl.RevokeGrant(ctx, args[0], rvReason)
				if err != nil {
					return err
				}
				if ok, err := c.emitted(r, r.Grant.ID); ok {
					return err
				}
				c.say("grant %s to %s on %s revoked: %s, ledger entry %d", r.Grant.ID, r.Grant.Grantee, r.Grant.Dataset, r.Grant.Reason, r.Seq)
				return nil
			})
		},
	}
	revoke.Flags().StringVar(&rvReason, "reason", "", "why (required)")
	_ = revoke.MarkFlagRequired("reason")

	var lDataset, lGrantee, lStatus string
	var lRequests bool
	list := &cobra.Command{
		Use:   "list [--dataset D] [--grantee G] [--status S] [--requests]",
		Short: "List grants (or, with --requests, requests), complete and with history",
		Long: `List grants: who may read dataset D (--dataset D --status active), what
department G may read (--grantee G --status active), or everything with its
history (no --status). Grant statuses: active, revoked, expired, ended.
With --requests, list share requests instead; statuses pending, approved,
rejected, withdrawn, overdue.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.checkOutput(); err != nil {
				return err
			}
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				q := adapters.ShareQuery{Dataset: lDataset, Grantee: lGrantee, Status: lStatus}
				if lRequests {
					all, err := cl.Requests(ctx, q)
					if err != nil {
						return err
					}
					return c.printRequests(all)
				}
				all, err := cl.Grants(ctx, q)
				if err != nil {
					return err
				}
				if c.json() {
					return c.printJSON(map[string]any{"grants": all})
				}
				w := c.table()
				w.row("GRANT", "DATASET", "GRANTEE", "FIELDS", "STATUS", "EXPIRES", "REQUEST")
				for _, g := range all {
					st := g.Status
					if g.Reason != "" && st != "active" {
						st += ": " + g.Reason
					}
					w.row(g.ID, g.Dataset, g.Grantee, strings.Join(g.Fields, ","), st, day(g.ExpiresAt), g.RequestID)
				}
				return w.Flush()
			})
		},
	}
	list.Flags().StringVar(&lDataset, "dataset", "", "only this dataset")
	list.Flags().StringVar(&lGrantee, "grantee", "", "only grants to (requests from) this department")
	list.Flags().StringVar(&lStatus, "status", "", "only this status")
	list.Flags().BoolVar(&lRequests, "requests", false, "list requests instead of grants")

	cmd.AddCommand(request, inbox, approve, reject, withdraw, revoke, list)
	return cmd
}

func (c *cli) printRequests(all []adapters.ShareRequest) error {
	if c.json() {
		return c.printJSON(map[string]any{"requests": all})
	}
	w := c.table()
	w.row("REQUEST", "DATASET", "REQUESTER", "FIELDS", "DAYS", "STATUS", "DUE", "PURPOSE")
	for _, r := range all {
		st := r.Status
		if r.Overdue {
			st = "pending OVERDUE"
		} else if r.Reason != "" {
			st += ": " + r.Reason
		}
		f := strings.Join(r.Fields, ",")
		if f == "" {
			f = "(all)"
		}
		w.row(r.ID, r.Dataset, r.Requester, f, r.Days, st, day(r.Deadline), r.Purpose)
	}
	return w.Flush()
}

func day(t time.Time) string { return t.Format("2006-01-02") }

// eventLine says in one line what an inbox event is.
func eventLine(e adapters.InboxEvent) string {
	switch {
	case e.Request != nil && e.Kind == ledger.KindShareRequested:
		r := e.Request
		fields := strings.Join(r.Fields, ",")
		if fields == "" {
			fields = "all fields"
		}
		return fmt.Sprintf("%s %s: %s asks for %s of %s for %d days (due %s): %s", e.Kind, r.ID, r.Requester, fields, r.Dataset, r.Days, day(r.Deadline), r.Purpose)
	case e.Grant != nil && (e.Kind == ledger.KindShareApproved || e.Kind == ledger.KindGrantRevoked):
		g := e.Grant
		return fmt.Sprintf("%s %s: %s on %s, fields %s, until %s %s", e.Kind, g.ID, g.Grantee, g.Dataset, strings.Join(g.Fields, ","), day(g.ExpiresAt), g.Reason)
	case e.Request != nil:
		return fmt.Sprintf("%s %s on %s: %s", e.Kind, e.Request.ID, e.Request.Dataset, e.Request.Reason)
	case e.Dispute != nil:
		d := e.Dispute
		return fmt.Sprintf("%s %s on %s by %s (due %s): %s %s", e.Kind, d.ID, d.Dataset, d.Opener, day(d.Deadline), d.Reason, d.Resolution)
	}
	return e.Kind + " " + e.ID
}
