// Package xhubv1 holds the xhub gRPC API: the .proto file and the Go code
// generated from it. Nothing else lives here; the API layer translates
// between these types and the domain packages.
//
// Regenerate with `go generate ./proto/...` (needs protoc, protoc-gen-go,
// protoc-gen-go-grpc and protoc-gen-connect-go on PATH; see the README).
// xhubv1connect holds the Connect handlers that serve the same services
// as JSON over HTTP and gRPC-Web; xhub.openapi.json is the OpenAPI 3
// document of that JSON API, generated from the descriptors.
package xhubv1

//go:generate protoc -I . --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative --connect-go_out=. --connect-go_opt=paths=source_relative,simple=true xhub.proto
//go:generate go run ../../../internal/jsonapi/gen-openapi -out xhub.openapi.json
