package hub_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"

	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/hub"
	"github.com/xhub-gov/xhub/internal/testenv"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

// TestJoin: a node joins with one token and nothing copied by hand; it
// receives the CA and ledger key, finds NATS, and serves the same log.
// The token admits one node, once; a wrong secret learns nothing; only
// the operator makes tokens; the same command restarts the joined node.
func TestJoin(t *testing.T) {
	clock := testenv.NewClock(time.Now())
	a := testenv.Start(t, testenv.WithNATSListen(), testenv.WithClock(clock))
	ctx := context.Background()
	tok, info, err := a.Admin.CreateJoinToken(ctx, "hub-b", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if left := info.ExpiresAt.Sub(clock.Now()); left < 59*time.Minute || left > time.Hour {
		t.Fatalf("token expires at %s, in %s; want an hour", info.ExpiresAt, left)
	}
	dirB := t.TempDir()
	b := testenv.StartIn(t, dirB, testenv.WithJoin(tok), testenv.WithName("hub-b"))

	for _, f := range []string{"ca.crt", "ca.key", "ledger.key", "ledger.pub"} {
		x, _ := os.ReadFile(filepath.Join(a.Dir, "pki", f))
		y, err := os.ReadFile(filepath.Join(dirB, "pki", f))
		if err != nil || !bytes.Equal(x, y) {
			t.Fatalf("pki/%s differs after joining: %v", f, err)
		}
	}
	d, err := a.Admin.AddDepartment(ctx, "health", "Health")
	if err != nil {
		t.Fatal(err)
	}
	got, err := testenv.RPC(b.Admin).Departments.ListDepartments(ctx, &xhubv1.ListDepartmentsRequest{MinSeq: d.Seq})
	if err != nil || len(got.Departments) != 1 {
		t.Fatalf("B reads A's write: %v %v", got, err)
	}
	toks, err := b.Admin.JoinTokens(ctx)
	if err != nil || len(toks) != 1 || toks[0].Status != "joined" || toks[0].JoinedAs != "hub-b" || toks[0].Name != "hub-b" {
		t.Fatalf("join tokens: %+v %v", toks, err)
	}

	// The token admits one node.
	_, err = hub.Start(ctx, hub.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Join: tok, Logger: testenv.Logger()})
	if err == nil || !strings.Contains(err.Error(), "was used") || !strings.Contains(err.Error(), `"hub-b"`) {
		t.Fatalf("second use of a token: %v", err)
	}
	// A wrong secret, for a real token or a made-up one, gets one answer.
	parsed, _ := vocab.ParseJoinToken(tok)
	wrong := parsed
	wrong.Secret = bytes.Repeat([]byte{1}, 32)
	made := wrong
	made.ID = "j-999"
	var msgs []string
	for _, w := range []vocab.JoinToken{wrong, made} {
		dir := t.TempDir()
		_, err := hub.Start(ctx, hub.Config{DataDir: dir, Listen: "127.0.0.1:0", Join: w.String(), Logger: testenv.Logger()})
		if err == nil || !strings.Contains(err.Error(), "join refused") {
			t.Fatalf("wrong secret: %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "pki", "ca.key")); err == nil {
			t.Fatal("a refused join left a CA key behind")
		}
		msgs = append(msgs, strings.ReplaceAll(err.Error(), w.ID, "ID"))
	}
	if msgs[0] != msgs[1] {
		t.Fatalf("a wrong secret tells a real token from a made-up one:\n%s\n%s", msgs[0], msgs[1])
	}
	// A token pinning another CA is not even sent.
	other := parsed
	other.CASHA256 = strings.Repeat("00", 32)
	_, err = hub.Start(ctx, hub.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Join: other.String(), Logger: testenv.Logger()})
	if err == nil || !strings.Contains(err.Error(), "not the one the join token pins") {
		t.Fatalf("token pinning another CA: %v", err)
	}
	// Expired.
	tok2, _, err := a.Admin.CreateJoinToken(ctx, "late", time.Minute, nil)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	_, err = hub.Start(ctx, hub.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Join: tok2, Logger: testenv.Logger()})
	if err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired token: %v", err)
	}
	// Only the operator makes tokens.
	if _, _, err := a.Officer("health").CreateJoinToken(ctx, "x", 0, nil); testenv.Code(err) != codes.PermissionDenied {
		t.Fatalf("officer makes a join token: %v", err)
	}
	// Without a client certificate only Join answers.
	conn, err := grpc.NewClient(a.Addr(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{InsecureSkipVerify: true})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := xhubv1.NewDepartmentsClient(conn).ListDepartments(ctx, &xhubv1.ListDepartmentsRequest{}); testenv.Code(err) != codes.Unauthenticated {
		t.Fatalf("call without a certificate: %v", err)
	}

	// The same command restarts the joined node (the token is not used
	// again; NATS is found from what the join recorded).
	b.Restart()
	if _, err := b.Admin.Departments(ctx); err != nil {
		t.Fatalf("joined node after restart: %v", err)
	}
}
