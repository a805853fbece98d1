package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"
)

// StatusError is a delivery answered with a status outside 2xx.
type StatusError struct{ Code int }

func (e *StatusError) Error() string { return fmt.Sprintf("HTTP %d", e.Code) }

// describe says what failed in a delivery in words for the department:
// the name it could not resolve, the address that refused or timed out,
// the guard's refusal, the TLS failure, the HTTP status. It never names
// the hub's own network (its resolver, its source address and port):
// the full error goes to the hub's log.
func describe(err error, timeout, connect time.Duration) string {
	var ae *AddrError
	if errors.As(err, &ae) {
		return "refused: " + ae.Error()
	}
	var se *StatusError
	if errors.As(err, &se) {
		return se.Error()
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		switch {
		case dns.IsNotFound:
			return fmt.Sprintf("could not resolve %s: no such host", dns.Name)
		case dns.IsTimeout:
			return fmt.Sprintf("could not resolve %s: timed out", dns.Name)
		}
		return fmt.Sprintf("could not resolve %s", dns.Name)
	}
	if errors.Is(err, context.Canceled) {
		return "cancelled: the hub node was stopping"
	}
	var op *net.OpError
	hasOp := errors.As(err, &op) && op.Addr != nil
	var to interface{ Timeout() bool }
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &to) && to.Timeout()) {
		if hasOp && op.Op == "dial" {
			return fmt.Sprintf("timeout after %s connecting to %s", connect, op.Addr)
		}
		return fmt.Sprintf("timeout after %s", timeout)
	}
	var cv *tls.CertificateVerificationError
	if errors.As(err, &cv) {
		return "TLS: the server's certificate: " + cv.Err.Error()
	}
	var alert tls.AlertError
	if errors.As(err, &alert) {
		return "TLS: the server ended the handshake: " + alert.Error()
	}
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) {
		return "TLS: the server did not answer in TLS"
	}
	if hasOp {
		var errno syscall.Errno
		switch {
		case errors.As(op.Err, &errno) && errno == syscall.ECONNREFUSED:
			return fmt.Sprintf("connection refused by %s", op.Addr)
		case errors.As(op.Err, &errno) && errno == syscall.ECONNRESET:
			return fmt.Sprintf("connection reset by %s", op.Addr)
		case errors.As(op.Err, &errno) && (errno == syscall.ENETUNREACH || errno == syscall.EHOSTUNREACH):
			return fmt.Sprintf("no route to %s", op.Addr)
		case errors.As(op.Err, &errno):
			return fmt.Sprintf("connection to %s failed: %s", op.Addr, errno.Error())
		case op.Op == "dial":
			return fmt.Sprintf("could not connect to %s", op.Addr)
		}
		return fmt.Sprintf("the connection to %s failed", op.Addr)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "the server closed the connection without an answer"
	}
	return "the delivery failed (the hub's log has the details)"
}
