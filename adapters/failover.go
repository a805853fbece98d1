package adapters

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"
)

// A client may name several hub nodes ("a:7443,b:7443", in --hub or the
// creds file's hub: line). It connects to the first that answers and, when
// that node goes away, to the next; a call that failed because no node
// answered — the connection broke, or was refused — is tried again, on
// whichever node is up, for a few seconds. A refusal the hub itself sent
// (no provider connected, a bound reached) is not retried. Every call
// carries a request id, the same on each try, so a call that changes
// state is applied once even when its first try reached a node that
// applied it and then died before answering.

// RequestIDHeader is the metadata key of a call's request id.
const RequestIDHeader = "xhub-request-id"

// NodeTrailer is the trailer in which a hub node names itself on every
// answer; a failure without it never reached a node's handler.
const NodeTrailer = "xhub-node"

type requestIDKey struct{}

// WithRequestID makes the calls under ctx carry id as their request id
// (by default each call gets a random one): a program that retries a
// whole operation itself, or restarts, can name it so that it is applied
// once.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// retry bounds the tries of one call: how long, and the waits between.
const (
	retryBudget   = 15 * time.Second
	retryFirst    = 100 * time.Millisecond
	retryMaxDelay = 2 * time.Second
)

// splitHubs reads a comma-separated address list.
func splitHubs(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// target is the gRPC target for the hub addresses: the address itself for
// one, else a resolver holding them all (tried in order: pick_first).
func target(addrs []string) (string, []grpc.DialOption) {
	if len(addrs) == 1 {
		return addrs[0], nil
	}
	r := manual.NewBuilderWithScheme("xhub")
	state := resolver.State{}
	for _, a := range addrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			host = a
		}
		state.Addresses = append(state.Addresses, resolver.Address{Addr: a, ServerName: host})
	}
	r.InitialState(state)
	return "xhub:///hub", []grpc.DialOption{grpc.WithResolvers(r)}
}

// reachedNode says whether a failed call got an answer from a hub node.
func reachedNode(trailer metadata.MD) bool { return len(trailer.Get(NodeTrailer)) > 0 }

// retriable is an UNAVAILABLE that no hub node sent, other than a TLS
// handshake that failed (a certificate is not trusted: trying again will
// not change that).
func retriable(err error, trailer metadata.MD) bool {
	return status.Code(err) == codes.Unavailable && !reachedNode(trailer) && !strings.Contains(err.Error(), "authentication handshake failed")
}

func failoverUnary() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		id, _ := ctx.Value(requestIDKey{}).(string)
		if id == "" {
			id = newRequestID()
		}
		ctx = metadata.AppendToOutgoingContext(ctx, RequestIDHeader, id)
		return retrying(ctx, func() (bool, error) {
			var trailer metadata.MD
			err := invoker(ctx, method, req, reply, cc, append(opts, grpc.Trailer(&trailer))...)
			return err != nil && retriable(err, trailer), err
		})
	}
}

// openStream opens a stream, trying again while no node answers.
func openStream[S grpc.ClientStream](ctx context.Context, open func() (S, error)) (S, error) {
	var s S
	err := retrying(ctx, func() (bool, error) {
		var err error
		s, err = open()
		return err != nil && retriable(err, nil), err
	})
	return s, err
}

// retrying runs try until it succeeds, says not to try again, or the
// retry budget is spent, waiting longer between tries.
func retrying(ctx context.Context, try func() (again bool, err error)) error {
	deadline := time.Now().Add(retryBudget)
	delay := retryFirst
	for {
		again, err := try()
		if !again || time.Now().Add(delay).After(deadline) {
			return err
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return err
		}
		delay = min(2*delay, retryMaxDelay)
	}
}
