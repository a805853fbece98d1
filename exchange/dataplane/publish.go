package dataplane

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/bus"
	"github.com/xhub-gov/xhub/schemas"
)

// validationStopped is the error for a validation that stopped before its
// verdict: the caller left, or the batch or answer would take more than
// the validation budget (which names it). Nil for a verdict.
func validationStopped(ctx context.Context, err error) error {
	var be *schemas.BudgetError
	switch {
	case errors.As(err, &be):
		return vocab.Invalid("records", "%v: the schema is too costly for these records; send fewer or smaller records per call", be)
	case err != nil && ctx.Err() != nil && !errors.As(err, new(*schemas.ValidationError)):
		return ctx.Err()
	}
	return nil
}

// A stored batch (one XHUB_DATA message) is a frame: the batch id and its
// records. It is the unit of atomicity and of dedup.
func encodeBatch(id string, recs [][]byte) []byte { return encodeFrame(batchMagic, []string{id}, recs) }

func decodeBatch(b []byte) (string, [][]byte, error) {
	strs, recs, err := decodeFrame(batchMagic, b, 1)
	if err != nil {
		return "", nil, err
	}
	return strs[0], recs, nil
}

// PublishResult says where a batch was stored.
type PublishResult struct {
	StreamSeq uint64
	Duplicate bool // the batch id was stored before; nothing new stored
	Count     int
	BatchID   string
}

// MaxBatchIDLen bounds a batch id.
const MaxBatchIDLen = 128

// maxErrorsListed bounds the validation errors named in one refusal.
const maxErrorsListed = 20

// Publish validates a whole batch against the dataset's schema (all or
// nothing: every error names the record index and JSON pointer) and stores
// it durably in JetStream before returning. A retried batch id is stored
// once.
func (p *Plane) Publish(ctx context.Context, caller vocab.Identity, dataset catalog.DatasetID, records [][]byte, batchID string) (PublishResult, error) {
	ds, err := p.publishedOnHead(ctx, dataset)
	if err != nil {
		return PublishResult{}, err
	}
	if ds.Owner() != caller.Dept {
		return PublishResult{}, vocab.Denied("%s: only systems of %s publish to %s", caller.URI(), ds.Owner(), ds.ID)
	}
	if len(records) == 0 || len(records) > p.cfg.MaxBatch {
		return PublishResult{}, vocab.Invalid("records", "%d records, want 1 to %d per batch", len(records), p.cfg.MaxBatch)
	}
	if len(batchID) > MaxBatchIDLen || strings.ContainsAny(batchID, "\r\n\x00") {
		return PublishResult{}, vocab.Invalid("batch_id", "must be at most %d characters with no control characters", MaxBatchIDLen)
	}
	size := 0
	for _, r := range records {
		size += len(r)
	}
	if size > p.cfg.MaxBatchBytes {
		return PublishResult{}, vocab.Invalid("records", "the batch holds %d bytes of records, at most %d per batch: split it into smaller batches (each stored whole or not at all)", size, p.cfg.MaxBatchBytes)
	}
	if batchID == "" {
		batchID = newRequestID()
	}
	sch, err := p.cp.DatasetSchema(ds)
	if err != nil {
		return PublishResult{}, err
	}
	bad := &vocab.Error{Kind: vocab.KindInvalid}
	nbad := 0
	budget := schemas.NewBudget(p.cfg.ValidationSteps)
	for i, raw := range records {
		// A caller that has left stops the validation of its batch.
		if err := ctx.Err(); err != nil {
			return PublishResult{}, err
		}
		rec, err := decodeObject(raw, p.cfg.MaxRecordBytes)
		if err == nil {
			verr := sch.ValidateWithin(ctx, rec, budget)
			if stop := validationStopped(ctx, verr); stop != nil {
				return PublishResult{}, stop
			}
			if verr != nil {
				err = verr
			}
		}
		if err != nil {
			nbad++
			if nbad <= maxErrorsListed {
				bad.Violations = append(bad.Violations, vocab.Violation{Field: fmt.Sprintf("records[%d]", i), Description: err.Error()})
			}
			continue
		}
	}
	if nbad > 0 {
		bad.Msg = fmt.Sprintf("batch refused, nothing stored: %d of %d records fail the schema of %s", nbad, len(records), ds.ID)
		parts := make([]string, len(bad.Violations))
		for i, v := range bad.Violations {
			parts[i] = v.Field + " " + v.Description
		}
		bad.Msg += ": " + strings.Join(parts, "; ")
		return PublishResult{}, bad
	}
	data := encodeBatch(batchID, records)
	subject, msgID := bus.DataPrefix+string(ds.ID), string(ds.ID)+"/"+batchID
	adm, err := p.admit(ctx, ds, subject, msgID, data)
	if err != nil {
		return PublishResult{}, err
	}
	var opts []jetstream.PublishOpt
	if adm.ttl > 0 {
		opts = append(opts, jetstream.WithMsgTTL(adm.ttl))
	}
	ack, retried, err := bus.PublishOnce(ctx, p.js, subject, data, msgID, bus.DataStream, opts...)
	adm.done()
	if err != nil {
		return PublishResult{}, storeError(err)
	}
	res := PublishResult{StreamSeq: ack.Sequence, Duplicate: ack.Duplicate && !retried, Count: len(records), BatchID: batchID}
	// A batch stored by an attempt whose answer was lost comes back as a
	// duplicate of itself: it is this call's, and audited as such.
	if !res.Duplicate {
		p.m.published.Add(float64(len(records)))
		p.stats.publish(ds.ID, len(records))
		p.audit.record(AuditEntry{RequestID: batchID, Dept: caller.Dept, Identity: caller.URI(), Dataset: ds.ID, Action: ActionPublish, Records: int64(len(records)), Time: p.cfg.Now()})
	}
	return res, nil
}
