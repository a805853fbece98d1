package trial

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/bus"
	"github.com/xhub-gov/xhub/internal/testenv"
)

// proc is a process of the deployment that a trial may kill and restart.
type proc struct {
	name string
	args []string
	env  []string
	log  string

	mu      sync.Mutex
	cmd     *exec.Cmd
	started time.Time    // the running process's start
	died    atomic.Int64 // exits not caused by the trial
}

func (p *proc) start(t testing.TB) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(p.args[0], p.args[1:]...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.name, err)
	}
	f.Close()
	p.cmd, p.started = cmd, time.Now()
	go func() {
		_ = cmd.Wait()
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.cmd == cmd { // not killed by the trial
			p.died.Add(1)
			p.cmd = nil
		}
	}()
}

// ensure restarts the process if it exited on its own.
func (p *proc) ensure(t testing.TB) {
	p.mu.Lock()
	running := p.cmd != nil
	p.mu.Unlock()
	if !running {
		p.start(t)
	}
}

func (p *proc) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd = nil
	}
}

// since is when the running process started (zero: none runs).
func (p *proc) since() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return time.Time{}
	}
	return p.started
}

// deployment is the processes and the clients of one run.
type deployment struct {
	t          testing.TB
	adminCreds string
	dir        string
	bin        string
	nats       *testenv.NATSCluster
	hubs       []*proc
	addrs      []string
	metrics    []string // each hub's /metrics address
	providers  []*proc
	admin      *adapters.Client
	both       string // every hub address, for failover

	natsOnce sync.Once
	nc       *nats.Conn
}

// deployConfig is what a run asks of its deployment; the zero value is
// the crash trials'.
type deployConfig struct {
	// serve are flags added to every `xhub serve`.
	serve []string
	// callout configures the NATS servers for departments' systems (TLS
	// on the hub's CA, every hub node the servers' auth callout), as the
	// README's external cluster does.
	callout bool
}

// deploy builds xhub, starts three nats-server processes in a cluster,
// then hub-a on it and, once hub-a serves, hub-b joined with a token
// (never two nodes starting on a fresh cluster at once).
func deploy(t testing.TB, cfg deployConfig) *deployment {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "xhub")
	if b, err := exec.Command("go", "build", "-o", bin, "github.com/xhub-gov/xhub/cmd/xhub").CombinedOutput(); err != nil {
		t.Fatalf("build xhub: %v\n%s", err, b)
	}
	d := &deployment{t: t, dir: dir, bin: bin, nats: testenv.NewNATSCluster(t, 3)}
	var callout []string
	if cfg.callout {
		callout = d.enableCallout(filepath.Join(dir, "hub-a"))
	}
	d.nats.Start(t)
	ports := testenv.FreePorts(t, 4)
	for i, name := range []string{"hub-a", "hub-b"} {
		addr := fmt.Sprintf("127.0.0.1:%d", ports[i])
		d.addrs = append(d.addrs, addr)
		d.metrics = append(d.metrics, fmt.Sprintf("127.0.0.1:%d", ports[2+i]))
		args := []string{bin, "serve", "--data-dir", filepath.Join(dir, name), "--listen", addr, "--name", name, "--log-level", "warn", "--metrics-listen", d.metrics[i]}
		if i == 0 || cfg.callout {
			args = append(args, "--nats-url", d.nats.URL(), "--replicas", "3")
		}
		args = append(append(args, callout...), cfg.serve...)
		d.hubs = append(d.hubs, &proc{name: name, args: args, log: filepath.Join(dir, name+".log")})
	}
	d.both = strings.Join(d.addrs, ",")
	d.hubs[0].start(t)
	t.Cleanup(func() {
		for _, p := range append(append([]*proc(nil), d.providers...), d.hubs...) {
			p.kill()
		}
		if t.Failed() {
			for _, h := range d.hubs {
				b, _ := os.ReadFile(h.log)
				t.Logf("%s log (tail):\n%s", h.name, tail(string(b), 3000))
			}
		}
	})
	adminCreds := filepath.Join(dir, "hub-a", "admin.creds")
	d.adminCreds = adminCreds
	testenv.WaitFor(t, 60*time.Second, "hub-a up", func() bool {
		_, err := os.Stat(adminCreds)
		return err == nil && listening(d.addrs[0])
	})
	var err error
	if d.admin, err = adapters.Dial(context.Background(), adminCreds, adapters.WithHub(d.both)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.admin.Close() })
	tok, _, err := d.admin.CreateJoinToken(context.Background(), "hub-b", 0, []string{d.addrs[0]})
	if err != nil {
		t.Fatal(err)
	}
	d.hubs[1].env = []string{"XHUB_JOIN=" + tok}
	d.hubs[1].start(t)
	testenv.WaitFor(t, 60*time.Second, "hub-b up", func() bool { return listening(d.addrs[1]) })
	return d
}

// enableCallout makes the hub's CA in the first node's data dir and the
// callout's account key, configures the servers with both
// (testenv.CalloutFor), and returns the flags that make a hub node the
// callout.
func (d *deployment) enableCallout(dataDir string) []string {
	co, keyFile := testenv.CalloutFor(d.t, dataDir, filepath.Join(d.dir, "nats-tls"))
	d.nats.EnableCallout(d.t, co)
	return []string{"--nats-callout-key", keyFile, "--nats-system-url", d.nats.SystemURL()}
}

// natsVictim is, every other time, the leader of the ledger stream, else
// the next node in turn.
func (d *deployment) natsVictim(k int) *testenv.NATSNode {
	if k%2 == 0 {
		js, err := jetstream.New(d.natsConn())
		if err == nil {
			if s, err := js.Stream(context.Background(), bus.LedgerStream); err == nil && s.CachedInfo().Cluster != nil {
				for _, n := range d.nats.Nodes {
					if n.Name == s.CachedInfo().Cluster.Leader {
						return n
					}
				}
			}
		}
	}
	return d.nats.Nodes[k%len(d.nats.Nodes)]
}

func (d *deployment) natsConn() *nats.Conn {
	d.natsOnce.Do(func() { d.nc = d.nats.Connect(d.t) })
	return d.nc
}

// fileProvider starts `xhub adapter file` for dataset, serving records
// (JSON lines) with creds, through hubs (comma-separated, in the order
// tried), and waits until a probe of the owner's own department gets an
// answer through it.
func (d *deployment) fileProvider(name, dataset, creds, hubs string, records []string) *proc {
	path := filepath.Join(d.dir, name+".jsonl")
	if err := os.WriteFile(path, []byte(strings.Join(records, "\n")+"\n"), 0o600); err != nil {
		d.t.Fatal(err)
	}
	return d.provider(name, creds, hubs, dataset, "adapter", "file", "--dataset", dataset, "--path", path)
}

// provider starts an adapter process (args after the binary's client
// flags) and waits until dataset answers a query through it.
func (d *deployment) provider(name, creds, hubs, dataset string, args ...string) *proc {
	p := &proc{name: name, log: filepath.Join(d.dir, name+".log"),
		args: append([]string{d.bin, "--creds", creds, "--hub", hubs}, args...)}
	d.providers = append(d.providers, p)
	p.start(d.t)
	owner := catalog.DatasetID(dataset).Owner()
	c := d.dial(d.creds(string(owner), vocab.RoleSystem, "probe"))
	testenv.WaitFor(d.t, 30*time.Second, name+" serving", func() bool {
		_, err := c.Query(context.Background(), dataset, adapters.QueryOptions{Limit: 1})
		return err == nil
	})
	return p
}

func (d *deployment) creds(dept string, role vocab.Role, name string) string {
	d.t.Helper()
	ctx := context.Background()
	_, _ = d.admin.AddDepartment(ctx, dept, dept)
	_, file, err := d.admin.IssueCredential(ctx, vocab.Identity{Dept: catalog.DeptID(dept), Role: role, Name: name}, 1)
	if err != nil {
		d.t.Fatal(err)
	}
	path := filepath.Join(d.dir, dept+"-"+name+".creds")
	if err := os.WriteFile(path, file, 0o600); err != nil {
		d.t.Fatal(err)
	}
	return path
}

func (d *deployment) dial(creds string) *adapters.Client {
	d.t.Helper()
	return d.dialHub(creds, d.both)
}

// dialHub dials hubs (comma-separated, tried in order).
func (d *deployment) dialHub(creds, hubs string) *adapters.Client {
	d.t.Helper()
	c, err := adapters.Dial(context.Background(), creds, adapters.WithHub(hubs))
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { c.Close() })
	return c
}

// checkWrites counts acknowledged writes missing from the ledger and
// writes (acknowledged or not) applied more than once.
func (d *deployment) checkWrites(acked, tried []string) (lost, twice int) {
	d.t.Helper()
	ents, err := d.admin.Entries(context.Background(), 0, "")
	if err != nil {
		d.t.Fatal(err)
	}
	n := map[string]int{}
	for _, e := range ents {
		if e.Kind == "dept.added" {
			n[e.Subject]++
		}
	}
	for _, id := range acked {
		if n[id] == 0 {
			lost++
		}
	}
	for _, id := range tried {
		if n[id] > 1 {
			twice++
		}
	}
	return lost, twice
}

// nodeClients dials each node alone with the operator's credentials.
func (d *deployment) nodeClients() []*adapters.Client {
	var out []*adapters.Client
	for _, addr := range d.addrs {
		out = append(out, d.dialHub(d.adminCreds, addr))
	}
	return out
}

// checkNodesAgree compares the nodes' signed heads and department views
// at the same point of the log.
func (d *deployment) checkNodesAgree() string {
	d.t.Helper()
	ctx := context.Background()
	var heads []string
	var views []string
	var firstNote []byte
	for _, c := range d.nodeClients() {
		lv, err := c.LedgerVerifier("")
		if err != nil {
			d.t.Fatal(err)
		}
		var head string
		// The first node's signed head; every other node must hold the
		// same log: its own head proved consistent with (extending) that
		// one. (A head compared for equality could be passed between two
		// polls if anything still appends.)
		testenv.WaitFor(d.t, 30*time.Second, "node "+c.Addr()+" caught up", func() bool {
			if len(heads) == 0 {
				tr, note, err := lv.Head(ctx)
				if err != nil {
					return false
				}
				head, firstNote = fmt.Sprintf("%d/%s", tr.N, tr.Hash), note
				return true
			}
			_, cur, err := lv.Consistency(ctx, firstNote)
			if err != nil {
				return false
			}
			head = fmt.Sprintf("%d/%s", cur.N, cur.Hash)
			return true
		})
		deps, err := c.Departments(ctx)
		if err != nil {
			d.t.Fatal(err)
		}
		b, _ := json.Marshal(deps)
		heads, views = append(heads, head), append(views, string(b))
	}
	if views[0] != views[1] && heads[0] == heads[1] {
		d.t.Errorf("the nodes' department views differ at head %s", heads[0])
	}
	return heads[0]
}

// raise sets v to d if d is larger.
func raise(v *atomic.Int64, d time.Duration) {
	for {
		old := v.Load()
		if int64(d) <= old || v.CompareAndSwap(old, int64(d)) {
			return
		}
	}
}

// scrape reads one unlabelled metric from a hub's /metrics.
func scrape(t testing.TB, addr, name string) float64 {
	f, err := scrapeMetrics(addr, name)
	if err != nil {
		t.Fatal(err)
	}
	return f[0]
}

// scrapeMetrics reads unlabelled metrics from a hub's /metrics, in the
// order of names; a metric the node does not have is an error.
func scrapeMetrics(addr string, names ...string) ([]float64, error) {
	cl := http.Client{Timeout: 10 * time.Second}
	resp, err := cl.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := make([]float64, len(names))
	found := make([]bool, len(names))
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		for i, name := range names {
			if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					return nil, fmt.Errorf("%s: %v", name, err)
				}
				out[i], found[i] = f, true
			}
		}
	}
	for i, ok := range found {
		if !ok {
			return nil, fmt.Errorf("%s has no %s", addr, names[i])
		}
	}
	return out, sc.Err()
}

func listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	sc := bufio.NewScanner(strings.NewReader(s[len(s)-n:]))
	sc.Scan() // drop a partial line
	var b strings.Builder
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
	}
	return b.String()
}

// deployWith is the crash trials' deployment with more flags for each
// `xhub serve`.
func deployWith(t testing.TB, serveFlags ...string) *deployment {
	return deploy(t, deployConfig{serve: serveFlags})
}
