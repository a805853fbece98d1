package adapters

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"github.com/xhub-gov/xhub/exchange/vocab"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
	"github.com/xhub-gov/xhub/proto/xhub/v1/vocabpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// ---------------------------------------------------------------- provider

// ProviderQuery is a query the hub forwards to a provider. Fields,
// filters and limit are already checked against the consumer's grant; the
// hub validates and cuts down whatever the handler returns, but a handler
// that pushes them down to its store saves work.
type ProviderQuery struct {
	Dataset   string
	Fields    []string
	Filters   []vocab.Filter
	Limit     int
	PageToken string // "" for the first page, else one a Handler of the dataset returned
	RequestID string // the consumer's request id for this query (also in the audit entry): log it
}

// MaxPageToken bounds the page token a Handler returns (the hub refuses
// a longer one).
const MaxPageToken = 512

// Handler answers one query with records (JSON objects) and the page token
// of the next page ("" when there is none), at most MaxPageToken bytes.
// The token may hold anything the provider pages on, the key of the last
// record say, granted to the consumer or not: the hub seals it, bound to
// the consumer and the query, and the consumer sees only the sealed
// token. A query's PageToken is always one a Handler of the dataset
// returned (the hub refuses any other before asking).
type Handler func(ctx context.Context, q ProviderQuery) (records [][]byte, next string, err error)

// maxMessageHeader is api.MaxMessageHeader.
const maxMessageHeader = "xhub-max-message-bytes"

// Serve provides datasets of this client's department: it opens one
// long-lived stream to the hub (outbound: no inbound port needed) and
// answers each query with h, concurrently. It returns when ctx ends or the
// stream breaks; call it again to reconnect.
func (c *Client) Serve(ctx context.Context, datasets []string, h Handler) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	// The handlers' context ends with the stream: a handler still working
	// when the hub goes away stops, and Serve does not wait for it forever.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.provider.Serve(ctx)
	if err != nil {
		return err
	}
	if err := stream.Send(&xhubv1.ProviderMessage{Msg: &xhubv1.ProviderMessage_Hello{Hello: &xhubv1.ProviderHello{Datasets: datasets}}}); err != nil {
		return err
	}
	var sendMu sync.Mutex
	maxMsg := -1 // the largest message the hub receives (from the stream's header; 0: not said)
	for {
		call, err := stream.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) || ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		if maxMsg < 0 {
			md, _ := stream.Header() // received with the first call
			maxMsg = 0
			if v := md.Get(maxMessageHeader); len(v) == 1 {
				maxMsg, _ = strconv.Atoi(v[0])
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := ProviderQuery{Dataset: call.Dataset, Fields: call.Fields, Limit: int(call.Limit), PageToken: call.PageToken, RequestID: call.RequestId}
			res := &xhubv1.ProviderResult{CallId: call.CallId}
			fs, err := vocabpb.VocabFilters(call.Filters)
			for _, f := range fs {
				if err == nil {
					err = f.Check() // the hub checked it; a handler need not trust that
				}
			}
			if err != nil {
				res.Error = err.Error()
			}
			q.Filters = fs
			if res.Error == "" {
				recs, next, err := h(ctx, q)
				switch {
				case err != nil:
					res.Error = err.Error()
				case len(next) > MaxPageToken:
					res.Error = fmt.Sprintf("the handler's page token is %d bytes, at most %d", len(next), MaxPageToken)
				default:
					res.Records, res.NextPageToken = recs, next
				}
			}
			msg := &xhubv1.ProviderMessage{Msg: &xhubv1.ProviderMessage_Result{Result: res}}
			if n := proto.Size(msg); maxMsg > 0 && n > maxMsg {
				// The hub would end the stream on it: say why instead.
				msg.Msg = &xhubv1.ProviderMessage_Result{Result: &xhubv1.ProviderResult{CallId: call.CallId,
					Error: fmt.Sprintf("the answer is %d bytes, more than one answer may carry (%d): ask for fewer records per page (limit) or fewer fields", n, maxMsg)}}
			}
			sendMu.Lock()
			defer sendMu.Unlock()
			_ = stream.Send(msg)
		}()
	}
}

// Provide is Serve that stays connected: when the stream breaks (its hub
// node stopped, the network cut) it opens it again — on the next hub
// address when there are several — after a back-off from 100 ms doubling
// to 10 s (back to 100 ms after a stream that lasted 10 s). onBreak, if
// set, hears each break and the wait before the next try. It returns nil
// when ctx ends, and the error when trying again cannot help (the
// credential refused or revoked, a dataset not the caller's or not in the
// catalog).
func (c *Client) Provide(ctx context.Context, datasets []string, h Handler, onBreak func(err error, wait time.Duration)) error {
	backoff := 100 * time.Millisecond
	for {
		start := time.Now()
		err := c.Serve(ctx, datasets, h)
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			err = errors.New("stream closed")
		}
		switch status.Code(err) {
		case codes.PermissionDenied, codes.Unauthenticated, codes.InvalidArgument, codes.NotFound, codes.FailedPrecondition:
			return err
		}
		if time.Since(start) > 10*time.Second {
			backoff = 100 * time.Millisecond
		}
		if onBreak != nil {
			onBreak(err, backoff)
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// Publish stores a batch of records (JSON objects) in the dataset's
// stream: validated whole, stored whole or not at all. Retrying with the
// same batchID stores it once.
func (c *Client) Publish(ctx context.Context, dataset string, records [][]byte, batchID string) (*PublishResult, error) {
	r, err := c.exchange.Publish(ctx, &xhubv1.PublishRequest{Dataset: dataset, Records: records, BatchId: batchID})
	if err != nil {
		return nil, err
	}
	return &PublishResult{StreamSeq: r.StreamSeq, Duplicate: r.Duplicate, Count: int(r.Count)}, nil
}

// PublishResult says where a batch was stored.
type PublishResult struct {
	StreamSeq uint64 `json:"stream_seq"` // the batch's position in the dataset's stream
	Duplicate bool   `json:"duplicate"`  // the batch id was stored before: nothing new stored
	Count     int    `json:"count"`      // records in the batch
}

// QueryResult is one page of a query's answer.
type QueryResult struct {
	Records         [][]byte // JSON objects, cut to the granted (and requested) fields
	NextPageToken   string   // "" on the last page
	Withheld        int      // records the hub refused to deliver (they failed the schema or the filters)
	WithheldReasons []string // why, in terms of the granted fields only (at most 20)
	RequestID       string   // the audit entry's request id
}

// Delivery is one record of a subscription.
type Delivery struct {
	ID          uint64 // acknowledge it with Ack(ID)
	Record      []byte // a JSON object, cut to the granted fields
	PublishedAt time.Time
}

// ---------------------------------------------------------------- consumer

// QueryOptions narrows a query. Where takes the CLI's filter form
// ("age>=18", "district=north", `vaccine in ["MMR"]`, "name prefix Li").
type QueryOptions struct {
	Fields    []string
	Where     []string
	Limit     int
	PageToken string
}

// Query reads records of a dataset this client's department is granted.
func (c *Client) Query(ctx context.Context, dataset string, o QueryOptions) (*QueryResult, error) {
	req := &xhubv1.QueryRequest{Dataset: dataset, Fields: o.Fields, Limit: int32(o.Limit), PageToken: o.PageToken}
	for _, w := range o.Where {
		f, err := vocab.ParseFilter(w)
		if err != nil {
			return nil, fmt.Errorf("filter %q: %w", w, err)
		}
		req.Filters = append(req.Filters, vocabpb.Filter(f))
	}
	r, err := c.exchange.Query(ctx, req)
	if err != nil {
		return nil, err
	}
	return &QueryResult{Records: r.Records, NextPageToken: r.NextPageToken, Withheld: int(r.Withheld), WithheldReasons: r.WithheldReasons, RequestID: r.RequestId}, nil
}

// Subscription receives a dataset's published records, at least once.
// With several hub addresses, a subscription whose node goes away resumes
// on another from its durable position: records not yet acknowledged are
// delivered again, and acknowledgements of deliveries made before the
// switch are dropped (those records come again), never applied to others.
type Subscription struct {
	c                   *Client
	ctx                 context.Context
	dataset, name, from string
	resume              bool

	mu     sync.Mutex
	stream xhubv1.Exchange_SubscribeClient
	gen    uint64 // stream generation: the high bits of every Delivery.ID
	closed bool

	// Resumed counts the times the subscription moved to another node.
	Resumed int
}

// genShift puts the stream generation above the hub's delivery ids.
const genShift = 40

// Subscribe opens (or resumes) the durable subscription name of this
// client's department. from is "new" or "beginning" (used when the
// subscription is first made). It returns once the hub has the
// subscription in place, or with the hub's refusal.
func (c *Client) Subscribe(ctx context.Context, dataset, name, from string) (*Subscription, error) {
	s := &Subscription{c: c, ctx: ctx, dataset: dataset, name: name, from: from, resume: len(splitHubs(c.addr)) > 1}
	stream, err := s.open()
	if err != nil {
		return nil, err
	}
	s.stream = stream
	return s, nil
}

func (s *Subscription) open() (xhubv1.Exchange_SubscribeClient, error) {
	return openStream(s.ctx, func() (xhubv1.Exchange_SubscribeClient, error) {
		stream, err := s.c.exchange.Subscribe(s.ctx)
		if err != nil {
			return nil, err
		}
		err = stream.Send(&xhubv1.SubscribeRequest{Msg: &xhubv1.SubscribeRequest_Start{Start: &xhubv1.SubscribeStart{Dataset: s.dataset, Name: s.name, From: s.from}}})
		if err != nil {
			return nil, err
		}
		// Wait for the hub's ready marker (delivery id 0): a refusal is
		// reported here, and records published after Subscribe returns
		// are delivered.
		ready, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		if ready.DeliveryId != 0 || ready.Record != nil {
			return nil, fmt.Errorf("subscribe: hub sent a record before its ready marker")
		}
		return stream, nil
	})
}

// Recv waits for the next record. Its error is the reason the hub ended
// the subscription (PERMISSION_DENIED when the grant ended).
func (s *Subscription) Recv() (*Delivery, error) {
	for {
		s.mu.Lock()
		stream, gen := s.stream, s.gen
		s.mu.Unlock()
		m, err := stream.Recv()
		if err == nil {
			return &Delivery{ID: gen<<genShift | m.DeliveryId, Record: m.Record, PublishedAt: m.PublishedAt.AsTime()}, nil
		}
		if !s.resume || status.Code(err) != codes.Unavailable || s.ctx.Err() != nil {
			return nil, err
		}
		next, oerr := s.open()
		if oerr != nil {
			return nil, err
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = next.CloseSend()
			return nil, err
		}
		s.stream, s.gen = next, s.gen+1
		s.Resumed++
		s.mu.Unlock()
	}
}

// Ack acknowledges records by delivery id; unacknowledged records are
// delivered again.
func (s *Subscription) Ack(ids ...uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := make([]uint64, 0, len(ids))
	for _, id := range ids {
		if id>>genShift == s.gen {
			cur = append(cur, id&(1<<genShift-1))
		}
	}
	if len(cur) == 0 {
		return nil
	}
	err := s.stream.Send(&xhubv1.SubscribeRequest{Msg: &xhubv1.SubscribeRequest_Ack{Ack: &xhubv1.SubscribeAck{DeliveryIds: cur}}})
	if err != nil && s.resume && errors.Is(err, io.EOF) {
		return nil // the stream broke: Recv resumes, these records come again
	}
	return err
}

// Close ends the subscription.
func (s *Subscription) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return s.stream.CloseSend()
}
