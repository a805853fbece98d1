package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/xhub-gov/xhub/internal/hub"
)

// NATSCluster is a cluster of real nats-server processes on 127.0.0.1,
// with JetStream, built from the module's own nats-server version.
type NATSCluster struct {
	t     testing.TB
	Nodes []*NATSNode
	// Name is the cluster's name, and routeUser/routePass authorise its
	// routes: each cluster's own, so that two tests' clusters on one
	// machine never route into one another.
	Name                 string
	routeUser, routePass string
	// User and Pass are the hub's client user, also the cluster's own:
	// a hub given another test's port is refused, not handed its ledger.
	User string
	Pass string
	// With EnableCallout: the system account's user, and the settings.
	SysUser, SysPass string
	callout          *Callout
}

// Callout configures the servers for departments' systems: TLS with the
// hub's CA (client certificates verified; the hub's own plain
// connections still allowed), the hub as auth callout, a system account.
type Callout struct {
	Issuer                    string // the callout's account public key
	CertFile, KeyFile, CAFile string
}

// EnableCallout rewrites the servers' configuration (before Start).
func (c *NATSCluster) EnableCallout(t testing.TB, co Callout) {
	t.Helper()
	c.callout = &co
	c.SysUser, c.SysPass = "sys", randHex(12)
	for _, nd := range c.Nodes {
		if err := os.WriteFile(nd.conf, []byte(c.conf(nd)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// SystemURL is a system account user's URL list.
func (c *NATSCluster) SystemURL() string {
	var urls []string
	for _, nd := range c.Nodes {
		urls = append(urls, fmt.Sprintf("nats://%s:%s@127.0.0.1:%d", c.SysUser, c.SysPass, nd.Port))
	}
	return strings.Join(urls, ",")
}

func (c *NATSCluster) conf(nd *NATSNode) string {
	var routes []string
	for _, o := range c.Nodes {
		if o != nd {
			routes = append(routes, fmt.Sprintf("nats://%s:%s@127.0.0.1:%d", c.routeUser, c.routePass, o.ClusterPort))
		}
	}
	auth := fmt.Sprintf("authorization { user: %s, password: %s }", c.User, c.Pass)
	extra := ""
	if co := c.callout; co != nil {
		auth = fmt.Sprintf(`authorization {
  users: [ { user: %s, password: %s } ]
  auth_callout { issuer: %s, auth_users: [ %s, %s ] }
}`, c.User, c.Pass, co.Issuer, c.User, c.SysUser)
		extra = fmt.Sprintf(`tls { cert_file: %q, key_file: %q, ca_file: %q, verify: true, timeout: 5 }
allow_non_tls: true
accounts { SYS { users: [ { user: %s, password: %s } ] } }
system_account: SYS
`, co.CertFile, co.KeyFile, co.CAFile, c.SysUser, c.SysPass)
	}
	cluster := ""
	if len(c.Nodes) > 1 { // a server alone is no cluster (JetStream refuses one without routes)
		cluster = fmt.Sprintf(`cluster {
  name: %s
  listen: 127.0.0.1:%d
  authorization { user: %s, password: %s }
  routes: [%s]
}
`, c.Name, nd.ClusterPort, c.routeUser, c.routePass, strings.Join(routes, ", "))
	}
	return fmt.Sprintf(`server_name: %s
listen: 127.0.0.1:%d
max_payload: 8MB
jetstream { store_dir: %q }
%s
%s%s`, nd.Name, nd.Port, filepath.Join(nd.Dir, "js"), auth, extra, cluster)
}

// NATSNode is one nats-server process of a cluster.
type NATSNode struct {
	Name        string
	Port        int
	ClusterPort int
	Dir         string
	conf        string
	log         string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process last started has exited
}

// WithReplicas sets the replicas of the node's streams.
func WithReplicas(n int) Option { return func(c *hub.Config) { c.Replicas = n } }

// WithName names the node (in logs and NATS).
func WithName(name string) Option { return func(c *hub.Config) { c.Name = name } }

// StartNATSCluster starts n nats-server processes forming one cluster and
// stops them (SIGKILL) when the test ends. It does not wait for the
// cluster to elect a JetStream leader: hub nodes must cope with that.
func StartNATSCluster(t testing.TB, n int) *NATSCluster {
	t.Helper()
	c := NewNATSCluster(t, n)
	c.Start(t)
	return c
}

// Start starts every node's process and waits until each listens for
// clients (not for the cluster to form: hub nodes must cope with that). A
// node that exits instead fails the test with its log. It may run in a
// goroutine of its own (a cluster started late).
func (c *NATSCluster) Start(t testing.TB) {
	bin := NATSServerBinary(t)
	for _, nd := range c.Nodes {
		nd.start(t, bin)
	}
	for _, nd := range c.Nodes {
		nd.waitListening(t)
	}
}

// waitListening waits (up to two minutes: a busy machine) until the node
// accepts connections on its client port, failing the test with its log
// if the process exits first.
func (nd *NATSNode) waitListening(t testing.TB) {
	t.Helper()
	nd.mu.Lock()
	exited := nd.exited
	nd.mu.Unlock()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", nd.Port), time.Second); err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			t.Errorf("nats-server %s exited at start:\n%s", nd.Name, nd.Log())
			return
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Errorf("nats-server %s not listening on %d within 2m:\n%s", nd.Name, nd.Port, nd.Log())
			return
		}
	}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NewNATSCluster configures n nats-server processes forming one cluster,
// without starting them.
func NewNATSCluster(t testing.TB, n int) *NATSCluster {
	t.Helper()
	NATSServerBinary(t)
	c := &NATSCluster{t: t, Name: "xhub-" + randHex(4), routeUser: "route", routePass: randHex(12), User: "xhub", Pass: randHex(12)}
	ports := FreePorts(t, 2*n)
	dir := t.TempDir()
	for i := range n {
		c.Nodes = append(c.Nodes, &NATSNode{Name: fmt.Sprintf("n%d", i+1), Port: ports[2*i], ClusterPort: ports[2*i+1], Dir: filepath.Join(dir, fmt.Sprintf("n%d", i+1))})
	}
	for _, nd := range c.Nodes {
		if err := os.MkdirAll(nd.Dir, 0o700); err != nil {
			t.Fatal(err)
		}
		nd.conf = filepath.Join(nd.Dir, "nats.conf")
		nd.log = filepath.Join(nd.Dir, "nats.log")
		if err := os.WriteFile(nd.conf, []byte(c.conf(nd)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, nd := range c.Nodes {
			nd.Kill()
		}
	})
	return c
}

func (nd *NATSNode) start(t testing.TB, bin string) {
	t.Helper()
	nd.mu.Lock()
	defer nd.mu.Unlock()
	logf, err := os.OpenFile(nd.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", nd.conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nats-server %s: %v", nd.Name, err)
	}
	logf.Close()
	nd.cmd = cmd
	exited := make(chan struct{})
	nd.exited = exited
	go func() { _ = cmd.Wait(); close(exited) }()
}

// Kill stops the process with SIGKILL (no clean shutdown).
func (nd *NATSNode) Kill() {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.cmd != nil && nd.cmd.Process != nil {
		_ = nd.cmd.Process.Signal(syscall.SIGKILL)
		nd.cmd = nil
	}
}

// Restart starts a killed node again on its own store and ports (which
// stay reserved for the test), waiting until it listens.
func (nd *NATSNode) Restart(t testing.TB) {
	t.Helper()
	nd.start(t, NATSServerBinary(t))
	nd.waitListening(t)
}

// Log is what the process wrote.
func (nd *NATSNode) Log() string {
	b, _ := os.ReadFile(nd.log)
	return string(b)
}

// URL is the cluster's client URL list with credentials, for --nats-url.
func (c *NATSCluster) URL() string {
	var urls []string
	for _, nd := range c.Nodes {
		urls = append(urls, fmt.Sprintf("nats://%s:%s@127.0.0.1:%d", c.User, c.Pass, nd.Port))
	}
	return strings.Join(urls, ",")
}

// Connect connects a plain client to the cluster.
func (c *NATSCluster) Connect(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(c.URL(), nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

var (
	natsBinOnce sync.Once
	natsBin     string
	natsBinErr  error
)

// NATSServerBinary builds nats-server from the module (the version in
// go.mod) once per machine and returns its path.
func NATSServerBinary(t testing.TB) string {
	t.Helper()
	natsBinOnce.Do(func() {
		natsBin, natsBinErr = buildCached("nats-server", "github.com/nats-io/nats-server/v2")
	})
	if natsBinErr != nil {
		t.Fatalf("build nats-server: %v", natsBinErr)
	}
	return natsBin
}

// buildCached builds pkg into a file named after it and the module
// version, in the user cache, atomically (several test binaries may build
// at once).
func buildCached(name, pkg string) (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", strings.TrimSuffix(pkg, "/cmd")).Output()
	if err != nil {
		return "", fmt.Errorf("go list: %w", err)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "xhub-test-bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, name+"-"+strings.TrimSpace(string(out)))
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	tmp := fmt.Sprintf("%s.tmp-%d", bin, os.Getpid())
	cmd := exec.Command("go", "build", "-o", tmp, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return bin, os.Rename(tmp, bin)
}

// WaitFor polls cond until it holds or d passes.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within %s", what, d)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// StartConcurrently starts one node per option list at the same moment,
// each in a fresh temp dir prepared by prepare (may be nil), and fails the
// test if any does not start within StartTimeout.
func StartConcurrently(t testing.TB, prepare func(i int, dir string), nodes ...[]Option) []*Env {
	t.Helper()
	envs := make([]*Env, len(nodes))
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, opts := range nodes {
		dir := t.TempDir()
		if prepare != nil {
			prepare(i, dir)
		}
		cfg := hub.Config{DataDir: dir, Listen: "127.0.0.1:0", Logger: Logger()}
		for _, o := range opts {
			o(&cfg)
		}
		envs[i] = &Env{t: t, Dir: dir, Config: cfg}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
			defer cancel()
			envs[i].Node, errs[i] = hub.Start(ctx, cfg)
		}()
	}
	wg.Wait()
	for i, e := range envs {
		if e.Node != nil {
			t.Cleanup(e.Stop)
		}
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i, errs[i])
		}
		e.Admin = e.Dial(e.Node.AdminCreds)
	}
	return envs
}

// WithJoin makes the node join a running hub with a join token.
func WithJoin(token string) Option { return func(c *hub.Config) { c.Join = token } }

// WithNATSCallout makes the node the external cluster's auth callout.
func WithNATSCallout(keyFile, systemURL string) Option {
	return func(c *hub.Config) { c.NATSCalloutKey, c.NATSSystemURL = keyFile, systemURL }
}
