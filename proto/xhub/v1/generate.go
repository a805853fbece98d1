// Package xhubv1 holds the xhub gRPC API: the .proto file and the Go code
// generated from it. Nothing else lives here; the API layer translates
// between these types and the domain packages.
//
// Regenerate with `go generate ./proto/...` (needs protoc, protoc-gen-go and
// protoc-gen-go-grpc on PATH; see the README).
package xhubv1

//go:generate protoc -I . --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative xhub.proto
