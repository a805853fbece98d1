package exchange

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/keyspace"
	"github.com/xhub-gov/xhub/exchange/shares"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/store"
)

// TestEveryKeyInOneSpace: every key that a replay of a log holding every
// entry kind (several with client request ids) writes lies under exactly
// one prefix of keyspace.Spaces, and every keyspace but none is used.
func TestEveryKeyInOneSpace(t *testing.T) {
	ek := newEveryKind(t)
	st, err := store.OpenMemory()
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := ek.cfg
	cfg.Store = st
	replay, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer replay.Close()
	if err := replay.CatchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	used := map[keyspace.Prefix]int{}
	if err := st.View(func(txn *store.Txn) error {
		return txn.Scan("", "", func(key string, _ []byte) (bool, error) {
			var under []keyspace.Prefix
			for _, s := range keyspace.Spaces {
				if strings.HasPrefix(key, string(s.Prefix)) {
					under = append(under, s.Prefix)
				}
			}
			if len(under) != 1 {
				t.Errorf("key %q lies under %d prefixes %v, want exactly one", key, len(under), under)
			}
			for _, p := range under {
				used[p]++
			}
			return true, nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	for _, s := range keyspace.Spaces {
		if used[s.Prefix] == 0 && s.Prefix != keyspace.OpenDisputes && s.Prefix != keyspace.PendingByDataset {
			t.Errorf("no key under %q (%s: %s): the every-kind ledger does not reach it", s.Prefix, s.Owner, s.Holds)
		}
	}
}

// TestOldFormatViewsRebuilt: views written in format 1 — client request
// ids under "rq/" among the share requests, no format recorded — are
// rebuilt from the log when the node starts, with a log line naming both
// formats; the node is not called tampered, its views are those of a
// fresh replay, and the operator's unfiltered list of requests shows the
// requests only.
func TestOldFormatViewsRebuilt(t *testing.T) {
	ctx := context.Background()
	ek := newEveryKind(t)
	ek.cp.Close()
	moved := 0
	if err := ek.st.Update(func(txn *store.Txn) error {
		type kv struct {
			k string
			v []byte
		}
		var old []kv
		if err := txn.Scan(string(keyspace.RequestIDs), "", func(k string, v []byte) (bool, error) {
			old = append(old, kv{k, v})
			return true, nil
		}); err != nil {
			return err
		}
		for _, o := range old {
			if err := txn.Delete(o.k); err != nil {
				return err
			}
			if err := txn.PutRaw([]byte("rq/"+strings.TrimPrefix(o.k, string(keyspace.RequestIDs))), o.v); err != nil {
				return err
			}
			moved++
		}
		return txn.Delete(keyspace.FormatKey)
	}); err != nil {
		t.Fatal(err)
	}
	if moved == 0 {
		t.Fatal("the every-kind ledger recorded no request id")
	}
	var logs syncBuffer
	cfg := ek.cfg
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	cp, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Close()
	if err := cp.Integrity(); err != nil {
		t.Fatalf("a node with views of format 1 is called tampered: %v", err)
	}
	for _, want := range []string{"level=WARN msg=\"views written in another format: rebuilding them from the ledger\" old_format=1 new_format=2", "level=INFO msg=\"views rebuilt from the ledger\" old_format=1 new_format=2"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log does not say %q:\n%s", want, logs.String())
		}
	}
	_, fresh := replica(t, ek.cfg)
	if d, err := ek.st.FirstDifference(fresh); err != nil || d.Differ {
		t.Fatalf("rebuilt views differ from a fresh replay at %q: %s / %s (%v)", d.Key, d.A, d.B, err)
	}
	rs, _, err := cp.ListRequests(ShareFilter{Viewer: operator}, "", 100, cp.cfg.Now())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range rs {
		ids = append(ids, string(r.ID))
	}
	if got, want := strings.Join(ids, " "), "r-14 r-19 r-21 r-23"; got != want {
		t.Fatalf("unfiltered requests: %s, want %s", got, want)
	}
	// Started again, the views verify as they are.
	cp.Close()
	logs.Reset()
	again, err := Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if err := again.Integrity(); err != nil || strings.Contains(logs.String(), "rebuild") {
		t.Fatalf("second start: %v\n%s", err, logs.String())
	}
}

// TestListRequestsOnlyRequests: after calls with request ids, the
// operator's unfiltered list holds the share requests and nothing else.
func TestListRequestsOnlyRequests(t *testing.T) {
	ek := newEveryKind(t)
	rs, _, err := ek.cp.ListRequests(ShareFilter{Viewer: operator}, "", 100, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if _, err := shares.ParseRequestID(string(r.ID)); err != nil || r.Dataset == "" {
			t.Errorf("a row that is no request: %+v", r)
		}
	}
	if len(rs) != 4 {
		t.Errorf("%d rows, want the 4 requests", len(rs))
	}
}

var operator = vocab.Identity{Dept: catalog.HubDept, Role: vocab.RoleAdmin, Name: "admin"}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (s *syncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}
