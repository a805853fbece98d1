package hub_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xhub-gov/xhub/internal/bus"
	"github.com/xhub-gov/xhub/internal/hub"
	"github.com/xhub-gov/xhub/internal/pki"
	"github.com/xhub-gov/xhub/internal/testenv"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

// TestClusterStart: two hub nodes started at the same moment, before the
// three NATS servers they name are even running, both come up once the
// cluster forms, make the R3 streams once, and share one log; a node
// asking for other replicas is refused with what differs.
func TestClusterStart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nats-server processes")
	}
	cluster := testenv.NewNATSCluster(t, 3)
	time.AfterFunc(time.Second, func() { cluster.Start(t) })
	var ca string
	envs := testenv.StartConcurrently(t, func(i int, dir string) {
		// Both nodes hold the deployment's CA (joining without copying
		// files is TestJoin's).
		if i == 0 {
			if _, err := pki.LoadOrCreate(filepath.Join(dir, "pki")); err != nil {
				t.Fatal(err)
			}
			ca = dir
			return
		}
		copyDir(t, filepath.Join(ca, "pki"), filepath.Join(dir, "pki"))
	},
		[]testenv.Option{testenv.WithNATSURL(cluster.URL()), testenv.WithReplicas(3), testenv.WithName("hub-a")},
		[]testenv.Option{testenv.WithNATSURL(cluster.URL()), testenv.WithReplicas(3), testenv.WithName("hub-b")},
	)
	a, b := envs[0], envs[1]
	ctx := context.Background()
	r, err := testenv.RPC(a.Admin).Departments.AddDepartment(ctx, &xhubv1.AddDepartmentRequest{Id: "health", Name: "Health"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := testenv.RPC(b.Admin).Departments.ListDepartments(ctx, &xhubv1.ListDepartmentsRequest{MinSeq: r.Seq})
	if err != nil || len(got.Departments) != 1 {
		t.Fatalf("B after A's write: %v %v", got, err)
	}
	js, err := jetstream.New(cluster.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{bus.LedgerStream, bus.DataStream, bus.AuditStream} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if info := s.CachedInfo(); info.Config.Replicas != 3 || info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
			t.Fatalf("%s: replicas %d, cluster %+v", name, info.Config.Replicas, info.Cluster)
		}
	}

	dir := t.TempDir()
	copyDir(t, filepath.Join(ca, "pki"), filepath.Join(dir, "pki"))
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err = hub.Start(sctx, hub.Config{DataDir: dir, Listen: "127.0.0.1:0", NATSURL: cluster.URL(), Replicas: 1, Logger: testenv.Logger()})
	var mm *bus.MismatchError
	if !errors.As(err, &mm) || !strings.Contains(err.Error(), "replicas 3 in the cluster, 1 here") {
		t.Fatalf("node with other replicas: %v", err)
	}
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPlacementWaited: a node asking for R3 streams on a cluster of which
// only two servers run waits, saying for what, until the third starts,
// then serves; a placement not yet possible is not a reason to stop.
func TestPlacementWaited(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nats-server processes")
	}
	cluster := testenv.NewNATSCluster(t, 3)
	cluster.Nodes[0].Restart(t)
	cluster.Nodes[1].Restart(t)
	var log testenv.Buffer
	type started struct {
		n   *hub.Node
		err error
	}
	done := make(chan started, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		n, err := hub.Start(ctx, hub.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", NATSURL: cluster.URL(), Replicas: 3,
			Logger: slog.New(slog.NewTextHandler(&log, nil))})
		done <- started{n, err}
	}()
	testenv.WaitFor(t, 2*time.Minute, "the node saying what it waits for", func() bool {
		return strings.Contains(log.String(), "3 servers with JetStream in the cluster")
	})
	select {
	case s := <-done:
		t.Fatalf("the node did not wait for the third server: %v", s.err)
	default:
	}
	cluster.Nodes[2].Restart(t)
	s := <-done
	if s.err != nil {
		t.Fatalf("after the third server started: %v\n%s", s.err, log.String())
	}
	s.n.Close()
}
