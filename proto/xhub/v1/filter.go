package xhubv1

import "github.com/xhub-gov/xhub/exchange/vocab"

// The one conversion of query filters between the client-safe vocabulary
// and the wire, used by the SDK and the hub's API layer alike. (Written by
// hand; the rest of this package is generated.)

// FilterPB is f on the wire.
func FilterPB(f vocab.Filter) *Filter {
	return &Filter{Field: f.Field, Op: string(f.Op), ValueJson: f.ValueJSON()}
}

// FiltersPB is fs on the wire.
func FiltersPB(fs []vocab.Filter) []*Filter {
	out := make([]*Filter, len(fs))
	for i, f := range fs {
		out[i] = FilterPB(f)
	}
	return out
}

// VocabFilters decodes filters from the wire (their values are JSON).
func VocabFilters(pb []*Filter) ([]vocab.Filter, error) {
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
