package file_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/adapters/file"
	"github.com/xhub-gov/xhub/internal/testenv"
)

// TestPageTokensThroughTheHub: the file adapter as a provider of a file
// keyed by national_id, which tax is not granted (it holds district
// alone): tax sees no hidden value in any token and every record once;
// the adapter sends the hub only the fields asked for; every token the
// hub did not issue for the query (a bare "3", which the adapter would
// take as an offset, random bytes, altered, from another dataset,
// filters, fields or department) gets one identical refusal, the file
// never read for it (testenv.CheckPageTokens).
func TestPageTokensThroughTheHub(t *testing.T) {
	var lines bytes.Buffer
	for _, c := range testenv.Citizens {
		lines.Write(c.JSON())
		lines.WriteByte('\n')
	}
	srcs := map[string]*file.Source{}
	for _, name := range []string{"citizens", "citizens2"} {
		path := filepath.Join(t.TempDir(), name+".jsonl")
		if err := os.WriteFile(path, lines.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		src, err := file.Open(path, testenv.CitizenFields)
		if err != nil {
			t.Fatal(err)
		}
		srcs["health."+name] = src
	}
	testenv.CheckPageTokens(t, []*testenv.Env{testenv.Start(t)}, "citizens", func(ctx context.Context, q adapters.ProviderQuery) ([][]byte, string, error) {
		return srcs[q.Dataset].Handler()(ctx, q)
	})
}
