// Package natsauth owns who may connect to the hub's NATS port besides the
// hub itself: it is the NATS auth callout service. A department's system
// connects over TLS with the certificate the hub issued it (the same one it
// uses for gRPC and HTTP); the NATS server verifies the chain and asks
// this service, which checks the credential against the ledger and answers
// with permissions the server enforces: subscribe to the department's
// delivery subjects (bus.OutSubject) of datasets it holds an active grant
// on, nothing else, and publish nothing. When access changes — a grant
// revoked or expired, a credential revoked, a new grant — the connections
// it concerns are closed at once and re-authorised on reconnect.
package natsauth

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/bus"
	"github.com/xhub-gov/xhub/internal/ratelog"
	"github.com/xhub-gov/xhub/internal/secretfile"
)

// ControlPlane is what the callout asks the ledger's views.
type ControlPlane interface {
	Credential(serial string) (exchange.Credential, bool)
	ActiveGrantPairs(now time.Time) []exchange.GrantPair
	Advanced() <-chan struct{}
	// CatchUp applies the log as far as it reaches now, or fails (a node
	// too far behind): a connection is judged on the log's head.
	CatchUp(ctx context.Context) error
}

// HeadWait bounds how long a connection's authorization waits for this
// node to apply the log's head. A node further behind does not answer:
// another hub node's callout does, or the client is timed out and
// connects again — it is never given the permissions of an older state
// (a grant another node acknowledged a moment ago missing).
const HeadWait = 2 * time.Second

var _ ControlPlane = (*exchange.ControlPlane)(nil)

// DefaultMaxConnsPerDept bounds one department's NATS connections on a
// server, so that no department can use up the server's connections.
const DefaultMaxConnsPerDept = 32

// Config configures the service.
type Config struct {
	CP     ControlPlane  // required
	Conn   *nats.Conn    // an auth user's connection (required)
	Issuer nkeys.KeyPair // the account key the servers trust (required)
	// One of: Server, the embedded server (connections are closed and
	// listed through it), or System, a connection in the system account
	// of an external cluster (connections are closed with
	// $SYS.REQ.SERVER.<id>.KICK and forgotten on their disconnect events).
	Server *server.Server
	System *nats.Conn
	Now    func() time.Time
	Log    *slog.Logger
	// MaxConnsPerDept: zero is DefaultMaxConnsPerDept.
	MaxConnsPerDept int
}

// Service answers the server's authorization requests.
type Service struct {
	cfg     Config
	sub     *nats.Subscription
	refused *prometheus.CounterVec
	lines   *ratelog.Limiter

	mu      sync.Mutex
	clients map[clientKey]client
}

// clientKey names a connection: the server's id and its client id there.
type clientKey struct {
	server string
	cid    uint64
}

type client struct {
	id      vocab.Identity
	serial  string
	allowed []string // subjects, sorted
}

// Start subscribes to the server's authorization requests and watches the
// ledger until ctx ends.
func Start(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxConnsPerDept == 0 {
		cfg.MaxConnsPerDept = DefaultMaxConnsPerDept
	}
	if (cfg.Server == nil) == (cfg.System == nil) {
		return nil, errors.New("natsauth: give the embedded server or a system account connection")
	}
	s := &Service{cfg: cfg, clients: map[clientKey]client{}, lines: ratelog.New(RefusalLogEvery),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xhub_nats_connections_refused_total",
			Help: "NATS connections the hub's auth callout refused, by reason (" + strings.Join(refusalReasons, ", ") + ").",
		}, []string{"reason"})}
	for _, r := range refusalReasons {
		s.refused.WithLabelValues(r) // served at 0 from the start
	}
	if cfg.System != nil {
		dsub, err := cfg.System.Subscribe(fmt.Sprintf("$SYS.ACCOUNT.%s.DISCONNECT", server.DEFAULT_GLOBAL_ACCOUNT), s.disconnected)
		if err != nil {
			return nil, fmt.Errorf("natsauth: disconnect events: %w", err)
		}
		go func() { <-ctx.Done(); _ = dsub.Unsubscribe() }()
		if err := cfg.System.Flush(); err != nil {
			return nil, fmt.Errorf("natsauth: %w", err)
		}
	}
	sub, err := cfg.Conn.Subscribe(server.AuthCalloutSubject, s.handle)
	if err != nil {
		return nil, fmt.Errorf("natsauth: %w", err)
	}
	if err := cfg.Conn.Flush(); err != nil {
		return nil, fmt.Errorf("natsauth: %w", err)
	}
	s.sub = sub
	go s.watch(ctx)
	return s, nil
}

// Issuer makes the account key whose public half the NATS server is
// configured with.
func Issuer() (nkeys.KeyPair, error) { return nkeys.CreateAccount() }

// LoadOrCreateIssuer reads the account key seed at path, or makes one and
// writes it there (0600). created says it is new: its public key must go
// into the NATS servers' configuration (auth_callout.issuer).
func LoadOrCreateIssuer(path string) (kp nkeys.KeyPair, created bool, err error) {
	if b, err := os.ReadFile(path); err == nil {
		kp, err := nkeys.FromSeed(bytes.TrimSpace(b))
		if err != nil {
			return nil, false, fmt.Errorf("natsauth: %s is not an nkey seed: %v", path, err)
		}
		if pub, _ := kp.PublicKey(); !nkeys.IsValidPublicAccountKey(pub) {
			return nil, false, fmt.Errorf("natsauth: %s is not an account key (its public key must start with A)", path)
		}
		return kp, false, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, false, fmt.Errorf("natsauth: %w", err)
	}
	kp, err = nkeys.CreateAccount()
	if err != nil {
		return nil, false, err
	}
	seed, err := kp.Seed()
	if err != nil {
		return nil, false, err
	}
	if err := secretfile.Write(path, append(seed, '\n')); err != nil {
		return nil, false, fmt.Errorf("natsauth: write %s: %w", path, err)
	}
	return kp, true, nil
}

func (s *Service) handle(m *nats.Msg) {
	req, err := jwt.DecodeAuthorizationRequestClaims(string(m.Data))
	if err != nil {
		s.cfg.Log.Warn("NATS authorization request not readable", "err", err)
		return // the server times the client out
	}
	if req.Expires != 0 && s.cfg.Now().After(time.Unix(req.Expires, 0).Add(expiredSlack)) {
		// The server gave up on it long ago: judging it would only delay
		// the requests behind it (one handler answers them in turn).
		s.refused.WithLabelValues(reasonExpiredRequest).Inc()
		return
	}
	res := jwt.NewAuthorizationResponseClaims(req.UserNkey)
	res.Audience = req.Server.ID
	ujwt, who, err := s.authorize(req)
	if errors.Is(err, errBehind) {
		s.refused.WithLabelValues(reasonBehind).Inc()
		if unlogged, ok := s.lines.Allow(s.cfg.Now()); ok {
			s.cfg.Log.Warn("NATS connection not answered: this node is behind the log", "host", req.ClientInformation.Host, "identity", who, "err", err, "unlogged_before", unlogged)
		}
		return
	}
	if err != nil {
		res.Error = err.Error()
		reason := reasonOther
		var r *refusal
		if errors.As(err, &r) {
			reason = r.reason
		}
		s.refused.WithLabelValues(reason).Inc()
		if unlogged, ok := s.lines.Allow(s.cfg.Now()); ok {
			s.cfg.Log.Info("NATS connection refused", "host", req.ClientInformation.Host, "identity", who, "reason", reason, "err", err, "unlogged_before", unlogged)
		}
	} else {
		res.Jwt = ujwt
	}
	token, err := res.Encode(s.cfg.Issuer)
	if err != nil {
		s.cfg.Log.Error("NATS authorization response", "err", err)
		return
	}
	_ = m.Respond([]byte(token))
}

// authorize decides one connection and returns its user JWT.
func (s *Service) authorize(req *jwt.AuthorizationRequestClaims) (string, string, error) {
	if req.TLS == nil || len(req.TLS.VerifiedChains) == 0 || len(req.TLS.VerifiedChains[0]) == 0 {
		return "", "", refuse(reasonNoCertificate, "connect over TLS with a client certificate issued by the hub (xhub creds export --pem)")
	}
	blk, _ := pem.Decode([]byte(req.TLS.VerifiedChains[0][0]))
	if blk == nil {
		return "", "", refuse(reasonCertificate, "client certificate unreadable")
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return "", "", refuse(reasonCertificate, "client certificate unreadable")
	}
	id, serial, err := vocab.IdentityOf(cert)
	if err != nil {
		return "", "", refuse(reasonCertificate, "client certificate: %v", err)
	}
	// Refusals no newer entry can undo first (a revoked or expired
	// credential, a role that never reads over NATS, a department at its
	// bound), without reading the log's head.
	now := s.cfg.Now()
	_, known := s.cfg.CP.Credential(serial)
	if known {
		if err := s.checkCredential(cert, id, serial, now); err != nil {
			return "", id.URI(), err
		}
	}
	if id.Role != vocab.RoleSystem {
		return "", id.URI(), refuse(reasonRole, "%s: only a department's system (role system) reads data over NATS, not role %s", id.URI(), id.Role)
	}
	if n := s.conns(id.Dept); n >= s.cfg.MaxConnsPerDept {
		return "", id.URI(), refuse(reasonLimit, "department %s has %d NATS connections, the most the hub allows", id.Dept, n)
	}
	// Then judged on the log's head: a credential issued, or a grant
	// approved, through another node a moment ago counts.
	hctx, cancel := context.WithTimeout(context.Background(), HeadWait)
	err = s.cfg.CP.CatchUp(hctx)
	cancel()
	if err != nil {
		return "", id.URI(), fmt.Errorf("%w: %v", errBehind, err)
	}
	if !known {
		if err := s.checkCredential(cert, id, serial, now); err != nil {
			return "", id.URI(), err
		}
	}
	allowed, expires := allowedOf(s.cfg.CP.ActiveGrantPairs(now), id.Dept)
	if cert.NotAfter.Before(expires) || expires.IsZero() {
		expires = cert.NotAfter
	}
	key := clientKey{server: req.Server.ID, cid: req.ClientInformation.ID}
	s.mu.Lock()
	n := 0
	for _, c := range s.clients {
		if c.id.Dept == id.Dept {
			n++
		}
	}
	if n >= s.cfg.MaxConnsPerDept {
		s.prune()
		n = 0
		for _, c := range s.clients {
			if c.id.Dept == id.Dept {
				n++
			}
		}
	}
	if n >= s.cfg.MaxConnsPerDept {
		s.mu.Unlock()
		return "", id.URI(), refuse(reasonLimit, "department %s has %d NATS connections, the most the hub allows", id.Dept, n)
	}
	s.clients[key] = client{id: id, serial: serial, allowed: allowed}
	s.mu.Unlock()

	uc := jwt.NewUserClaims(req.UserNkey)
	uc.Name = id.URI()
	uc.Audience = server.DEFAULT_GLOBAL_ACCOUNT
	uc.Expires = expires.Unix()
	if len(allowed) == 0 {
		// Connected, and allowed nothing: it learns that no grant stands
		// by the permission error of its subscription.
		uc.Sub.Deny.Add(">")
	} else {
		uc.Sub.Allow.Add(allowed...)
	}
	uc.Pub.Deny.Add(">")
	ujwt, err := uc.Encode(s.cfg.Issuer)
	if err != nil {
		return "", id.URI(), err
	}
	return ujwt, id.URI(), nil
}

// conns counts dept's connections this service has authorized and not
// seen end.
func (s *Service) conns(dept catalog.DeptID) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	count := func() int {
		n := 0
		for _, c := range s.clients {
			if c.id.Dept == dept {
				n++
			}
		}
		return n
	}
	n := count()
	if n >= s.cfg.MaxConnsPerDept {
		s.prune()
		n = count()
	}
	return n
}

func (s *Service) checkCredential(cert *x509.Certificate, id vocab.Identity, serial string, now time.Time) error {
	c, ok := s.cfg.CP.Credential(serial)
	switch {
	case !ok:
		return refuse(reasonCredential, "credential %s is not recorded in the hub's ledger", serial)
	case c.Revoked:
		return refuse(reasonRevoked, "credential %s was revoked", serial)
	case c.Identity != id.URI():
		return refuse(reasonCredential, "credential %s: certificate identity does not match the ledger", serial)
	case now.After(cert.NotAfter):
		return refuse(reasonExpired, "credential %s expired", serial)
	}
	return nil
}

// Why connections are refused: the metric's reasons.
const (
	reasonNoCertificate  = "no_certificate" // not TLS, or no client certificate
	reasonCertificate    = "bad_certificate"
	reasonCredential     = "unknown_credential"
	reasonRevoked        = "revoked"
	reasonExpired        = "expired"
	reasonRole           = "role"
	reasonLimit          = "connection_limit"
	reasonBehind         = "behind"          // not answered: this node could not apply the log's head in time
	reasonExpiredRequest = "request_expired" // not answered: the server had given up on it
	reasonOther          = "other"
)

var refusalReasons = []string{reasonNoCertificate, reasonCertificate, reasonCredential, reasonRevoked, reasonExpired, reasonRole, reasonLimit, reasonBehind, reasonExpiredRequest, reasonOther}

// expiredSlack is how long past its expiry (by this node's clock) an
// authorization request is still judged: room for clocks that disagree.
const expiredSlack = 10 * time.Second

// errBehind: this node cannot judge a connection on the log's head.
var errBehind = errors.New("this node is behind the log")

// RefusalLogEvery bounds the log lines about refused NATS connections:
// one per interval, with the number left unlogged (every refusal is
// counted in xhub_nats_connections_refused_total).
const RefusalLogEvery = time.Second

// refusal is a refused connection: what the client is told, and the
// metric's reason.
type refusal struct {
	reason string
	msg    string
}

func (r *refusal) Error() string { return r.msg }

func refuse(reason, format string, args ...any) error {
	return &refusal{reason: reason, msg: fmt.Sprintf(format, args...)}
}

// Collectors are the service's Prometheus metrics.
func (s *Service) Collectors() []prometheus.Collector { return []prometheus.Collector{s.refused} }

// allowedOf is dept's delivery subjects among pairs, and when the first
// of their grants ends (zero: none).
func allowedOf(pairs []exchange.GrantPair, dept catalog.DeptID) ([]string, time.Time) {
	var subjects []string
	var first time.Time
	for _, gp := range pairs {
		if gp.Dept != dept {
			continue
		}
		subjects = append(subjects, bus.OutSubject(string(gp.Dept), string(gp.Dataset)))
		if first.IsZero() || gp.ExpiresAt.Before(first) {
			first = gp.ExpiresAt
		}
	}
	slices.Sort(subjects)
	return subjects, first
}

// watch closes the connections whose access changed, each time the node
// applies an entry. (A grant's term ending needs no entry: the user JWT
// expires with the first grant it names, and the server closes it.)
func (s *Service) watch(ctx context.Context) {
	for {
		advanced := s.cfg.CP.Advanced()
		s.recheck()
		select {
		case <-ctx.Done():
			_ = s.sub.Unsubscribe()
			return
		case <-advanced:
		}
	}
}

func (s *Service) recheck() {
	pairs := s.cfg.CP.ActiveGrantPairs(s.cfg.Now())
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prune()
	for k, c := range s.clients {
		cred, ok := s.cfg.CP.Credential(c.serial)
		allowed, _ := allowedOf(pairs, c.id.Dept)
		if ok && !cred.Revoked && slices.Equal(allowed, c.allowed) {
			continue
		}
		delete(s.clients, k)
		if err := s.kick(k); err != nil {
			s.cfg.Log.Warn("NATS connection not closed", "identity", c.id.URI(), "server", k.server, "cid", k.cid, "err", err)
		} else {
			s.cfg.Log.Info("NATS connection closed: its access changed", "identity", c.id.URI(), "server", k.server, "cid", k.cid)
		}
	}
}

// kick closes one connection. Called with mu.
func (s *Service) kick(k clientKey) error {
	if s.cfg.Server != nil {
		return s.cfg.Server.DisconnectClientByID(k.cid)
	}
	body, _ := json.Marshal(server.KickClientReq{CID: k.cid})
	res, err := s.cfg.System.Request(fmt.Sprintf("$SYS.REQ.SERVER.%s.KICK", k.server), body, 2*time.Second)
	if err != nil {
		return err
	}
	var r server.ServerAPIResponse
	if err := json.Unmarshal(res.Data, &r); err == nil && r.Error != nil {
		return errors.New(r.Error.Description)
	}
	return nil
}

// disconnected forgets a connection the cluster reports closed.
func (s *Service) disconnected(m *nats.Msg) {
	var ev server.DisconnectEventMsg
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		return
	}
	s.mu.Lock()
	delete(s.clients, clientKey{server: ev.Server.ID, cid: ev.Client.ID})
	s.mu.Unlock()
}

// prune forgets connections the embedded server no longer has (with an
// external cluster, disconnect events do). Called with mu.
func (s *Service) prune() {
	if len(s.clients) == 0 || s.cfg.Server == nil {
		return
	}
	cz, err := s.cfg.Server.Connz(&server.ConnzOptions{Limit: s.cfg.Server.NumClients() + 64})
	if err != nil {
		return
	}
	open := make(map[uint64]bool, len(cz.Conns))
	for _, c := range cz.Conns {
		open[c.Cid] = true
	}
	for k := range s.clients {
		if !open[k.cid] {
			delete(s.clients, k)
		}
	}
}

// Connections is how many integrator connections the service knows of.
func (s *Service) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.prune()
	return len(s.clients)
}
