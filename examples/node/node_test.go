// Package nodeexample runs the JavaScript example (main.mjs) against a
// real hub: the test that a system written in another language, with a
// department's exported credential, reaches the hub over JSON, gRPC and
// NATS, and is refused what it holds no grant for.
package nodeexample

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/bus"
	"github.com/xhub-gov/xhub/internal/hub"
	"github.com/xhub-gov/xhub/internal/testenv"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

const schema = `{"type":"object","properties":{"id":{"type":"integer"},"name":{"type":"string"},"ward":{"type":"string"}},"required":["id","ward"]}`

func TestNodeExample(t *testing.T) {
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat("node_modules/nats")
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("node and the example's packages are needed (.ci/run installs them): %v", err)
		}
		t.Skipf("needs node and `npm ci` in examples/node: %v", err)
	}
	// The subscription sweep every 200 ms: the example's NATS feed must
	// outlive several (it once lasted until the first, a minute).
	env := testenv.Start(t, testenv.WithNATSListen(), func(c *hub.Config) { c.SubscriptionSweep = 200 * time.Millisecond })
	ctx := context.Background()
	owner := env.Officer("health")
	for _, id := range []string{"health.cases", "health.secret"} {
		if _, err := testenv.RPC(owner).Schemas.RegisterSchema(ctx, &xhubv1.RegisterSchemaRequest{Subject: id, SchemaJson: []byte(schema)}); err != nil {
			t.Fatal(err)
		}
		if _, err := testenv.RPC(owner).Catalog.PublishDataset(ctx, &xhubv1.PublishDatasetRequest{Id: id, Title: id, ShareType: "conditional", SchemaSubject: id}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := testenv.RPC(env.Officer("tax")).Shares.RequestShare(ctx, &xhubv1.RequestShareRequest{Dataset: "health.cases", Purpose: "statistics", Fields: []string{"id", "ward"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testenv.RPC(owner).Shares.Approve(ctx, &xhubv1.ApproveRequest{RequestId: r.Request.Id}); err != nil {
		t.Fatal(err)
	}
	provider := env.System("health", "clinic-db")
	pctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		_ = provider.Serve(pctx, []string{"health.cases"}, func(context.Context, adapters.ProviderQuery) ([][]byte, string, error) {
			return [][]byte{[]byte(`{"id":1,"name":"Ana","ward":"north"}`), []byte(`{"id":2,"name":"Bo","ward":"south"}`)}, "", nil
		})
	}()

	// The department's credential as PEM files, as `xhub creds export --pem` writes them.
	creds, err := vocab.LoadCreds(env.Creds("tax", vocab.RoleSystem, "etl"))
	if err != nil {
		t.Fatal(err)
	}
	cert, key, ca, err := creds.PEM()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for name, b := range map[string][]byte{"cert.pem": cert, "key.pem": key, "ca.pem": ca} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	testenv.WaitFor(t, 10*time.Second, "the provider", func() bool {
		_, err := env.Dial(env.Creds("tax", vocab.RoleSystem, "probe")).Query(ctx, "health.cases", adapters.QueryOptions{Limit: 1})
		return err == nil
	})
	testenv.WaitFor(t, 10*time.Second, "the NATS delivery", func() bool {
		_, err := env.Node.JS.Consumer(ctx, bus.DataStream, bus.SubscriptionConsumerName("tax", "health.cases", bus.OutSubscription))
		return err == nil
	})

	cctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, node, "main.mjs")
	cmd.Env = append(os.Environ(), "XHUB_HUB="+env.Addr(), "XHUB_NATS="+env.Node.Embedded.Addr, "XHUB_PEM_DIR="+dir,
		"XHUB_DEPT=tax", "XHUB_DATASET=health.cases", "XHUB_DENIED=health.secret", "XHUB_EXPECT=2", "XHUB_WAIT=60")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		t.Log(line)
		lines = append(lines, line)
		if strings.HasPrefix(line, "subscribed: ") {
			// Past several sweeps, and one started by another
			// department revoking a credential of its own, before the
			// records the example waits for are published.
			sweeps := env.Node.DP.SubscriptionSweeps()
			testenv.WaitFor(t, 30*time.Second, "three subscription sweeps", func() bool { return env.Node.DP.SubscriptionSweeps() >= sweeps+3 })
			edu := env.Officer("edu")
			c, _, err := edu.IssueCredential(ctx, vocab.Identity{Dept: "edu", Role: vocab.RoleSystem, Name: "app"}, 1)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := edu.RevokeCredential(ctx, c.Serial, "rotated"); err != nil {
				t.Fatal(err)
			}
			sweeps = env.Node.DP.SubscriptionSweeps()
			testenv.WaitFor(t, 30*time.Second, "two more subscription sweeps", func() bool { return env.Node.DP.SubscriptionSweeps() >= sweeps+2 })
			if _, err := provider.Publish(ctx, "health.cases", [][]byte{[]byte(`{"id":7,"name":"Di","ward":"west"}`), []byte(`{"id":8,"name":"Ed","ward":"east"}`)}, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.String())
	}
	got := strings.Join(lines, "\n")
	for _, want := range []string{
		"catalog: 2 datasets: health.cases (conditional), health.secret (conditional)",
		"query over JSON: 2 records, fields id,ward, withheld 0",
		"refused: HTTP 403 permission_denied: ",
		"query over gRPC: 2 records, fields id,ward",
		"subscribed: xhub.out.tax.health.cases",
		"waiting 60s for 2 records: publish them to health.cases now",
		`nats: {"id":7,"ward":"west"}`,
		`nats: {"id":8,"ward":"east"}`,
		"done",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(got, "Ana") || strings.Contains(got, "Di\"") || strings.Contains(got, "name") {
		t.Errorf("a field outside the grant reached the example:\n%s", got)
	}
}
