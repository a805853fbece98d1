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
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/exchange/vocab"
)

const schema = `{"type":"object","properties":{"id":{"type":"integer"},"ward":{"type":"string"}},"required":["id","ward"]}`

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
	d := deploy(t, deployConfig{})
	ctx := context.Background()
	d.shareCases(t, "trial")
	provider := d.startProvider()
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
			victim = provider
		}
		for _, h := range d.hubs {
			h.ensure(t)
		}
		provider.ensure(t)
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
	for _, p := range append(append([]*proc(nil), d.hubs...), provider) {
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

// shareCases has health publish health.cases (open, the trials' schema)
// and tax ask for it, for purpose: the dataset the trials write and read.
func (d *deployment) shareCases(t testing.TB, purpose string) {
	t.Helper()
	ctx := context.Background()
	owner := d.dial(d.creds("health", vocab.RoleOfficer, "officer"))
	if _, _, err := owner.RegisterSchema(ctx, "health.cases", []byte(schema), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := owner.PublishDataset(ctx, adapters.DatasetSpec{ID: "health.cases", Title: "Cases", ShareType: "open", SchemaSubject: "health.cases"}); err != nil {
		t.Fatal(err)
	}
	tax := d.dial(d.creds("tax", vocab.RoleOfficer, "officer"))
	if _, err := tax.RequestShare(ctx, "health.cases", nil, purpose, 0); err != nil {
		t.Fatal(err)
	}
}

// startProvider runs the crash trials' provider of health.cases.
func (d *deployment) startProvider() *proc {
	var recs []string
	for i := range 30 {
		recs = append(recs, fmt.Sprintf(`{"id":%d,"ward":"w%d"}`, 1_000_000+i, i%3))
	}
	return d.fileProvider("provider", "health.cases", d.creds("health", vocab.RoleSystem, "clinic-db"), d.both, recs)
}
