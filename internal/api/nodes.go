package api

import (
	"context"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/bus"
	"github.com/xhub-gov/xhub/internal/pki"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

// nodesSvc serves join tokens and joins. The pki files go only to a
// caller that proved a token's secret (a signature over its claim, the
// secret itself never sent), sealed to the key the claim names, over the
// TLS connection whose server certificate the caller checked against the
// CA the token pins; the NATS URL and its password only to a caller that
// asked for them because it has no NATS of its own.
type nodesSvc struct {
	xhubv1.UnimplementedNodesServer
	*base
	ca   *pki.Authority
	join JoinConfig
	now  func() time.Time
	dir  NodeDirectory // may be nil
}

// JoinConfig is what a joining node is told besides the pki files.
type JoinConfig struct {
	PKIDir   string // this node's pki folder
	NATSURL  string // how a joiner without NATS of its own reaches it ("" if it must be told)
	Replicas int
}

func (s *nodesSvc) CreateJoinToken(ctx context.Context, r *xhubv1.CreateJoinTokenRequest) (*xhubv1.CreateJoinTokenResponse, error) {
	var ttl time.Duration
	if r.Ttl != nil {
		if err := r.Ttl.CheckValid(); err != nil {
			return nil, invalid("ttl", "%v", err)
		}
		ttl = r.Ttl.AsDuration()
	}
	t, secret, seq, err := s.cp.CreateJoinToken(ctx, identityFrom(ctx), r.Name, ttl)
	if err != nil {
		return nil, toStatus(err)
	}
	return &xhubv1.CreateJoinTokenResponse{TokenId: t.ID, Secret: secret, CaSha256: s.ca.Fingerprint(), ExpiresAt: ts(t.ExpiresAt), Seq: seq}, nil
}

func (s *nodesSvc) ListNodes(ctx context.Context, r *xhubv1.ListNodesRequest) (*xhubv1.ListNodesResponse, error) {
	if err := s.wait(ctx, r.MinSeq); err != nil {
		return nil, err
	}
	toks, err := s.cp.JoinTokens()
	if err != nil {
		return nil, toStatus(err)
	}
	now := s.now()
	out := &xhubv1.ListNodesResponse{}
	for _, t := range toks {
		out.Tokens = append(out.Tokens, &xhubv1.JoinToken{Id: t.ID, Name: t.Name, CreatedBy: t.CreatedBy, CreatedAt: ts(t.CreatedAt), ExpiresAt: ts(t.ExpiresAt),
			Status: t.Status(now), JoinedAt: ts(t.JoinedAt), JoinedAs: t.JoinedAs, JoinerKey: t.JoinerFingerprint(), Seq: t.Seq})
	}
	if s.dir != nil {
		beats, err := s.dir.Beats(ctx)
		if err != nil {
			return nil, status.Errorf(codes.Unavailable, "the nodes' heartbeats (stream %s) are unreadable: %v", bus.NodesStream, err)
		}
		for _, b := range beats {
			out.Nodes = append(out.Nodes, nodeStatus(b, now))
		}
	}
	return out, nil
}

// ForgetNode removes a node's last heartbeat: node list no longer shows
// it, and creds files no longer list its addresses. A node that is up is
// refused unless force: it beats again within its interval.
func (s *nodesSvc) ForgetNode(ctx context.Context, r *xhubv1.ForgetNodeRequest) (*xhubv1.ForgetNodeResponse, error) {
	if !bus.ValidNodeName(r.Name) {
		return nil, invalid("name", "%q is not a node's name (1 to 64 letters, digits, '-', '_' or '.')", r.Name)
	}
	if s.dir == nil {
		return nil, status.Error(codes.FailedPrecondition, "this node keeps no heartbeats")
	}
	beats, err := s.dir.Beats(ctx)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "the nodes' heartbeats (stream %s) are unreadable: %v", bus.NodesStream, err)
	}
	i := slices.IndexFunc(beats, func(b bus.NodeBeat) bool { return b.Name == r.Name })
	if i < 0 {
		return nil, toStatus(vocab.NotFound("no heartbeat of a node named %q (node list shows the nodes heard from)", r.Name))
	}
	b, now := beats[i], s.now()
	if b.Up(now) && !r.Force {
		return nil, toStatus(vocab.Precondition("NODE_UP", "node:"+r.Name, "node %s is up (last seen %s ago): stop it first, or give --force (it comes back with its next heartbeat)", r.Name, now.Sub(b.SeenAt).Round(time.Second)))
	}
	if err := s.dir.ForgetBeat(ctx, r.Name); err != nil {
		return nil, status.Errorf(codes.Unavailable, "forget node %s: %v", r.Name, err)
	}
	s.log.Info("node forgotten", "node", r.Name, "by", identityFrom(ctx).URI(), "was_up", b.Up(now), "last_seen", b.SeenAt)
	return &xhubv1.ForgetNodeResponse{Node: nodeStatus(b, now)}, nil
}

// nodeStatus is a node as its heartbeat b shows it at now.
func nodeStatus(b bus.NodeBeat, now time.Time) *xhubv1.NodeStatus {
	return &xhubv1.NodeStatus{Name: b.Name, Up: b.Up(now), LastSeen: ts(b.SeenAt), AppliedSeq: b.Applied, Version: b.Version,
		Addrs: b.Addrs, StartedAt: ts(b.StartedAt)}
}

func (s *nodesSvc) Join(ctx context.Context, r *xhubv1.JoinRequest) (*xhubv1.JoinResponse, error) {
	if len(r.Secret) > 0 { //nolint:staticcheck // the deprecated field is read to refuse it
		return nil, toStatus(vocab.Invalid("secret", "a joining node no longer sends the token's secret, it proves it: join with an xhub of this node's version, from a new token (xhub node token)"))
	}
	if len(r.Proof) == 0 {
		return nil, invalid("proof", "no proof of the token's secret: join with an xhub of this node's version")
	}
	claim := vocab.JoinClaim{TokenID: r.TokenId, Name: r.Name, Key: r.JoinerKey, WantsNATS: r.WantsNatsUrl}
	seq, err := s.cp.Join(ctx, claim, r.Proof)
	if err != nil {
		return nil, toStatus(err)
	}
	files, err := pki.Files(s.join.PKIDir)
	if err != nil {
		return nil, toStatus(err)
	}
	secrets := vocab.JoinSecrets{PKIFiles: files}
	if r.WantsNatsUrl {
		secrets.NATSURL = s.join.NATSURL
	}
	eph, sealed, err := vocab.SealJoinSecrets(r.JoinerKey, r.TokenId, secrets)
	if err != nil {
		return nil, toStatus(err)
	}
	s.log.Info("node joined", "token", r.TokenId, "name", r.Name, "joiner_key", vocab.JoinKeyFingerprint(r.JoinerKey), "nats_url_sent", r.WantsNatsUrl, "seq", seq)
	return &xhubv1.JoinResponse{ServerKey: eph, Sealed: sealed, Replicas: int32(s.join.Replicas), Seq: seq}, nil
}
