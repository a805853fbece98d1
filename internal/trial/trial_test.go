// Package trial holds the crash and failover trials: a deployment of real
// processes on 127.0.0.1 (three nats-server nodes in a cluster, two
// `xhub serve` nodes, the second joined with a token, a provider run as
// `xhub adapter file`) under bounded load, with processes killed by
// SIGKILL in turn, then checked for loss and divergence.
//
// The short form (3 trials: a hub node, a NATS node, the provider) runs
// with the other tests; the long form is
//
//	XHUB_TRIALS=20 go test -run TestCrashTrials -v -timeout 30m ./internal/trial/
package trial

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
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

const schema = `{"type":"object","properties":{"id":{"type":"integer"},"ward":{"type":"string"}},"required":["id","ward"]}`

// proc is a process of the deployment that a trial may kill and restart.
type proc struct {
	name string
	args []string
	env  []string
	log  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	died atomic.Int64 // exits not caused by the trial
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
	p.cmd = cmd
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

// deployment is the processes and the clients of one run.
type deployment struct {
	t          testing.TB
	adminCreds string
	dir        string
	nats       *testenv.NATSCluster
	hubs       []*proc
	addrs      []string
	metrics    []string // each hub's /metrics address
	provider   *proc
	admin      *adapters.Client
	both       string // every hub address, for failover

	natsOnce sync.Once
	nc       *nats.Conn
}

func trials() int {
	if n, err := strconv.Atoi(os.Getenv("XHUB_TRIALS")); err == nil && n > 0 {
		return n
	}
	return 3
}

func TestCrashTrials(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a deployment of processes")
	}
	d := deploy(t)
	ctx := context.Background()
	owner := d.dial(d.creds("health", vocab.RoleOfficer, "officer"))
	if _, _, err := owner.RegisterSchema(ctx, "health.cases", []byte(schema), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := owner.PublishDataset(ctx, adapters.DatasetSpec{ID: "health.cases", Title: "Cases", ShareType: "open", SchemaSubject: "health.cases"}); err != nil {
		t.Fatal(err)
	}
	tax := d.dial(d.creds("tax", vocab.RoleOfficer, "officer"))
	if _, err := tax.RequestShare(ctx, "health.cases", nil, "trial", 0); err != nil {
		t.Fatal(err)
	}
	d.startProvider()
	publisher := d.dial(d.creds("health", vocab.RoleSystem, "registry"))
	consumer := d.dial(d.creds("tax", vocab.RoleSystem, "etl"))
	writer := d.admin

	sub, err := consumer.Subscribe(ctx, "health.cases", "trial", "beginning")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var st stats
	received := map[int]int{}
	var recvMu sync.Mutex
	go func() {
		for {
			dl, err := sub.Recv()
			if err != nil {
				return
			}
			var r struct{ ID int }
			_ = json.Unmarshal(dl.Record, &r)
			recvMu.Lock()
			received[r.ID]++
			recvMu.Unlock()
			_ = sub.Ack(dl.ID)
		}
	}()

	faults := []string{"hub", "nats", "provider"}
	var rows []string
	for i := range trials() {
		fault := faults[i%len(faults)]
		var victim *proc
		switch fault {
		case "hub":
			victim = d.hubs[i/len(faults)%len(d.hubs)]
		case "nats":
			victim = &proc{name: "nats"}
		case "provider":
			victim = d.provider
		}
		for _, h := range d.hubs {
			h.ensure(t)
		}
		d.provider.ensure(t)
		ctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		load(ctx, &wg, &st, i, writer, publisher, consumer)
		time.Sleep(time.Second)
		what := victim.name
		if fault == "nats" {
			n := d.natsVictim(i / len(faults))
			what = "nats " + n.Name
			n.Kill()
			time.Sleep(time.Second)
			n.Restart(t)
		} else {
			victim.kill()
			time.Sleep(time.Second)
			victim.start(t)
		}
		st.faults.Add(1)
		time.Sleep(2 * time.Second)
		stop()
		wg.Wait()
		rows = append(rows, fmt.Sprintf("trial %2d: killed %-9s writes %d ok / %d failed, batches %d ok / %d failed, queries %d ok / %d failed",
			i+1, what, st.writes.Load(), st.writeFails.Load(), st.batches.Load(), st.batchFails.Load(), st.queries.Load(), st.queryFails.Load()))
	}

	for _, h := range d.hubs {
		h.ensure(t)
	}
	// Every acknowledged batch delivered; every acknowledged write there
	// once; both nodes agree; the ledger verifies.
	want := st.ackedRecords()
	deadline := time.Now().Add(60 * time.Second)
	var lost []int
	for {
		lost = lost[:0]
		recvMu.Lock()
		for _, id := range want {
			if received[id] == 0 {
				lost = append(lost, id)
			}
		}
		recvMu.Unlock()
		if len(lost) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	dups := 0
	recvMu.Lock()
	for _, n := range received {
		dups += max(n-1, 0)
	}
	recvMu.Unlock()

	lostWrites, twice := d.checkWrites(st.ackedWrites(), st.attemptedWrites())
	heads := d.checkNodesAgree()
	rep, err := d.admin.LedgerVerifier("")
	if err != nil {
		t.Fatal(err)
	}
	vr, err := rep.Verify(ctx, nil)
	if err != nil || vr.Mismatch != nil {
		t.Fatalf("ledger verify: %v %v", err, vr.Mismatch)
	}

	for _, r := range rows {
		t.Log(r)
	}
	t.Logf("TRIALS %d | faults %d | acknowledged writes %d, lost %d, applied twice %d | acknowledged records %d, lost %d, duplicated %d | queries %d ok, %d failed | longest stall %s (%s), longest outage %s | nodes agree at %s | ledger verified (%d entries)",
		trials(), st.faults.Load(), len(st.ackedWrites()), lostWrites, twice, len(want), len(lost), dups, st.queries.Load(), st.queryFails.Load(),
		time.Duration(st.stall.Load()).Round(time.Millisecond), st.stallKind, time.Duration(st.outageNS.Load()).Round(time.Millisecond), heads, vr.Entries)
	for e, n := range st.errs {
		t.Logf("failed %d×: %s", n, e)
	}
	for _, p := range append(append([]*proc(nil), d.hubs...), d.provider) {
		if n := p.died.Load(); n > 0 {
			t.Errorf("%s exited on its own %d times (a node must ride out a fault elsewhere)", p.name, n)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d acknowledged records never delivered (e.g. %v)", len(lost), lost[:min(5, len(lost))])
	}
	if lostWrites > 0 || twice > 0 {
		t.Errorf("acknowledged writes lost: %d; writes applied twice: %d", lostWrites, twice)
	}
}

// stats are what the load saw.
type stats struct {
	writes, writeFails   atomic.Int64
	batches, batchFails  atomic.Int64
	queries, queryFails  atomic.Int64
	faults               atomic.Int64
	stall                atomic.Int64 // longest successful call, retries included (ns)
	outageNS             atomic.Int64 // longest run of failed calls of one worker, to its next success (ns)
	mu                   sync.Mutex
	acked, tried, ackRec []string
	stallKind            string
	errs                 map[string]int // error text (first line) by count
}

func (s *stats) took(kind string, d time.Duration) {
	raise(&s.stall, d)
	s.mu.Lock()
	if int64(d) >= s.stall.Load() {
		s.stallKind = kind
	}
	s.mu.Unlock()
}
func (s *stats) outage(d time.Duration) { raise(&s.outageNS, d) }

func (s *stats) failed(kind string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.errs == nil {
		s.errs = map[string]int{}
	}
	msg := err.Error()
	if len(msg) > 160 {
		msg = msg[:160]
	}
	s.errs[kind+": "+msg]++
}

func raise(v *atomic.Int64, d time.Duration) {
	for {
		old := v.Load()
		if int64(d) <= old || v.CompareAndSwap(old, int64(d)) {
			return
		}
	}
}

func (s *stats) ackedWrites() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.acked...)
}

func (s *stats) attemptedWrites() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.tried...)
}

func (s *stats) ackedRecords() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for _, b := range s.ackRec {
		n, _ := strconv.Atoi(b)
		for i := range 10 {
			out = append(out, n*10+i)
		}
	}
	return out
}

var batchSeq atomic.Int64

// load runs, until ctx ends: 8 control-plane writers, 2 publishers of
// 10-record batches and 4 queriers, each bounded to one call at a time.
func load(ctx context.Context, wg *sync.WaitGroup, st *stats, trial int, writer, publisher, consumer *adapters.Client) {
	run := func(kind string, fn func(i int) error, ok, fail *atomic.Int64) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var failingSince time.Time
			for i := 0; ctx.Err() == nil; i++ {
				start := time.Now()
				if err := fn(i); err != nil {
					fail.Add(1)
					st.failed(kind, err)
					if failingSince.IsZero() {
						failingSince = start
					}
					continue
				}
				st.took(kind, time.Since(start))
				if !failingSince.IsZero() {
					st.outage(time.Since(failingSince))
					failingSince = time.Time{}
				}
				ok.Add(1)
			}
		}()
	}
	for w := range 8 {
		run("write", func(i int) error {
			id := fmt.Sprintf("t%d-w%d-%d", trial, w, i)
			st.mu.Lock()
			st.tried = append(st.tried, id)
			st.mu.Unlock()
			if _, err := writer.AddDepartment(context.Background(), id, id); err != nil {
				return err
			}
			st.mu.Lock()
			st.acked = append(st.acked, id)
			st.mu.Unlock()
			return nil
		}, &st.writes, &st.writeFails)
	}
	for range 2 {
		run("publish", func(int) error {
			b := int(batchSeq.Add(1))
			recs := make([][]byte, 10)
			for i := range recs {
				recs[i] = fmt.Appendf(nil, `{"id":%d,"ward":"w%d"}`, b*10+i, i%3)
			}
			if _, err := publisher.Publish(context.Background(), "health.cases", recs, fmt.Sprintf("batch-%d", b)); err != nil {
				return err
			}
			st.mu.Lock()
			st.ackRec = append(st.ackRec, strconv.Itoa(b))
			st.mu.Unlock()
			return nil
		}, &st.batches, &st.batchFails)
	}
	for range 4 {
		run("query", func(int) error {
			_, err := consumer.Query(context.Background(), "health.cases", adapters.QueryOptions{Where: []string{fmt.Sprintf("ward=w%d", rand.IntN(3))}, Limit: 10})
			return err
		}, &st.queries, &st.queryFails)
	}
}

// deploy starts the deployment; extra are flags for both hub nodes.
func deploy(t testing.TB, extra ...string) *deployment {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "xhub")
	if b, err := exec.Command("go", "build", "-o", bin, "github.com/xhub-gov/xhub/cmd/xhub").CombinedOutput(); err != nil {
		t.Fatalf("build xhub: %v\n%s", err, b)
	}
	d := &deployment{t: t, dir: dir, nats: testenv.StartNATSCluster(t, 3)}
	ports := testenv.FreePorts(t, 4)
	for i, name := range []string{"hub-a", "hub-b"} {
		addr := fmt.Sprintf("127.0.0.1:%d", ports[i])
		d.addrs = append(d.addrs, addr)
		d.metrics = append(d.metrics, fmt.Sprintf("127.0.0.1:%d", ports[2+i]))
		args := []string{bin, "serve", "--data-dir", filepath.Join(dir, name), "--listen", addr, "--name", name, "--log-level", "warn", "--metrics-listen", d.metrics[i]}
		if i == 0 {
			args = append(args, "--nats-url", d.nats.URL(), "--replicas", "3")
		}
		args = append(args, extra...)
		d.hubs = append(d.hubs, &proc{name: name, args: args, log: filepath.Join(dir, name+".log")})
	}
	d.both = strings.Join(d.addrs, ",")
	d.hubs[0].start(t)
	t.Cleanup(func() {
		for _, h := range d.hubs {
			h.kill()
		}
		if d.provider != nil {
			d.provider.kill()
		}
		if t.Failed() {
			for _, h := range d.hubs {
				b, _ := os.ReadFile(h.log)
				t.Logf("%s log (tail):\n%s", h.name, tail(string(b), 3000))
			}
			for _, n := range d.nats.Nodes {
				t.Logf("nats %s log (tail):\n%s", n.Name, tail(n.Log(), 2000))
			}
		}
	})
	adminCreds := filepath.Join(dir, "hub-a", "admin.creds")
	d.adminCreds = adminCreds
	// Generous: on a busy machine the cluster forms slowly, and the node
	// waits for it.
	testenv.WaitFor(t, testenv.StartTimeout, "hub-a up", func() bool {
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
	testenv.WaitFor(t, testenv.StartTimeout, "hub-b up", func() bool { return listening(d.addrs[1]) })
	return d
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

func (d *deployment) startProvider() {
	path := filepath.Join(d.dir, "cases.jsonl")
	var b strings.Builder
	for i := range 30 {
		fmt.Fprintf(&b, `{"id":%d,"ward":"w%d"}`+"\n", 1_000_000+i, i%3)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		d.t.Fatal(err)
	}
	creds := d.creds("health", vocab.RoleSystem, "clinic-db")
	d.provider = &proc{name: "provider", log: filepath.Join(d.dir, "provider.log"),
		args: []string{d.hubs[0].args[0], "--creds", creds, "--hub", d.both, "adapter", "file", "--dataset", "health.cases", "--path", path}}
	d.provider.start(d.t)
	c := d.dial(d.creds("tax", vocab.RoleSystem, "probe"))
	testenv.WaitFor(d.t, 2*time.Minute, "provider serving", func() bool {
		_, err := c.Query(context.Background(), "health.cases", adapters.QueryOptions{Limit: 1})
		return err == nil
	})
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
	c, err := adapters.Dial(context.Background(), creds, adapters.WithHub(d.both))
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

// checkNodesAgree compares the nodes' signed heads and department views
// at the same point of the log.
func (d *deployment) checkNodesAgree() string {
	d.t.Helper()
	ctx := context.Background()
	var heads []string
	var views []string
	var firstNote []byte
	for _, addr := range d.addrs {
		c, err := adapters.Dial(ctx, filepath.Join(d.dir, "hub-a", "admin.creds"), adapters.WithHub(addr))
		if err != nil {
			d.t.Fatal(err)
		}
		defer c.Close()
		lv, err := c.LedgerVerifier("")
		if err != nil {
			d.t.Fatal(err)
		}
		var head string
		// The first node's signed head; every other node must hold the
		// same log: its own head proved consistent with (extending) that
		// one. (A head compared for equality could be passed between two
		// polls if anything still appends.)
		testenv.WaitFor(d.t, 2*time.Minute, "node "+addr+" caught up", func() bool {
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
