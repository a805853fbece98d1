package jsonapi

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

func TestMarshal(t *testing.T) {
	at := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	cases := []struct {
		msg  proto.Message
		want string
	}{
		{&xhubv1.QueryResponse{Records: [][]byte{[]byte(`{"id":9007199254740993,"名":"李"}`), []byte(" {\"a\":[1,2]}\n")}, Withheld: 2},
			`{"records":[{"id":9007199254740993,"名":"李"},{"a":[1,2]}],"withheld":2}`},
		{&xhubv1.ListDatasetsResponse{Total: 1 << 62}, `{"total":4611686018427387904}`},
		{&xhubv1.SubscribeResponse{DeliveryId: 18446744073709551615, Record: []byte(`{"x":"\u0000"}`), PublishedAt: timestamppb.New(at)},
			`{"deliveryId":18446744073709551615,"record":{"x":"\u0000"},"publishedAt":"2026-11-23T08:00:00Z"}`},
		{&xhubv1.Entry{Seq: 3, Kind: "k\"\n\x01", Raw: []byte{0, 1, 2}}, `{"seq":3,"kind":"k\"\n\u0001","raw":"AAEC"}`},
		{&xhubv1.Filter{Field: "f", Op: "in", ValueJson: []byte(`["a","b"]`)}, `{"field":"f","op":"in","valueJson":["a","b"]}`},
		{&xhubv1.SubscriptionInfo{AckPending: -1, IdleExpiry: durationpb.New(90 * time.Second)}, `{"ackPending":-1,"idleExpiry":"90s"}`},
		{&xhubv1.SubscribeRequest{Msg: &xhubv1.SubscribeRequest_Ack{Ack: &xhubv1.SubscribeAck{DeliveryIds: []uint64{1, 2}}}}, `{"ack":{"deliveryIds":[1,2]}}`},
		{&xhubv1.Entry{Kind: "bad \xff utf8"}, `{"kind":"bad \ufffd utf8"}`},
		{&xhubv1.JoinResponse{Replicas: 3, ServerKey: []byte{1}, Sealed: []byte{2}}, `{"replicas":3,"serverKey":"AQ==","sealed":"Ag=="}`},
	}
	for _, c := range cases {
		got, err := Marshal(c.msg)
		if err != nil {
			t.Fatalf("%T: %v", c.msg, err)
		}
		if string(got) != c.want {
			t.Errorf("%T:\n got %s\nwant %s", c.msg, got, c.want)
		}
		if !json.Valid(got) {
			t.Errorf("%T: not JSON: %s", c.msg, got)
		}
		// Read back, it is the same message.
		back := c.msg.ProtoReflect().New().Interface()
		if err := Unmarshal(got, back); err != nil {
			t.Fatalf("%T: read back: %v", c.msg, err)
		}
		if !proto.Equal(normalise(c.msg), back) && !strings.Contains(c.want, `\ufffd`) {
			t.Errorf("%T: read back as %v", c.msg, back)
		}
	}
}

// normalise is m with its JSON values compacted, as reading stores them.
func normalise(m proto.Message) proto.Message {
	m = proto.Clone(m)
	if q, ok := m.(*xhubv1.QueryResponse); ok {
		for i, r := range q.Records {
			var buf bytes.Buffer
			_ = json.Compact(&buf, r)
			q.Records[i] = buf.Bytes()
		}
	}
	return m
}

func TestMarshalRefusesBytesThatAreNotJSON(t *testing.T) {
	_, err := Marshal(&xhubv1.QueryResponse{Records: [][]byte{[]byte(`{"a":`)}})
	if err == nil || !strings.Contains(err.Error(), "records") {
		t.Fatalf("got %v", err)
	}
}

func TestUnmarshal(t *testing.T) {
	var p xhubv1.PublishRequest
	if err := Unmarshal([]byte(`{"dataset":"d.x","records":[{"id": 1, "n": "a"}, {"id":2}]}`), &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Records) != 2 || string(p.Records[0]) != `{"id":1,"n":"a"}` {
		t.Fatalf("%q", p.Records)
	}
	// protojson's names and 64-bit strings are read too.
	var a xhubv1.SubscribeRequest
	if err := Unmarshal([]byte(`{"ack":{"delivery_ids":["18446744073709551615", 3]}}`), &a); err != nil {
		t.Fatal(err)
	}
	if ids := a.GetAck().GetDeliveryIds(); len(ids) != 2 || ids[0] != 18446744073709551615 {
		t.Fatalf("%v", ids)
	}
	var q xhubv1.QueryRequest
	if err := Unmarshal([]byte(`{"dataset":"d.x","filters":[{"field":"f","op":"=","valueJson":{"deep":[1]}}]}`), &q); err != nil {
		t.Fatal(err)
	}
	if string(q.Filters[0].ValueJson) != `{"deep":[1]}` {
		t.Fatalf("%s", q.Filters[0].ValueJson)
	}
	for _, bad := range []struct{ in, names string }{
		{`{"dataset":"d.x","records":{"id":1}}`, "records"},
		{`{"dataset":"d.x","records":[{"id":}]}`, "not JSON at byte 35"},
		{`{"dataset":"d.x","nosuch":1}`, "nosuch"},
		{`{"dataset":1}`, "dataset"},
		{`[1]`, "PublishRequest"},
		{`{"dataset":"d.x"`, ""},
	} {
		err := Unmarshal([]byte(bad.in), &xhubv1.PublishRequest{})
		if err == nil || !strings.Contains(err.Error(), bad.names) {
			t.Errorf("%s: got %v, want an error naming %q", bad.in, err, bad.names)
		}
	}
}

// FuzzUnmarshal: any bytes into any request, no panic; what reads,
// writes, and reads back as the same message.
func FuzzUnmarshal(f *testing.F) {
	for _, s := range []string{`{}`, `{"dataset":"a.b","records":[{"x":1}]}`, `{"filters":[{"valueJson":null}]}`, `{"start":{"dataset":"a"}}`, "\xff", `{"records":[[[[[]]]]]}`} {
		f.Add(s)
	}
	msgs := []proto.Message{&xhubv1.PublishRequest{}, &xhubv1.QueryRequest{}, &xhubv1.SubscribeRequest{}, &xhubv1.ProviderMessage{}, &xhubv1.RegisterSchemaRequest{}}
	f.Fuzz(func(t *testing.T, in string) {
		for _, m := range msgs {
			m = m.ProtoReflect().New().Interface()
			if err := Unmarshal([]byte(in), m); err != nil {
				continue
			}
			out, err := Marshal(m)
			if err != nil {
				if hasBadJSON(m.ProtoReflect()) {
					continue
				}
				t.Fatalf("%T: %v", m, err)
			}
			back := m.ProtoReflect().New().Interface()
			if err := Unmarshal(out, back); err != nil {
				t.Fatalf("%T %s: read back: %v", m, out, err)
			}
			if !proto.Equal(m, back) {
				t.Fatalf("%T: %v became %v", m, m, back)
			}
		}
	})
}

// hasBadJSON: a json_value field given as a base64 string by a protojson
// client holds bytes that may not be JSON; writing them is refused.
func hasBadJSON(m protoreflect.Message) bool {
	bad := false
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case IsJSONValue(fd) && fd.IsList():
			for i := 0; i < v.List().Len(); i++ {
				bad = bad || !json.Valid(v.List().Get(i).Bytes())
			}
		case IsJSONValue(fd):
			bad = !json.Valid(v.Bytes())
		case fd.Message() != nil && fd.IsList():
			for i := 0; i < v.List().Len(); i++ {
				bad = bad || hasBadJSON(v.List().Get(i).Message())
			}
		case fd.Message() != nil && !fd.IsMap():
			bad = hasBadJSON(v.Message())
		}
		return !bad
	})
	return bad
}

// TestOpenAPIMatchesProto: the committed document is what the descriptors
// generate, and it has a path for every method and a property for every
// field, under the names the codec writes.
func TestOpenAPIMatchesProto(t *testing.T) {
	committed, err := os.ReadFile("../../proto/xhub/v1/xhub.openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if string(committed) != string(OpenAPI()) {
		t.Fatal("proto/xhub/v1/xhub.openapi.json is stale: run go generate ./proto/...")
	}
	var doc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas map[string]struct {
				Properties map[string]map[string]any `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(committed, &doc); err != nil {
		t.Fatal(err)
	}
	fd := xhubv1.File_xhub_proto
	methods := 0
	for i := 0; i < fd.Services().Len(); i++ {
		svc := fd.Services().Get(i)
		for j := 0; j < svc.Methods().Len(); j++ {
			m := svc.Methods().Get(j)
			methods++
			if _, ok := doc.Paths["/"+string(svc.FullName())+"/"+string(m.Name())]["post"]; !ok {
				t.Errorf("no path for %s", m.FullName())
			}
		}
	}
	if len(doc.Paths) != methods {
		t.Errorf("%d paths for %d methods", len(doc.Paths), methods)
	}
	for i := 0; i < fd.Messages().Len(); i++ {
		md := fd.Messages().Get(i)
		s, ok := doc.Components.Schemas[string(md.FullName())]
		if !ok {
			continue // not reachable from a method
		}
		for j := 0; j < md.Fields().Len(); j++ {
			f := md.Fields().Get(j)
			p, ok := s.Properties[f.JSONName()]
			if !ok {
				t.Errorf("%s: no property %s", md.FullName(), f.JSONName())
				continue
			}
			if IsJSONValue(f) && !f.IsList() && p["contentEncoding"] != nil {
				t.Errorf("%s.%s is a JSON value but documented as base64", md.FullName(), f.Name())
			}
			if (f.Kind() == protoreflect.Uint64Kind || f.Kind() == protoreflect.Int64Kind) && !f.IsList() && p["type"] != "integer" {
				t.Errorf("%s.%s: 64-bit integer documented as %v", md.FullName(), f.Name(), p["type"])
			}
		}
	}
	// What protojson would call the fields, the document calls them too.
	b, _ := protojson.Marshal(&xhubv1.QueryRequest{PageToken: "x"})
	if !strings.Contains(string(b), "pageToken") {
		t.Fatalf("protojson names: %s", b)
	}
	if _, ok := doc.Components.Schemas["xhub.v1.QueryRequest"].Properties["pageToken"]; !ok {
		t.Error("QueryRequest.pageToken missing")
	}
}
