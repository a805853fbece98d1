package hub_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/xhub-gov/xhub/internal/api"
	"github.com/xhub-gov/xhub/internal/testenv"
)

// TestUnauthenticatedGRPCStreamsEnd (written by the outside review): a
// client without a certificate opens
// native gRPC streams of the open method Nodes/Join on one connection and
// never completes their messages (none sent, or all of one but its last
// byte). Each such stream holds a goroutine and its buffered message on
// the hub; they must end within the read timeout's order, as the HTTP side
// does. (Found by the second outside attack of issue 20: 40,000 such
// streams on 4 connections held 40,099 goroutines and 494 MB past the idle
// timeout; 48 messages of 8 MiB less a byte held 464 MB of heap for 40 s.)
// Now at most api.MaxOpenCalls are taken at once, the rest refused at
// their headers, and each ends within the lesser of api.OpenCallTimeout
// and the read timeout.
func TestUnauthenticatedGRPCStreamsEnd(t *testing.T) {
	env := testenv.Start(t, testenv.WithConn(api.ConnLimits{IdleTimeout: 2 * time.Second, ReadTimeout: time.Second}))
	const within = 30 * time.Second
	for _, tc := range []struct {
		name    string
		streams int
		partial bool
	}{{"no message", 200, false}, {"all but the last byte", 3, true}} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tls.Dial("tcp", env.Addr(), clientTLS(t, env, false, "h2"))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var w bytes.Buffer
			fr := http2.NewFramer(&w, c)
			w.WriteString(http2.ClientPreface)
			_ = fr.WriteSettings()
			_ = fr.WriteSettingsAck()
			for i := 0; i < tc.streams; i++ {
				var blk bytes.Buffer
				e := hpack.NewEncoder(&blk)
				for _, f := range [][2]string{{":method", "POST"}, {":scheme", "https"}, {":path", "/xhub.v1.Nodes/Join"},
					{":authority", "x"}, {"content-type", "application/grpc"}, {"te", "trailers"}} {
					_ = e.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
				}
				id := uint32(1 + 2*i)
				_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: blk.Bytes(), EndHeaders: true})
				if tc.partial {
					// a message of 16,000 bytes declared, all of it but a
					// byte sent (within one frame and the initial windows)
					msg := append([]byte{0, 0, 0, 16000 >> 8, 16000 & 0xff}, make([]byte, 16000-1)...)
					_ = fr.WriteData(id, false, msg)
				}
			}
			if _, err := c.Write(w.Bytes()); err != nil {
				t.Fatal(err)
			}
			ended := map[uint32]bool{}
			_ = c.SetReadDeadline(time.Now().Add(within))
			// PINGs are answered, as every HTTP/2 client library does.
			rd := http2.NewFramer(c, c)
			for len(ended) < tc.streams {
				f, err := rd.ReadFrame()
				if err != nil {
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						t.Fatalf("%d of %d unauthenticated Join streams with no complete message still open after %s (read timeout 1s, idle timeout 2s)",
							tc.streams-len(ended), tc.streams, within)
					}
					return // the connection closed: every stream ended
				}
				switch f := f.(type) {
				case *http2.RSTStreamFrame:
					ended[f.StreamID] = true
				case *http2.HeadersFrame:
					if f.StreamEnded() {
						ended[f.StreamID] = true
					}
				case *http2.GoAwayFrame:
					return
				case *http2.PingFrame:
					if !f.IsAck() {
						_ = rd.WritePing(true, f.Data)
					}
				}
			}
		})
	}
}

// TestOpenCallsOverHTTPBounded (found by the outside review): without a
// certificate, Nodes/Join over HTTP took the full message bound (8 MiB)
// and buffered it; 32 such bodies took the hub from 42 to 707 MB. Now a
// body over api.MaxOpenBody is refused before it is read, and a chunked
// one is cut at the bound.
func TestOpenCallsOverHTTPBounded(t *testing.T) {
	env := testenv.Start(t)
	h := env.HTTP("", true)
	big := `{"tokenId":"j-1","name":"n","proof":"` + strings.Repeat("A", 2*api.MaxOpenBody) + `"}`
	st, body, _ := post(t, h, env.URL(), "Nodes/Join", big)
	if st != http.StatusTooManyRequests && st != http.StatusRequestEntityTooLarge || !strings.Contains(body, "65536") {
		t.Fatalf("a %d-byte Join body without a certificate: %d %s", len(big), st, body)
	}
	// Chunked: no length to judge, read up to the bound only.
	req, err := http.NewRequest(http.MethodPost, env.URL()+"/xhub.v1.Nodes/Join", io.MultiReader(strings.NewReader(big)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = -1
	res, err := h.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode < 400 || res.StatusCode == http.StatusUnauthorized {
		t.Fatalf("a chunked %d-byte Join body without a certificate: %d %s", len(big), res.StatusCode, b)
	}
	// A join request of its real size is still judged.
	if st, body, _ := post(t, h, env.URL(), "Nodes/Join", `{"tokenId":"nonsense","name":"n"}`); st == http.StatusUnauthorized || st == http.StatusTooManyRequests {
		t.Fatalf("a small Join without a certificate: %d %s", st, body)
	}
}
