package dataplane

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange"
	"github.com/xhub-gov/xhub/exchange/shares"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/schemas"
)

// behindCP is the control plane of a node that has not yet applied the
// log's head: another node has published health.cases and granted it to
// tax. Until CatchUp, the dataset is unknown here; CatchUp applies the
// head, or (far) fails as a node too far behind does.
type behindCP struct {
	sweepCP
	mu       sync.Mutex
	far      bool
	caughtUp bool
	asked    int
}

func (c *behindCP) Dataset(id catalog.DatasetID) (catalog.Dataset, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.caughtUp {
		return catalog.Dataset{}, vocab.NotFound("dataset %s is not in the catalog", id)
	}
	return catalog.Dataset{Published: catalog.Published{ID: id, Fields: []catalog.Field{{Name: "id"}}}, Status: catalog.StatusPublished}, nil
}

func (c *behindCP) DatasetSchema(catalog.Dataset) (*schemas.Schema, error) {
	return nil, vocab.Precondition("NO_SCHEMA", "schema", "no schema in this test")
}

func (c *behindCP) CheckAccess(catalog.DeptID, catalog.DatasetID, time.Time) (exchange.Access, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.caughtUp {
		return exchange.Access{}, vocab.Denied("no active grant")
	}
	return exchange.Access{Fields: []string{"id"}, Grants: []shares.GrantID{"g-1"}}, nil
}

func (c *behindCP) CatchUp(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asked++
	if c.far {
		return &vocab.Error{Kind: vocab.KindUnavailable, Msg: "this node is behind the log (it has applied 3 of 9 entries) and cannot judge this yet: try again, or ask another node"}
	}
	c.caughtUp = true
	return nil
}

// TestReadsJudgedOnTheLogsHead: a subscribe, a query or a publish that
// this node would refuse (no such dataset, no grant) is judged again once
// it has applied the log's head, as writes are: a grant or a dataset
// another node acknowledged a moment ago is then found. A node too far
// behind answers UNAVAILABLE, never the stale refusal. Found by the
// province simulation under load: "department edu holds no active grant
// on … (as of ledger entry 335)", seconds after the grant was approved
// on the other node.
func TestReadsJudgedOnTheLogsHead(t *testing.T) {
	nc, js := dataBus(t)
	ctx := context.Background()
	tax := vocab.Identity{Dept: "tax", Role: vocab.RoleSystem, Name: "etl"}
	health := vocab.Identity{Dept: "health", Role: vocab.RoleSystem, Name: "registry"}
	calls := []struct {
		name string
		call func(p *Plane) error
	}{
		{"subscribe", func(p *Plane) error {
			s, err := p.Subscribe(ctx, tax, SubscribeInput{Dataset: "health.cases", Name: "etl"})
			if err == nil {
				s.Close()
			}
			return err
		}},
		{"query", func(p *Plane) error {
			_, err := p.Query(ctx, tax, QueryInput{Dataset: "health.cases"})
			return err
		}},
		{"publish", func(p *Plane) error {
			_, err := p.Publish(ctx, health, "health.cases", [][]byte{[]byte(`{"id":"1"}`)}, "")
			return err
		}},
		{"provide", func(p *Plane) error {
			s, err := p.OpenProvider(ctx, health, []catalog.DatasetID{"health.cases"})
			if err == nil {
				s.Close()
			}
			return err
		}},
	}
	for _, c := range calls {
		for _, far := range []bool{false, true} {
			cp := &behindCP{far: far}
			p, err := New(Config{CP: cp, NC: nc, JS: js, PageTokenKey: make([]byte, PageTokenKeySize), SubscriptionSweep: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			err = c.call(p)
			p.Close()
			switch kind := vocab.KindOf(err); {
			case cp.asked == 0:
				t.Errorf("%s on a node behind: answered (%v) without looking where the log ends", c.name, err)
			case far && (kind != vocab.KindUnavailable || !strings.Contains(err.Error(), "behind the log")):
				t.Errorf("%s on a node too far behind: %v (%s), want unavailable naming how far behind", c.name, err, kind)
			case !far && (kind == vocab.KindNotFound || kind == vocab.KindDenied):
				t.Errorf("%s on a node behind, a grant and a dataset at the log's head: refused on the older state: %v", c.name, err)
			}
		}
	}
}
