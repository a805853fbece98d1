package dataplane

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/schemas"
)

// QueryInput is a consumer's query.
type QueryInput struct {
	Dataset   catalog.DatasetID
	Fields    []string
	Filters   []vocab.Filter
	Limit     int
	PageToken string // "" or a NextPageToken of the same query (pagetoken.go)
	// RequestID is the consumer's id of the call ("": the hub makes
	// one); the provider's call, the answer and the audit entry carry it.
	RequestID string
}

// QueryResult is what the consumer receives.
type QueryResult struct {
	Records         [][]byte
	NextPageToken   string // sealed: opaque to the consumer, bound to the query
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
		outcome := 0 // queryOutcomes
		switch {
		case err == nil:
			p.m.returned.Add(float64(len(res.Records)))
			p.m.withheld.Add(float64(res.Withheld))
		case vocab.KindOf(err) == vocab.KindDenied:
			outcome = 1
		case vocab.KindOf(err) == vocab.KindUnavailable:
			outcome = 2
		default:
			outcome = 3
		}
		p.m.queries.WithLabelValues(queryOutcomes[outcome]).Inc()
		p.stats.query(in.Dataset, outcome, len(res.Records), res.Withheld)
	}()
	return p.query(ctx, caller, in)
}

func (p *Plane) query(ctx context.Context, caller vocab.Identity, in QueryInput) (QueryResult, error) {
	ds, acc, err := p.readable(ctx, caller, in.Dataset)
	if err != nil {
		return QueryResult{}, err
	}
	fields, err := fieldsWithin(in.Fields, acc, ds.ID)
	if err != nil {
		return QueryResult{}, err
	}
	if len(in.Filters) > vocab.MaxFilters {
		return QueryResult{}, vocab.Invalid("filters", "%d filters, at most %d", len(in.Filters), vocab.MaxFilters)
	}
	for _, f := range in.Filters {
		if err := f.Validate(ds.Fields); err != nil {
			return QueryResult{}, err
		}
		if _, ok := acc.Allows([]string{f.Field}); !ok {
			return QueryResult{}, vocab.Denied("filter on field %q of %s is not allowed: the field is not granted to your department, and filtering on it would reveal it", f.Field, ds.ID)
		}
	}
	// Each filter's value is parsed once for the whole answer, not once a
	// record.
	matchers, err := vocab.CompileFilters(in.Filters)
	if err != nil {
		return QueryResult{}, err
	}
	limit := in.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	if limit < 0 || limit > MaxLimit {
		return QueryResult{}, vocab.Invalid("limit", "%d is not between 1 and %d", limit, MaxLimit)
	}
	// The page token is opened once the query is known to be allowed:
	// it is bound to it, and anything else is refused alike.
	scope := scopeOf(caller.Dept, ds.ID, acc.Grants, fields, in.Filters)
	providerToken, err := p.tokens.open(scope, in.PageToken)
	if err != nil {
		return QueryResult{}, err
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
	reqID := in.RequestID
	if reqID == "" {
		reqID = newRequestID()
	}
	call := Call{Dataset: ds.ID, Fields: fetch, Filters: in.Filters, Limit: limit, PageToken: providerToken, Consumer: caller.Dept, RequestID: reqID}
	// A caller that has left costs no provider any work.
	if err := ctx.Err(); err != nil {
		return QueryResult{}, err
	}
	qctx, cancel := context.WithTimeout(ctx, p.cfg.QueryTimeout)
	defer cancel()
	pres, err := p.ask(qctx, call)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return QueryResult{}, &vocab.Error{Kind: vocab.KindUnavailable, Msg: fmt.Sprintf("no provider of %s is connected", ds.ID)}
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return QueryResult{}, &vocab.Error{Kind: vocab.KindUnavailable, Msg: fmt.Sprintf("the provider of %s did not answer within %s", ds.ID, p.cfg.QueryTimeout)}
	case err != nil:
		return QueryResult{}, err
	}
	if pres.Error != "" {
		return QueryResult{}, &vocab.Error{Kind: vocab.KindUnavailable, Msg: fmt.Sprintf("provider of %s: %s", ds.ID, pres.Error)}
	}
	next, err := p.tokens.seal(scope, pres.NextToken)
	if err != nil {
		return QueryResult{}, &vocab.Error{Kind: vocab.KindUnavailable, Msg: fmt.Sprintf("provider of %s: %v", ds.ID, err)}
	}
	out := QueryResult{RequestID: reqID, NextPageToken: next, Fields: fields}
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
	budget := schemas.NewBudget(p.cfg.ValidationSteps)
	for i, raw := range pres.Records {
		// A caller that has left stops the judging of the answer.
		if err := ctx.Err(); err != nil {
			return QueryResult{}, err
		}
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
		if err := rsch.ValidateWithin(ctx, view, budget); err != nil {
			if stop := validationStopped(ctx, err); stop != nil {
				if ctx.Err() != nil {
					return QueryResult{}, stop
				}
				withhold(i, "validating it would pass the query's validation budget", err.Error())
				continue
			}
			withhold(i, "fails the schema: "+err.Error(), "")
			continue
		}
		matched := true
		for _, f := range matchers {
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
	p.lg.Debug("query", "request_id", reqID, "dataset", ds.ID, "dept", caller.Dept, "records", len(out.Records), "withheld", out.Withheld)
	p.audit.record(AuditEntry{
		RequestID: reqID, Dept: caller.Dept, Identity: caller.URI(), Dataset: ds.ID, Action: ActionQuery, Fields: fields,
		Records: int64(len(out.Records)), Withheld: int64(out.Withheld), WithheldReasons: out.WithheldReasons, ProviderReasons: providerReasons, Time: p.cfg.Now(),
	})
	return out, nil
}
