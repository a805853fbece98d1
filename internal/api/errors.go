package api

import (
	"context"
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/xhub-gov/xhub/exchange"
	"github.com/xhub-gov/xhub/exchange/vocab"
)

// toStatus maps a domain error to a gRPC status with google.rpc details.
// This is the one place where domain errors become gRPC codes.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	var rp *exchange.Replayed
	if errors.As(err, &rp) {
		st, _ := status.New(codes.FailedPrecondition, err.Error()).WithDetails(&errdetails.PreconditionFailure{Violations: []*errdetails.PreconditionFailure_Violation{
			{Type: "REQUEST_REPLAYED", Subject: rp.RequestID, Description: err.Error()}}})
		return st.Err()
	}
	var fe *vocab.Error
	if !errors.As(err, &fe) {
		return status.Error(codes.Internal, err.Error())
	}
	var code codes.Code
	switch fe.Kind {
	case vocab.KindInvalid:
		code = codes.InvalidArgument
	case vocab.KindNotFound:
		code = codes.NotFound
	case vocab.KindExists:
		code = codes.AlreadyExists
	case vocab.KindPrecondition:
		code = codes.FailedPrecondition
	case vocab.KindDenied:
		code = codes.PermissionDenied
	case vocab.KindUnavailable:
		code = codes.Unavailable
	case vocab.KindExhausted:
		code = codes.ResourceExhausted
	default:
		code = codes.Internal
	}
	st := status.New(code, err.Error())
	switch fe.Kind {
	case vocab.KindInvalid:
		br := &errdetails.BadRequest{}
		for _, v := range fe.Violations {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: v.Field, Description: v.Description})
		}
		if d, err := st.WithDetails(br); err == nil {
			st = d
		}
	case vocab.KindPrecondition:
		pf := &errdetails.PreconditionFailure{}
		for _, v := range fe.Violations {
			pf.Violations = append(pf.Violations, &errdetails.PreconditionFailure_Violation{Type: v.Type, Subject: v.Field, Description: v.Description})
		}
		if d, err := st.WithDetails(pf); err == nil {
			st = d
		}
	case vocab.KindExhausted:
		qf := &errdetails.QuotaFailure{}
		for _, v := range fe.Violations {
			qf.Violations = append(qf.Violations, &errdetails.QuotaFailure_Violation{Subject: v.Field, Description: v.Description})
		}
		if d, err := st.WithDetails(qf); err == nil {
			st = d
		}
	case vocab.KindNotFound:
		if d, err := st.WithDetails(&errdetails.ResourceInfo{Description: fe.Msg}); err == nil {
			st = d
		}
	}
	return st.Err()
}

func invalid(field, format string, args ...any) error {
	return toStatus(vocab.Invalid(field, format, args...))
}

func permissionDenied(msg string) error { return vocab.Denied("%s", msg) }
