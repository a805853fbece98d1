// Package jsonapi owns the JSON mapping of the xhub.v1 API, as served over
// HTTP (Connect and gRPC-Web with JSON bodies): the codec and the OpenAPI 3
// document generated from the same descriptors. The mapping is proto3's
// canonical JSON with two changes a non-Go client needs: a bytes field
// marked (xhub.v1.json_value) — a record, a filter value, a schema — is the
// JSON value itself, not base64; and 64-bit integers are JSON numbers
// (exact in the text; seq and counts stay far below 2^53), not strings.
// Reading accepts both forms of a 64-bit integer.
package jsonapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
)

// Codec is the JSON codec of the HTTP API. Its Name is the Connect codec
// name it replaces ("json", or "json; charset=utf-8").
type Codec struct{ name string }

// Codecs are the codecs to install on a Connect handler or client: the
// same mapping under both names Connect uses for JSON.
func Codecs() []*Codec { return []*Codec{{name: "json"}, {name: "json; charset=utf-8"}} }

// Name is the codec's name.
func (c *Codec) Name() string {
	if c == nil || c.name == "" {
		return "json"
	}
	return c.name
}

// Marshal writes m, a proto message, in xhub's JSON mapping.
func (c *Codec) Marshal(m any) ([]byte, error) {
	msg, ok := m.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("jsonapi: %T is not a proto message", m)
	}
	return Marshal(msg)
}

// Unmarshal reads data, in xhub's JSON mapping, into m.
func (c *Codec) Unmarshal(data []byte, m any) error {
	msg, ok := m.(proto.Message)
	if !ok {
		return fmt.Errorf("jsonapi: %T is not a proto message", m)
	}
	return Unmarshal(data, msg)
}

// Marshal writes m in xhub's JSON mapping.
func Marshal(m proto.Message) ([]byte, error) {
	e := encoder{buf: make([]byte, 0, 256)}
	if err := e.message(m.ProtoReflect()); err != nil {
		return nil, err
	}
	return e.buf, nil
}

// IsJSONValue reports whether fd is a bytes field that holds one JSON
// document and maps to that JSON value.
func IsJSONValue(fd protoreflect.FieldDescriptor) bool {
	if fd.Kind() != protoreflect.BytesKind {
		return false
	}
	if v, ok := jsonFields.Load(fd); ok {
		return v.(bool)
	}
	v := proto.GetExtension(fd.Options(), xhubv1.E_JsonValue).(bool)
	jsonFields.Store(fd, v)
	return v
}

var jsonFields sync.Map // protoreflect.FieldDescriptor → bool

func wellKnown(md protoreflect.MessageDescriptor) bool {
	return md.ParentFile().Package() == "google.protobuf"
}

type encoder struct{ buf []byte }

func (e *encoder) message(m protoreflect.Message) error {
	md := m.Descriptor()
	if wellKnown(md) {
		b, err := protojson.Marshal(m.Interface())
		if err != nil {
			return err
		}
		e.buf = append(e.buf, b...)
		return nil
	}
	e.buf = append(e.buf, '{')
	first := true
	fds := md.Fields()
	for i := 0; i < fds.Len(); i++ {
		fd := fds.Get(i)
		if !m.Has(fd) {
			continue
		}
		if !first {
			e.buf = append(e.buf, ',')
		}
		first = false
		e.buf = appendString(e.buf, fd.JSONName())
		e.buf = append(e.buf, ':')
		v := m.Get(fd)
		var err error
		switch {
		case fd.IsList():
			err = e.list(fd, v.List())
		case fd.IsMap():
			err = e.mapValue(fd, v.Map())
		default:
			err = e.single(fd, v)
		}
		if err != nil {
			return err
		}
	}
	e.buf = append(e.buf, '}')
	return nil
}

func (e *encoder) list(fd protoreflect.FieldDescriptor, l protoreflect.List) error {
	e.buf = append(e.buf, '[')
	for i := 0; i < l.Len(); i++ {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		if err := e.single(fd, l.Get(i)); err != nil {
			return err
		}
	}
	e.buf = append(e.buf, ']')
	return nil
}

func (e *encoder) mapValue(fd protoreflect.FieldDescriptor, mv protoreflect.Map) error {
	// Keys in order, so that the same message is the same text.
	keys := make([]string, 0, mv.Len())
	vals := map[string]protoreflect.Value{}
	mv.Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
		s := k.String()
		keys = append(keys, s)
		vals[s] = v
		return true
	})
	slices.Sort(keys)
	e.buf = append(e.buf, '{')
	for i, k := range keys {
		if i > 0 {
			e.buf = append(e.buf, ',')
		}
		e.buf = appendString(e.buf, k)
		e.buf = append(e.buf, ':')
		if err := e.single(fd.MapValue(), vals[k]); err != nil {
			return err
		}
	}
	e.buf = append(e.buf, '}')
	return nil
}

func (e *encoder) single(fd protoreflect.FieldDescriptor, v protoreflect.Value) error {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		e.buf = strconv.AppendBool(e.buf, v.Bool())
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		e.buf = strconv.AppendInt(e.buf, v.Int(), 10)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		e.buf = strconv.AppendUint(e.buf, v.Uint(), 10)
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		f := v.Float()
		switch {
		case math.IsNaN(f):
			e.buf = append(e.buf, `"NaN"`...)
		case math.IsInf(f, 1):
			e.buf = append(e.buf, `"Infinity"`...)
		case math.IsInf(f, -1):
			e.buf = append(e.buf, `"-Infinity"`...)
		default:
			bits := 64
			if fd.Kind() == protoreflect.FloatKind {
				bits = 32
			}
			e.buf = strconv.AppendFloat(e.buf, f, 'g', -1, bits)
		}
	case protoreflect.StringKind:
		e.buf = appendString(e.buf, v.String())
	case protoreflect.BytesKind:
		b := v.Bytes()
		if IsJSONValue(fd) {
			if len(b) == 0 {
				e.buf = append(e.buf, "null"...)
				return nil
			}
			if !json.Valid(b) {
				return fmt.Errorf("jsonapi: field %s holds bytes that are not JSON", fd.FullName())
			}
			e.buf = append(e.buf, bytes.TrimSpace(b)...)
			return nil
		}
		e.buf = append(e.buf, '"')
		e.buf = base64.StdEncoding.AppendEncode(e.buf, b)
		e.buf = append(e.buf, '"')
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			e.buf = appendString(e.buf, string(ev.Name()))
		} else {
			e.buf = strconv.AppendInt(e.buf, int64(v.Enum()), 10)
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return e.message(v.Message())
	default:
		return fmt.Errorf("jsonapi: field %s: kind %s", fd.FullName(), fd.Kind())
	}
	return nil
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string; bytes that are not UTF-8 become
// U+FFFD, as encoding/json does.
func appendString(buf []byte, s string) []byte {
	buf = append(buf, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			buf = append(buf, s[start:i]...)
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, s[start:i]...)
			buf = append(buf, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	buf = append(buf, s[start:]...)
	return append(buf, '"')
}

// Unmarshal reads data, in xhub's JSON mapping, into m. Unknown fields are
// refused by name; a json_value field takes any JSON value (stored
// compacted); a 64-bit integer may be a number or a string.
func Unmarshal(data []byte, m proto.Message) error {
	md := m.ProtoReflect().Descriptor()
	if hasJSONValue(md, 0) {
		var err error
		if data, err = rewrite(data, md, string(md.Name()), 0); err != nil {
			return err
		}
	}
	return protojson.Unmarshal(data, m)
}

// hasJSONValue reports whether md or a message inside it has a json_value
// field.
func hasJSONValue(md protoreflect.MessageDescriptor, depth int) bool {
	if v, ok := jsonMessages.Load(md); ok {
		return v.(bool)
	}
	found := false
	if depth < 32 && !wellKnown(md) {
		fds := md.Fields()
		for i := 0; i < fds.Len() && !found; i++ {
			fd := fds.Get(i)
			switch {
			case IsJSONValue(fd):
				found = true
			case fd.Message() != nil && fd.Message() != md:
				found = hasJSONValue(fd.Message(), depth+1)
			}
		}
	}
	jsonMessages.Store(md, found)
	return found
}

var jsonMessages sync.Map // protoreflect.MessageDescriptor → bool

// MaxDepth bounds the nesting of messages that hold JSON values.
const MaxDepth = 16

// rewrite turns the json_value fields of data (a JSON object for md) into
// the base64 strings protojson reads, recursively.
func rewrite(data []byte, md protoreflect.MessageDescriptor, path string, depth int) ([]byte, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("%s: nested too deep", path)
	}
	data = bytes.TrimSpace(data)
	if bytes.Equal(data, []byte("null")) {
		return data, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, fmt.Errorf("%s: %v", path, jsonError(err))
	}
	fds := md.Fields()
	for k, raw := range obj {
		fd := fds.ByJSONName(k)
		if fd == nil {
			fd = fds.ByTextName(k)
		}
		if fd == nil {
			continue // protojson names it
		}
		fpath := path + "." + k
		var err error
		switch {
		case IsJSONValue(fd) && fd.IsList():
			obj[k], err = eachElement(raw, fpath, func(el json.RawMessage, p string) (json.RawMessage, error) { return jsonToBase64(el, p) })
		case IsJSONValue(fd):
			obj[k], err = jsonToBase64(raw, fpath)
		case fd.Message() != nil && !fd.IsMap() && hasJSONValue(fd.Message(), 0):
			sub := fd.Message()
			if fd.IsList() {
				obj[k], err = eachElement(raw, fpath, func(el json.RawMessage, p string) (json.RawMessage, error) {
					return rewrite(el, sub, p, depth+1)
				})
			} else {
				obj[k], err = rewrite(raw, sub, fpath, depth+1)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	return json.Marshal(obj)
}

func eachElement(raw json.RawMessage, path string, f func(json.RawMessage, string) (json.RawMessage, error)) (json.RawMessage, error) {
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return raw, nil
	}
	var els []json.RawMessage
	if err := json.Unmarshal(raw, &els); err != nil {
		return nil, fmt.Errorf("%s: want an array: %v", path, jsonError(err))
	}
	for i, el := range els {
		out, err := f(el, fmt.Sprintf("%s[%d]", path, i))
		if err != nil {
			return nil, err
		}
		els[i] = out
	}
	return json.Marshal(els)
}

func jsonToBase64(raw json.RawMessage, path string) (json.RawMessage, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, fmt.Errorf("%s: %v", path, jsonError(err))
	}
	if buf.String() == "null" {
		return json.RawMessage(`""`), nil
	}
	out := make([]byte, 0, base64.StdEncoding.EncodedLen(buf.Len())+2)
	out = append(out, '"')
	out = base64.StdEncoding.AppendEncode(out, buf.Bytes())
	return append(out, '"'), nil
}

// jsonError words encoding/json's errors without Go type names.
func jsonError(err error) string {
	switch e := err.(type) {
	case *json.UnmarshalTypeError:
		return fmt.Sprintf("want %s, got a JSON %s", jsonKind(e.Type.Kind().String()), e.Value)
	case *json.SyntaxError:
		return fmt.Sprintf("not JSON at byte %d: %v", e.Offset, e)
	}
	return err.Error()
}

func jsonKind(goKind string) string {
	switch goKind {
	case "map", "struct":
		return "an object"
	case "slice":
		return "an array"
	}
	return goKind
}
