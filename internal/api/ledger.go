package api

import (
	"context"

	"github.com/xhub-gov/xhub/exchange/ledger"
	"github.com/xhub-gov/xhub/internal/pki"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

type ledgerSvc struct {
	xhubv1.UnimplementedLedgerServer
	*base
	ca *pki.Authority
}

func (s *ledgerSvc) ListEntries(ctx context.Context, r *xhubv1.ListEntriesRequest) (*xhubv1.ListEntriesResponse, error) {
	size, _, err := s.page(ctx, r.MinSeq, r.PageSize, "")
	if err != nil {
		return nil, err
	}
	es, raws, err := s.cp.Entries(r.Since, size)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &xhubv1.ListEntriesResponse{}
	for i, e := range es {
		if r.Dataset == "" || e.Subject == r.Dataset {
			out.Entries = append(out.Entries, &xhubv1.Entry{Seq: e.Seq, Kind: e.Kind, Subject: e.Subject, Actor: e.Actor, Time: ts(e.Time), Raw: raws[i]})
		}
	}
	if len(es) == size {
		out.NextSince = es[len(es)-1].Seq
	}
	return out, nil
}

func (s *ledgerSvc) sign(t ledger.Tree) ([]byte, error) {
	b, err := ledger.SignHead(t, s.ca.Signer)
	return b, toStatus(err)
}

func (s *ledgerSvc) GetHead(ctx context.Context, r *xhubv1.GetHeadRequest) (*xhubv1.GetHeadResponse, error) {
	if err := s.wait(ctx, r.MinSeq); err != nil {
		return nil, err
	}
	t, err := s.cp.TreeHead()
	if err != nil {
		return nil, toStatus(err)
	}
	note, err := s.sign(t)
	if err != nil {
		return nil, err
	}
	return &xhubv1.GetHeadResponse{SignedNote: note, VerifierKey: s.ca.VerifierKey, Size: uint64(t.N)}, nil
}

func (s *ledgerSvc) InclusionProof(ctx context.Context, r *xhubv1.InclusionProofRequest) (*xhubv1.InclusionProofResponse, error) {
	t, proof, raw, err := s.cp.InclusionProof(r.Seq, r.TreeSize)
	if err != nil {
		return nil, toStatus(err)
	}
	note, err := s.sign(t)
	if err != nil {
		return nil, err
	}
	e, err := ledger.Parse(raw)
	out := &xhubv1.InclusionProofResponse{SignedNote: note, Proof: proof, Entry: &xhubv1.Entry{Seq: r.Seq, Raw: raw}}
	if err == nil {
		out.Entry = &xhubv1.Entry{Seq: e.Seq, Kind: e.Kind, Subject: e.Subject, Actor: e.Actor, Time: ts(e.Time), Raw: raw}
	}
	return out, nil
}

func (s *ledgerSvc) ConsistencyProof(ctx context.Context, r *xhubv1.ConsistencyProofRequest) (*xhubv1.ConsistencyProofResponse, error) {
	t, proof, err := s.cp.ConsistencyProof(r.OldSize, r.NewSize)
	if err != nil {
		return nil, toStatus(err)
	}
	note, err := s.sign(t)
	if err != nil {
		return nil, err
	}
	return &xhubv1.ConsistencyProofResponse{SignedNote: note, Proof: proof}, nil
}
