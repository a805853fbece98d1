package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/adapters/file"
)

const (
	registryRecords = `{"person_id":"11010519491231002X","vaccine":"MMR","dose":1,"given_on":"2026-03-01","clinic":"North Clinic"}
{"person_id":"110105199003074321","vaccine":"DTaP","dose":3,"given_on":"2026-04-12","clinic":"South Clinic"}
{"person_id":"110105201512120011","vaccine":"MMR","dose":2,"given_on":"2026-05-20","clinic":"North Clinic"}
{"person_id":"not-an-id","vaccine":"MMR","dose":9,"given_on":"someday"}
`
	badBatch = `{"person_id":"110105200101010011","vaccine":"MMR","dose":1,"given_on":"2026-11-20"}
{"person_id":"110105200101010022","vaccine":"Polio","dose":1,"given_on":"2026-11-20"}
`
	day1Batch = `{"person_id":"110105200101010011","vaccine":"MMR","dose":1,"given_on":"2026-11-21","clinic":"East Clinic"}
{"person_id":"110105200202020022","vaccine":"HepB","dose":2,"given_on":"2026-11-21","clinic":"East Clinic"}
`
)

// demoProvider serves path as health.vaccinations until stopped.
func (c *cli) demoProvider(ctx context.Context, credsFile, path, hub string) (func(), error) {
	cl, err := adapters.Dial(ctx, credsFile, adapters.WithHub(hub))
	if err != nil {
		return func() {}, err
	}
	fields, err := datasetFields(ctx, cl, "health.vaccinations")
	if err != nil {
		cl.Close()
		return func() {}, err
	}
	src, err := file.Open(path, fields)
	if err != nil {
		cl.Close()
		return func() {}, err
	}
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = cl.Serve(pctx, []string{"health.vaccinations"}, src.Handler())
	}()
	c.say("  (health's registry is connected: serving health.vaccinations from %d records, one of them invalid)", 4)
	time.Sleep(100 * time.Millisecond)
	return func() { cancel(); <-done; cl.Close() }, nil
}

type demoSub struct {
	c    *cli
	cl   *adapters.Client
	recs chan string
	end  chan error
}

// demoSubscribe opens tax's subscription and relays what it receives.
func (c *cli) demoSubscribe(ctx context.Context, credsFile, hub string) (*demoSub, error) {
	cl, err := adapters.Dial(ctx, credsFile, adapters.WithHub(hub))
	if err != nil {
		return nil, err
	}
	sub, err := cl.Subscribe(ctx, "health.vaccinations", "allowance", "new")
	if err != nil {
		cl.Close()
		return nil, err
	}
	s := &demoSub{c: c, cl: cl, recs: make(chan string, 16), end: make(chan error, 1)}
	go func() {
		for {
			d, err := sub.Recv()
			if err != nil {
				s.end <- err
				return
			}
			_ = sub.Ack(d.ID)
			s.recs <- string(d.Record)
		}
	}()
	c.say("  (tax's allowance app subscribed to health.vaccinations as %q)", "allowance")
	time.Sleep(100 * time.Millisecond)
	return s, nil
}

func (s *demoSub) expect(n int) error {
	for i := 0; i < n; i++ {
		select {
		case r := <-s.recs:
			s.c.say("  [tax subscriber] received %s", r)
		case err := <-s.end:
			return fmt.Errorf("demo: subscription ended early: %s", errorLine(err))
		case <-time.After(10 * time.Second):
			return errors.New("demo: the subscriber received nothing")
		}
	}
	return nil
}

func (s *demoSub) expectEnd() error {
	defer s.cl.Close()
	start := time.Now()
	select {
	case err := <-s.end:
		s.c.say("  [tax subscriber] stream ended after %s: %s", time.Since(start).Round(time.Millisecond), errorLine(err))
		return nil
	case r := <-s.recs:
		return fmt.Errorf("demo: a record arrived after the revocation: %s", r)
	case <-time.After(5 * time.Second):
		return errors.New("demo: the subscription outlived its revoked grant")
	}
}
