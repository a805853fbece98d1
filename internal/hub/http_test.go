package hub_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/jsonapi"
	"github.com/xhub-gov/xhub/internal/testenv"
	xhubv1 "github.com/xhub-gov/xhub/proto/xhub/v1"
	"github.com/xhub-gov/xhub/proto/xhub/v1/xhubv1connect"
)

// post calls a method as curl does: a POST of a JSON body.
func post(t *testing.T, c *http.Client, url, method, body string, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/xhub.v1."+method, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res.Header
}

type connectErr struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Details []struct {
		Type string `json:"type"`
	} `json:"details"`
}

func wantError(t *testing.T, status int, body string, wantStatus int, wantCode string) connectErr {
	t.Helper()
	var e connectErr
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	if status != wantStatus || e.Code != wantCode {
		t.Fatalf("got %d %s (%s), want %d %s", status, e.Code, e.Message, wantStatus, wantCode)
	}
	return e
}

// TestHTTPJSON calls the hub as a department system that only speaks
// HTTP and JSON: on the gRPC port, with the same certificate, over
// HTTP/1.1 and HTTP/2.
func TestHTTPJSON(t *testing.T) {
	f := newDataFixture(t)
	f.serve(t, nil)
	env := f.env
	for _, h2 := range []bool{false, true} {
		name := map[bool]string{false: "HTTP/1.1", true: "HTTP/2"}[h2]
		t.Run(name, func(t *testing.T) {
			consumer := env.HTTP(f.consumerCreds, h2)

			// The catalog, with a 64-bit count as a JSON number.
			st, body, hdr := post(t, consumer, env.URL(), "Catalog/ListDatasets", `{}`)
			if st != 200 {
				t.Fatalf("ListDatasets: %d %s", st, body)
			}
			var list struct {
				Datasets []struct{ ID, ShareType string } `json:"datasets"`
				Total    json.RawMessage                  `json:"total"`
			}
			if err := json.Unmarshal([]byte(body), &list); err != nil {
				t.Fatal(err)
			}
			if len(list.Datasets) != 1 || list.Datasets[0].ID != "health.cases" || string(list.Total) != "1" {
				t.Fatalf("ListDatasets: %s", body)
			}
			if hdr.Get("Xhub-Node") == "" {
				t.Errorf("no xhub-node header: %v", hdr)
			}

			// A query: records are JSON objects cut to the grant; an id
			// beyond float64 comes back exact; a filter value is JSON.
			st, body, _ = post(t, consumer, env.URL(), "Exchange/Query", `{"dataset":"health.cases"}`)
			if st != 200 {
				t.Fatalf("Query: %d %s", st, body)
			}
			var q struct {
				Records  []map[string]json.RawMessage `json:"records"`
				Withheld int                          `json:"withheld"`
			}
			if err := json.Unmarshal([]byte(body), &q); err != nil {
				t.Fatal(err)
			}
			if len(q.Records) != 3 || q.Withheld != 1 {
				t.Fatalf("Query: %s", body)
			}
			if !strings.Contains(body, `"id":9007199254740993`) {
				t.Errorf("the 64-bit id is not exact: %s", body)
			}
			for _, r := range q.Records {
				if _, ok := r["name"]; ok {
					t.Errorf("a field outside the grant came back: %s", body)
				}
			}
			st, body, _ = post(t, consumer, env.URL(), "Exchange/Query", `{"dataset":"health.cases","filters":[{"field":"ward","op":"=","valueJson":"north"}]}`)
			if st != 200 || strings.Count(body, `"ward":"north"`) != 2 || strings.Contains(body, "south") {
				t.Fatalf("filtered Query: %d %s", st, body)
			}

			// A filter on a field outside the grant is refused without
			// telling whether any record matches.
			st, body, _ = post(t, consumer, env.URL(), "Exchange/Query", `{"dataset":"health.cases","filters":[{"field":"name","op":"=","valueJson":"Ana"}]}`)
			e := wantError(t, st, body, 403, "permission_denied")
			if strings.Contains(body, "Ana") && !strings.Contains(e.Message, "name") {
				t.Errorf("refusal tells too much: %s", body)
			}

			// Bad input: named, with details, nothing applied.
			st, body, _ = post(t, consumer, env.URL(), "Exchange/Query", `{"dataset":"health.cases","limit":"x"}`)
			wantError(t, st, body, 400, "invalid_argument")
			st, body, _ = post(t, consumer, env.URL(), "Exchange/Query", `{"dataset":"health.cases","nosuch":1}`)
			if e := wantError(t, st, body, 400, "invalid_argument"); !strings.Contains(e.Message, "nosuch") {
				t.Errorf("unknown field not named: %s", body)
			}
			st, body, _ = post(t, consumer, env.URL(), "Exchange/Query", "{\"dataset\":\"health.\xff\"}")
			wantError(t, st, body, 400, "invalid_argument")
			st, body, _ = post(t, consumer, env.URL(), "Exchange/Query", `{"dataset":"no such"}`)
			if e := wantError(t, st, body, 400, "invalid_argument"); len(e.Details) == 0 {
				t.Errorf("no details: %s", body)
			}

			// The same role table: a system may not approve shares.
			st, body, _ = post(t, consumer, env.URL(), "Shares/Inbox", `{}`)
			wantError(t, st, body, 403, "permission_denied")

			// Without a certificate only the open document answers.
			anon := env.HTTP("", h2)
			st, body, _ = post(t, anon, env.URL(), "Catalog/ListDatasets", `{}`)
			wantError(t, st, body, 401, "unauthenticated")
			res, err := anon.Get(env.URL() + "/openapi.json")
			if err != nil {
				t.Fatal(err)
			}
			doc, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 || !bytes.Equal(doc, jsonapi.OpenAPI()) {
				t.Fatalf("openapi.json: %d, %d bytes", res.StatusCode, len(doc))
			}
		})
	}

	t.Run("request id", func(t *testing.T) {
		officer := env.HTTP(env.Creds("tax", vocab.RoleOfficer, "clerk"), true)
		call := func() string {
			st, body, _ := post(t, officer, env.URL(), "Shares/RequestShare", `{"dataset":"health.cases","purpose":"audit","fields":["id"]}`, "xhub-request-id", "http-retry-1")
			if st != 200 {
				t.Fatalf("RequestShare: %d %s", st, body)
			}
			return body
		}
		if a, b := call(), call(); a != b {
			t.Fatalf("a retried write with one request id answered twice differently:\n%s\n%s", a, b)
		}
	})

	t.Run("gRPC-Web and Connect streaming", func(t *testing.T) {
		creds, err := vocab.LoadCreds(f.consumerCreds)
		if err != nil {
			t.Fatal(err)
		}
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: creds.ClientTLS(env.Addr()), ForceAttemptHTTP2: true}}
		opts := []connect.ClientOption{connect.WithProtoJSON()}
		for _, c := range jsonapi.Codecs() {
			opts = append(opts, connect.WithCodec(c))
		}
		web := xhubv1connect.NewExchangeClient(hc, env.URL(), append(opts, connect.WithGRPCWeb())...)
		res, err := web.Query(context.Background(), &xhubv1.QueryRequest{Dataset: "health.cases"})
		if err != nil || len(res.Records) != 3 {
			t.Fatalf("gRPC-Web query: %v %v", res, err)
		}
		// Subscribe is bidirectional: Connect streaming over HTTP/2.
		cc := xhubv1connect.NewExchangeClient(hc, env.URL(), opts...)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		stream, err := cc.Subscribe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(&xhubv1.SubscribeRequest{Msg: &xhubv1.SubscribeRequest_Start{Start: &xhubv1.SubscribeStart{Dataset: "health.cases", Name: "http", From: "beginning"}}}); err != nil {
			t.Fatal(err)
		}
		if ready, err := stream.Receive(); err != nil || ready.DeliveryId != 0 {
			t.Fatalf("subscribe over Connect: ready %v %v", ready, err)
		}
		if _, err := f.provider.Publish(ctx, "health.cases", [][]byte{[]byte(`{"id":7,"name":"Di","ward":"west","age":40}`)}, ""); err != nil {
			t.Fatal(err)
		}
		msg, err := stream.Receive()
		if err != nil {
			t.Fatalf("subscribe over Connect: %v", err)
		}
		if !strings.Contains(string(msg.Record), `"ward":"west"`) || strings.Contains(string(msg.Record), "Di") {
			t.Fatalf("record: %s", msg.Record)
		}
		_ = stream.CloseRequest()
	})

	t.Run("catalog export", func(t *testing.T) {
		c := env.HTTP(f.consumerCreds, false)
		for format, want := range map[string]string{"dcat": `"dcat:Catalog"`, "csv": "资源名称"} {
			res, err := c.Get(env.URL() + "/catalog/export?format=" + format)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 || !strings.Contains(string(b), want) || !strings.Contains(string(b), "health.cases") {
				t.Fatalf("export %s: %d %s", format, res.StatusCode, b)
			}
		}
		res, err := c.Get(env.URL() + "/catalog/export?format=xml")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 400 || !strings.Contains(string(b), "format") {
			t.Fatalf("bad format: %d %s", res.StatusCode, b)
		}
		res, err = env.HTTP("", false).Get(env.URL() + "/catalog/export")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 401 {
			t.Fatalf("export without a certificate: %d", res.StatusCode)
		}
	})
}

// TestHTTPForeignCertificate: a certificate from another CA is refused in
// the handshake on the HTTP side too, and counted.
func TestHTTPForeignCertificate(t *testing.T) {
	env := testenv.Start(t)
	other := testenv.Start(t)
	foreign, err := vocab.LoadCreds(other.Node.AdminCreds)
	if err != nil {
		t.Fatal(err)
	}
	own, err := vocab.LoadCreds(env.Node.AdminCreds)
	if err != nil {
		t.Fatal(err)
	}
	cfg := foreign.ClientTLS(env.Addr())
	cfg.RootCAs = own.ClientTLS(env.Addr()).RootCAs
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}}
	_, err = c.Post(env.URL()+"/xhub.v1.Catalog/ListDatasets", "application/json", strings.NewReader(`{}`))
	if err == nil {
		t.Fatal("a certificate of another CA was accepted")
	}
}

// TestRouting: a client speaking nonsense after the TLS handshake is
// dropped without harming the next one. (A client that connects ahead of
// its first call: TestFirstRequestWhenever.)
func TestRouting(t *testing.T) {
	env := testenv.Start(t)
	creds, err := vocab.LoadCreds(env.Node.AdminCreds)
	if err != nil {
		t.Fatal(err)
	}
	cfg := creds.ClientTLS(env.Addr())
	cfg.NextProtos = []string{"h2"}
	for _, junk := range []string{"GET / HTTP/1.1\r\n\r\n", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\xff\xff\xff\x01\x00\x00\x00\x00\x01", strings.Repeat("\x00", 64)} {
		c, err := tls.Dial("tcp", env.Addr(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write([]byte(junk))
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = io.Copy(io.Discard, c)
		c.Close()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("%q: the hub kept the connection open", junk)
		}
	}
	st, body, _ := post(t, env.HTTP(env.Node.AdminCreds, true), env.URL(), "Catalog/ListDatasets", `{}`)
	if st != 200 {
		t.Fatalf("after junk: %d %s", st, body)
	}
}
