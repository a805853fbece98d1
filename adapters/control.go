package adapters

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/vocab"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

// The control plane as an officer's or operator's program sees it:
// departments, credentials, schemas, the catalog, the share workflow, the
// audit trail and durable subscriptions. Every write is a ledger entry;
// its sequence number comes back with the result. Lists are complete:
// the SDK follows the hub's page tokens to the end. The types are the
// SDK's own; their JSON names are the API's (snake_case).

// Department is a registered department.
type Department struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	Seq       uint64    `json:"seq"` // the entry that registered it
}

// AddDepartment registers a department (operator).
func (c *Client) AddDepartment(ctx context.Context, id, name string) (Department, error) {
	r, err := c.departments.AddDepartment(ctx, &xhubv1.AddDepartmentRequest{Id: id, Name: name})
	if err != nil {
		return Department{}, err
	}
	return departmentOf(r.Department), nil
}

// Departments lists every department.
func (c *Client) Departments(ctx context.Context) ([]Department, error) {
	return collect(func(token string) ([]Department, string, error) {
		r, err := c.departments.ListDepartments(ctx, &xhubv1.ListDepartmentsRequest{PageSize: maxPage, PageToken: token})
		if err != nil {
			return nil, "", err
		}
		return mapped(r.Departments, departmentOf), r.NextPageToken, nil
	})
}

// Credential is an issued credential.
type Credential struct {
	Serial       string         `json:"serial"` // hex, as `openssl x509 -serial` prints it
	Identity     vocab.Identity `json:"-"`
	URI          string         `json:"identity"`
	NotAfter     time.Time      `json:"not_after"`
	Revoked      bool           `json:"revoked"`
	RevokeReason string         `json:"revoke_reason,omitempty"`
	Seq          uint64         `json:"seq"` // the entry that issued it
}

// IssueCredential creates a key locally, has the hub sign it for the
// identity, and returns the credential and the bytes of a complete creds
// file. The private key never leaves this process.
func (c *Client) IssueCredential(ctx context.Context, id vocab.Identity, validDays int) (Credential, []byte, error) {
	keyPEM, csr, err := vocab.NewKey(id)
	if err != nil {
		return Credential{}, nil, err
	}
	resp, err := c.credentials.IssueCredential(ctx, &xhubv1.IssueCredentialRequest{
		Dept: string(id.Dept), Role: string(id.Role), Name: id.Name, CsrDer: csr, ValidDays: int32(validDays),
	})
	if err != nil {
		return Credential{}, nil, err
	}
	// The file lists every node the hub knows of (their --advertise), else
	// the address this client dialled.
	hubs := c.addr
	if len(resp.HubAddrs) > 0 {
		hubs = strings.Join(resp.HubAddrs, ",")
	}
	return credentialOf(resp.Credential), vocab.EncodeCreds(hubs, resp.LedgerKey, resp.CertificatePem, keyPEM, resp.CaPem), nil
}

// Credentials lists credentials: the operator's all (or dept's, if
// given), an officer's its department's.
func (c *Client) Credentials(ctx context.Context, dept string) ([]Credential, error) {
	return collect(func(token string) ([]Credential, string, error) {
		r, err := c.credentials.ListCredentials(ctx, &xhubv1.ListCredentialsRequest{Dept: dept, PageSize: maxPage, PageToken: token})
		if err != nil {
			return nil, "", err
		}
		return mapped(r.Credentials, credentialOf), r.NextPageToken, nil
	})
}

// RevokeCredential revokes a credential at once; it returns the
// credential and the revocation's entry.
func (c *Client) RevokeCredential(ctx context.Context, serial, reason string) (Credential, uint64, error) {
	r, err := c.credentials.RevokeCredential(ctx, &xhubv1.RevokeCredentialRequest{Serial: serial, Reason: reason})
	if err != nil {
		return Credential{}, 0, err
	}
	return credentialOf(r.Credential), r.Seq, nil
}

// Field is one top-level property of a schema, as the catalog shows it.
type Field struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Required    bool   `json:"required"`
	Description string `json:"description,omitempty"`
}

// Schema is one version of a schema subject.
type Schema struct {
	Subject      string          `json:"subject"`
	Version      int             `json:"version"`
	JSON         json.RawMessage `json:"schema,omitempty"` // absent in version lists
	Compat       string          `json:"compat"`
	Fields       []Field         `json:"fields"`
	RegisteredAt time.Time       `json:"registered_at"`
	Seq          uint64          `json:"seq"` // the entry that registered it
}

// RegisterSchema registers schemaJSON as the subject's next version under
// compat ("" keeps the subject's mode). existing says an identical schema
// was registered before (nothing new was written).
func (c *Client) RegisterSchema(ctx context.Context, subject string, schemaJSON []byte, compat string) (s Schema, existing bool, err error) {
	r, err := c.schemas.RegisterSchema(ctx, &xhubv1.RegisterSchemaRequest{Subject: subject, SchemaJson: schemaJSON, Compat: compat})
	if err != nil {
		return Schema{}, false, err
	}
	return schemaOf(r.Schema), r.Existing, nil
}

// SchemaCheck is the verdict on a candidate schema.
type SchemaCheck struct {
	Compatible  bool     `json:"compatible"`
	Compat      string   `json:"compat"`
	Problems    []string `json:"problems"` // "<json pointer>: <rule>", one per incompatibility
	NextVersion int      `json:"next_version"`
}

// CheckSchema says whether schemaJSON could be registered as the
// subject's next version, and why not.
func (c *Client) CheckSchema(ctx context.Context, subject string, schemaJSON []byte, compat string) (SchemaCheck, error) {
	r, err := c.schemas.CheckSchema(ctx, &xhubv1.CheckSchemaRequest{Subject: subject, SchemaJson: schemaJSON, Compat: compat})
	if err != nil {
		return SchemaCheck{}, err
	}
	return SchemaCheck{Compatible: r.Compatible, Compat: r.Compat, Problems: r.Problems, NextVersion: int(r.NextVersion)}, nil
}

// Schema fetches a version of a subject (0: the latest).
func (c *Client) Schema(ctx context.Context, subject string, version int) (Schema, error) {
	r, err := c.schemas.GetSchema(ctx, &xhubv1.GetSchemaRequest{Subject: subject, Version: int32(version)})
	if err != nil {
		return Schema{}, err
	}
	return schemaOf(r.Schema), nil
}

// SchemaVersions lists a subject's versions (without their JSON).
func (c *Client) SchemaVersions(ctx context.Context, subject string) ([]Schema, error) {
	r, err := c.schemas.ListVersions(ctx, &xhubv1.ListVersionsRequest{Subject: subject})
	if err != nil {
		return nil, err
	}
	return mapped(r.Versions, schemaOf), nil
}

// Dataset is a catalog entry.
type Dataset struct {
	ID            string    `json:"id"` // <owner>.<name>
	Owner         string    `json:"owner"`
	Title         string    `json:"title"`
	Description   string    `json:"description,omitempty"`
	Keywords      []string  `json:"keywords,omitempty"`
	ShareType     string    `json:"share_type"` // open | conditional | none
	Frequency     string    `json:"frequency,omitempty"`
	Retention     string    `json:"retention,omitempty"` // "30d"; "": the hub's default
	SchemaSubject string    `json:"schema_subject"`
	SchemaVersion int       `json:"schema_version"`
	Fields        []Field   `json:"fields"`
	Status        string    `json:"status"` // published | retired
	PublishedAt   time.Time `json:"published_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	Seq           uint64    `json:"seq"` // the entry that last changed it
}

// Catalog is the dataset as package catalog holds it (for its exports).
func (d Dataset) Catalog() catalog.Dataset {
	fs := make([]catalog.Field, len(d.Fields))
	for i, f := range d.Fields {
		fs[i] = catalog.Field{Name: f.Name, Type: f.Type, Required: f.Required, Description: f.Description}
	}
	retention, _ := catalog.ParseRetention(d.Retention)
	return catalog.Dataset{Published: catalog.Published{ID: catalog.DatasetID(d.ID), Title: d.Title, Retention: retention, Description: d.Description, Keywords: d.Keywords,
		ShareType: catalog.ShareType(d.ShareType), Frequency: d.Frequency, SchemaSubject: d.SchemaSubject, SchemaVersion: d.SchemaVersion,
		Fields: fs}, Status: catalog.Status(d.Status), PublishedAt: d.PublishedAt, UpdatedAt: d.UpdatedAt, Seq: d.Seq}
}

// DatasetSpec is what an officer publishes (or republishes).
type DatasetSpec struct {
	ID          string
	Title       string
	Description string
	Keywords    []string
	ShareType   string // open | conditional | none
	Frequency   string
	// Retention is how long the hub keeps the published batches: a
	// number and a unit s, m, h or d ("30d"). "": the hub's default.
	Retention     string
	SchemaSubject string
	SchemaVersion int // 0: the latest
}

// PublishDataset publishes a dataset of the caller's department, or
// updates it.
func (c *Client) PublishDataset(ctx context.Context, d DatasetSpec) (Dataset, error) {
	r, err := c.catalog.PublishDataset(ctx, &xhubv1.PublishDatasetRequest{
		Id: d.ID, Title: d.Title, Description: d.Description, Keywords: d.Keywords, ShareType: d.ShareType,
		Frequency: d.Frequency, SchemaSubject: d.SchemaSubject, SchemaVersion: int32(d.SchemaVersion), Retention: d.Retention,
	})
	if err != nil {
		return Dataset{}, err
	}
	return datasetOf(r.Dataset), nil
}

// Dataset fetches one catalog entry.
func (c *Client) Dataset(ctx context.Context, id string) (Dataset, error) {
	r, err := c.catalog.GetDataset(ctx, &xhubv1.GetDatasetRequest{Id: id})
	if err != nil {
		return Dataset{}, err
	}
	return datasetOf(r.Dataset), nil
}

// DatasetQuery narrows a catalog listing; its zero value lists every
// published dataset.
type DatasetQuery struct {
	Dept           string
	ShareType      string
	Search         string // words in the id, title, description or keywords
	IncludeRetired bool
}

// Datasets lists the catalog.
func (c *Client) Datasets(ctx context.Context, q DatasetQuery) ([]Dataset, error) {
	return collect(func(token string) ([]Dataset, string, error) {
		r, err := c.catalog.ListDatasets(ctx, &xhubv1.ListDatasetsRequest{Dept: q.Dept, ShareType: q.ShareType, Search: q.Search, IncludeRetired: q.IncludeRetired, PageSize: maxPage, PageToken: token})
		if err != nil {
			return nil, "", err
		}
		return mapped(r.Datasets, datasetOf), r.NextPageToken, nil
	})
}

// RetireDataset retires a dataset of the caller's department: its grants
// end and its pending requests are rejected, in the same entry.
func (c *Client) RetireDataset(ctx context.Context, id, reason string) (Dataset, error) {
	r, err := c.catalog.RetireDataset(ctx, &xhubv1.RetireDatasetRequest{Id: id, Reason: reason})
	if err != nil {
		return Dataset{}, err
	}
	return datasetOf(r.Dataset), nil
}

// DatasetUpdate is a change of a published dataset's metadata: only the
// fields set change (Keywords set to an empty slice clears them).
type DatasetUpdate struct {
	ID            string
	Title         *string
	Description   *string
	Keywords      *[]string
	Frequency     *string
	ShareType     *string
	Retention     *string // "": back to the hub's default; applies to batches published from then on
	SchemaSubject string  // with SchemaVersion: a new schema version
	SchemaVersion int     // 0: the subject's latest
}

// DatasetUpdated is what an update did.
type DatasetUpdated struct {
	Dataset Dataset  `json:"dataset"`
	Changed []string `json:"changed"`
	// ActiveGrants stay active after the change (until they expire or
	// are revoked), whatever the new share type.
	ActiveGrants int    `json:"active_grants"`
	Seq          uint64 `json:"seq"`
}

// UpdateDataset changes some of a dataset's metadata (officer of its owner).
func (c *Client) UpdateDataset(ctx context.Context, u DatasetUpdate) (DatasetUpdated, error) {
	req := &xhubv1.UpdateDatasetRequest{Id: u.ID, Title: u.Title, Description: u.Description, Frequency: u.Frequency, ShareType: u.ShareType, Retention: u.Retention,
		SchemaSubject: u.SchemaSubject, SchemaVersion: int32(u.SchemaVersion)}
	if u.Keywords != nil {
		req.Keywords = &xhubv1.Keywords{Values: *u.Keywords}
	}
	r, err := c.catalog.UpdateDataset(ctx, req)
	if err != nil {
		return DatasetUpdated{}, err
	}
	return DatasetUpdated{Dataset: datasetOf(r.Dataset), Changed: r.Changed, ActiveGrants: int(r.ActiveGrants), Seq: r.Seq}, nil
}

// ShareRequest is a department's request to read a dataset.
type ShareRequest struct {
	ID          string    `json:"id"`
	Requester   string    `json:"requester"`
	Dataset     string    `json:"dataset"`
	Fields      []string  `json:"fields"` // empty: all
	Purpose     string    `json:"purpose"`
	Days        int       `json:"days"`
	Status      string    `json:"status"` // pending | approved | rejected | withdrawn
	Overdue     bool      `json:"overdue"`
	Reason      string    `json:"reason,omitempty"`
	RequestedAt time.Time `json:"requested_at"`
	Deadline    time.Time `json:"deadline"`
	GrantID     string    `json:"grant_id,omitempty"`
	DecidedBy   string    `json:"decided_by,omitempty"`
	DecidedAt   time.Time `json:"decided_at,omitzero"`
	Seq         uint64    `json:"seq"`
}

// Grant is a department's access to a dataset's fields until it ends.
type Grant struct {
	ID        string    `json:"id"`
	Grantee   string    `json:"grantee"`
	Dataset   string    `json:"dataset"`
	Fields    []string  `json:"fields"`
	GrantedAt time.Time `json:"granted_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Status    string    `json:"status"` // active | revoked | expired | ended
	RequestID string    `json:"request_id,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	GrantedBy string    `json:"granted_by,omitempty"`
	EndedAt   time.Time `json:"ended_at,omitzero"`
	Seq       uint64    `json:"seq"`
}

// Decision is a step of the share workflow: the request (if the step
// concerned one), the grant (if one was made or ended) and the step's
// ledger entry.
type Decision struct {
	Request *ShareRequest `json:"request,omitempty"`
	Grant   *Grant        `json:"grant,omitempty"`
	Seq     uint64        `json:"seq"` // the ledger entry
}

// RequestShare asks for a dataset's fields (none: all) for days (0: the
// hub's maximum). An open dataset is granted at once (Decision.Grant).
func (c *Client) RequestShare(ctx context.Context, dataset string, fields []string, purpose string, days int) (Decision, error) {
	r, err := c.shares.RequestShare(ctx, &xhubv1.RequestShareRequest{Dataset: dataset, Fields: fields, Purpose: purpose, Days: int32(days)})
	if err != nil {
		return Decision{}, err
	}
	return Decision{Request: ptr(r.Request, requestOf), Grant: ptr(r.Grant, grantOf), Seq: r.Seq}, nil
}

// Approve grants a pending request on the caller's dataset, narrowed to
// fields and days if given.
func (c *Client) Approve(ctx context.Context, requestID string, fields []string, days int, reason string) (Decision, error) {
	return decision(c.shares.Approve(ctx, &xhubv1.ApproveRequest{RequestId: requestID, Fields: fields, Days: int32(days), Reason: reason}))
}

// Reject refuses a pending request, stating the basis.
func (c *Client) Reject(ctx context.Context, requestID, reason string) (Decision, error) {
	return decision(c.shares.Reject(ctx, &xhubv1.RejectRequest{RequestId: requestID, Reason: reason}))
}

// Withdraw withdraws the caller's department's pending request.
func (c *Client) Withdraw(ctx context.Context, requestID string) (Decision, error) {
	return decision(c.shares.Withdraw(ctx, &xhubv1.WithdrawRequest{RequestId: requestID}))
}

// RevokeGrant ends a grant on the caller's dataset before its term.
func (c *Client) RevokeGrant(ctx context.Context, grantID, reason string) (Decision, error) {
	return decision(c.shares.RevokeGrant(ctx, &xhubv1.RevokeGrantRequest{GrantId: grantID, Reason: reason}))
}

func decision(r *xhubv1.DecisionResponse, err error) (Decision, error) {
	if err != nil {
		return Decision{}, err
	}
	return Decision{Request: ptr(r.Request, requestOf), Grant: ptr(r.Grant, grantOf), Seq: r.Seq}, nil
}

// Inbox lists the pending requests for the caller's department's
// datasets (overdue ones marked).
func (c *Client) Inbox(ctx context.Context) ([]ShareRequest, error) {
	return collect(func(token string) ([]ShareRequest, string, error) {
		r, err := c.shares.Inbox(ctx, &xhubv1.InboxRequest{PageSize: maxPage, PageToken: token})
		if err != nil {
			return nil, "", err
		}
		return mapped(r.Requests, requestOf), r.NextPageToken, nil
	})
}

// ShareQuery narrows a listing of grants or requests; its zero value
// lists everything the caller may see, with history.
type ShareQuery struct {
	Dataset string
	Grantee string // grants to this department, requests from it
	Status  string
}

// Grants lists grants.
func (c *Client) Grants(ctx context.Context, q ShareQuery) ([]Grant, error) {
	return collect(func(token string) ([]Grant, string, error) {
		r, err := c.shares.ListShares(ctx, &xhubv1.ListSharesRequest{Dataset: q.Dataset, Grantee: q.Grantee, Status: q.Status, PageSize: maxPage, PageToken: token})
		if err != nil {
			return nil, "", err
		}
		return mapped(r.Grants, grantOf), r.NextPageToken, nil
	})
}

// Requests lists share requests.
func (c *Client) Requests(ctx context.Context, q ShareQuery) ([]ShareRequest, error) {
	return collect(func(token string) ([]ShareRequest, string, error) {
		r, err := c.shares.ListShares(ctx, &xhubv1.ListSharesRequest{Dataset: q.Dataset, Grantee: q.Grantee, Status: q.Status, Requests: true, PageSize: maxPage, PageToken: token})
		if err != nil {
			return nil, "", err
		}
		return mapped(r.Requests, requestOf), r.NextPageToken, nil
	})
}

// AuditEntry is one access to a dataset.
type AuditEntry struct {
	ID              string    `json:"id"`
	Dept            string    `json:"dept"`
	Identity        string    `json:"identity"`
	Dataset         string    `json:"dataset"`
	Action          string    `json:"action"` // query | deliver | publish
	Fields          []string  `json:"fields,omitempty"`
	Records         int64     `json:"records"`
	Time            time.Time `json:"time"`
	RequestID       string    `json:"request_id,omitempty"`
	Withheld        int64     `json:"withheld,omitempty"`
	WithheldReasons []string  `json:"withheld_reasons,omitempty"` // in terms of the consumer's granted fields
	Subscription    string    `json:"subscription,omitempty"`
	ProviderReasons []string  `json:"provider_reasons,omitempty"` // shown to the owner and the operator only
}

// AuditQuery narrows the audit trail; its zero value lists all the caller
// may see.
type AuditQuery struct {
	Dataset string
	Dept    string
	Since   time.Time
}

// Audit lists accesses: an officer's department's own and those to its
// datasets; the operator's all.
func (c *Client) Audit(ctx context.Context, q AuditQuery) ([]AuditEntry, error) {
	req := &xhubv1.ListAuditRequest{Dataset: q.Dataset, Dept: q.Dept, PageSize: maxPage}
	if !q.Since.IsZero() {
		req.Since = timestamppb.New(q.Since)
	}
	return collect(func(token string) ([]AuditEntry, string, error) {
		req.PageToken = token
		r, err := c.audit.ListAudit(ctx, req)
		if err != nil {
			return nil, "", err
		}
		return mapped(r.Entries, auditOf), r.NextPageToken, nil
	})
}

// ExportAudit streams the audit entries of [q.Since, until) (until zero:
// now) as the hub's JSON, each to emit in order, and returns the hub's
// seal over them: a note signed with the ledger key (check it with
// ledger.OpenAuditSeal) stating the filter, the period, the count and the
// last hash of the chain (ledger.ChainHash) over exactly these bytes.
func (c *Client) ExportAudit(ctx context.Context, q AuditQuery, until time.Time, emit func(entry []byte) error) ([]byte, error) {
	req := &xhubv1.ExportAuditRequest{Dataset: q.Dataset, Dept: q.Dept, Since: timestamppb.New(q.Since)}
	if !until.IsZero() {
		req.Until = timestamppb.New(until)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := c.audit.ExportAudit(ctx, req)
	if err != nil {
		return nil, err
	}
	for {
		ch, err := st.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, errors.New("audit export: the hub ended the export without its seal")
			}
			return nil, err
		}
		for _, e := range ch.Entries {
			if err := emit(e); err != nil {
				return nil, err
			}
		}
		if len(ch.Seal) > 0 {
			return ch.Seal, nil
		}
	}
}

// SubscriptionInfo is a durable subscription of a department.
type SubscriptionInfo struct {
	Dept       string        `json:"dept"`
	Dataset    string        `json:"dataset"`
	Name       string        `json:"name"`
	CreatedBy  string        `json:"created_by"`
	Created    time.Time     `json:"created"`
	Pending    uint64        `json:"pending"`        // stored batches not yet delivered
	AckPending int64         `json:"ack_pending"`    // delivered, not yet acknowledged
	Open       bool          `json:"open"`           // a subscriber is connected
	IdleExpiry time.Duration `json:"idle_expiry_ns"` // deleted after this long without a subscriber
}

// Subscriptions lists the caller's department's durable subscriptions (the
// operator: dept's, or all), and the bound a department has.
func (c *Client) Subscriptions(ctx context.Context, dataset, dept string) ([]SubscriptionInfo, int, error) {
	r, err := c.exchange.ListSubscriptions(ctx, &xhubv1.ListSubscriptionsRequest{Dataset: dataset, Dept: dept})
	if err != nil {
		return nil, 0, err
	}
	return mapped(r.Subscriptions, subscriptionOf), int(r.Limit), nil
}

// DeleteSubscription deletes a durable subscription with what it has not
// delivered; dataset is needed when the name is used on several.
func (c *Client) DeleteSubscription(ctx context.Context, name, dataset string) (SubscriptionInfo, error) {
	r, err := c.exchange.DeleteSubscription(ctx, &xhubv1.DeleteSubscriptionRequest{Name: name, Dataset: dataset})
	if err != nil {
		return SubscriptionInfo{}, err
	}
	return subscriptionOf(r.Deleted), nil
}

// Entry is one ledger entry.
type Entry struct {
	Seq     uint64    `json:"seq"`
	Kind    string    `json:"kind"`
	Subject string    `json:"subject"`
	Actor   string    `json:"actor"`
	Time    time.Time `json:"time"`
	Raw     []byte    `json:"raw"` // the canonical JSON bytes that are the Merkle leaf
}

// Entries lists ledger entries after since (about dataset, if given), in
// order.
func (c *Client) Entries(ctx context.Context, since uint64, dataset string) ([]Entry, error) {
	var all []Entry
	for {
		r, err := c.ledger.ListEntries(ctx, &xhubv1.ListEntriesRequest{Since: since, Dataset: dataset, PageSize: maxPage})
		if err != nil {
			return nil, err
		}
		all = append(all, mapped(r.Entries, entryOf)...)
		if since = r.NextSince; since == 0 {
			return all, nil
		}
	}
}

// maxPage is the page size the SDK asks for (the hub's maximum).
const maxPage = 1000

// collect follows page tokens to the end.
func collect[T any](page func(token string) ([]T, string, error)) ([]T, error) {
	var all []T
	token := ""
	for {
		items, next, err := page(token)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		if token = next; token == "" {
			return all, nil
		}
	}
}

func mapped[P any, T any](in []P, f func(P) T) []T {
	out := make([]T, len(in))
	for i, p := range in {
		out[i] = f(p)
	}
	return out
}

// ptr is f(p), or nil for a message the hub left out.
func ptr[P comparable, T any](p P, f func(P) T) *T {
	var zero P
	if p == zero {
		return nil
	}
	t := f(p)
	return &t
}

// at is a wire time; an unset one is the zero time.
func at(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

func departmentOf(d *xhubv1.Department) Department {
	return Department{ID: d.GetId(), Name: d.GetName(), CreatedAt: at(d.GetCreatedAt()), Seq: d.GetSeq()}
}

func credentialOf(c *xhubv1.Credential) Credential {
	id, _ := vocab.ParseIdentity(c.GetIdentity())
	return Credential{Serial: c.GetSerial(), Identity: id, URI: c.GetIdentity(), NotAfter: at(c.GetNotAfter()), Revoked: c.GetRevoked(), RevokeReason: c.GetRevokeReason(), Seq: c.GetSeq()}
}

func fieldOf(f *xhubv1.Field) Field {
	return Field{Name: f.GetName(), Type: f.GetType(), Required: f.GetRequired(), Description: f.GetDescription()}
}

func schemaOf(s *xhubv1.Schema) Schema {
	return Schema{Subject: s.GetSubject(), Version: int(s.GetVersion()), JSON: s.GetSchemaJson(), Compat: s.GetCompat(),
		Fields: mapped(s.GetFields(), fieldOf), RegisteredAt: at(s.GetRegisteredAt()), Seq: s.GetSeq()}
}

func datasetOf(d *xhubv1.Dataset) Dataset {
	return Dataset{ID: d.GetId(), Owner: d.GetOwner(), Title: d.GetTitle(), Description: d.GetDescription(), Keywords: d.GetKeywords(),
		ShareType: d.GetShareType(), Frequency: d.GetFrequency(), Retention: d.GetRetention(), SchemaSubject: d.GetSchemaSubject(), SchemaVersion: int(d.GetSchemaVersion()),
		Fields: mapped(d.GetFields(), fieldOf), Status: d.GetStatus(), PublishedAt: at(d.GetPublishedAt()), UpdatedAt: at(d.GetUpdatedAt()), Seq: d.GetSeq()}
}

func requestOf(r *xhubv1.ShareRequest) ShareRequest {
	return ShareRequest{ID: r.GetId(), Requester: r.GetRequester(), Dataset: r.GetDataset(), Fields: r.GetFields(), Purpose: r.GetPurpose(),
		Days: int(r.GetDays()), Status: r.GetStatus(), Overdue: r.GetOverdue(), Reason: r.GetReason(), RequestedAt: at(r.GetRequestedAt()),
		Deadline: at(r.GetDeadline()), GrantID: r.GetGrantId(), DecidedBy: r.GetDecidedBy(), DecidedAt: at(r.GetDecidedAt()), Seq: r.GetSeq()}
}

func grantOf(g *xhubv1.Grant) Grant {
	return Grant{ID: g.GetId(), Grantee: g.GetGrantee(), Dataset: g.GetDataset(), Fields: g.GetFields(), GrantedAt: at(g.GetGrantedAt()),
		ExpiresAt: at(g.GetExpiresAt()), Status: g.GetStatus(), RequestID: g.GetRequestId(), Reason: g.GetReason(), GrantedBy: g.GetGrantedBy(),
		EndedAt: at(g.GetEndedAt()), Seq: g.GetSeq()}
}

func auditOf(a *xhubv1.AuditEntry) AuditEntry {
	return AuditEntry{ID: a.GetId(), Dept: a.GetDept(), Identity: a.GetIdentity(), Dataset: a.GetDataset(), Action: a.GetAction(), Fields: a.GetFields(),
		Records: a.GetRecords(), Time: at(a.GetTime()), RequestID: a.GetRequestId(), Withheld: a.GetWithheld(), WithheldReasons: a.GetWithheldReasons(),
		Subscription: a.GetSubscription(), ProviderReasons: a.GetProviderReasons()}
}

func subscriptionOf(s *xhubv1.SubscriptionInfo) SubscriptionInfo {
	return SubscriptionInfo{Dept: s.GetDept(), Dataset: s.GetDataset(), Name: s.GetName(), CreatedBy: s.GetCreatedBy(), Created: at(s.GetCreated()),
		Pending: s.GetPending(), AckPending: s.GetAckPending(), Open: s.GetOpen(), IdleExpiry: s.GetIdleExpiry().AsDuration()}
}

func entryOf(e *xhubv1.Entry) Entry {
	return Entry{Seq: e.GetSeq(), Kind: e.GetKind(), Subject: e.GetSubject(), Actor: e.GetActor(), Time: at(e.GetTime()), Raw: e.GetRaw()}
}

// JoinTokenInfo is a join token as the ledger records it (never its
// secret).
type JoinTokenInfo struct {
	ID        string    `json:"id"`
	Name      string    `json:"name,omitempty"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Status    string    `json:"status"` // unused | joined | expired
	JoinedAt  time.Time `json:"joined_at,omitzero"`
	JoinedAs  string    `json:"joined_as,omitempty"`
	JoinerKey string    `json:"joiner_key,omitempty"` // fingerprint of the key the node joined with, as it logged it
	Seq       uint64    `json:"seq"`
}

// NodeInfo is a hub node as its last heartbeat shows it.
type NodeInfo struct {
	Name      string    `json:"name"`
	Up        bool      `json:"up"` // heard from within three of its heartbeat intervals
	LastSeen  time.Time `json:"last_seen"`
	Applied   uint64    `json:"applied_seq"`
	Version   string    `json:"version"`
	Addrs     []string  `json:"addrs,omitempty"`
	StartedAt time.Time `json:"started_at"`
}

// Nodes lists the deployment's hub nodes heard from in the last week
// (operator).
func (c *Client) Nodes(ctx context.Context) ([]NodeInfo, error) {
	r, err := c.nodes.ListNodes(ctx, &xhubv1.ListNodesRequest{})
	if err != nil {
		return nil, err
	}
	return mapped(r.Nodes, nodeInfo), nil
}

// ForgetNode removes the last heartbeat of the node named name
// (operator): node list no longer shows it and creds files issued from
// then on no longer list its addresses. A node that is up is refused
// (FailedPrecondition) unless force. It returns the heartbeat removed.
func (c *Client) ForgetNode(ctx context.Context, name string, force bool) (NodeInfo, error) {
	r, err := c.nodes.ForgetNode(ctx, &xhubv1.ForgetNodeRequest{Name: name, Force: force})
	if err != nil {
		return NodeInfo{}, err
	}
	return nodeInfo(r.GetNode()), nil
}

func nodeInfo(n *xhubv1.NodeStatus) NodeInfo {
	return NodeInfo{Name: n.GetName(), Up: n.GetUp(), LastSeen: at(n.GetLastSeen()), Applied: n.GetAppliedSeq(), Version: n.GetVersion(),
		Addrs: n.GetAddrs(), StartedAt: at(n.GetStartedAt())}
}

// CreateJoinToken makes a one-time token for a new hub node (operator):
// the text to give `xhub serve` in a file (--join-file) or XHUB_JOIN,
// never on its command line, naming hubs (default: the address
// this client dialled) as the nodes to join through. ttl 0 is an hour.
func (c *Client) CreateJoinToken(ctx context.Context, name string, ttl time.Duration, hubs []string) (string, JoinTokenInfo, error) {
	req := &xhubv1.CreateJoinTokenRequest{Name: name}
	if ttl != 0 {
		req.Ttl = durationpb.New(ttl)
	}
	r, err := c.nodes.CreateJoinToken(ctx, req)
	if err != nil {
		return "", JoinTokenInfo{}, err
	}
	if len(hubs) == 0 {
		hubs = []string{c.addr}
	}
	tok := vocab.JoinToken{Hubs: hubs, CASHA256: r.CaSha256, ID: r.TokenId, Secret: r.Secret}
	return tok.String(), JoinTokenInfo{ID: r.TokenId, Name: name, ExpiresAt: at(r.ExpiresAt), Status: "unused", Seq: r.Seq}, nil
}

// JoinTokens lists every join token and the node that used it (operator).
func (c *Client) JoinTokens(ctx context.Context) ([]JoinTokenInfo, error) {
	r, err := c.nodes.ListNodes(ctx, &xhubv1.ListNodesRequest{})
	if err != nil {
		return nil, err
	}
	return mapped(r.Tokens, func(t *xhubv1.JoinToken) JoinTokenInfo {
		return JoinTokenInfo{ID: t.GetId(), Name: t.GetName(), CreatedBy: t.GetCreatedBy(), CreatedAt: at(t.GetCreatedAt()), ExpiresAt: at(t.GetExpiresAt()),
			Status: t.GetStatus(), JoinedAt: at(t.GetJoinedAt()), JoinedAs: t.GetJoinedAs(), JoinerKey: t.GetJoinerKey(), Seq: t.GetSeq()}
	}), nil
}

// WebhookSet is a department's webhook as set, with its signing secret
// (hex; shown once: setting it again rotates it).
type WebhookSet struct {
	Dept   string `json:"dept"`
	URL    string `json:"url"`
	Secret string `json:"secret,omitempty"`
	Seq    uint64 `json:"seq"`
}

// SetWebhook sets (url "": removes) where the hub posts dept's events.
func (c *Client) SetWebhook(ctx context.Context, dept, url string) (WebhookSet, error) {
	r, err := c.departments.SetWebhook(ctx, &xhubv1.SetWebhookRequest{Dept: dept, Url: url})
	if err != nil {
		return WebhookSet{}, err
	}
	return WebhookSet{Dept: r.Dept, URL: r.Url, Secret: r.Secret, Seq: r.Seq}, nil
}

// WebhookDelivery is the record of one posted event.
type WebhookDelivery struct {
	ID       string    `json:"id"`
	Event    string    `json:"event"`
	Subject  string    `json:"subject"`
	URL      string    `json:"url"`
	Status   string    `json:"status"`
	Attempts int       `json:"attempts"`
	Code     int       `json:"code,omitempty"`
	Error    string    `json:"error,omitempty"`
	At       time.Time `json:"at"`
	Entry    uint64    `json:"entry,omitempty"`          // the ledger entry of the event
	By       string    `json:"redelivered_by,omitempty"` // who asked for it again
}

// WebhookDeliveries lists dept's last n webhook deliveries, oldest first.
func (c *Client) WebhookDeliveries(ctx context.Context, dept string, n int) ([]WebhookDelivery, error) {
	r, err := c.departments.ListWebhookDeliveries(ctx, &xhubv1.ListWebhookDeliveriesRequest{Dept: dept, Limit: int32(n)})
	if err != nil {
		return nil, err
	}
	out := make([]WebhookDelivery, 0, len(r.Deliveries))
	for _, d := range r.Deliveries {
		out = append(out, WebhookDelivery{ID: d.Id, Event: d.Event, Subject: d.Subject, URL: d.Url, Status: d.Status, Attempts: int(d.Attempts),
			Code: int(d.Code), Error: d.Error, At: at(d.At), Entry: d.Entry, By: d.RedeliveredBy})
	}
	return out, nil
}

// Redelivered is what a webhook redelivery queued: the ids, those it
// found already queued (asked for again: not queued twice, not counted
// against the bound), and how many failed ones it left (the
// department's bound of redeliveries) to be asked for again from Next.
type Redelivered struct {
	IDs     []string  `json:"deliveries"`
	Already []string  `json:"already,omitempty"`
	Left    int       `json:"left,omitempty"`
	Next    time.Time `json:"next,omitzero"`
}

// RedeliverWebhook queues dept's failed (or dropped) webhook deliveries
// again: the one with id, or (id "") every one recorded at or after
// since, at most the hub's bound at a time. Only an officer of dept may.
func (c *Client) RedeliverWebhook(ctx context.Context, dept, id string, since time.Time) (Redelivered, error) {
	req := &xhubv1.RedeliverWebhookRequest{Dept: dept, Delivery: id}
	if !since.IsZero() {
		req.Since = timestamppb.New(since)
	}
	r, err := c.departments.RedeliverWebhook(ctx, req)
	if err != nil {
		return Redelivered{}, err
	}
	out := Redelivered{IDs: r.Deliveries, Already: r.Already, Left: int(r.Left)}
	if r.Next != nil {
		out.Next = r.Next.AsTime()
	}
	return out, nil
}
