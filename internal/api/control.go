package api

import (
	"context"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/pki"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
	"github.com/xhub-gov/xhub/schemas"
)

type departments struct {
	xhubv1.UnimplementedDepartmentsServer
	*base
	ca        *pki.Authority
	js        jetstream.JetStream // webhook delivery records
	redeliver RedeliverLimits
}

func deptPB(d catalog.Department) *xhubv1.Department {
	return &xhubv1.Department{Id: string(d.ID), Name: d.Name, CreatedAt: ts(d.CreatedAt), Seq: d.Seq}
}

func (s *departments) AddDepartment(ctx context.Context, r *xhubv1.AddDepartmentRequest) (*xhubv1.AddDepartmentResponse, error) {
	d, seq, err := s.cp.AddDepartment(ctx, identityFrom(ctx), catalog.DeptID(r.Id), r.Name)
	if err != nil {
		return nil, toStatus(err)
	}
	return &xhubv1.AddDepartmentResponse{Department: deptPB(d), Seq: seq}, nil
}

func (s *departments) ListDepartments(ctx context.Context, r *xhubv1.ListDepartmentsRequest) (*xhubv1.ListDepartmentsResponse, error) {
	size, after, err := s.page(ctx, r.MinSeq, r.PageSize, r.PageToken)
	if err != nil {
		return nil, err
	}
	ds, next, err := s.cp.Departments(catalog.DeptID(after), size)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &xhubv1.ListDepartmentsResponse{NextPageToken: encodeToken(string(next))}
	for _, d := range ds {
		out.Departments = append(out.Departments, deptPB(d))
	}
	return out, nil
}

type credentialsSvc struct {
	xhubv1.UnimplementedCredentialsServer
	*base
	ca    *pki.Authority
	nodes NodeDirectory // may be nil
}

func credPB(c exchange.Credential) *xhubv1.Credential {
	return &xhubv1.Credential{
		Serial: c.Serial, Dept: string(c.Dept), Role: string(c.Role), Name: c.Name, Identity: c.Identity,
		NotAfter: ts(c.NotAfter), Revoked: c.Revoked, RevokeReason: c.RevokeReason, Seq: c.Seq,
	}
}

func (s *credentialsSvc) IssueCredential(ctx context.Context, r *xhubv1.IssueCredentialRequest) (*xhubv1.IssueCredentialResponse, error) {
	actor := identityFrom(ctx)
	dept, err := catalog.ParseDeptID(r.Dept)
	if err != nil {
		return nil, toStatus(err)
	}
	role, err := vocab.ParseRole(r.Role)
	if err != nil {
		return nil, toStatus(err)
	}
	name := r.Name
	if name == "" {
		name = string(role)
	}
	if err := vocab.ValidateCredName(name); err != nil {
		return nil, toStatus(err)
	}
	days := int(r.ValidDays)
	if days == 0 {
		days = 365
	}
	id := vocab.Identity{Dept: dept, Role: role, Name: name}
	if err := s.cp.CheckIssue(ctx, actor, id, days); err != nil {
		return nil, toStatus(err)
	}
	certPEM, c, seq, err := s.ca.Issue(ctx, s.cp, actor, id, r.CsrDer, days)
	if err != nil {
		return nil, toStatus(err)
	}
	rec, _ := s.cp.Credential(c.Serial)
	var addrs []string
	if s.nodes != nil {
		addrs = s.nodes.HubAddrs(ctx)
	}
	return &xhubv1.IssueCredentialResponse{Credential: credPB(rec), CertificatePem: certPEM, CaPem: s.ca.CertPEM, Seq: seq, LedgerKey: s.ca.VerifierKey, HubAddrs: addrs}, nil
}

func (s *credentialsSvc) ListCredentials(ctx context.Context, r *xhubv1.ListCredentialsRequest) (*xhubv1.ListCredentialsResponse, error) {
	actor := identityFrom(ctx)
	dept := catalog.DeptID(r.Dept)
	if actor.Role != vocab.RoleAdmin {
		if dept != "" && dept != actor.Dept {
			return nil, toStatus(permissionDenied("an officer lists only its own department's credentials"))
		}
		dept = actor.Dept
	}
	size, after, err := s.page(ctx, r.MinSeq, r.PageSize, r.PageToken)
	if err != nil {
		return nil, err
	}
	cs, next, err := s.cp.Credentials(dept, after, size)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &xhubv1.ListCredentialsResponse{NextPageToken: encodeToken(next)}
	for _, c := range cs {
		out.Credentials = append(out.Credentials, credPB(c))
	}
	return out, nil
}

func (s *credentialsSvc) RevokeCredential(ctx context.Context, r *xhubv1.RevokeCredentialRequest) (*xhubv1.RevokeCredentialResponse, error) {
	c, seq, err := s.cp.RevokeCredential(ctx, identityFrom(ctx), r.Serial, r.Reason)
	if err != nil {
		return nil, toStatus(err)
	}
	return &xhubv1.RevokeCredentialResponse{Credential: credPB(c), Seq: seq}, nil
}

type schemasSvc struct {
	xhubv1.UnimplementedSchemasServer
	*base
}

func fieldsPB(fs []catalog.Field) []*xhubv1.Field {
	out := make([]*xhubv1.Field, len(fs))
	for i, f := range fs {
		out[i] = &xhubv1.Field{Name: f.Name, Type: f.Type, Required: f.Required, Description: f.Description}
	}
	return out
}

func schemaPB(v schemas.Version, withBody bool) *xhubv1.Schema {
	s := &xhubv1.Schema{Subject: string(v.Subject), Version: int32(v.Version), Compat: string(v.Compat), Fields: fieldsPB(v.Fields), RegisteredAt: ts(v.RegisteredAt), Seq: v.Seq}
	if withBody {
		s.SchemaJson = v.Schema
	}
	return s
}

func (s *schemasSvc) RegisterSchema(ctx context.Context, r *xhubv1.RegisterSchemaRequest) (*xhubv1.RegisterSchemaResponse, error) {
	v, existing, seq, err := s.cp.RegisterSchema(ctx, identityFrom(ctx), catalog.DatasetID(r.Subject), r.SchemaJson, r.Compat)
	if err != nil {
		return nil, toStatus(err)
	}
	return &xhubv1.RegisterSchemaResponse{Schema: schemaPB(v, true), Existing: existing, Seq: seq}, nil
}

func (s *schemasSvc) CheckSchema(ctx context.Context, r *xhubv1.CheckSchemaRequest) (*xhubv1.CheckSchemaResponse, error) {
	v, _, err := s.cp.CheckSchema(catalog.DatasetID(r.Subject), r.SchemaJson, r.Compat)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &xhubv1.CheckSchemaResponse{Compatible: len(v.Problems) == 0, Compat: string(v.Compat), NextVersion: int32(v.NextVersion)}
	for _, p := range v.Problems {
		out.Problems = append(out.Problems, p.String())
	}
	return out, nil
}

func (s *schemasSvc) GetSchema(ctx context.Context, r *xhubv1.GetSchemaRequest) (*xhubv1.GetSchemaResponse, error) {
	if err := s.wait(ctx, r.MinSeq); err != nil {
		return nil, err
	}
	subject, err := catalog.ParseDatasetID(r.Subject)
	if err != nil {
		return nil, toStatus(err)
	}
	v, err := s.cp.SchemaVersion(subject, int(r.Version))
	if err != nil {
		return nil, toStatus(err)
	}
	return &xhubv1.GetSchemaResponse{Schema: schemaPB(v, true)}, nil
}

func (s *schemasSvc) ListVersions(ctx context.Context, r *xhubv1.ListVersionsRequest) (*xhubv1.ListVersionsResponse, error) {
	if err := s.wait(ctx, r.MinSeq); err != nil {
		return nil, err
	}
	subject, err := catalog.ParseDatasetID(r.Subject)
	if err != nil {
		return nil, toStatus(err)
	}
	vs, subj, err := s.cp.SchemaVersions(subject)
	if err != nil {
		return nil, toStatus(err)
	}
	out := &xhubv1.ListVersionsResponse{}
	for _, v := range vs {
		if v.Compat == "" {
			v.Compat = subj.Compat
		}
		out.Versions = append(out.Versions, schemaPB(v, false))
	}
	return out, nil
}

type catalogSvc struct {
	xhubv1.UnimplementedCatalogServer
	*base
}

func datasetPB(d catalog.Dataset) *xhubv1.Dataset {
	return &xhubv1.Dataset{
		Id: string(d.ID), Owner: string(d.Owner()), Title: d.Title, Description: d.Description, Keywords: d.Keywords,
		ShareType: string(d.ShareType), Frequency: d.Frequency, SchemaSubject: d.SchemaSubject, SchemaVersion: int32(d.SchemaVersion),
		Retention: d.Retention.String(), Fields: fieldsPB(d.Fields), Status: string(d.Status), PublishedAt: ts(d.PublishedAt), UpdatedAt: ts(d.UpdatedAt), Seq: d.Seq,
	}
}

func (s *catalogSvc) PublishDataset(ctx context.Context, r *xhubv1.PublishDatasetRequest) (*xhubv1.PublishDatasetResponse, error) {
	retention, err := catalog.ParseRetention(r.Retention)
	if err != nil {
		return nil, toStatus(err)
	}
	d, seq, err := s.cp.PublishDataset(ctx, identityFrom(ctx), catalog.Published{
		ID: catalog.DatasetID(r.Id), Title: strings.TrimSpace(r.Title), Description: r.Description, Keywords: r.Keywords,
		ShareType: catalog.ShareType(r.ShareType), Frequency: r.Frequency, SchemaSubject: r.SchemaSubject, SchemaVersion: int(r.SchemaVersion),
		Retention: retention,
	})
	if err != nil {
		return nil, toStatus(err)
	}
	return &xhubv1.PublishDatasetResponse{Dataset: datasetPB(d), Seq: seq}, nil
}

func (s *catalogSvc) RetireDataset(ctx context.Context, r *xhubv1.RetireDatasetRequest) (*xhubv1.RetireDatasetResponse, error) {
	d, seq, err := s.cp.RetireDataset(ctx, identityFrom(ctx), catalog.DatasetID(r.Id), r.Reason)
	if err != nil {
		return nil, toStatus(err)
	}
	return &xhubv1.RetireDatasetResponse{Dataset: datasetPB(d), Seq: seq}, nil
}

func (s *catalogSvc) UpdateDataset(ctx context.Context, r *xhubv1.UpdateDatasetRequest) (*xhubv1.UpdateDatasetResponse, error) {
	u := catalog.Update{ID: catalog.DatasetID(r.Id), Title: r.Title, Description: r.Description, Frequency: r.Frequency}
	if r.Keywords != nil {
		kw := append([]string{}, r.Keywords.Values...)
		u.Keywords = &kw
	}
	if r.Retention != nil {
		rt, err := catalog.ParseRetention(*r.Retention)
		if err != nil {
			return nil, toStatus(err)
		}
		u.Retention = &rt
	}
	if r.ShareType != nil {
		st, err := catalog.ParseShareType(*r.ShareType)
		if err != nil {
			return nil, toStatus(err)
		}
		u.ShareType = &st
	}
	d, changed, active, seq, err := s.cp.UpdateDataset(ctx, identityFrom(ctx), u, r.SchemaSubject, int(r.SchemaVersion))
	if err != nil {
		return nil, toStatus(err)
	}
	return &xhubv1.UpdateDatasetResponse{Dataset: datasetPB(d), Seq: seq, Changed: changed, ActiveGrants: int32(active)}, nil
}

func (s *catalogSvc) GetDataset(ctx context.Context, r *xhubv1.GetDatasetRequest) (*xhubv1.GetDatasetResponse, error) {
	if err := s.wait(ctx, r.MinSeq); err != nil {
		return nil, err
	}
	id, err := catalog.ParseDatasetID(r.Id)
	if err != nil {
		return nil, toStatus(err)
	}
	d, err := s.cp.Dataset(id)
	if err != nil {
		return nil, toStatus(err)
	}
	return &xhubv1.GetDatasetResponse{Dataset: datasetPB(d)}, nil
}

// MaxSearchLen bounds the search text.
const MaxSearchLen = 200

func (s *catalogSvc) ListDatasets(ctx context.Context, r *xhubv1.ListDatasetsRequest) (*xhubv1.ListDatasetsResponse, error) {
	if err := s.wait(ctx, r.MinSeq); err != nil {
		return nil, err
	}
	q := catalog.Query{Search: r.Search, IncludeRetired: r.IncludeRetired}
	if r.Dept != "" {
		d, err := catalog.ParseDeptID(r.Dept)
		if err != nil {
			return nil, toStatus(err)
		}
		q.Dept = d
	}
	if r.ShareType != "" {
		t, err := catalog.ParseShareType(r.ShareType)
		if err != nil {
			return nil, toStatus(err)
		}
		q.Share = t
	}
	if len(r.Search) > MaxSearchLen {
		return nil, invalid("search", "is %d bytes, at most %d", len(r.Search), MaxSearchLen)
	}
	size, after, err := s.page(ctx, r.MinSeq, r.PageSize, r.PageToken)
	if err != nil {
		return nil, err
	}
	q.After, q.Limit = catalog.DatasetID(after), size
	ds, next, total := s.cp.Datasets(q)
	out := &xhubv1.ListDatasetsResponse{NextPageToken: encodeToken(string(next)), Total: int64(total)}
	for _, d := range ds {
		out.Datasets = append(out.Datasets, datasetPB(d))
	}
	return out, nil
}
