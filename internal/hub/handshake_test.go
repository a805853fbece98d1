package hub_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/hub"
	"github.com/xhub-gov/xhub/internal/testenv"
)

// TestRefusedHandshakes: a certificate from another hub's CA is refused,
// the client is told so, and the hub counts it; an expired credential is
// refused by the client before it dials.
func TestRefusedHandshakes(t *testing.T) {
	env := testenv.Start(t, testenv.WithMetrics())
	cl := env.ForeignClient()
	_, err := testenv.RPC(cl).Catalog.ListDatasets(context.Background(), nil)
	if testenv.Code(err) != 16 /* Unauthenticated */ || !strings.Contains(err.Error(), "refused this credential's certificate") {
		t.Fatalf("foreign certificate: %v", err)
	}
	body := metricsText(t, env)
	if !strings.Contains(body, `xhub_tls_handshakes_refused_total{reason="unknown_authority"}`) {
		t.Fatalf("refused handshake not counted:\n%s", grepLines(body, "xhub_"))
	}

	mine, err := vocab.LoadCreds(env.Node.AdminCreds)
	if err != nil {
		t.Fatal(err)
	}
	mine.Leaf.NotAfter = time.Now().Add(-time.Hour)
	_, err = adapters.DialCreds(context.Background(), mine, adapters.WithHub(env.Addr()))
	var exp *adapters.ExpiredError
	if !errors.As(err, &exp) || !strings.Contains(err.Error(), "expired on") {
		t.Fatalf("expired credential: %v", err)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestPortInUse: a first start on a port already taken fails before it
// writes anything, not even the data directory; the next start on a free
// port works.
func TestPortInUse(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	fresh := filepath.Join(t.TempDir(), "data")
	for _, cfg := range []hub.Config{
		{DataDir: fresh, Listen: lis.Addr().String(), Logger: testenv.Logger()},
		{DataDir: fresh, Listen: "127.0.0.1:0", MetricsListen: lis.Addr().String(), Logger: testenv.Logger()},
		{DataDir: fresh, Listen: "127.0.0.1:0", NATSListen: lis.Addr().String(), Logger: testenv.Logger()},
	} {
		if _, err := hub.Start(context.Background(), cfg); err == nil {
			t.Fatalf("start with a port in use succeeded: %+v", cfg)
		}
		if _, err := os.Stat(fresh); !os.IsNotExist(err) {
			left, _ := os.ReadDir(fresh)
			t.Fatalf("a failed first start left the data directory %s holding %v", fresh, left)
		}
	}
	dir := t.TempDir()
	_, err = hub.Start(context.Background(), hub.Config{DataDir: dir, Listen: lis.Addr().String(), Logger: testenv.Logger()})
	if err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("start on a port in use: %v", err)
	}
	left, _ := os.ReadDir(dir)
	if len(left) != 0 {
		t.Fatalf("a failed first start left %v", left)
	}
	// Metrics port in use: also nothing written.
	_, err = hub.Start(context.Background(), hub.Config{DataDir: dir, Listen: "127.0.0.1:0", MetricsListen: lis.Addr().String(), Logger: testenv.Logger()})
	if err == nil {
		t.Fatal("start with the metrics port in use succeeded")
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("a failed first start left %v", left)
	}
	env := testenv.StartIn(t, dir)
	if _, err := os.Stat(filepath.Join(dir, "admin.creds")); err != nil {
		t.Fatal(err)
	}
	_ = env
}

// TestDashboardMetricsExist: every metric the Grafana dashboard
// (deploy/grafana/xhub.json) queries is served by a node.
func TestDashboardMetricsExist(t *testing.T) {
	b, err := os.ReadFile("../../deploy/grafana/xhub.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	f := newDataFixture(t, testenv.WithMetrics())
	f.serve(t, nil)
	if _, err := f.consumer.Query(context.Background(), "health.cases", adapters.QueryOptions{}); err != nil {
		t.Fatal(err)
	}
	// A durable subscription, so its lag is served.
	sub, err := f.consumer.Subscribe(context.Background(), "health.cases", "dash", "beginning")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	served := metricsText(t, f.env)
	name := regexp.MustCompile(`\b(xhub_[a-z_]+|grpc_server_[a-z_]+)\b`)
	n := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range name.FindAllString(tg.Expr, -1) {
				n++
				if !strings.Contains(served, "\n"+m+" ") && !strings.Contains(served, "\n"+m+"{") {
					t.Errorf("panel %q uses %s, which no node serves", p.Title, m)
				}
			}
		}
	}
	if n < 15 {
		t.Fatalf("found %d metric names in the dashboard; the pattern lost some", n)
	}
}
