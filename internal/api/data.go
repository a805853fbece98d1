package api

import (
	"context"
	"errors"
	"io"
	"strconv"
	"time"

	"google.golang.org/grpc"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange"
	"github.com/xhub-gov/xhub/exchange/dataplane"
	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/pki"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
	"github.com/xhub-gov/xhub/proto/xhub/v1/vocabpb"
)

type exchangeSvc struct {
	xhubv1.UnimplementedExchangeServer
	*base
	dp *dataplane.Plane
}

func (s *exchangeSvc) Query(ctx context.Context, r *xhubv1.QueryRequest) (*xhubv1.QueryResponse, error) {
	if len(r.Filters) > vocab.MaxFilters {
		return nil, invalid("filters", "%d filters, at most %d", len(r.Filters), vocab.MaxFilters)
	}
	fs, err := vocabpb.VocabFilters(r.Filters)
	if err != nil {
		return nil, toStatus(err)
	}
	res, err := s.dp.Query(ctx, identityFrom(ctx), dataplane.QueryInput{
		Dataset: catalog.DatasetID(r.Dataset), Fields: r.Fields, Filters: fs, Limit: int(r.Limit), PageToken: r.PageToken,
		RequestID: exchange.RequestIDFrom(ctx),
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &xhubv1.QueryResponse{Records: res.Records, NextPageToken: res.NextPageToken, Withheld: int32(res.Withheld), WithheldReasons: res.WithheldReasons, RequestId: res.RequestID}, nil
}

func (s *exchangeSvc) Publish(ctx context.Context, r *xhubv1.PublishRequest) (*xhubv1.PublishResponse, error) {
	res, err := s.dp.Publish(ctx, identityFrom(ctx), catalog.DatasetID(r.Dataset), r.Records, r.BatchId)
	if err != nil {
		return nil, toStatus(err)
	}
	return &xhubv1.PublishResponse{StreamSeq: res.StreamSeq, Duplicate: res.Duplicate, Count: int32(res.Count)}, nil
}

// Subscribe: the first message starts, the rest acknowledge. The stream
// ends with PERMISSION_DENIED within a second of the grant ending.
func (s *exchangeSvc) Subscribe(stream xhubv1.Exchange_SubscribeServer) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	start := first.GetStart()
	if start == nil {
		return invalid("start", "the first message of a subscription must be a start")
	}
	caller := identityFrom(ctx)
	sub, err := s.dp.Subscribe(ctx, caller, dataplane.SubscribeInput{Dataset: catalog.DatasetID(start.Dataset), Name: start.Name, From: start.From})
	if err != nil {
		return toStatus(err)
	}
	defer sub.Close()
	// The ready marker: the durable consumer exists, records published
	// from now on will be delivered.
	if err := stream.Send(&xhubv1.SubscribeResponse{}); err != nil {
		return err
	}
	ackErr := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				ackErr <- err
				return
			}
			if a := m.GetAck(); a != nil {
				if err := sub.Ack(a.DeliveryIds); err != nil {
					ackErr <- err
					return
				}
			}
		}
	}()
	for {
		select {
		case d, ok := <-sub.Deliveries():
			if !ok {
				if err := sub.Err(); err != nil {
					return toStatus(err)
				}
				return nil
			}
			if err := stream.Send(&xhubv1.SubscribeResponse{DeliveryId: d.ID, Record: d.Record, PublishedAt: ts(d.PublishedAt)}); err != nil {
				return err
			}
		case err := <-ackErr:
			if err != nil {
				return status.Error(codes.Canceled, "subscriber went away: "+err.Error())
			}
			return nil
		case <-s.draining:
			return status.Error(codes.Unavailable, "hub node shutting down: resubscribe (to any node) to resume")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *exchangeSvc) ListSubscriptions(ctx context.Context, r *xhubv1.ListSubscriptionsRequest) (*xhubv1.ListSubscriptionsResponse, error) {
	dept, err := optDept(r.Dept)
	if err != nil {
		return nil, err
	}
	ds, err := optDataset(r.Dataset)
	if err != nil {
		return nil, err
	}
	subs, err := s.dp.ListSubscriptions(ctx, identityFrom(ctx), dept, ds)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &xhubv1.ListSubscriptionsResponse{Limit: int32(s.dp.Limits().MaxDurableSubscriptions)}
	for _, si := range subs {
		out.Subscriptions = append(out.Subscriptions, subscriptionPB(si))
	}
	return out, nil
}

func (s *exchangeSvc) DeleteSubscription(ctx context.Context, r *xhubv1.DeleteSubscriptionRequest) (*xhubv1.DeleteSubscriptionResponse, error) {
	ds, err := optDataset(r.Dataset)
	if err != nil {
		return nil, err
	}
	si, err := s.dp.DeleteSubscription(ctx, identityFrom(ctx), ds, r.Name)
	if err != nil {
		return nil, toStatus(err)
	}
	return &xhubv1.DeleteSubscriptionResponse{Deleted: subscriptionPB(si)}, nil
}

// optDataset parses an optional dataset id ("" stays "").
func optDataset(s string) (catalog.DatasetID, error) {
	if s == "" {
		return "", nil
	}
	d, err := catalog.ParseDatasetID(s)
	return d, toStatus(err)
}

// optDept parses an optional department id ("" stays "").
func optDept(s string) (catalog.DeptID, error) {
	if s == "" {
		return "", nil
	}
	d, err := catalog.ParseDeptID(s)
	return d, toStatus(err)
}

func subscriptionPB(si dataplane.SubscriptionInfo) *xhubv1.SubscriptionInfo {
	return &xhubv1.SubscriptionInfo{
		Dept: string(si.Dept), Dataset: string(si.Dataset), Name: si.Name, CreatedBy: si.CreatedBy, Created: ts(si.Created),
		Pending: si.Pending, AckPending: int64(si.AckPending), Open: si.Open, IdleExpiry: durationpb.New(si.IdleExpiry),
	}
}

type providerSvc struct {
	xhubv1.UnimplementedProviderServer
	*base
	dp     *dataplane.Plane
	maxMsg int // ConnLimits.MaxMessageBytes, told to the provider
}

// MaxMessageHeader, in a provider stream's header, is the largest message
// the hub receives (ConnLimits.MaxMessageBytes): a provider whose answer
// is larger sends the reason instead, and its stream stays open (a larger
// message would end it).
const MaxMessageHeader = "xhub-max-message-bytes"

// Serve: the provider says hello with its datasets, then answers calls.
func (s *providerSvc) Serve(stream xhubv1.Provider_ServeServer) error {
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	hello := first.GetHello()
	if hello == nil {
		return invalid("hello", "the first message of a provider stream must be a hello naming its datasets")
	}
	ids := make([]catalog.DatasetID, len(hello.Datasets))
	for i, d := range hello.Datasets {
		ids[i] = catalog.DatasetID(d)
	}
	sess, err := s.dp.OpenProvider(ctx, identityFrom(ctx), ids)
	if err != nil {
		return toStatus(err)
	}
	_ = stream.SetHeader(metadata.Pairs(MaxMessageHeader, strconv.Itoa(s.maxMsg))) // sent with the first call
	defer sess.Close()
	recvErr := make(chan error, 1)
	go func() {
		for {
			m, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			if r := m.GetResult(); r != nil {
				res := dataplane.Result{CallID: r.CallId, NextToken: r.NextPageToken, Error: r.Error, Records: r.Records}
				if err := sess.Answer(res); err != nil {
					s.log.Debug("provider answer", "err", err)
				}
			}
		}
	}()
	for {
		select {
		case c := <-sess.Calls():
			if !sess.Awaited(c.ID) {
				continue // its consumer has left: no work for the provider
			}
			if err := stream.Send(&xhubv1.ProviderCall{CallId: c.ID, Dataset: string(c.Dataset), Fields: c.Fields, Filters: vocabpb.Filters(c.Filters), Limit: int32(c.Limit), PageToken: c.PageToken, RequestId: c.RequestID}); err != nil {
				return err
			}
		case err := <-recvErr:
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		case <-s.draining:
			return status.Error(codes.Unavailable, "hub node shutting down: reconnect (to any node)")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

type auditSvc struct {
	xhubv1.UnimplementedAuditServer
	*base
	dp  *dataplane.Plane
	ca  *pki.Authority
	now func() time.Time
}

// exportChunk bounds an export's messages: entries per chunk and bytes.
const (
	exportChunkEntries = 256
	exportChunkBytes   = 512 << 10
)

// ExportAudit streams the entries of a period, then the hub's seal over
// them: the chain is computed here, from what the hub sends, and signed
// with the ledger key with the ledger head of the moment.
func (s *auditSvc) ExportAudit(r *xhubv1.ExportAuditRequest, ss grpc.ServerStreamingServer[xhubv1.ExportAuditChunk]) error {
	ctx := ss.Context()
	var f dataplane.AuditFilter
	var err error
	if f.Dataset, err = optDataset(r.Dataset); err != nil {
		return err
	}
	if f.Dept, err = optDept(r.Dept); err != nil {
		return err
	}
	if r.Since == nil {
		return invalid("since", "is required: an export covers a stated period")
	}
	f.Since = r.Since.AsTime()
	until := s.now()
	if r.Until != nil {
		until = r.Until.AsTime()
	}
	// The head first: every entry of the export was stored after it or
	// before, and the seal places the export after this head.
	head, err := s.cp.TreeHead()
	if err != nil {
		return toStatus(err)
	}
	viewer := identityFrom(ctx)
	chunk := &xhubv1.ExportAuditChunk{}
	size := 0
	flush := func() error {
		if len(chunk.Entries) == 0 {
			return nil
		}
		err := ss.Send(chunk)
		chunk, size = &xhubv1.ExportAuditChunk{}, 0
		return err
	}
	n, last, err := s.dp.ExportAudit(ctx, viewer, f, until, func(b []byte) error {
		if len(chunk.Entries) >= exportChunkEntries || size+len(b) > exportChunkBytes {
			if err := flush(); err != nil {
				return err
			}
		}
		chunk.Entries = append(chunk.Entries, b)
		size += len(b)
		return nil
	})
	if err != nil {
		return toStatus(err)
	}
	if err := flush(); err != nil {
		return err
	}
	seal, err := ledger.SignAuditSeal(ledger.AuditSeal{
		Dataset: string(f.Dataset), Dept: string(f.Dept), Since: f.Since, Until: until,
		Entries: n, LastHash: last, ExportedBy: viewer.URI(), ExportedAt: s.now(), Head: head,
	}, s.ca.Signer)
	if err != nil {
		return toStatus(err)
	}
	return ss.Send(&xhubv1.ExportAuditChunk{Seal: seal})
}

func (s *auditSvc) ListAudit(ctx context.Context, r *xhubv1.ListAuditRequest) (*xhubv1.ListAuditResponse, error) {
	size, err := pageSize(r.PageSize)
	if err != nil {
		return nil, err
	}
	after, err := decodeToken(r.PageToken)
	if err != nil {
		return nil, err
	}
	f := dataplane.AuditFilter{Limit: size}
	if after != "" {
		if f.After, err = strconv.ParseUint(after, 10, 64); err != nil {
			return nil, invalid("page_token", "is not a token this hub issued")
		}
	}
	if f.Dataset, err = optDataset(r.Dataset); err != nil {
		return nil, err
	}
	if f.Dept, err = optDept(r.Dept); err != nil {
		return nil, err
	}
	if r.Since != nil {
		f.Since = r.Since.AsTime()
	}
	es, next, err := s.dp.ListAudit(ctx, identityFrom(ctx), f)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &xhubv1.ListAuditResponse{}
	if next > 0 {
		out.NextPageToken = encodeToken(strconv.FormatUint(next, 10))
	}
	for _, e := range es {
		out.Entries = append(out.Entries, &xhubv1.AuditEntry{
			Id: e.ID, Dept: string(e.Dept), Identity: e.Identity, Dataset: string(e.Dataset), Action: e.Action,
			Fields: e.Fields, Records: e.Records, Time: ts(e.Time), RequestId: e.RequestID,
			Withheld: e.Withheld, WithheldReasons: e.WithheldReasons, ProviderReasons: e.ProviderReasons, Subscription: e.Subscription,
		})
	}
	return out, nil
}
