package trial

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/bus"
	"github.com/xhub-gov/xhub/internal/testenv"
)

// revokeSlack is how long after a revocation is acknowledged a delivery
// may still arrive: each node checks the grant before every batch it
// sends, against what it has applied, so what may come late is the
// serving node's apply lag behind the node that acknowledged, plus the
// batches already in the stream to the client. Within a second on an idle
// machine; 2.4 s was seen once with the suite's -race run beside it on 2
// cores.
const revokeSlack = 5 * time.Second

// reachWait bounds the wait for a record to reach a grantee: more than
// the subscriptions' ack wait (30s), after which a record delivered by a
// node that died unacknowledged is delivered again.
const reachWait = 45 * time.Second

// churn is edu's life with health.cases: request (some narrowed on
// approval, some rejected), subscribe on gRPC and NATS and query over
// HTTP while granted, dispute a record now and then, then the owner
// revokes; nothing reaches edu after that.
func (p *province) churn(ctx context.Context) {
	edu, health := p.officer["edu"], p.officer["health"]
	sys := p.d.dial(p.creds["edu/etl"])
	h := p.httpClient(p.creds["edu/etl"])
	bg := context.Background()
	for epoch := 1; ctx.Err() == nil; epoch++ {
		ask := []string{"id", "ward", "note"}
		var narrow []string
		if epoch%2 == 0 {
			ask, narrow = nil, []string{"id", "ward"}
		}
		r, err := edu.RequestShare(bg, "health.cases", ask, fmt.Sprintf("province epoch %d", epoch), 30)
		if err != nil {
			p.w.refused("writes/refused", "share request", err)
			p.reconcile()
			continue
		}
		p.w.wrote(ledger.KindShareRequested, r.Seq, false)
		p.w.event("health", ledger.KindShareRequested, r.Request.ID)
		if epoch%4 == 3 {
			dec, err := health.Reject(bg, r.Request.ID, "not for this purpose")
			if err != nil {
				p.w.refused("writes/refused", "reject", err)
				p.reconcile()
				continue
			}
			p.w.wrote(ledger.KindShareRejected, dec.Seq, true)
			p.w.event("edu", ledger.KindShareRejected, r.Request.ID)
			pause(ctx, time.Second)
			continue
		}
		dec, err := health.Approve(bg, r.Request.ID, narrow, 30, "province")
		if err != nil {
			p.w.refused("writes/refused", "approve", err)
			p.reconcile()
			continue
		}
		p.w.wrote(ledger.KindShareApproved, dec.Seq, true)
		p.w.event("edu", ledger.KindShareApproved, r.Request.ID)
		p.epoch(ctx, epoch, dec.Grant, sys, h)
	}
}

// epoch runs edu's consumers under grant g until the owner revokes it.
func (p *province) epoch(ctx context.Context, epoch int, g *adapters.Grant, sys *adapters.Client, h *httpClient) {
	bg := context.Background()
	granted := g.Fields
	var revokedAt atomic.Int64 // unix ns; 0: not yet
	var revoking atomic.Bool   // the revocation has been asked for
	late := func(channel string, id int) {
		if at := revokedAt.Load(); at != 0 && time.Since(time.Unix(0, at)) > revokeSlack {
			p.w.violate("records/after-revoke", "%s received record %d %v after the revocation of %s was acknowledged", channel, id, time.Since(time.Unix(0, at)).Round(time.Millisecond), g.ID)
		}
	}
	// gRPC: a durable subscription from "new".
	start := time.Now()
	sctx, cancelSub := context.WithCancel(bg)
	defer cancelSub()
	// As an integrator would: a refusal that says try again (a NATS
	// server killed a moment ago) is tried again, for a while.
	sub, err := sys.Subscribe(sctx, "health.cases", "edu-feed", "new")
	for tries := 1; err != nil && transient(err) && tries < 10 && ctx.Err() == nil; tries++ {
		p.w.refused("records/grpc", "subscribe edu", err)
		pause(ctx, time.Second)
		sub, err = sys.Subscribe(sctx, "health.cases", "edu-feed", "new")
	}
	p.w.took("grpc edu (subscribe)", time.Since(start))
	ready := time.Now()
	subEnded := make(chan error, 1)
	subscribed := err == nil
	if err != nil {
		p.w.refused("records/grpc", "subscribe edu", err)
		subEnded <- err
	} else {
		go func() {
			for {
				dl, err := sub.Recv()
				if err != nil {
					subEnded <- err
					return
				}
				id, fields := recordID(dl.Record)
				late("grpc edu", id)
				if out := outside(fields, granted); len(out) > 0 {
					p.w.violate("records/fields", "grpc edu: record %d holds %v outside the grant %v", id, out, granted)
				}
				p.w.receivedRecord("grpc edu", id)
				_ = sub.Ack(dl.ID)
			}
		}()
	}
	// NATS: a connection on the first server, while granted.
	stopNATS := make(chan struct{})
	natsDone := make(chan struct{})
	var natsReady atomic.Int64
	go func() {
		defer close(natsDone)
		// The hub authorises a NATS connection on its state when it
		// connects: connect once both nodes hold the grant.
		p.applied(g.ID)
		nc, err := p.natsConnect("edu", 0, "edu integrator", func() bool { return !revoking.Load() })
		if err != nil {
			p.w.refused("records/nats", "edu NATS connect", err)
			return
		}
		defer nc.Close()
		_, err = nc.Subscribe(bus.OutSubject("edu", "health.cases"), func(m *nats.Msg) {
			id, fields := recordID(m.Data)
			late("nats edu", id)
			if out := outside(fields, granted); len(out) > 0 {
				p.w.violate("records/fields", "nats edu: record %d holds %v outside the grant %v", id, out, granted)
			}
			p.w.receivedRecord("nats edu", id)
		})
		if err != nil {
			p.w.refused("records/nats", "edu NATS subscribe", err)
			return
		}
		if err := nc.Flush(); err == nil {
			natsReady.Store(time.Now().UnixNano())
		}
		<-stopNATS
	}()
	hold := time.After(time.Duration(8+rand.IntN(8)) * time.Second)
	for held := false; !held; {
		select {
		case <-ctx.Done():
			held = true
		case <-hold:
			held = true
		case <-time.After(700 * time.Millisecond):
			recs, err := h.query(rand.IntN(2), "health.cases", 5)
			if err != nil {
				p.w.refused("query/refused", "http edu query", err)
			}
			for _, r := range recs {
				if id, fields := recordID(r); len(outside(fields, granted)) > 0 {
					p.w.violate("records/fields", "http edu: record %d holds %v outside the grant %v", id, outside(fields, granted), granted)
				}
			}
		}
	}
	if epoch%2 == 1 {
		p.dispute()
	}
	// Before the owner revokes: what was acknowledged while granted has
	// reached edu on gRPC (from its subscription on) and on NATS (from
	// a little after the approval: the feed starts from new).
	until := time.Now().Add(-time.Second)
	if subscribed { // else refused, and counted so
		p.reachWithin("records/grpc", "grpc edu", ready.Add(time.Second), until, false, reachWait)
	}
	if at := natsReady.Load(); at != 0 {
		p.reachWithin("records/nats", "nats edu", time.Unix(0, at).Add(2*time.Second), until, true, reachWait)
	}

	// From the call on, the grant may be revoked: the hub applies it (and
	// renews edu's NATS connections without the subject) before the
	// officer hears back.
	revoking.Store(true)
	rv, err := p.officer["health"].RevokeGrant(bg, g.ID, "epoch over")
	if err != nil {
		p.w.refused("writes/refused", "revoke", err)
		p.reconcile()
	} else {
		revokedAt.Store(time.Now().UnixNano())
		p.w.wrote(ledger.KindGrantRevoked, rv.Seq, true)
		p.w.event("edu", ledger.KindGrantRevoked, g.ID)
		// The subscription ends, refused; a query is refused.
		select {
		case err := <-subEnded:
			if status.Code(err) != codes.PermissionDenied && !transient(err) {
				p.w.violate("records/after-revoke", "edu's subscription ended with %v, not PERMISSION_DENIED, after the revocation of %s", err, g.ID)
			}
		case <-time.After(revokeSlack):
			p.w.violate("records/after-revoke", "edu's subscription still open %v after the revocation of %s", revokeSlack, g.ID)
		}
		for i := 0; ; i++ {
			_, err := h.query(i%2, "health.cases", 1)
			if status.Code(err) == codes.PermissionDenied {
				break
			}
			if err == nil && time.Since(time.Unix(0, revokedAt.Load())) > revokeSlack {
				p.w.violate("query/after-revoke", "http edu: health.cases answered %v after the revocation of %s", time.Since(time.Unix(0, revokedAt.Load())).Round(time.Millisecond), g.ID)
				break
			}
			if i > 50 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(revokeSlack + time.Second) // what arrives now is late (noted by late)
	}
	cancelSub()
	close(stopNATS)
	<-natsDone
}

// applied waits (bounded) until every node lists grant id as active.
func (p *province) applied(id string) {
	deadline := time.Now().Add(30 * time.Second)
	for _, c := range p.adminOn {
		for time.Now().Before(deadline) {
			gs, err := c.Grants(context.Background(), adapters.ShareQuery{Dataset: "health.cases", Grantee: "edu", Status: "active"})
			if err == nil && slices.ContainsFunc(gs, func(g adapters.Grant) bool { return g.ID == id }) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// dispute has edu dispute a record and health resolve it.
func (p *province) dispute() {
	bg := context.Background()
	ds, err := p.officer["edu"].OpenDispute(bg, adapters.DisputeSpec{Dataset: "health.cases", Reason: "ward looks wrong", RecordKey: "42", Field: "ward"})
	if err != nil {
		p.w.refused("writes/refused", "open dispute", err)
		return
	}
	p.w.wrote(ledger.KindDisputeOpened, ds.Seq, false)
	p.w.event("health", ledger.KindDisputeOpened, ds.ID)
	rs, err := p.officer["health"].ResolveDispute(bg, ds.ID, "corrected", "fixed at the source")
	if err != nil {
		p.w.refused("writes/refused", "resolve dispute", err)
		return
	}
	p.w.wrote(ledger.KindDisputeResolved, rs.Seq, true)
	p.w.event("edu", ledger.KindDisputeResolved, ds.ID)
}

// reconcile ends what a failed step of the churn may have left: edu's
// active grants on health.cases revoked, its pending requests withdrawn.
func (p *province) reconcile() {
	bg := context.Background()
	time.Sleep(time.Second)
	gs, err := p.d.admin.Grants(bg, adapters.ShareQuery{Dataset: "health.cases", Grantee: "edu", Status: "active"})
	if err == nil {
		for _, g := range gs {
			if rv, err := p.officer["health"].RevokeGrant(bg, g.ID, "reconcile"); err == nil {
				p.w.wrote(ledger.KindGrantRevoked, rv.Seq, true)
				p.w.event("edu", ledger.KindGrantRevoked, g.ID)
			}
		}
	}
	rs, err := p.d.admin.Requests(bg, adapters.ShareQuery{Dataset: "health.cases", Grantee: "edu", Status: "pending"})
	if err == nil {
		for _, r := range rs {
			if r.ID == "" {
				continue // a phantom row (listings/phantom)
			}
			if w, err := p.officer["edu"].Withdraw(bg, r.ID); err == nil {
				p.w.wrote(ledger.KindShareWithdrawn, w.Seq, true)
			}
		}
	}
}

// credentials: the operator adds a department on one node, issues its
// system a credential on the other, the system reads the catalog, the
// credential is revoked on the first node and stops working.
func (p *province) credentials(ctx context.Context) {
	for i := 0; ctx.Err() == nil; i++ {
		p.credential(i)
		pause(ctx, time.Second)
	}
}

func (p *province) credential(i int) {
	bg := context.Background()
	a, b := p.adminOn[i%2], p.adminOn[(i+1)%2]
	dept := fmt.Sprintf("p%d", i)
	start := time.Now()
	dep, err := a.AddDepartment(bg, dept, "Province office "+dept)
	p.w.took("operator", time.Since(start))
	if err != nil {
		p.w.refused("writes/refused", "dept add", err)
		return
	}
	p.w.wrote(ledger.KindDeptAdded, dep.Seq, true)
	added := depOn("department "+dept, dep.Seq)
	start = time.Now()
	cred, file, err := b.IssueCredential(bg, vocab.Identity{Dept: catalog.DeptID(dept), Role: vocab.RoleSystem, Name: "s"}, 1)
	p.w.took("operator", time.Since(start))
	if err != nil {
		p.w.refusedAfter("writes/refused", "creds issue (on the other node)", err, added)
		return
	}
	p.w.wrote("cred.issued", cred.Seq, true)
	issued := depOn("credential "+cred.Serial, cred.Seq)
	path := filepath.Join(p.d.dir, "churn-"+dept+".creds")
	if err := os.WriteFile(path, file, 0o600); err != nil {
		p.d.t.Fatal(err)
	}
	c, err := adapters.Dial(bg, path, adapters.WithHub(p.d.both))
	if err != nil {
		p.d.t.Fatal(err)
	}
	if _, err := c.Datasets(bg, adapters.DatasetQuery{}); err != nil {
		p.w.refused("writes/refused", "catalog list with a new credential", err)
	}
	_, seq, err := a.RevokeCredential(bg, cred.Serial, "rotation")
	if err != nil {
		p.w.refusedAfter("writes/refused", "creds revoke (issued on the other node)", err, issued)
		c.Close()
		return
	}
	p.w.wrote("cred.revoked", seq, true)
	revoked := time.Now()
	for {
		_, err := c.Datasets(bg, adapters.DatasetQuery{})
		if err != nil && !transient(err) {
			break
		}
		if time.Since(revoked) > 5*time.Second {
			p.w.violate("creds/revoked", "the credential of %s (serial %s) still works 5s after its revocation was acknowledged", dept, cred.Serial)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.Close()
}

// datasets: health registers a schema on one node, publishes an open
// dataset on it from the other, updates it, tax is granted it at once,
// and the dataset is retired: tax's grant ends.
func (p *province) datasets(ctx context.Context) {
	for i := 0; ctx.Err() == nil; i++ {
		p.dataset(ctx, i)
		pause(ctx, time.Second)
	}
}

func (p *province) dataset(ctx context.Context, i int) {
	bg := context.Background()
	a, b := p.officerOn["health"][i%2], p.officerOn["health"][(i+1)%2]
	id := fmt.Sprintf("health.tmp%d", i)
	start := time.Now()
	s, _, err := a.RegisterSchema(bg, id, []byte(caseSchema), "")
	p.w.took("health officer", time.Since(start))
	if err != nil {
		p.w.refused("writes/refused", "schema register", err)
		return
	}
	p.w.wrote(ledger.KindSchemaRegistered, s.Seq, true)
	registered := depOn("schema "+id, s.Seq)
	start = time.Now()
	ds, err := b.PublishDataset(bg, adapters.DatasetSpec{ID: id, Title: "Temporary " + id, ShareType: "open", SchemaSubject: id})
	p.w.took("health officer", time.Since(start))
	if err != nil {
		p.w.refusedAfter("writes/refused", "catalog publish (schema on the other node)", err, registered)
		return
	}
	p.w.wrote(ledger.KindDatasetPublished, ds.Seq, true)
	published := depOn("dataset "+id, ds.Seq)
	title := "Temporary " + id + ", revised"
	up, err := a.UpdateDataset(bg, adapters.DatasetUpdate{ID: id, Title: &title})
	if err != nil {
		p.w.refusedAfter("writes/refused", "catalog update (published on the other node)", err, published)
	} else {
		p.w.wrote(ledger.KindDatasetUpdated, up.Seq, false)
	}
	r, err := p.officerOn["tax"][(i+1)%2].RequestShare(bg, id, nil, "a look", 10)
	if err != nil {
		p.w.refusedAfter("writes/refused", "share request (open; published on the other node)", err, published)
	} else {
		p.w.wrote(ledger.KindShareRequested, r.Seq, false)
		if r.Grant == nil {
			p.w.violate("writes/refused", "a request for open %s was not granted at once", id)
		}
	}
	pause(ctx, time.Second)
	rt, err := a.RetireDataset(bg, id, "superseded")
	if err != nil {
		p.w.refusedAfter("writes/refused", "catalog retire (published on the other node)", err, published)
		return
	}
	p.w.wrote(ledger.KindDatasetRetired, rt.Seq, true)
	if r.Grant != nil {
		gs, err := p.adminOn[i%2].Grants(bg, adapters.ShareQuery{Dataset: id, Status: "active"})
		if err == nil && len(gs) > 0 {
			p.w.violate("writes/refused", "%s retired, yet grant %s on it is active on the node that retired it", id, gs[0].ID)
		}
	}
}

// killer kills, in turn, a hub node, a NATS node and a provider, from a
// sixth into the run until two thirds of it, each back after a second.
func (p *province) killer(ctx context.Context) {
	d := p.d
	plan := []string{"hub-a", "nats", "provider-file", "hub-b", "nats", "provider-residents"}
	step := p.dur * 55 / 100 / time.Duration(len(plan))
	pause(ctx, p.dur*15/100)
	for k, what := range plan {
		if ctx.Err() != nil {
			return
		}
		switch what {
		case "hub-a", "hub-b":
			h := d.hubs[map[string]int{"hub-a": 0, "hub-b": 1}[what]]
			h.kill()
			p.w.kill("SIGKILL " + what)
			time.Sleep(time.Second)
			h.start(d.t)
			testenv.WaitFor(d.t, 60*time.Second, what+" back", func() bool { return listening(d.addrs[map[string]int{"hub-a": 0, "hub-b": 1}[what]]) })
		case "nats":
			// First the server of tax's integrator, then the ledger's leader.
			n := d.nats.Nodes[2]
			if k > 1 {
				n = d.natsVictim(0)
			}
			g := p.w.gap("", time.Now())
			n.Kill()
			p.w.kill("SIGKILL nats " + n.Name)
			time.Sleep(time.Second)
			n.Restart(d.t)
			testenv.WaitFor(d.t, 30*time.Second, n.Name+" back", func() bool { return listening(fmt.Sprintf("127.0.0.1:%d", n.Port)) })
			p.w.gapEnd(g, time.Now())
		default:
			for _, pr := range d.providers {
				if pr.name == what || (what == "provider-residents" && pr.name == "provider-pg") {
					pr.kill()
					p.w.kill("SIGKILL " + pr.name)
					time.Sleep(time.Second)
					pr.start(d.t)
				}
			}
		}
		pause(ctx, step)
	}
}

// scraper samples each node's goroutines and memory every 2s.
func (p *province) scraper(ctx context.Context) {
	p.scrapes = make([][]sample, len(p.d.hubs))
	var mu sync.Mutex
	for ctx.Err() == nil {
		for i, h := range p.d.hubs {
			since := h.since()
			v, err := scrapeMetrics(p.d.metrics[i], "go_goroutines", "go_memstats_heap_inuse_bytes", "process_resident_memory_bytes")
			if err != nil || since.IsZero() {
				continue
			}
			mu.Lock()
			p.scrapes[i] = append(p.scrapes[i], sample{at: time.Now(), since: since, goroutines: v[0], heap: v[1], rssB: v[2]})
			mu.Unlock()
		}
		pause(ctx, 2*time.Second)
	}
}

// lister reads every node's listings every few seconds: no phantom row
// (an empty id or time), nothing that was not made.
func (p *province) lister(ctx context.Context) {
	for ctx.Err() == nil {
		for _, c := range p.adminOn {
			p.checkListings(c)
		}
		pause(ctx, 5*time.Second)
	}
}

// checkListings checks one node's listings and returns them, canonical
// (sorted JSON, without what differs between nodes by design: a
// subscription's pending counts and whether its subscriber is connected
// there).
func (p *province) checkListings(c *adapters.Client) (map[string]string, error) {
	bg := context.Background()
	node := c.Addr()
	reqs, err := c.Requests(bg, adapters.ShareQuery{})
	if err != nil {
		return nil, err
	}
	gs, err := c.Grants(bg, adapters.ShareQuery{})
	if err != nil {
		return nil, err
	}
	dss, err := c.Datasets(bg, adapters.DatasetQuery{IncludeRetired: true})
	if err != nil {
		return nil, err
	}
	subs, _, err := c.Subscriptions(bg, "", "")
	if err != nil {
		return nil, err
	}
	type sub struct{ Dept, Dataset, Name, CreatedBy string }
	var ss []sub
	for _, s := range subs {
		if s.Name != "" && !slices.Contains([]string{"tax-feed", "edu-feed", bus.OutSubscription}, s.Name) {
			p.w.violate("listings/unmade", "node %s lists subscription %s/%s/%s, which nobody made", node, s.Dept, s.Dataset, s.Name)
		}
		ss = append(ss, sub{s.Dept, s.Dataset, s.Name, s.CreatedBy})
	}
	return map[string]string{
		"requests": listing(p, node, "share request", reqs, func(r adapters.ShareRequest) bool {
			return r.ID != "" && !r.RequestedAt.IsZero() && r.Dataset != ""
		}),
		"grants": listing(p, node, "grant", gs, func(g adapters.Grant) bool {
			return g.ID != "" && !g.GrantedAt.IsZero() && g.Dataset != ""
		}),
		"catalog": listing(p, node, "dataset", dss, func(d adapters.Dataset) bool {
			return d.ID != "" && !d.PublishedAt.IsZero()
		}),
		"subscriptions": listing(p, node, "subscription", ss, func(s sub) bool {
			return s.Name != "" && s.Dept != "" && s.Dataset != ""
		}),
	}, nil
}

// listing is one listing of a node, canonical (each row's JSON, sorted),
// without the rows that are none (a phantom, by real), each a violation.
func listing[T any](p *province, node, what string, rows []T, real func(T) bool) string {
	var out []string
	for _, r := range rows {
		if !real(r) {
			p.w.violate("listings/phantom", "node %s lists a %s that is none: %+v", node, what, r)
			continue
		}
		b, _ := json.Marshal(r)
		out = append(out, string(b))
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// workflow: tax asks civil for civil.residents on one node, civil
// decides on the other (approves two in three, narrowed, or rejects) and
// revokes what it approved: the share workflow and its events, fast.
func (p *province) workflow(ctx context.Context) {
	for i := 0; ctx.Err() == nil; i++ {
		p.decide(i)
		pause(ctx, 500*time.Millisecond)
	}
}

func (p *province) decide(i int) {
	bg := context.Background()
	tax, civil := p.officerOn["tax"][i%2], p.officerOn["civil"][(i+1)%2]
	start := time.Now()
	r, err := tax.RequestShare(bg, "civil.residents", []string{"id", "ward", "name"}, fmt.Sprintf("workflow %d", i), 5)
	p.w.took("tax officer", time.Since(start))
	if err != nil {
		p.w.refused("writes/refused", "share request", err)
		return
	}
	p.w.wrote(ledger.KindShareRequested, r.Seq, false)
	p.w.event("civil", ledger.KindShareRequested, r.Request.ID)
	requested := depOn("request "+r.Request.ID, r.Seq)
	start = time.Now()
	if i%3 == 2 {
		dec, err := civil.Reject(bg, r.Request.ID, "no basis (on the other node)")
		p.w.took("civil officer", time.Since(start))
		if err != nil {
			p.w.refusedAfter("writes/refused", "reject (request made on the other node)", err, requested)
			p.withdraw(tax, r.Request.ID)
			return
		}
		p.w.wrote(ledger.KindShareRejected, dec.Seq, true)
		p.w.event("tax", ledger.KindShareRejected, r.Request.ID)
		return
	}
	dec, err := civil.Approve(bg, r.Request.ID, []string{"id", "ward"}, 1, "narrowed")
	p.w.took("civil officer", time.Since(start))
	if err != nil {
		p.w.refusedAfter("writes/refused", "approve (request made on the other node)", err, requested)
		p.withdraw(tax, r.Request.ID)
		return
	}
	p.w.wrote(ledger.KindShareApproved, dec.Seq, true)
	p.w.event("tax", ledger.KindShareApproved, r.Request.ID)
	if got := dec.Grant.Fields; !slices.Equal(got, []string{"id", "ward"}) {
		p.w.violate("writes/refused", "approved narrowed to [id ward], granted %v", got)
	}
	approved := depOn("grant "+dec.Grant.ID, dec.Seq)
	rv, err := p.officerOn["civil"][i%2].RevokeGrant(bg, dec.Grant.ID, "workflow over")
	if err != nil {
		p.w.refusedAfter("writes/refused", "revoke (grant made on the other node)", err, approved)
		return
	}
	p.w.wrote(ledger.KindGrantRevoked, rv.Seq, true)
	p.w.event("tax", ledger.KindGrantRevoked, dec.Grant.ID)
}

// withdraw withdraws a request left pending by a refused decision, on the
// node that made it, so that refusals do not fill tax's pending bound.
func (p *province) withdraw(c *adapters.Client, id string) {
	w, err := c.Withdraw(context.Background(), id)
	if err != nil {
		p.w.refused("writes/refused", "withdraw (on the node that made the request)", err)
		return
	}
	p.w.wrote(ledger.KindShareWithdrawn, w.Seq, true)
}
