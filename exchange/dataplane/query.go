package dataplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/bus"
	"github.com/xhub-gov/xhub/internal/fault"
)

// Call is a query forwarded to a provider. Between nodes it travels as a
// frame (filters, if any, as JSON).
type Call struct {
	ID        string
	Dataset   catalog.DatasetID
	Fields    []string
	Filters   []vocab.Filter
	Limit     int
	PageToken string
	Consumer  catalog.DeptID
	RequestID string
}

func (c Call) encode() ([]byte, error) {
	filters := ""
	if len(c.Filters) > 0 {
		b, err := json.Marshal(c.Filters)
		if err != nil {
			return nil, err
		}
		filters = string(b)
	}
	fields := make([][]byte, len(c.Fields))
	for i, f := range c.Fields {
		fields[i] = []byte(f)
	}
	strs := []string{string(c.Dataset), string(c.Consumer), c.RequestID, c.PageToken, strconv.Itoa(c.Limit), filters}
	return encodeFrame(callMagic, strs, fields), nil
}

func decodeCall(b []byte) (Call, error) {
	strs, fields, err := decodeFrame(callMagic, b, 6)
	if err != nil {
		return Call{}, err
	}
	limit, err := strconv.Atoi(strs[4])
	if err != nil {
		return Call{}, errFrame
	}
	c := Call{Dataset: catalog.DatasetID(strs[0]), Consumer: catalog.DeptID(strs[1]), RequestID: strs[2], PageToken: strs[3], Limit: limit}
	for _, f := range fields {
		c.Fields = append(c.Fields, string(f))
	}
	if strs[5] != "" {
		var raw []struct {
			Field string          `json:"field"`
			Op    vocab.Op        `json:"op"`
			Value json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal([]byte(strs[5]), &raw); err != nil {
			return Call{}, errFrame
		}
		for _, r := range raw {
			v, err := vocab.DecodeFilterValue(r.Value)
			if err != nil {
				return Call{}, errFrame
			}
			c.Filters = append(c.Filters, vocab.Filter{Field: r.Field, Op: r.Op, Value: v})
		}
	}
	return c, nil
}

// Result is a provider's answer. Between nodes it travels as a frame.
type Result struct {
	CallID    string
	Records   [][]byte
	NextToken string
	Error     string
}

func (r Result) encode() []byte {
	return encodeFrame(resultMagic, []string{r.Error, r.NextToken}, r.Records)
}

func decodeResult(b []byte) (Result, error) {
	strs, recs, err := decodeFrame(resultMagic, b, 2)
	if err != nil {
		return Result{}, err
	}
	return Result{Error: strs[0], NextToken: strs[1], Records: recs}, nil
}

// QueryInput is a consumer's query.
type QueryInput struct {
	Dataset   catalog.DatasetID
	Fields    []string
	Filters   []vocab.Filter
	Limit     int
	PageToken string
}

// QueryResult is what the consumer receives.
type QueryResult struct {
	Records         [][]byte
	NextPageToken   string
	Withheld        int
	WithheldReasons []string
	RequestID       string
	Fields          []string
}

// MaxWithheldReasons bounds the reasons listed (the count is exact).
const MaxWithheldReasons = 20

// Query checks the caller's grant, forwards the query to a provider of
// the dataset, validates and projects what comes back, and audits it.
func (p *Plane) Query(ctx context.Context, caller vocab.Identity, in QueryInput) (res QueryResult, err error) {
	defer func() {
		outcome := "ok"
		switch {
		case err == nil:
			p.m.returned.Add(float64(len(res.Records)))
			p.m.withheld.Add(float64(res.Withheld))
		case fault.KindOf(err) == fault.KindDenied:
			outcome = "denied"
		case fault.KindOf(err) == fault.KindUnavailable:
			outcome = "unavailable"
		default:
			outcome = "error"
		}
		p.m.queries.WithLabelValues(outcome).Inc()
	}()
	return p.query(ctx, caller, in)
}

func (p *Plane) query(ctx context.Context, caller vocab.Identity, in QueryInput) (QueryResult, error) {
	ds, err := p.publishedDataset(in.Dataset)
	if err != nil {
		return QueryResult{}, err
	}
	acc, err := p.access(caller, ds)
	if err != nil {
		return QueryResult{}, err
	}
	fields, err := fieldsWithin(in.Fields, acc, ds.ID)
	if err != nil {
		return QueryResult{}, err
	}
	if len(in.Filters) > vocab.MaxFilters {
		return QueryResult{}, fault.Invalid("filters", "%d filters, at most %d", len(in.Filters), vocab.MaxFilters)
	}
	for _, f := range in.Filters {
		if err := f.Validate(ds.Fields); err != nil {
			return QueryResult{}, err
		}
		if _, ok := acc.Allows([]string{f.Field}); !ok {
			return QueryResult{}, fault.Denied("filter on field %q of %s is not allowed: the field is not granted to your department, and filtering on it would reveal it", f.Field, ds.ID)
		}
	}
	limit := in.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	if limit < 0 || limit > MaxLimit {
		return QueryResult{}, fault.Invalid("limit", "%d is not between 1 and %d", limit, MaxLimit)
	}
	if len(in.PageToken) > 1024 {
		return QueryResult{}, fault.Invalid("page_token", "is %d bytes, at most 1024", len(in.PageToken))
	}
	sch, err := p.cp.DatasetSchema(ds)
	if err != nil {
		return QueryResult{}, err
	}
	// The provider is asked for the requested fields and the filtered
	// ones (all granted): hidden data never leaves the department. Its
	// answer is judged by the schema restricted to those fields, on the
	// record cut down to them, so whether a record is withheld, and why,
	// depends on granted fields alone.
	fetch := fields
	for _, f := range in.Filters {
		if _, ok := slices.BinarySearch(fetch, f.Field); !ok {
			fetch = append(slices.Clone(fetch), f.Field)
			slices.Sort(fetch)
		}
	}
	rsch, err := sch.Restrict(fetch)
	if err != nil {
		return QueryResult{}, fmt.Errorf("schema of %s restricted to %v: %w", ds.ID, fetch, err)
	}
	reqID := newRequestID()
	call := Call{Dataset: ds.ID, Fields: fetch, Filters: in.Filters, Limit: limit, PageToken: in.PageToken, Consumer: caller.Dept, RequestID: reqID}
	data, err := call.encode()
	if err != nil {
		return QueryResult{}, err
	}
	qctx, cancel := context.WithTimeout(ctx, p.cfg.QueryTimeout)
	defer cancel()
	msg, err := p.nc.RequestWithContext(qctx, bus.QueryPrefix+string(ds.ID), data)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return QueryResult{}, &fault.Error{Kind: fault.KindUnavailable, Msg: fmt.Sprintf("no provider of %s is connected", ds.ID)}
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return QueryResult{}, &fault.Error{Kind: fault.KindUnavailable, Msg: fmt.Sprintf("the provider of %s did not answer within %s", ds.ID, p.cfg.QueryTimeout)}
	case err != nil:
		return QueryResult{}, err
	}
	pres, err := decodeResult(msg.Data)
	if err != nil {
		return QueryResult{}, &fault.Error{Kind: fault.KindUnavailable, Msg: "provider answer is malformed: " + err.Error()}
	}
	if pres.Error != "" {
		return QueryResult{}, &fault.Error{Kind: fault.KindUnavailable, Msg: fmt.Sprintf("provider of %s: %s", ds.ID, pres.Error)}
	}
	out := QueryResult{RequestID: reqID, NextPageToken: pres.NextToken, Fields: fields}
	var providerReasons []string
	// withhold counts a record; the consumer is told why in terms of its
	// granted fields, the provider's audit gets the details.
	withhold := func(i int, why, detail string) {
		out.Withheld++
		if len(out.WithheldReasons) < MaxWithheldReasons {
			out.WithheldReasons = append(out.WithheldReasons, fmt.Sprintf("record %d: %s", i, why))
			if detail == "" {
				detail = why
			}
			providerReasons = append(providerReasons, fmt.Sprintf("record %d: %s", i, detail))
		}
	}
	if len(pres.Records) > limit {
		for i := limit; i < len(pres.Records); i++ {
			withhold(i, fmt.Sprintf("beyond the limit of %d", limit), "")
		}
		pres.Records = pres.Records[:limit]
	}
	for i, raw := range pres.Records {
		if len(raw) > p.cfg.MaxRecordBytes {
			withhold(i, fmt.Sprintf("larger than the record bound of %d bytes", p.cfg.MaxRecordBytes), fmt.Sprintf("is %d bytes, at most %d", len(raw), p.cfg.MaxRecordBytes))
			continue
		}
		rec, err := decodeObject(raw, p.cfg.MaxRecordBytes)
		if err != nil {
			withhold(i, "the provider's answer is not a JSON object", err.Error())
			continue
		}
		view, _ := cut(rec, fetch)
		if err := rsch.Validate(view); err != nil {
			withhold(i, "fails the schema: "+err.Error(), "")
			continue
		}
		matched := true
		for _, f := range in.Filters {
			if !f.Match(view) {
				matched = false
				break
			}
		}
		if !matched {
			withhold(i, "does not match the filters", "")
			continue
		}
		b, err := projectRaw(raw, rec, fields)
		if err != nil {
			withhold(i, "cannot be cut down to the granted fields", err.Error())
			continue
		}
		out.Records = append(out.Records, b)
	}
	p.audit.record(AuditEntry{
		RequestID: reqID, Dept: caller.Dept, Identity: caller.URI(), Dataset: ds.ID, Action: ActionQuery, Fields: fields,
		Records: int64(len(out.Records)), Withheld: int64(out.Withheld), WithheldReasons: out.WithheldReasons, ProviderReasons: providerReasons, Time: p.cfg.Now(),
	})
	return out, nil
}

// MaxProvidedDatasets bounds the datasets of one provider stream.
const MaxProvidedDatasets = 256

// ProviderSession routes the queries for a provider's datasets to it,
// while it is connected.
type ProviderSession struct {
	p       *Plane
	calls   chan Call
	subs    []*nats.Subscription
	mu      sync.Mutex
	pending map[string]*nats.Msg
	next    atomic.Uint64
	closed  bool
	release func()

	closeOnce sync.Once
}

// OpenProvider subscribes, in the providers' queue group, to the queries
// of the given datasets; each must belong to the caller's department. The
// session's Calls channel delivers them; answer each with Answer.
func (p *Plane) OpenProvider(caller vocab.Identity, datasets []catalog.DatasetID) (*ProviderSession, error) {
	if len(datasets) == 0 || len(datasets) > MaxProvidedDatasets {
		return nil, fault.Invalid("datasets", "name 1 to %d datasets to provide, not %d", MaxProvidedDatasets, len(datasets))
	}
	for _, id := range datasets {
		ds, err := p.publishedDataset(id)
		if err != nil {
			return nil, err
		}
		if ds.Owner() != caller.Dept {
			return nil, fault.Denied("%s: a system of %s may only provide its own department's datasets, not %s", caller.URI(), caller.Dept, id)
		}
	}
	release, err := p.providers.take(caller.Dept)
	if err != nil {
		return nil, err
	}
	s := &ProviderSession{p: p, calls: make(chan Call, 256), pending: make(map[string]*nats.Msg), release: release}
	p.m.providers.Inc()
	for _, id := range datasets {
		sub, err := p.nc.QueueSubscribe(bus.QueryPrefix+string(id), bus.ProviderQueue, s.handle)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.subs = append(s.subs, sub)
	}
	return s, nil
}

// Calls delivers the queries to answer.
func (s *ProviderSession) Calls() <-chan Call { return s.calls }

func (s *ProviderSession) handle(m *nats.Msg) {
	c, err := decodeCall(m.Data)
	if err != nil {
		s.reply(m, Result{Error: "malformed call"})
		return
	}
	c.ID = fmt.Sprintf("c%d", s.next.Add(1))
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.reply(m, Result{Error: "provider disconnected"})
		return
	}
	s.pending[c.ID] = m
	s.mu.Unlock()
	select {
	case s.calls <- c:
	default:
		s.take(c.ID)
		s.reply(m, Result{Error: "provider busy: too many queries in flight"})
	}
}

func (s *ProviderSession) take(id string) *nats.Msg {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.pending[id]
	delete(s.pending, id)
	return m
}

func (s *ProviderSession) reply(m *nats.Msg, r Result) {
	b := r.encode()
	if max := s.p.nc.MaxPayload(); int64(len(b)) > max {
		// One answer is one NATS message: say so, rather than let the
		// consumer wait for an answer that cannot be delivered.
		s.p.lg.Warn("provider answer too large", "bytes", len(b), "max", max)
		b = Result{Error: fmt.Sprintf("the answer is %d bytes, more than one answer may carry (%d): ask for fewer records per page (limit) or fewer fields", len(b), max)}.encode()
	}
	if err := m.Respond(b); err != nil {
		s.p.lg.Debug("provider reply", "err", err)
	}
}

// Answer sends the provider's result for a call.
func (s *ProviderSession) Answer(r Result) error {
	m := s.take(r.CallID)
	if m == nil {
		return fault.Invalid("call_id", "%q is not a call awaiting an answer", r.CallID)
	}
	r.CallID = ""
	s.reply(m, r)
	return nil
}

// Close unsubscribes and answers every call still waiting with an error,
// so consumers see UNAVAILABLE at once rather than a timeout.
func (s *ProviderSession) Close() {
	s.closeOnce.Do(func() { s.p.m.providers.Dec(); s.release() })
	for _, sub := range s.subs {
		_ = sub.Unsubscribe()
	}
	s.mu.Lock()
	s.closed = true
	pending := s.pending
	s.pending = map[string]*nats.Msg{}
	s.mu.Unlock()
	for _, m := range pending {
		s.reply(m, Result{Error: "provider disconnected"})
	}
}
