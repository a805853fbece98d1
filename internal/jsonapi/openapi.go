package jsonapi

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"google.golang.org/protobuf/reflect/protoreflect"

	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

// OpenAPI is the OpenAPI 3.1 document of the JSON API, generated from the
// xhub.v1 descriptors with this package's mapping. The same bytes are
// committed as proto/xhub/v1/xhub.openapi.json (`go generate
// ./proto/...`), and served by the hub at /openapi.json.
func OpenAPI() []byte {
	openapiOnce.Do(func() { openapiDoc = generate(xhubv1.File_xhub_proto) })
	return openapiDoc
}

var (
	openapiOnce sync.Once
	openapiDoc  []byte
)

type object = map[string]any

func generate(fd protoreflect.FileDescriptor) []byte {
	g := &gen{schemas: object{}}
	paths := object{}
	svcs := fd.Services()
	for i := 0; i < svcs.Len(); i++ {
		svc := svcs.Get(i)
		ms := svc.Methods()
		for j := 0; j < ms.Len(); j++ {
			m := ms.Get(j)
			paths["/"+string(svc.FullName())+"/"+string(m.Name())] = object{"post": g.operation(svc, m)}
		}
	}
	g.schemas["connect.Error"] = object{
		"type":        "object",
		"description": "An error, as the Connect protocol writes it: code (canceled, invalid_argument, not_found, already_exists, permission_denied, resource_exhausted, failed_precondition, aborted, unavailable, unauthenticated, …), message naming what was wrong, and details (google.rpc.BadRequest field violations, google.rpc.PreconditionFailure), each with its type and base64 value.",
		"properties": object{
			"code":    object{"type": "string"},
			"message": object{"type": "string"},
			"details": object{"type": "array", "items": object{"type": "object", "properties": object{
				"type": object{"type": "string"}, "value": object{"type": "string", "contentEncoding": "base64"},
			}}},
		},
		"required": []string{"code"},
	}
	doc := object{
		"openapi": "3.1.0",
		"info": object{
			"title":   "xhub " + string(fd.Package()),
			"version": "v1",
			"description": "The xhub API as JSON over HTTP (the Connect protocol): every unary method is a POST of a JSON body to /<service>/<method> " +
				"with Content-Type: application/json, on the hub's gRPC port, with the same mutual TLS (a certificate from `xhub creds export --pem`) " +
				"and the same authorisation as gRPC. Records, filter values and schemas are JSON values (base64 bytes on gRPC); 64-bit integers are JSON numbers. " +
				"Send the optional header xhub-request-id to make a retried write apply once. Streaming methods (x-xhub-streaming) need a Connect, gRPC-Web or gRPC client over HTTP/2.",
		},
		"servers":  []any{object{"url": "https://127.0.0.1:7443"}},
		"security": []any{object{"mutualTLS": []string{}}},
		"paths":    paths,
		"components": object{
			"securitySchemes": object{"mutualTLS": object{"type": "mutualTLS", "description": "A client certificate issued by the hub (xhub creds issue, then xhub creds export --pem)."}},
			"schemas":         g.schemas,
		},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic(err) // maps of strings and slices: cannot fail
	}
	return append(b, '\n')
}

type gen struct{ schemas object }

func (g *gen) operation(svc protoreflect.ServiceDescriptor, m protoreflect.MethodDescriptor) object {
	op := object{
		"operationId": string(svc.Name()) + "_" + string(m.Name()),
		"tags":        []string{string(svc.Name())},
		"requestBody": object{"required": true, "content": object{"application/json": object{"schema": g.ref(m.Input())}}},
		"responses": object{
			"200":     object{"description": "OK", "content": object{"application/json": object{"schema": g.ref(m.Output())}}},
			"default": object{"description": "An error", "content": object{"application/json": object{"schema": object{"$ref": "#/components/schemas/connect.Error"}}}},
		},
	}
	if m.IsStreamingClient() || m.IsStreamingServer() {
		op["x-xhub-streaming"] = true
		op["summary"] = "Bidirectional stream: Connect streaming (application/connect+json), gRPC-Web or gRPC over HTTP/2; not a plain JSON POST."
	}
	return op
}

func (g *gen) ref(md protoreflect.MessageDescriptor) object {
	name := string(md.FullName())
	if s, ok := wellKnownSchema(md); ok {
		return s
	}
	if _, ok := g.schemas[name]; !ok {
		g.schemas[name] = nil // reserved: recursion stops here
		g.schemas[name] = g.message(md)
	}
	return object{"$ref": "#/components/schemas/" + name}
}

func wellKnownSchema(md protoreflect.MessageDescriptor) (object, bool) {
	switch md.FullName() {
	case "google.protobuf.Timestamp":
		return object{"type": "string", "format": "date-time"}, true
	case "google.protobuf.Duration":
		return object{"type": "string", "pattern": `^-?[0-9]+(\.[0-9]+)?s$`, "description": "a duration in seconds, as \"3600s\""}, true
	}
	return nil, false
}

func (g *gen) message(md protoreflect.MessageDescriptor) object {
	props := object{}
	fds := md.Fields()
	for i := 0; i < fds.Len(); i++ {
		fd := fds.Get(i)
		props[fd.JSONName()] = g.field(fd)
	}
	s := object{"type": "object", "properties": props, "additionalProperties": false}
	var oneofs []string
	os := md.Oneofs()
	for i := 0; i < os.Len(); i++ {
		o := os.Get(i)
		if o.IsSynthetic() {
			continue // proto3 optional: presence, not a choice
		}
		var names []string
		for j := 0; j < o.Fields().Len(); j++ {
			names = append(names, o.Fields().Get(j).JSONName())
		}
		oneofs = append(oneofs, fmt.Sprintf("at most one of %s", strings.Join(names, ", ")))
	}
	if len(oneofs) > 0 {
		s["description"] = strings.Join(oneofs, "; ")
	}
	return s
}

func (g *gen) field(fd protoreflect.FieldDescriptor) object {
	if fd.IsMap() {
		return object{"type": "object", "additionalProperties": g.single(fd.MapValue())}
	}
	if fd.IsList() {
		return object{"type": "array", "items": g.single(fd)}
	}
	return g.single(fd)
}

func (g *gen) single(fd protoreflect.FieldDescriptor) object {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return object{"type": "boolean"}
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return object{"type": "integer", "format": "int32"}
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return object{"type": "integer", "format": "int32", "minimum": 0}
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return object{"type": "integer", "format": "int64"}
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return object{"type": "integer", "format": "int64", "minimum": 0}
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return object{"type": "number"}
	case protoreflect.StringKind:
		return object{"type": "string"}
	case protoreflect.BytesKind:
		if IsJSONValue(fd) {
			if strings.Contains(string(fd.Name()), "record") || strings.Contains(string(fd.Name()), "schema") {
				return object{"type": "object", "description": "a JSON object (raw bytes on gRPC)"}
			}
			return object{"description": "a JSON value (raw bytes on gRPC)"}
		}
		return object{"type": "string", "contentEncoding": "base64"}
	case protoreflect.EnumKind:
		var names []string
		vs := fd.Enum().Values()
		for i := 0; i < vs.Len(); i++ {
			names = append(names, string(vs.Get(i).Name()))
		}
		return object{"type": "string", "enum": names}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return g.ref(fd.Message())
	}
	return object{}
}
