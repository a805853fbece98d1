package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/adapters/file"
	"github.com/xhub-gov/xhub/adapters/postgres"
	"github.com/xhub-gov/xhub/catalog"
)

func (c *cli) adapterCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "adapter", Short: "Run a ready-made provider adapter for a dataset (system)"}
	var dataset, path string
	fileCmd := &cobra.Command{
		Use:   "file --dataset D --path F",
		Short: "Serve a JSON-lines or CSV file as a dataset",
		Long: `Serve a file as the dataset's provider: JSON lines, or CSV with a header row
(cells typed by the dataset's schema). The file is re-read when it changes.
The adapter dials the hub (outbound) and reconnects until stopped.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				fields, err := datasetFields(ctx, cl, dataset)
				if err != nil {
					return err
				}
				src, err := file.Open(path, fields)
				if err != nil {
					return err
				}
				c.say("serving %s from %s", dataset, path)
				return serveLoop(ctx, cl, []string{dataset}, src.Handler(), c)
			})
		},
	}
	var dsn, table, key string
	var watch, backfill bool
	pgCmd := &cobra.Command{
		Use:   "postgres --dataset D --dsn DSN --table T [--key COL] [--watch]",
		Short: "Serve a PostgreSQL table or view as a dataset (and publish its changes)",
		Long: `Serve a PostgreSQL table or view as the dataset's provider. Queries are pushed
down as parameterised SQL: fields and filter columns are checked against the
dataset's schema and the table, values are bound parameters. --key orders and
pages the rows (default id). With --watch the adapter installs a trigger that
records inserted and updated rows in an outbox table and publishes them, in
order, keeping its cursor in the database: a restart neither loses nor
duplicates rows.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.withClient(cmd, func(ctx context.Context, cl *adapters.Client) error {
				fields, err := datasetFields(ctx, cl, dataset)
				if err != nil {
					return err
				}
				src, err := postgres.Open(ctx, postgres.Config{DSN: dsn, Table: table, Key: key, Fields: fields})
				if err != nil {
					return err
				}
				defer src.Close()
				g, gctx := errgroup.WithContext(ctx)
				g.Go(func() error { return serveLoop(gctx, cl, []string{dataset}, src.Handler(), c) })
				if watch {
					g.Go(func() error {
						opts := postgres.WatchOptions{Poll: 5 * time.Second, Backfill: backfill, Progress: c.progress("backfill of " + table)}
						return src.WatchWith(gctx, dataset, opts, func(ctx context.Context, recs [][]byte, id string) error {
							r, err := cl.Publish(ctx, dataset, recs, id)
							if err == nil && !r.Duplicate {
								c.say("published %d changed rows of %s (batch %s)", len(recs), table, id)
							}
							return err
						})
					})
				}
				c.say("serving %s from PostgreSQL table %s", dataset, table)
				return g.Wait()
			})
		},
	}
	pgCmd.Flags().StringVar(&dataset, "dataset", "", "dataset id (required)")
	pgCmd.Flags().StringVar(&dsn, "dsn", "", "PostgreSQL DSN (required)")
	pgCmd.Flags().StringVar(&table, "table", "", "table or view, optionally schema.table (required)")
	pgCmd.Flags().StringVar(&key, "key", "id", "ordering and paging column")
	pgCmd.Flags().BoolVar(&watch, "watch", false, "publish inserted and updated rows")
	pgCmd.Flags().BoolVar(&backfill, "backfill", true, "with --watch, the first time (per dataset): publish the rows already in the table first, then follow changes, none twice")
	for _, f := range []string{"dataset", "dsn", "table"} {
		_ = pgCmd.MarkFlagRequired(f)
	}
	cmd.AddCommand(pgCmd)

	fileCmd.Flags().StringVar(&dataset, "dataset", "", "dataset id (required)")
	fileCmd.Flags().StringVar(&path, "path", "", "file (required)")
	_ = fileCmd.MarkFlagRequired("dataset")
	_ = fileCmd.MarkFlagRequired("path")
	cmd.AddCommand(fileCmd)
	return cmd
}

// serveLoop keeps a provider connected, reconnecting with backoff.
func serveLoop(ctx context.Context, cl *adapters.Client, datasets []string, h adapters.Handler, c *cli) error {
	return cl.Provide(ctx, datasets, h, func(err error, wait time.Duration) {
		c.say("provider stream ended (%s); reconnecting in %s", errorLine(err), wait)
	})
}

// datasetFields reads a dataset's fields from the catalog.
func datasetFields(ctx context.Context, cl *adapters.Client, id string) ([]catalog.Field, error) {
	d, err := cl.Dataset(ctx, id)
	if err != nil {
		return nil, err
	}
	fields := make([]catalog.Field, len(d.Fields))
	for i, f := range d.Fields {
		fields[i] = catalog.Field{Name: f.Name, Type: f.Type}
	}
	return fields, nil
}
