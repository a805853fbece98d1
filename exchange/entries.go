package exchange

import (
	"encoding/json"
	"fmt"

	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/internal/store"
)

// applier applies one entry to the views in txn. It validates before it
// writes, so an error leaves the transaction untouched; the function it
// returns updates the in-memory caches after the transaction commits.
type applier func(cp *ControlPlane, txn views, e ledger.Entry) (after func(), err error)

// views is all that the state machines' apply functions read and write:
// JSON values by key, in one transaction. A node's Badger transaction is
// one; apply reads no clock (time is in the entry) and does no other I/O,
// so every node that applies the same entries holds the same views.
type views interface {
	Get(key string, v any) (bool, error)
	Put(key string, v any) error
	Delete(key string) error
	Scan(prefix, after string, fn func(key string, val []byte) (bool, error)) error
}

var _ views = (*store.Txn)(nil)

// appliers are the entry kinds of the log, each with the state machines
// (files) that apply it, in order: identity.go, departments.go,
// subjects.go, datasets.go, share_rules.go, nodes.go. A kind not listed here is
// refused at apply. A kind may matter to more than one subject: retiring
// a dataset is the catalog's entry, and ends the share workflow's grants
// and pending requests on it.
var appliers = map[string][]applier{
	ledger.KindHubInit:          {(*ControlPlane).applyHubInit},
	ledger.KindCredIssued:       {(*ControlPlane).applyCredIssued},
	ledger.KindCredRevoked:      {(*ControlPlane).applyCredRevoked},
	ledger.KindDeptAdded:        {(*ControlPlane).applyDeptAdded},
	ledger.KindDeptWebhook:      {(*ControlPlane).applyDeptWebhook},
	ledger.KindSchemaRegistered: {(*ControlPlane).applySchemaRegistered},
	ledger.KindSchemaCompat:     {(*ControlPlane).applySchemaCompat},
	ledger.KindDatasetPublished: {(*ControlPlane).applyDatasetPublished},
	ledger.KindDatasetRetired:   {(*ControlPlane).applyDatasetRetired, (*ControlPlane).applyRetirementToShares},
	ledger.KindDatasetUpdated:   {(*ControlPlane).applyDatasetUpdated},
	ledger.KindShareRequested:   {(*ControlPlane).applyShare},
	ledger.KindShareApproved:    {(*ControlPlane).applyShare},
	ledger.KindShareRejected:    {(*ControlPlane).applyShare},
	ledger.KindShareWithdrawn:   {(*ControlPlane).applyShare},
	ledger.KindGrantCreated:     {(*ControlPlane).applyShare},
	ledger.KindGrantRevoked:     {(*ControlPlane).applyShare},
	ledger.KindGrantExpired:     {(*ControlPlane).applyShare},
	ledger.KindDisputeOpened:    {(*ControlPlane).applyDispute},
	ledger.KindDisputeResolved:  {(*ControlPlane).applyDispute},
	ledger.KindNodeToken:        {(*ControlPlane).applyNodeToken},
	ledger.KindNodeJoined:       {(*ControlPlane).applyNodeJoined},
}

// apply materialises one entry through the state machines of its kind.
// They validate before they write, so a refusal by the first leaves the
// transaction untouched.
func (cp *ControlPlane) apply(txn views, e ledger.Entry) (func(), error) {
	as, ok := appliers[e.Kind]
	if !ok {
		return nil, fmt.Errorf("unknown entry kind %q", e.Kind)
	}
	if e.Request != "" {
		if err := txn.Put(requestKey(e.Actor, e.Request), recordedRequest{Seq: e.Seq, Kind: e.Kind}); err != nil {
			return nil, err
		}
	}
	var afters []func()
	for _, a := range as {
		after, err := a(cp, txn, e)
		if err != nil {
			return nil, err
		}
		if after != nil {
			afters = append(afters, after)
		}
	}
	return func() {
		for _, f := range afters {
			f()
		}
	}, nil
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
