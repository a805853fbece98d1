package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/xhub-gov/xhub/adapters"
	"github.com/xhub-gov/xhub/exchange"
	"github.com/xhub-gov/xhub/internal/testenv"
)

type syncBuffer = testenv.Buffer

// TestInboxWatch: the owner's officer learns of a new request, and the
// requester of the decision, as they happen, without polling; Ctrl-C ends
// the watch quietly.
func TestInboxWatch(t *testing.T) {
	f := newShareFixture(t)
	env := f.env
	watch := func(creds string) (*syncBuffer, *syncBuffer, context.CancelFunc, chan error) {
		ctx, cancel := context.WithCancel(context.Background())
		out, errb := &syncBuffer{}, &syncBuffer{}
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, []string{"share", "inbox", "--watch", "--hub", env.Addr(), "--creds", creds}, out, errb)
		}()
		testenv.WaitFor(t, 10*time.Second, "the watch", func() bool { return strings.Contains(errb.String(), "watching") })
		return out, errb, cancel, done
	}
	hOut, _, hStop, hDone := watch(f.health)
	tOut, _, tStop, tDone := watch(f.tax)

	req, _ := ids(mustX(t, env, f.tax, "share", "request", "health.cond", "--purpose", "wards", "--fields", "id,ward"))
	testenv.WaitFor(t, 10*time.Second, "the request in health's watch", func() bool {
		return strings.Contains(hOut.String(), "share.requested "+req+": tax asks for id,ward of health.cond")
	})
	mustX(t, env, f.health, "share", "approve", req, "--fields", "id")
	testenv.WaitFor(t, 10*time.Second, "the decision in tax's watch", func() bool {
		return strings.Contains(tOut.String(), "share.approved") && strings.Contains(tOut.String(), "fields id,")
	})
	if strings.Contains(hOut.String(), "share.approved") {
		t.Errorf("health's watch shows tax's decision event:\n%s", hOut.String())
	}
	hStop()
	tStop()
	for _, d := range []chan error{hDone, tDone} {
		if err := <-d; err != nil {
			t.Fatalf("Ctrl-C on a watch: %v", err)
		}
	}
	// One department cannot hold a node's watchers: 16, then refused,
	// while another department still watches.
	cl := env.Dial(f.health)
	wctx, wstop := context.WithCancel(context.Background())
	defer wstop()
	ready := make(chan struct{}, exchange.MaxEventWatchers)
	for range exchange.MaxEventWatchers {
		go func() {
			_ = cl.WatchInbox(wctx, func() { ready <- struct{}{} }, func(adapters.InboxEvent) error { return nil })
		}()
	}
	for range exchange.MaxEventWatchers {
		select {
		case <-ready:
		case <-time.After(10 * time.Second):
			t.Fatal("watchers not ready")
		}
	}
	err := cl.WatchInbox(context.Background(), nil, func(adapters.InboxEvent) error { return nil })
	wantRefused(t, err, codes.ResourceExhausted, "event watchers")
	tctx, tstop := context.WithCancel(context.Background())
	tready := make(chan struct{})
	go func() {
		_ = env.Dial(f.tax).WatchInbox(tctx, func() { close(tready) }, func(adapters.InboxEvent) error { return nil })
	}()
	select {
	case <-tready:
	case <-time.After(10 * time.Second):
		t.Fatal("another department could not watch")
	}
	tstop()

	// Systems do not watch inboxes.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var o, e bytes.Buffer
	err = run(ctx, []string{"share", "inbox", "--watch", "--hub", env.Addr(), "--creds", f.hsys}, &o, &e)
	wantRefused(t, err, codes.PermissionDenied, "role system")
}
