package bus

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// startJS is an embedded nats-server with JetStream in t.TempDir() and
// the streams want, stopped by t.Cleanup.
func startJS(t *testing.T, want ...jetstream.StreamConfig) jetstream.JetStream {
	t.Helper()
	e, err := StartEmbedded(EmbeddedConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Shutdown)
	nc, err := e.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := EnsureStreams(context.Background(), js, want, nil); err != nil {
		t.Fatal(err)
	}
	return js
}

// TestReviewBeatFromTheFutureIsNotUp: a node whose clock ran an hour
// ahead wrote heartbeats whose SeenAt was an hour away, so once it died
// `xhub node list` showed it up for that hour, not for three of its
// intervals. Found by the second outside review. A beat is judged on
// when the NATS server stored it at the latest: just heard, it is up;
// three intervals after it was stored, it is down, whatever it says of
// itself. A beat that says it is older than that keeps its own time.
func TestReviewBeatFromTheFutureIsNotUp(t *testing.T) {
	ctx := context.Background()
	js := startJS(t, Nodes(1))
	const every = time.Minute
	if err := PublishBeat(ctx, js, NodeBeat{Name: "ahead", SeenAt: time.Now().Add(time.Hour).UTC(), Interval: every}); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	if err := PublishBeat(ctx, js, NodeBeat{Name: "behind", SeenAt: old, Interval: every}); err != nil {
		t.Fatal(err)
	}
	beats, err := Beats(ctx, js)
	if err != nil {
		t.Fatal(err)
	}
	last, err := LastBeat(ctx, js, "ahead")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now() // after the beats were stored
	byName := map[string]NodeBeat{}
	for _, b := range beats {
		byName[b.Name] = b
	}
	for how, b := range map[string]NodeBeat{"Beats": byName["ahead"], "LastBeat": last} {
		if b.SeenAt.After(now) {
			t.Errorf("%s: the beat from the future is seen at %s, after now (%s)", how, b.SeenAt, now)
		}
		if !b.Up(now) {
			t.Errorf("%s: a beat just stored is not up", how)
		}
		if later := now.Add(3*every + time.Second); b.Up(later) {
			t.Errorf("%s: up three intervals after it was stored (seen at %s)", how, b.SeenAt)
		}
	}
	if b := byName["behind"]; !b.SeenAt.Equal(old) || b.Up(now) {
		t.Errorf("a beat an hour old: seen at %s (want %s), up %v", b.SeenAt, old, b.Up(now))
	}
}
