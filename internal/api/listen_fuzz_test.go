package api

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// memConn is a client's bytes as a connection: reads come from them,
// writes (the router's SETTINGS, PING acks) are counted and dropped.
type memConn struct {
	r       *bytes.Reader
	written int
}

func (c *memConn) Read(b []byte) (int, error) { return c.r.Read(b) }
func (c *memConn) Write(b []byte) (int, error) {
	c.written += len(b)
	return len(b), nil
}
func (c *memConn) SetReadDeadline(time.Time) error { return nil }

var fuzzLimits = ConnLimits{HandshakeTimeout: time.Second, IdleTimeout: time.Second}

// FuzzPeekFrames: whatever a client sends after the TLS handshake, the
// router neither panics nor reads more than peekLimit, hands on only
// bytes it read, and routes only after a whole first header block.
func FuzzPeekFrames(f *testing.F) {
	for _, s := range peekSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		c := &memConn{r: bytes.NewReader(in)}
		p, err := peekFrames(c, fuzzLimits)
		read := len(in) - c.r.Len()
		if read > peekLimit {
			t.Fatalf("read %d bytes before routing, the bound is %d", read, peekLimit)
		}
		if err != nil {
			return
		}
		if !p.done {
			t.Fatal("routed before the first header block was complete")
		}
		if len(p.buf) > read || !bytes.HasPrefix(p.buf, clientPreface) {
			t.Fatalf("hands on %d bytes of %d read, preface %v", len(p.buf), read, bytes.HasPrefix(p.buf, clientPreface))
		}
		if len(p.block) > MaxFirstHeaderBlock {
			t.Fatalf("a first header block of %d bytes", len(p.block))
		}
	})
}

// FuzzFirstContentType: the bounded decoder never panics, and when it
// answers, it agrees with a full decode of the same block.
func FuzzFirstContentType(f *testing.F) {
	for _, b := range blockSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, block []byte) {
		if len(block) > MaxFirstHeaderBlock {
			return // refused before decoding
		}
		ct, found, err := firstContentType(block)
		if err != nil {
			return
		}
		dec := hpack.NewDecoder(4096, nil)
		dec.SetMaxStringLength(MaxHeaderString)
		fields, ferr := dec.DecodeFull(block)
		if ferr != nil {
			if !found {
				t.Fatalf("no content-type and no error, where a full decode fails: %v", ferr)
			}
			return // stopped at content-type, before the fault
		}
		want, wantFound := "", false
		for _, fl := range fields {
			if fl.Name == "content-type" {
				want, wantFound = fl.Value, true
				break
			}
		}
		if ct != want || found != wantFound {
			t.Fatalf("content-type %q (%v), a full decode says %q (%v)", ct, found, want, wantFound)
		}
	})
}

// TestPeekFramesRoutes: the seeds route as they should, PINGs are
// answered and not handed on, the SETTINGS ack is taken out for the HTTP
// side, and each bound is refused with its reason.
func TestPeekFramesRoutes(t *testing.T) {
	grpcReq := clientBytes(headersFrame(encodeBlock("content-type", "application/grpc"), true), nil)
	p, err := peekFrames(&memConn{r: bytes.NewReader(grpcReq)}, fuzzLimits)
	// Handed on as read (the ack, still unread, follows on the connection).
	if err != nil || !p.toGRPC || !bytes.Equal(p.buf, grpcReq[:len(grpcReq)-len(settingsAck)]) {
		t.Fatalf("gRPC request: %v %+v", err, p)
	}
	ping := frame(http2FramePing, 0, 0, []byte("12345678"))
	jsonReq := clientBytes(ping, headersFrame(encodeBlock("content-type", "application/json"), true))
	c := &memConn{r: bytes.NewReader(jsonReq)}
	p, err = peekFrames(c, fuzzLimits)
	if err != nil || p.toGRPC {
		t.Fatalf("JSON request: %v %+v", err, p)
	}
	if bytes.Contains(p.buf, ping) || bytes.Contains(p.buf, settingsAck) || len(p.buf) != len(jsonReq)-len(ping)-len(settingsAck) {
		t.Fatalf("handed on %d bytes of %d: the PING or the ack left in", len(p.buf), len(jsonReq))
	}
	if c.written != 15+17 {
		t.Fatalf("wrote %d bytes: SETTINGS and one PING ack are 32", c.written)
	}

	reason := func(in []byte) string {
		_, err := peekFrames(&memConn{r: bytes.NewReader(in)}, fuzzLimits)
		var pe *peekError
		if !errors.As(err, &pe) {
			return "no peekError: " + errString(err)
		}
		return pe.reason
	}
	big := make([]byte, 0, MaxFirstHeaderBlock+100)
	for len(big) < MaxFirstHeaderBlock+16 {
		big = append(big, 0x80|2) // :method GET, again and again
	}
	cases := map[string][]byte{
		"header_block: over 16 KiB sent": clientBytes(append(headersFrame(big[:http2MaxFrame], false), frame(http2FrameContinuation, http2FlagEndHeaders, 1, big[http2MaxFrame:])...), nil),
		"header_block: too many fields":  clientBytes(headersFrame(big[:MaxFirstHeaderFields+1], true), nil),
		"header_block: a long string":    clientBytes(headersFrame(encodeBlock("x-long", string(make([]byte, MaxHeaderString+1))), true), nil),
		"protocol: interrupted block":    clientBytes(headersFrame(big[:10], false), ping),
		"protocol: not a preface":        []byte("GET / HTTP/1.1\r\n\r\n"),
	}
	for name, in := range cases {
		want := name[:bytes.IndexByte([]byte(name), ':')]
		if got := reason(in); got != want {
			t.Errorf("%s: refused as %q", name, got)
		}
	}
	if got := reason([]byte(http2.ClientPreface)); got != "no_request" && got != "no peekError: EOF" {
		t.Errorf("preface only: %s", got)
	}
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

var settingsAck = frame(http2FrameSettings, http2FlagAck, 0, nil)

func frame(typ, flags byte, stream uint32, payload []byte) []byte {
	n := len(payload)
	h := []byte{byte(n >> 16), byte(n >> 8), byte(n), typ, flags, byte(stream >> 24), byte(stream >> 16), byte(stream >> 8), byte(stream)}
	return append(h, payload...)
}

func headersFrame(block []byte, end bool) []byte {
	var flags byte
	if end {
		flags = http2FlagEndHeaders
	}
	return frame(http2FrameHeaders, flags, 1, block)
}

func encodeBlock(kv ...string) []byte {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	_ = enc.WriteField(hpack.HeaderField{Name: ":method", Value: "POST"})
	_ = enc.WriteField(hpack.HeaderField{Name: ":path", Value: "/xhub.v1.Catalog/ListDatasets"})
	for i := 0; i+1 < len(kv); i += 2 {
		_ = enc.WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]})
	}
	return buf.Bytes()
}

// clientBytes is what a client sends: preface, SETTINGS, before, the ack
// of ours, after.
func clientBytes(before, after []byte) []byte {
	out := append([]byte(http2.ClientPreface), frame(http2FrameSettings, 0, 0, nil)...)
	out = append(out, before...)
	out = append(out, settingsAck...)
	return append(out, after...)
}

func blockSeeds() [][]byte {
	return [][]byte{
		encodeBlock("content-type", "application/grpc"),
		encodeBlock("user-agent", "curl", "content-type", "application/json"),
		encodeBlock("x-a", "b"),
		{0x3f, 0xe1, 0x1f},                             // a dynamic table size update
		{0x40, 0x01, 'x', 0x01, 'y', 0xbe, 0xbe, 0xbe}, // into the table, then referenced
		{0xff, 0xff, 0xff, 0xff},                       // an index out of range
	}
}

func peekSeeds() [][]byte {
	return [][]byte{
		clientBytes(headersFrame(encodeBlock("content-type", "application/grpc"), true), nil),
		clientBytes(frame(http2FramePing, 0, 0, []byte("12345678")), headersFrame(encodeBlock("content-type", "application/json"), true)),
		clientBytes(frame(http2FrameHeaders, http2FlagPadded|http2FlagPriority|http2FlagEndHeaders, 1, append(append([]byte{2, 0, 0, 0, 0, 16}, encodeBlock()...), 0, 0)), nil),
		clientBytes(append(headersFrame(encodeBlock()[:3], false), frame(http2FrameContinuation, http2FlagEndHeaders, 1, encodeBlock()[3:])...), nil),
		[]byte(http2.ClientPreface),
		[]byte("GET / HTTP/1.1\r\n\r\n"),
	}
}

var _ io.Reader = (*memConn)(nil)
