package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/internal/buildinfo"
)

func (c *cli) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print this binary's version, commit, Go and API versions, and the hub's when it can be reached",
		Long: `Print this binary's version, the commit it was built from, its Go version
and the API version it speaks. With credentials (--creds or XHUB_CREDS) it
also asks the hub node for its own, which every node reports in its health
answers (the xhub-version trailer).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := c.checkOutput(); err != nil {
				return err
			}
			out := map[string]any{"client": buildinfo.Get()}
			var hubErr error
			_ = c.applyContext()
			if c.creds != "" {
				ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
				defer cancel()
				hubErr = c.withClient(cmd, func(_ context.Context, cl *adapters.Client) error {
					node, v, status, err := cl.HubVersion(ctx)
					if err != nil {
						return err
					}
					out["hub"] = map[string]string{"node": node, "version": v, "health": status, "address": cl.Hub()}
					return nil
				})
				if hubErr != nil {
					out["hub_error"] = errorLine(hubErr)
				}
			}
			if c.json() {
				return c.printJSON(out)
			}
			c.say("xhub %s", buildinfo.Get())
			if h, ok := out["hub"].(map[string]string); ok {
				c.say("hub  %s (node %s at %s, %s)", h["version"], h["node"], h["address"], h["health"])
			} else if hubErr != nil {
				c.say("hub  not asked: %s", errorLine(hubErr))
			}
			return nil
		},
	}
}
