package dataplane

import (
	"context"
	"encoding/json"
	"time"

	"github.com/xhub-gov/xhub/exchange"
	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/exchange/vocab"
)

// exportEntry is an audit entry as an export holds it: the hub's JSON,
// hashed into the export's chain as these bytes.
type exportEntry struct {
	ID              string    `json:"id"`
	Dept            string    `json:"dept"`
	Identity        string    `json:"identity"`
	Dataset         string    `json:"dataset"`
	Action          string    `json:"action"`
	Fields          []string  `json:"fields,omitempty"`
	Records         int64     `json:"records"`
	Time            time.Time `json:"time"`
	RequestID       string    `json:"request_id,omitempty"`
	Withheld        int64     `json:"withheld,omitempty"`
	WithheldReasons []string  `json:"withheld_reasons,omitempty"`
	Subscription    string    `json:"subscription,omitempty"`
	ProviderReasons []string  `json:"provider_reasons,omitempty"`
}

// ExportAudit goes through the audit entries the viewer may see that f
// selects, from f.Since up to until (exclusive), in the stream's order,
// and hands each to emit as the JSON an export holds. It returns how many
// it emitted and the hash chain's last hash (ledger.ChainHash), for the
// seal. It stops when ctx ends or emit fails.
func (p *Plane) ExportAudit(ctx context.Context, viewer vocab.Identity, f AuditFilter, until time.Time, emit func(entry []byte) error) (int, string, error) {
	if f.Since.IsZero() {
		return 0, "", vocab.Invalid("since", "is required: an export covers a stated period")
	}
	if !until.After(f.Since) {
		return 0, "", vocab.Invalid("until", "%s is not after since %s", until.UTC().Format(time.RFC3339), f.Since.UTC().Format(time.RFC3339))
	}
	f.Limit, f.After = exchange.MaxPageSize, 0
	n, last := 0, ledger.ZeroChainHash
	for {
		if err := ctx.Err(); err != nil {
			return n, last, err
		}
		es, next, err := p.ListAudit(ctx, viewer, f)
		if err != nil {
			return n, last, err
		}
		for _, e := range es {
			if !e.Time.Before(until) {
				continue
			}
			b, err := json.Marshal(exportEntry{
				ID: e.ID, Dept: string(e.Dept), Identity: e.Identity, Dataset: string(e.Dataset), Action: e.Action,
				Fields: e.Fields, Records: e.Records, Time: e.Time.UTC(), RequestID: e.RequestID, Withheld: e.Withheld,
				WithheldReasons: e.WithheldReasons, Subscription: e.Subscription, ProviderReasons: e.ProviderReasons,
			})
			if err != nil {
				return n, last, err
			}
			if err := emit(b); err != nil {
				return n, last, err
			}
			n, last = n+1, ledger.ChainHash(last, b)
		}
		if next == 0 {
			return n, last, nil
		}
		f.After = next
	}
}
