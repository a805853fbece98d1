package main

import (
	"context"
	"errors"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/adapters/file"
	"github.com/xhub-gov/xhub/catalog"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
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
				d, err := cl.Catalog.GetDataset(ctx, &xhubv1.GetDatasetRequest{Id: dataset})
				if err != nil {
					return err
				}
				fields := make([]catalog.Field, len(d.Dataset.Fields))
				for i, f := range d.Dataset.Fields {
					fields[i] = catalog.Field{Name: f.Name, Type: f.Type}
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
	fileCmd.Flags().StringVar(&dataset, "dataset", "", "dataset id (required)")
	fileCmd.Flags().StringVar(&path, "path", "", "file (required)")
	_ = fileCmd.MarkFlagRequired("dataset")
	_ = fileCmd.MarkFlagRequired("path")
	cmd.AddCommand(fileCmd)
	return cmd
}

// serveLoop keeps a provider connected, reconnecting with backoff.
func serveLoop(ctx context.Context, cl *adapters.Client, datasets []string, h adapters.Handler, c *cli) error {
	backoff := 100 * time.Millisecond
	for {
		start := time.Now()
		err := cl.Serve(ctx, datasets, h)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			err = errors.New("stream closed")
		}
		switch status.Code(err) {
		case codes.PermissionDenied, codes.Unauthenticated, codes.InvalidArgument, codes.NotFound, codes.FailedPrecondition:
			return err // reconnecting cannot help
		}
		if time.Since(start) > 10*time.Second {
			backoff = 100 * time.Millisecond
		}
		c.say("provider stream ended (%s); reconnecting in %s", errorLine(err), backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}
