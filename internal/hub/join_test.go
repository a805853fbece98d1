package hub_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"

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

// joinConn dials a node as a stranger on the network: TLS, no client
// certificate.
func joinConn(t *testing.T, addr string) xhubv1.NodesClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{InsecureSkipVerify: true})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return xhubv1.NewNodesClient(conn)
}

// noSecretIn fails if anything of the deployment's secrets (the CA and
// ledger keys, the embedded NATS password) shows in b.
func noSecretIn(t *testing.T, what string, b []byte, a *testenv.Env) {
	t.Helper()
	for _, f := range []string{"pki/ca.key", "pki/ledger.key", "nats.password"} {
		secret, err := os.ReadFile(filepath.Join(a.Dir, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range bytes.Split(secret, []byte("\n")) {
			if len(line) > 16 && !bytes.HasPrefix(line, []byte("-----")) && bytes.Contains(b, line) {
				t.Fatalf("%s holds part of %s", what, f)
			}
		}
	}
	if bytes.Contains(b, []byte("PRIVATE KEY")) || bytes.Contains(b, []byte("nats://")) {
		t.Fatalf("%s holds a key or a NATS URL in the clear", what)
	}
}

// TestJoinThief: the attack of issue 20 item 4. Another user of the
// joiner's machine, or of the network, polls Nodes/Join without a
// certificate. Sending the token's secret itself, as joiners did, gets
// nothing; knowing the token id gets nothing; holding a joiner's request
// (its proof, not its private key) gets only a box sealed to the
// joiner's key, and tampering with it is refused; once the token is
// used, any other request for it is refused, and node list names the
// key it was used with. A joiner that does not ask for the NATS URL is
// not sent the embedded server's password.
func TestJoinThief(t *testing.T) {
	a := testenv.Start(t, testenv.WithNATSListen())
	ctx := context.Background()
	tokText, _, err := a.Admin.CreateJoinToken(ctx, "hub-b", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := vocab.ParseJoinToken(tokText)
	if err != nil {
		t.Fatal(err)
	}
	nodes := joinConn(t, a.Addr())
	unused := func() {
		t.Helper()
		toks, err := a.Admin.JoinTokens(ctx)
		if err != nil || len(toks) != 1 || toks[0].Status != "unused" {
			t.Fatalf("the token after a refused join: %+v %v", toks, err)
		}
	}

	// The old request, the token's whole secret sent as the attack did.
	resp, err := nodes.Join(ctx, &xhubv1.JoinRequest{TokenId: tok.ID, Secret: tok.Secret, Name: "thief"})
	if err == nil || resp != nil {
		raw, _ := proto.Marshal(resp)
		noSecretIn(t, "the answer to a request carrying the secret", raw, a)
		t.Fatalf("a request carrying the secret itself was answered: %v", err)
	}
	if testenv.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "proves it") {
		t.Fatalf("a request carrying the secret: %v", err)
	}
	unused()

	// The joiner's request, as someone who saw it but has not the
	// joiner's private key.
	joinerKey, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	claim := vocab.JoinClaim{TokenID: tok.ID, Name: "hub-b", Key: joinerKey.PublicKey().Bytes(), WantsNATS: true}
	joinerReq := &xhubv1.JoinRequest{TokenId: tok.ID, Name: claim.Name, JoinerKey: claim.Key, WantsNatsUrl: true, Proof: tok.Prove(claim)}
	thiefKey, _ := ecdh.X25519().GenerateKey(rand.Reader)
	for name, tamper := range map[string]func(r *xhubv1.JoinRequest){
		"its own key":     func(r *xhubv1.JoinRequest) { r.JoinerKey = thiefKey.PublicKey().Bytes() },
		"its own name":    func(r *xhubv1.JoinRequest) { r.Name = "thief" },
		"no NATS wanted":  func(r *xhubv1.JoinRequest) { r.WantsNatsUrl = false },
		"a guessed proof": func(r *xhubv1.JoinRequest) { r.Proof = bytes.Repeat([]byte{1}, 64) },
	} {
		r := proto.Clone(joinerReq).(*xhubv1.JoinRequest)
		tamper(r)
		if _, err := nodes.Join(ctx, r); testenv.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), "join refused") {
			t.Fatalf("the joiner's proof with %s: %v", name, err)
		}
	}
	unused()
	// Sent untouched (the thief racing the joiner with its own request),
	// it admits the joiner's key: the answer is a box only that key opens.
	resp, err = nodes.Join(ctx, joinerReq)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := proto.Marshal(resp)
	noSecretIn(t, "the answer", raw, a)
	if _, err := vocab.OpenJoinSecrets(thiefKey, tok.ID, resp.ServerKey, resp.Sealed); err == nil {
		t.Fatal("the thief's key opens the box sealed to the joiner")
	}
	got, err := vocab.OpenJoinSecrets(joinerKey, tok.ID, resp.ServerKey, resp.Sealed)
	if err != nil {
		t.Fatal(err)
	}
	caKey, _ := os.ReadFile(filepath.Join(a.Dir, "pki", "ca.key"))
	if !bytes.Equal(got.PKIFiles["ca.key"], caKey) || got.NATSURL != a.Node.Embedded.URL {
		t.Fatalf("the joiner's box: files %v, NATS URL %q", len(got.PKIFiles), got.NATSURL)
	}

	// Used: the same request again, or the token with another key (a
	// thief who read it after the join), is refused.
	if _, err := nodes.Join(ctx, joinerReq); testenv.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "was used") {
		t.Fatalf("the request replayed: %v", err)
	}
	late := vocab.JoinClaim{TokenID: tok.ID, Name: "thief", Key: thiefKey.PublicKey().Bytes()}
	if _, err := nodes.Join(ctx, &xhubv1.JoinRequest{TokenId: tok.ID, Name: late.Name, JoinerKey: late.Key, Proof: tok.Prove(late)}); testenv.Code(err) != codes.FailedPrecondition ||
		!strings.Contains(err.Error(), vocab.JoinKeyFingerprint(claim.Key)) {
		t.Fatalf("the token used again with another key: %v", err)
	}
	toks, err := a.Admin.JoinTokens(ctx)
	if err != nil || len(toks) != 1 || toks[0].JoinedAs != "hub-b" || toks[0].JoinerKey != vocab.JoinKeyFingerprint(claim.Key) {
		t.Fatalf("node list after the join: %+v %v", toks, err)
	}

	// A joiner given its own NATS does not ask for the URL and is not
	// sent the embedded server's password, neither in the box nor in
	// what it keeps (joined.json).
	tok2, _, err := a.Admin.CreateJoinToken(ctx, "hub-c", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	dirC := t.TempDir()
	c := testenv.StartIn(t, dirC, testenv.WithJoin(tok2), testenv.WithName("hub-c"), testenv.WithNATSURL(a.Node.Embedded.URL))
	if _, err := c.Admin.Departments(ctx); err != nil {
		t.Fatal(err)
	}
	kept, err := os.ReadFile(filepath.Join(dirC, "joined.json"))
	if err != nil {
		t.Fatal(err)
	}
	noSecretIn(t, "joined.json of a node given its own NATS", kept, a)
	tok3, _, err := a.Admin.CreateJoinToken(ctx, "hub-d", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	t3, _ := vocab.ParseJoinToken(tok3)
	own := vocab.JoinClaim{TokenID: t3.ID, Name: "hub-d", Key: joinerKey.PublicKey().Bytes()}
	resp, err = nodes.Join(ctx, &xhubv1.JoinRequest{TokenId: t3.ID, Name: own.Name, JoinerKey: own.Key, Proof: t3.Prove(own)})
	if err != nil {
		t.Fatal(err)
	}
	got, err = vocab.OpenJoinSecrets(joinerKey, t3.ID, resp.ServerKey, resp.Sealed)
	if err != nil || got.NATSURL != "" || len(got.PKIFiles) == 0 {
		t.Fatalf("a joiner that did not ask for NATS: URL %q, %d files, %v", got.NATSURL, len(got.PKIFiles), err)
	}
	b, _ := json.Marshal(got)
	pw, _ := os.ReadFile(filepath.Join(a.Dir, "nats.password"))
	if _, pass, _ := strings.Cut(strings.TrimSpace(string(pw)), ":"); len(pass) < 16 || bytes.Contains(b, []byte(pass)) {
		t.Fatalf("the box of a joiner that did not ask for NATS holds the NATS password (%d bytes)", len(pass))
	}
}
