package natsauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"

	"github.com/xhub-gov/xhub/exchange"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/bus"
	"github.com/xhub-gov/xhub/internal/ratelog"

	"github.com/prometheus/client_golang/prometheus"
)

// behindCP is the views of a node that has not applied the log's head:
// the grant of health.cases to edu, approved through another node, is
// applied only by CatchUp (or never, far).
type behindCP struct {
	mu       sync.Mutex
	serial   string
	identity string
	far      bool
	caughtUp bool
}

func (c *behindCP) Credential(serial string) (exchange.Credential, bool) {
	return exchange.Credential{Serial: serial, Identity: c.identity}, serial == c.serial
}

func (c *behindCP) ActiveGrantPairs(now time.Time) []exchange.GrantPair {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.caughtUp {
		return nil
	}
	return []exchange.GrantPair{{Dept: "edu", Dataset: "health.cases", ExpiresAt: now.Add(time.Hour)}}
}

func (c *behindCP) Advanced() <-chan struct{} { return make(chan struct{}) }

func (c *behindCP) CatchUp(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.far {
		return &vocab.Error{Kind: vocab.KindUnavailable, Msg: "this node is behind the log (it has applied 3 of 9 entries)"}
	}
	c.caughtUp = true
	return nil
}

// TestConnectionJudgedOnTheLogsHead: a NATS connection is given the
// permissions of the log's head, not of what this node had applied: a
// grant approved through another node a moment ago is in them. A node too
// far behind gives none (it does not answer; another node's callout or
// the client's next try does). Found by the province simulation under
// load: edu's integrator, connecting right after its grant was approved,
// was refused its subscription ("Permissions Violation for Subscription to
// xhub.out.edu.health.cases").
func TestConnectionJudgedOnTheLogsHead(t *testing.T) {
	id := vocab.Identity{Dept: "edu", Role: vocab.RoleSystem, Name: "etl"}
	req, serial := authRequest(t, id)
	for _, far := range []bool{false, true} {
		cp := &behindCP{serial: serial, identity: id.URI(), far: far}
		issuer, err := nkeys.CreateAccount()
		if err != nil {
			t.Fatal(err)
		}
		s := &Service{cfg: Config{CP: cp, Issuer: issuer, Now: time.Now, MaxConnsPerDept: DefaultMaxConnsPerDept},
			clients: map[clientKey]client{}, lines: ratelog.New(time.Second),
			refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "refused"}, []string{"reason"})}
		ujwt, _, err := s.authorize(req)
		if far {
			if !errors.Is(err, errBehind) {
				t.Errorf("a node too far behind: %v, want it not to judge (errBehind)", err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		uc, err := jwt.DecodeUserClaims(ujwt)
		if err != nil {
			t.Fatal(err)
		}
		if want := bus.OutSubject("edu", "health.cases"); !uc.Sub.Allow.Contains(want) {
			t.Errorf("permissions %v lack %s, granted at the log's head", uc.Sub.Allow, want)
		}
	}
}

// authRequest is a callout request for a TLS client with a certificate
// for id (its chain verified, as the server reports it).
func authRequest(t *testing.T, id vocab.Identity) (*jwt.AuthorizationRequestClaims, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(id.URI())
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(0x0a01), URIs: []*url.URL{u}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	user, _ := nkeys.CreateUser()
	pub, _ := user.PublicKey()
	req := jwt.NewAuthorizationRequestClaims(pub)
	req.UserNkey = pub
	req.Server.ID = "server"
	req.TLS = &jwt.ClientTLS{VerifiedChains: []jwt.StringList{{string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))}}}
	return req, vocab.SerialHex(tmpl.SerialNumber)
}
