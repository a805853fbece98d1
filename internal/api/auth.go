package api

import (
	"context"
	"crypto/x509"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/xhub-gov/xhub/exchange"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/buildinfo"
)

type ctxKey struct{}

// identityFrom returns the authenticated caller.
func identityFrom(ctx context.Context) vocab.Identity {
	id, _ := ctx.Value(ctxKey{}).(vocab.Identity)
	return id
}

var (
	anyRole     = []vocab.Role{vocab.RoleAdmin, vocab.RoleOfficer, vocab.RoleSystem}
	adminOnly   = []vocab.Role{vocab.RoleAdmin}
	officers    = []vocab.Role{vocab.RoleOfficer}
	staff       = []vocab.Role{vocab.RoleAdmin, vocab.RoleOfficer}
	systems     = []vocab.Role{vocab.RoleSystem}
	deptRoles   = []vocab.Role{vocab.RoleOfficer, vocab.RoleSystem}
	methodRoles = map[string][]vocab.Role{
		"/xhub.v1.Departments/AddDepartment":         adminOnly,
		"/xhub.v1.Nodes/CreateJoinToken":             adminOnly,
		"/xhub.v1.Nodes/ListNodes":                   adminOnly,
		"/xhub.v1.Nodes/ForgetNode":                  adminOnly,
		"/xhub.v1.Departments/ListDepartments":       anyRole,
		"/xhub.v1.Departments/SetWebhook":            staff,
		"/xhub.v1.Departments/ListWebhookDeliveries": staff,
		"/xhub.v1.Departments/RedeliverWebhook":      officers,
		"/xhub.v1.Credentials/IssueCredential":       staff,
		"/xhub.v1.Credentials/ListCredentials":       staff,
		"/xhub.v1.Credentials/RevokeCredential":      staff,
		"/xhub.v1.Schemas/RegisterSchema":            officers,
		"/xhub.v1.Schemas/CheckSchema":               anyRole,
		"/xhub.v1.Schemas/GetSchema":                 anyRole,
		"/xhub.v1.Schemas/ListVersions":              anyRole,
		"/xhub.v1.Catalog/PublishDataset":            officers,
		"/xhub.v1.Catalog/RetireDataset":             officers,
		"/xhub.v1.Catalog/UpdateDataset":             officers,
		"/xhub.v1.Catalog/GetDataset":                anyRole,
		"/xhub.v1.Catalog/ListDatasets":              anyRole,
		"/xhub.v1.Shares/RequestShare":               officers,
		"/xhub.v1.Shares/Inbox":                      officers,
		"/xhub.v1.Shares/Approve":                    staff,
		"/xhub.v1.Shares/Reject":                     staff,
		"/xhub.v1.Shares/Withdraw":                   officers,
		"/xhub.v1.Shares/RevokeGrant":                staff,
		"/xhub.v1.Shares/ListShares":                 anyRole,
		"/xhub.v1.Shares/WatchInbox":                 officers,
		"/xhub.v1.Disputes/OpenDispute":              officers,
		"/xhub.v1.Disputes/ResolveDispute":           staff,
		"/xhub.v1.Disputes/ListDisputes":             staff,
		"/xhub.v1.Ledger/ListEntries":                anyRole,
		"/xhub.v1.Ledger/GetHead":                    anyRole,
		"/xhub.v1.Ledger/InclusionProof":             anyRole,
		"/xhub.v1.Ledger/ConsistencyProof":           anyRole,
		"/xhub.v1.Exchange/Query":                    systems,
		"/xhub.v1.Exchange/Publish":                  systems,
		"/xhub.v1.Exchange/Subscribe":                systems,
		"/xhub.v1.Exchange/ListSubscriptions":        anyRole,
		"/xhub.v1.Exchange/DeleteSubscription":       deptRoles,
		"/xhub.v1.Provider/Serve":                    systems,
		"/xhub.v1.Audit/ListAudit":                   staff,
		"/xhub.v1.Audit/ExportAudit":                 staff,
		// Reflection (grpcurl) to any caller with a hub credential; see
		// OpenMethods.
		"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      anyRole,
		"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": anyRole,
	}
)

type authenticator struct {
	cp   *exchange.ControlPlane
	now  func() time.Time
	node string
}

// authenticate finds the caller's identity from its verified client
// certificate and checks it against the credential view: known to the
// ledger, not revoked, not expired, and allowed to call method.
func (a *authenticator) authenticate(ctx context.Context, method string) (context.Context, error) {
	if openMethod(method) {
		return ctx, nil
	}
	// A node whose state does not verify decides nothing; it still
	// serves the ledger, so the entry at fault can be found and proved.
	if err := a.cp.Integrity(); err != nil && !strings.HasPrefix(method, "/xhub.v1.Ledger/") {
		return nil, status.Errorf(codes.Unavailable, "this hub node does not serve: %v", err)
	}
	p, ok := peer.FromContext(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "no peer")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(ti.State.VerifiedChains) == 0 || len(ti.State.VerifiedChains[0]) == 0 {
		return nil, status.Error(codes.Unauthenticated, "a client certificate issued by the hub is required")
	}
	cert := ti.State.VerifiedChains[0][0]
	id, serial, err := vocab.IdentityOf(cert)
	if err != nil {
		return nil, status.Errorf(codes.Unauthenticated, "client certificate: %v", err)
	}
	if err := a.checkCredential(ctx, cert, id, serial); err != nil {
		return nil, err
	}
	roles, ok := methodRoles[method]
	if !ok {
		return nil, status.Errorf(codes.PermissionDenied, "method %s is not open to any role", method)
	}
	if !slices.Contains(roles, id.Role) {
		return nil, status.Errorf(codes.PermissionDenied, "%s: role %s may not call %s (allowed: %s)", id.URI(), id.Role, method, rolesString(roles))
	}
	return context.WithValue(ctx, ctxKey{}, id), nil
}

func (a *authenticator) checkCredential(ctx context.Context, cert *x509.Certificate, id vocab.Identity, serial string) error {
	c, ok := a.cp.Credential(serial)
	if !ok {
		// Issued through another node moments ago? Catch up once, bounded;
		// a node too far behind to know says so rather than call the
		// credential unknown.
		cerr := a.cp.CatchUp(ctx)
		c, ok = a.cp.Credential(serial)
		if !ok && cerr != nil {
			return toStatus(cerr)
		}
	}
	switch {
	case !ok:
		return status.Errorf(codes.Unauthenticated, "credential %s is not recorded in the hub's ledger", serial)
	case c.Revoked:
		return status.Errorf(codes.Unauthenticated, "credential %s (%s) was revoked at %s: %s", serial, c.Identity, c.RevokedAt.Format(time.RFC3339), c.RevokeReason)
	case c.Identity != id.URI():
		return status.Errorf(codes.Unauthenticated, "credential %s: certificate identity does not match the ledger", serial)
	case a.now().After(cert.NotAfter):
		return status.Errorf(codes.Unauthenticated, "credential %s expired at %s", serial, cert.NotAfter.Format(time.RFC3339))
	}
	return nil
}

func rolesString(rs []vocab.Role) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

func (a *authenticator) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	// Every answer names the node that gave it: a client tells a refusal
	// from a node (not retried) from a node that could not be reached.
	_ = grpc.SetTrailer(ctx, metadata.Pairs(NodeTrailer, a.node, VersionTrailer, buildinfo.Get().String()))
	ctx, err := a.authenticate(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	if ctx, err = withRequestID(ctx); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

// NodeTrailer names the answering node in every unary answer's trailer;
// VersionTrailer its build (version, commit, Go, API), health checks
// included.
const (
	NodeTrailer    = "xhub-node"
	VersionTrailer = "xhub-version"
)

// RequestIDHeader is the metadata key of a call's client request id: a
// call that changes state and is retried with the same id (on any node)
// is applied once.
const RequestIDHeader = "xhub-request-id"

func withRequestID(ctx context.Context) (context.Context, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	ids := md.Get(RequestIDHeader)
	if len(ids) == 0 {
		return ctx, nil
	}
	if len(ids) > 1 {
		return nil, invalid("request_id", "%d request ids given, at most one", len(ids))
	}
	if err := exchange.CheckRequestID(ids[0]); err != nil {
		return nil, toStatus(err)
	}
	return exchange.WithRequestID(ctx, ids[0]), nil
}

func (a *authenticator) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, err := a.authenticate(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	if openMethod(info.FullMethod) {
		return handler(srv, &wrappedStream{ServerStream: ss, ctx: ctx})
	}
	p, _ := peer.FromContext(ctx)
	ti, _ := p.AuthInfo.(credentials.TLSInfo)
	_, serial, _ := vocab.IdentityOf(ti.State.VerifiedChains[0][0])
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// A revoked credential ends its open streams too: re-checked each
	// time this node applies an entry that ends access.
	go func() {
		for {
			ended := a.cp.AccessEnded()
			if c, ok := a.cp.Credential(serial); !ok || c.Revoked {
				cancel(status.Errorf(codes.Unauthenticated, "credential %s was revoked: %s", serial, c.RevokeReason))
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-ended:
			}
		}
	}()
	err = handler(srv, &wrappedStream{ServerStream: ss, ctx: ctx})
	if cause := context.Cause(ctx); cause != nil && status.Code(cause) == codes.Unauthenticated {
		return cause
	}
	return err
}

type wrappedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (w *wrappedStream) Context() context.Context { return w.ctx }
