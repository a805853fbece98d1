package adapters

import (
	"context"
	"time"

	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

// Dispute is a data dispute (数据异议) on a dataset.
type Dispute struct {
	ID         string    `json:"id"`
	Dataset    string    `json:"dataset"`
	Opener     string    `json:"opener"`
	OpenedBy   string    `json:"opened_by"`
	Reason     string    `json:"reason"`
	RecordKey  string    `json:"record_key,omitempty"`
	Field      string    `json:"field,omitempty"`
	Days       int       `json:"days"`
	OpenedAt   time.Time `json:"opened_at"`
	Deadline   time.Time `json:"deadline"`
	Status     string    `json:"status"`
	Overdue    bool      `json:"overdue"`
	ResolvedBy string    `json:"resolved_by,omitempty"`
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	Resolution string    `json:"resolution,omitempty"`
	Seq        uint64    `json:"seq"`
}

// DisputeSpec opens a dispute.
type DisputeSpec struct {
	Dataset   string
	Reason    string
	RecordKey string // which record, in the dataset's own terms
	Field     string // a field of the opener's grant
}

// OpenDispute opens a dispute on a dataset the caller's department holds
// a grant for (officer).
func (c *Client) OpenDispute(ctx context.Context, s DisputeSpec) (Dispute, error) {
	r, err := c.disputes.OpenDispute(ctx, &xhubv1.OpenDisputeRequest{Dataset: s.Dataset, Reason: s.Reason, RecordKey: s.RecordKey, Field: s.Field})
	if err != nil {
		return Dispute{}, err
	}
	return disputeOf(r.Dispute), nil
}

// ResolveDispute answers a dispute on one of the caller's department's
// datasets: outcome corrected or rejected, with the reason.
func (c *Client) ResolveDispute(ctx context.Context, id, outcome, reason string) (Dispute, error) {
	r, err := c.disputes.ResolveDispute(ctx, &xhubv1.ResolveDisputeRequest{Id: id, Outcome: outcome, Reason: reason})
	if err != nil {
		return Dispute{}, err
	}
	return disputeOf(r.Dispute), nil
}

// Disputes lists the disputes the caller may see (opened by its
// department, or on its datasets), every page.
func (c *Client) Disputes(ctx context.Context, dataset, status string) ([]Dispute, error) {
	return collect(func(token string) ([]Dispute, string, error) {
		r, err := c.disputes.ListDisputes(ctx, &xhubv1.ListDisputesRequest{Dataset: dataset, Status: status, PageSize: maxPage, PageToken: token})
		if err != nil {
			return nil, "", err
		}
		return mapped(r.Disputes, disputeOf), r.NextPageToken, nil
	})
}

func disputeOf(d *xhubv1.Dispute) Dispute {
	return Dispute{ID: d.GetId(), Dataset: d.GetDataset(), Opener: d.GetOpener(), OpenedBy: d.GetOpenedBy(), Reason: d.GetReason(),
		RecordKey: d.GetRecordKey(), Field: d.GetField(), Days: int(d.GetDays()), OpenedAt: at(d.GetOpenedAt()), Deadline: at(d.GetDeadline()),
		Status: d.GetStatus(), Overdue: d.GetOverdue(), ResolvedBy: d.GetResolvedBy(), ResolvedAt: at(d.GetResolvedAt()),
		Resolution: d.GetResolution(), Seq: d.GetSeq()}
}

// InboxEvent is something that happened to the caller's department: a
// request for its data, a decision on its request, a dispute.
type InboxEvent struct {
	Kind    string        `json:"kind"`
	ID      string        `json:"id"`
	Request *ShareRequest `json:"request,omitempty"`
	Grant   *Grant        `json:"grant,omitempty"`
	Dispute *Dispute      `json:"dispute,omitempty"`
}

// WatchInbox calls ready once the hub is watching, then fn with each of
// the department's events as it happens, until ctx ends (nil) or the
// stream fails.
func (c *Client) WatchInbox(ctx context.Context, ready func(), fn func(InboxEvent) error) error {
	st, err := c.shares.WatchInbox(ctx, &xhubv1.WatchInboxRequest{})
	if err != nil {
		return err
	}
	first := true
	for {
		e, err := st.Recv()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if first {
			first = false
			if ready != nil {
				ready()
			}
			if e.GetKind() == "" {
				continue
			}
		}
		ev := InboxEvent{Kind: e.GetKind(), ID: e.GetId()}
		if e.Request != nil {
			r := requestOf(e.Request)
			ev.Request = &r
		}
		if e.Grant != nil {
			g := grantOf(e.Grant)
			ev.Grant = &g
		}
		if e.Dispute != nil {
			d := disputeOf(e.Dispute)
			ev.Dispute = &d
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
}
