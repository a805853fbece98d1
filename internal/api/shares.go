package api

import (
	"context"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange"
	"github.com/xhub-gov/xhub/exchange/shares"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

type sharesSvc struct {
	xhubv1.UnimplementedSharesServer
	*base
	now func() time.Time
}

func requestPB(r shares.Request, now time.Time) *xhubv1.ShareRequest {
	return &xhubv1.ShareRequest{
		Id: string(r.ID), Requester: string(r.Requester), Dataset: string(r.Dataset), Fields: r.Fields, Purpose: r.Purpose,
		Days: int32(r.Days), Status: string(r.Status), Overdue: r.Overdue(now), Reason: r.Reason, RequestedAt: ts(r.RequestedAt),
		Deadline: ts(r.Deadline), GrantId: string(r.Grant), Seq: r.Seq, DecidedBy: r.DecidedBy, DecidedAt: ts(r.DecidedAt),
	}
}

func grantPB(g shares.Grant, now time.Time) *xhubv1.Grant {
	return &xhubv1.Grant{
		Id: string(g.ID), Grantee: string(g.Grantee), Dataset: string(g.Dataset), Fields: g.Fields, GrantedAt: ts(g.GrantedAt),
		ExpiresAt: ts(g.ExpiresAt), Status: string(g.StatusAt(now)), RequestId: string(g.Request), Reason: g.Reason, Seq: g.Seq,
		EndedAt: ts(g.EndedAt), GrantedBy: g.GrantedBy,
	}
}

func (s *sharesSvc) RequestShare(ctx context.Context, r *xhubv1.RequestShareRequest) (*xhubv1.RequestShareResponse, error) {
	req, g, seq, err := s.cp.RequestShare(ctx, identityFrom(ctx), shares.Input{
		Dataset: catalog.DatasetID(r.Dataset), Fields: r.Fields, Purpose: r.Purpose, Days: int(r.Days),
	})
	if err != nil {
		return nil, toStatus(err)
	}
	now := s.now()
	out := &xhubv1.RequestShareResponse{Request: requestPB(req, now), Seq: seq}
	if g != nil {
		out.Grant = grantPB(*g, now)
	}
	return out, nil
}

func (s *sharesSvc) decision(req shares.Request, g *shares.Grant, seq uint64) *xhubv1.DecisionResponse {
	now := s.now()
	out := &xhubv1.DecisionResponse{Seq: seq}
	if req.ID != "" {
		out.Request = requestPB(req, now)
	}
	if g != nil {
		out.Grant = grantPB(*g, now)
	}
	return out
}

func (s *sharesSvc) Approve(ctx context.Context, r *xhubv1.ApproveRequest) (*xhubv1.DecisionResponse, error) {
	req, g, seq, err := s.cp.Approve(ctx, identityFrom(ctx), shares.Decision{Request: shares.RequestID(r.RequestId), Fields: r.Fields, Days: int(r.Days), Reason: r.Reason})
	if err != nil {
		return nil, toStatus(err)
	}
	return s.decision(req, &g, seq), nil
}

func (s *sharesSvc) Reject(ctx context.Context, r *xhubv1.RejectRequest) (*xhubv1.DecisionResponse, error) {
	req, seq, err := s.cp.Reject(ctx, identityFrom(ctx), shares.Decision{Request: shares.RequestID(r.RequestId), Reason: r.Reason})
	if err != nil {
		return nil, toStatus(err)
	}
	return s.decision(req, nil, seq), nil
}

func (s *sharesSvc) Withdraw(ctx context.Context, r *xhubv1.WithdrawRequest) (*xhubv1.DecisionResponse, error) {
	req, seq, err := s.cp.Withdraw(ctx, identityFrom(ctx), shares.RequestID(r.RequestId))
	if err != nil {
		return nil, toStatus(err)
	}
	return s.decision(req, nil, seq), nil
}

func (s *sharesSvc) RevokeGrant(ctx context.Context, r *xhubv1.RevokeGrantRequest) (*xhubv1.DecisionResponse, error) {
	g, seq, err := s.cp.RevokeGrant(ctx, identityFrom(ctx), shares.GrantID(r.GrantId), r.Reason)
	if err != nil {
		return nil, toStatus(err)
	}
	return s.decision(shares.Request{}, &g, seq), nil
}

func (s *sharesSvc) Inbox(ctx context.Context, r *xhubv1.InboxRequest) (*xhubv1.ListSharesResponse, error) {
	size, after, err := s.page(ctx, r.MinSeq, r.PageSize, r.PageToken)
	if err != nil {
		return nil, err
	}
	id := identityFrom(ctx)
	now := s.now()
	f := exchange.ShareFilter{Status: string(shares.RequestPending), Viewer: id, Owner: id.Dept}
	reqs, next, err := s.cp.ListRequests(f, shares.RequestID(after), size, now)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &xhubv1.ListSharesResponse{NextPageToken: encodeToken(string(next))}
	for _, q := range reqs {
		out.Requests = append(out.Requests, requestPB(q, now))
	}
	return out, nil
}

func (s *sharesSvc) ListShares(ctx context.Context, r *xhubv1.ListSharesRequest) (*xhubv1.ListSharesResponse, error) {
	size, after, err := s.page(ctx, r.MinSeq, r.PageSize, r.PageToken)
	if err != nil {
		return nil, err
	}
	f := exchange.ShareFilter{Status: r.Status, Viewer: identityFrom(ctx)}
	if r.Dataset != "" {
		d, err := catalog.ParseDatasetID(r.Dataset)
		if err != nil {
			return nil, toStatus(err)
		}
		f.Dataset = d
	}
	if r.Grantee != "" {
		g, err := catalog.ParseDeptID(r.Grantee)
		if err != nil {
			return nil, toStatus(err)
		}
		f.Grantee = g
	}
	now := s.now()
	out := &xhubv1.ListSharesResponse{}
	if r.Requests {
		reqs, next, err := s.cp.ListRequests(f, shares.RequestID(after), size, now)
		if err != nil {
			return nil, toStatus(err)
		}
		for _, q := range reqs {
			out.Requests = append(out.Requests, requestPB(q, now))
		}
		out.NextPageToken = encodeToken(string(next))
		return out, nil
	}
	grants, next, err := s.cp.ListGrants(f, shares.GrantID(after), size, now)
	if err != nil {
		return nil, toStatus(err)
	}
	for _, g := range grants {
		out.Grants = append(out.Grants, grantPB(g, now))
	}
	out.NextPageToken = encodeToken(string(next))
	return out, nil
}

// WatchInbox streams the caller's department's events, each with the
// request, grant or dispute it is about as this node has it.
func (s *sharesSvc) WatchInbox(_ *xhubv1.WatchInboxRequest, stream xhubv1.Shares_WatchInboxServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	go func() {
		select {
		case <-s.draining:
			cancel()
		case <-ctx.Done():
		}
	}()
	events, err := s.cp.WatchEvents(ctx, identityFrom(ctx).Dept)
	if err != nil {
		return toStatus(err)
	}
	if err := stream.Send(&xhubv1.InboxEvent{}); err != nil {
		return err
	}
	for e := range events {
		out := &xhubv1.InboxEvent{Kind: e.Kind, Id: e.ID}
		s.describe(ctx, out)
		if err := stream.Send(out); err != nil {
			return err
		}
	}
	select {
	case <-s.draining:
		return status.Error(codes.Unavailable, "this hub node is shutting down: watch again (another node answers)")
	default:
	}
	return nil
}

// describe adds to an event what it is about; an entry another node has
// just applied is waited for, briefly.
func (s *sharesSvc) describe(ctx context.Context, e *xhubv1.InboxEvent) {
	now := s.now()
	for try := 0; try < 2; try++ {
		switch {
		case strings.HasPrefix(e.Kind, "share."):
			if r, err := s.cp.Request(shares.RequestID(e.Id)); err == nil {
				e.Request = requestPB(r, now)
				if r.Grant != "" {
					if g, err := s.cp.Grant(r.Grant); err == nil {
						e.Grant = grantPB(g, now)
					}
				}
				return
			}
		case strings.HasPrefix(e.Kind, "grant."):
			if g, err := s.cp.Grant(shares.GrantID(e.Id)); err == nil {
				e.Grant = grantPB(g, now)
				return
			}
		case strings.HasPrefix(e.Kind, "dispute."):
			if d, err := s.cp.Dispute(shares.DisputeID(e.Id)); err == nil {
				e.Dispute = disputePB(d, now)
				return
			}
		default:
			return
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_ = s.cp.CatchUp(cctx)
		cancel()
	}
}
