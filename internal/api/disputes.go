package api

import (
	"context"
	"time"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange"
	"github.com/xhub-gov/xhub/exchange/shares"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

type disputesSvc struct {
	xhubv1.UnimplementedDisputesServer
	*base
	now func() time.Time
}

func (s *disputesSvc) OpenDispute(ctx context.Context, r *xhubv1.OpenDisputeRequest) (*xhubv1.DisputeResponse, error) {
	d, seq, err := s.cp.OpenDispute(ctx, identityFrom(ctx), shares.DisputeInput{
		Dataset: catalog.DatasetID(r.Dataset), Reason: r.Reason, RecordKey: r.RecordKey, Field: r.Field,
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &xhubv1.DisputeResponse{Dispute: disputePB(d, s.now()), Seq: seq}, nil
}

func (s *disputesSvc) ResolveDispute(ctx context.Context, r *xhubv1.ResolveDisputeRequest) (*xhubv1.DisputeResponse, error) {
	d, seq, err := s.cp.ResolveDispute(ctx, identityFrom(ctx), shares.DisputeID(r.Id), shares.DisputeStatus(r.Outcome), r.Reason)
	if err != nil {
		return nil, toStatus(err)
	}
	return &xhubv1.DisputeResponse{Dispute: disputePB(d, s.now()), Seq: seq}, nil
}

func (s *disputesSvc) ListDisputes(ctx context.Context, r *xhubv1.ListDisputesRequest) (*xhubv1.ListDisputesResponse, error) {
	size, after, err := s.page(ctx, r.MinSeq, r.PageSize, r.PageToken)
	if err != nil {
		return nil, err
	}
	f := exchange.DisputeFilter{Status: r.Status, Viewer: identityFrom(ctx)}
	if r.Dataset != "" {
		ds, err := catalog.ParseDatasetID(r.Dataset)
		if err != nil {
			return nil, toStatus(err)
		}
		f.Dataset = ds
	}
	now := s.now()
	ds, next, err := s.cp.Disputes(f, shares.DisputeID(after), size, now)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &xhubv1.ListDisputesResponse{NextPageToken: encodeToken(string(next))}
	for _, d := range ds {
		out.Disputes = append(out.Disputes, disputePB(d, now))
	}
	return out, nil
}

func disputePB(d shares.Dispute, now time.Time) *xhubv1.Dispute {
	return &xhubv1.Dispute{
		Id: string(d.ID), Dataset: string(d.Dataset), Opener: string(d.Opener), OpenedBy: d.OpenedBy, Reason: d.Reason,
		RecordKey: d.RecordKey, Field: d.Field, Days: int32(d.Days), OpenedAt: ts(d.OpenedAt), Deadline: ts(d.Deadline),
		Status: string(d.Status), Overdue: d.Overdue(now), ResolvedBy: d.ResolvedBy, ResolvedAt: ts(d.ResolvedAt),
		Resolution: d.Resolution, Seq: d.Seq,
	}
}
