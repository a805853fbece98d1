package testenv

import (
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func isExists(err error) bool { return status.Code(err) == codes.AlreadyExists }

// Code is the gRPC code of err.
func Code(err error) codes.Code { return status.Code(err) }
