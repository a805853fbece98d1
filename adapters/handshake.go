package adapters

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ExpiredError is returned by Dial for a credential outside its validity
// period: the hub would refuse it in the TLS handshake, which a TLS 1.3
// client otherwise sees only as a broken connection.
type ExpiredError struct {
	Identity            string
	NotBefore, NotAfter time.Time
	Now                 time.Time
}

func (e *ExpiredError) Error() string {
	if e.Now.Before(e.NotBefore) {
		return fmt.Sprintf("credential %s is valid only from %s (is this machine's clock right?)", e.Identity, e.NotBefore.UTC().Format("2006-01-02 15:04 MST"))
	}
	return fmt.Sprintf("credential %s expired on %s: ask your department's officer for a new one (xhub creds issue)", e.Identity, e.NotAfter.UTC().Format("2006-01-02 15:04 MST"))
}

func checkValidity(identity string, notBefore, notAfter, now time.Time) error {
	if now.After(notAfter) || now.Before(notBefore) {
		return &ExpiredError{Identity: identity, NotBefore: notBefore, NotAfter: notAfter, Now: now}
	}
	return nil
}

// handshakeRefusal tells whether the hub refuses this client's
// certificate: it completes a TLS handshake itself and reads the hub's
// first bytes; a hub that refused the certificate answers with a TLS
// alert (in TLS 1.3 the client sees it only after its own handshake has
// finished). It returns nil when the hub accepted, or cannot be asked.
func handshakeRefusal(ctx context.Context, addr string, cfg *tls.Config) error {
	cfg = cfg.Clone()
	cfg.NextProtos = []string{"h2"}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil // the hub is not reachable, or its server certificate is the problem: gRPC says so itself
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	var b [1]byte
	_, err = conn.Read(b[:])
	var alert tls.AlertError
	if errors.As(err, &alert) || err != nil && strings.Contains(err.Error(), "remote error: tls:") {
		return err
	}
	return nil
}

// refusalInterceptors turn an UNAVAILABLE that is really the hub refusing
// this credential's certificate into UNAUTHENTICATED saying so.
func refusalInterceptors(addr string, cfg *tls.Config) []grpc.DialOption {
	explain := func(ctx context.Context, err error) error {
		if status.Code(err) != codes.Unavailable {
			return err
		}
		if why := handshakeRefusal(context.WithoutCancel(ctx), addr, cfg); why != nil {
			return status.Errorf(codes.Unauthenticated, "the hub at %s refused this credential's certificate in the TLS handshake (%v): the credential is not from this hub, or it expired or was replaced", addr, why)
		}
		return err
	}
	return []grpc.DialOption{
		grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			return explain(ctx, invoker(ctx, method, req, reply, cc, opts...))
		}),
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			s, err := streamer(ctx, desc, cc, method, opts...)
			if err != nil {
				return nil, explain(ctx, err)
			}
			return s, nil
		}),
	}
}
