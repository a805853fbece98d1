// Package vocabpb converts between the client-safe vocabulary
// (exchange/vocab) and the generated wire messages (xhubv1), for the SDK
// and the hub's API layer alike, so that the generated package imports
// nothing of the domain.
package vocabpb

import (
	"github.com/xhub-gov/xhub/exchange/vocab"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

// Filter is f on the wire.
func Filter(f vocab.Filter) *xhubv1.Filter {
	return &xhubv1.Filter{Field: f.Field, Op: string(f.Op), ValueJson: f.ValueJSON()}
}

// Filters is fs on the wire.
func Filters(fs []vocab.Filter) []*xhubv1.Filter {
	out := make([]*xhubv1.Filter, len(fs))
	for i, f := range fs {
		out[i] = Filter(f)
	}
	return out
}

// VocabFilters decodes filters from the wire (their values are JSON).
func VocabFilters(pb []*xhubv1.Filter) ([]vocab.Filter, error) {
	out := make([]vocab.Filter, 0, len(pb))
	for _, f := range pb {
		v, err := vocab.DecodeFilterValue(f.ValueJson)
		if err != nil {
			return nil, err
		}
		out = append(out, vocab.Filter{Field: f.Field, Op: vocab.Op(f.Op), Value: v})
	}
	return out, nil
}
