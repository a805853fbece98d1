package main

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/xhub-gov/xhub/adapters"
)

// Shell completion (cobra's `xhub completion bash|zsh|fish|powershell`)
// completes, from the hub, with the caller's identity: dataset ids,
// pending request ids, active grant ids, open dispute ids and department
// ids, each with a short description. A hub that does not answer within
// two seconds completes nothing rather than hanging the shell.

// completionArgs names what the first argument of a command is.
var completionArgs = map[string]string{
	"xhub catalog show":    "dataset",
	"xhub catalog update":  "own-dataset",
	"xhub catalog retire":  "own-dataset",
	"xhub query":           "dataset",
	"xhub publish":         "own-dataset",
	"xhub subscribe":       "dataset",
	"xhub share request":   "dataset",
	"xhub dispute open":    "dataset",
	"xhub share approve":   "inbox",
	"xhub share reject":    "inbox",
	"xhub share withdraw":  "my-request",
	"xhub share revoke":    "grant",
	"xhub dispute resolve": "dispute",
}

// completionFlags names what a flag's value is, on every command that has it.
var completionFlags = map[string]string{
	"dataset": "dataset",
	"dept":    "dept",
	"grantee": "dept",
}

func (c *cli) wireCompletion(root *cobra.Command) {
	var walk func(*cobra.Command)
	walk = func(cmd *cobra.Command) {
		if kind, ok := completionArgs[cmd.CommandPath()]; ok {
			cmd.ValidArgsFunction = func(cmd *cobra.Command, args []string, prefix string) ([]string, cobra.ShellCompDirective) {
				if len(args) > 0 {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				return c.completions(cmd, kind, prefix)
			}
		}
		for flag, kind := range completionFlags {
			if cmd.Flags().Lookup(flag) != nil {
				_ = cmd.RegisterFlagCompletionFunc(flag, func(cmd *cobra.Command, _ []string, prefix string) ([]string, cobra.ShellCompDirective) {
					return c.completions(cmd, kind, prefix)
				})
			}
		}
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

func (c *cli) completions(cmd *cobra.Command, kind, prefix string) ([]string, cobra.ShellCompDirective) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cl, err := c.client(ctx)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveError
	}
	defer cl.Close()
	var out []string
	add := func(id, desc string) {
		if strings.HasPrefix(id, prefix) {
			out = append(out, id+"\t"+strings.NewReplacer("\t", " ", "\n", " ").Replace(desc))
		}
	}
	me := cl.Identity()
	switch kind {
	case "dataset", "own-dataset":
		q := adapters.DatasetQuery{}
		if kind == "own-dataset" {
			q.Dept = string(me.Dept)
		}
		ds, err := cl.Datasets(ctx, q)
		if err != nil {
			break
		}
		for _, d := range ds {
			add(d.ID, d.Title+" ("+d.ShareType+")")
		}
	case "dept":
		ds, err := cl.Departments(ctx)
		if err != nil {
			break
		}
		for _, d := range ds {
			add(d.ID, d.Name)
		}
	case "inbox":
		rs, err := cl.Inbox(ctx)
		if err != nil {
			break
		}
		for _, r := range rs {
			add(r.ID, r.Requester+" asks for "+r.Dataset+": "+r.Purpose)
		}
	case "my-request":
		rs, err := cl.Requests(ctx, adapters.ShareQuery{Grantee: string(me.Dept), Status: "pending"})
		if err != nil {
			break
		}
		for _, r := range rs {
			add(r.ID, r.Dataset+": "+r.Purpose)
		}
	case "grant":
		gs, err := cl.Grants(ctx, adapters.ShareQuery{Status: "active"})
		if err != nil {
			break
		}
		for _, g := range gs {
			if strings.HasPrefix(g.Dataset, string(me.Dept)+".") {
				add(g.ID, g.Grantee+" on "+g.Dataset+" until "+day(g.ExpiresAt))
			}
		}
	case "dispute":
		ds, err := cl.Disputes(ctx, "", "open")
		if err != nil {
			break
		}
		for _, d := range ds {
			add(d.ID, d.Opener+" on "+d.Dataset+": "+d.Reason)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}
