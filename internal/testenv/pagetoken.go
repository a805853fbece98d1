package testenv

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/xhub-gov/xhub/adapters"
)

// HiddenInToken returns the first of hidden that a page token shows: in
// its text, or in what any base64 or hex reading of it (or of a part of
// it) decodes to; "" when it shows none.
func HiddenInToken(token string, hidden []string) string {
	readings := []string{token}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(token); err == nil {
			readings = append(readings, string(b))
		}
		// A prefix the provider's token was cut into, or a token whose
		// length is not a multiple of 4.
		for cut := 1; cut < 4 && cut < len(token); cut++ {
			if b, err := enc.DecodeString(token[:len(token)-cut]); err == nil {
				readings = append(readings, string(b))
			}
		}
	}
	if b, err := hex.DecodeString(token); err == nil {
		readings = append(readings, string(b))
	}
	for _, h := range hidden {
		for _, r := range readings {
			if strings.Contains(r, h) {
				return h
			}
		}
	}
	return ""
}

// ForgedTokens are page tokens no hub issued, named, built around a
// token valid issued for some query: the probes of a hostile consumer
// (small numbers and quoted keys as a provider might use, random bytes of
// valid's shape, valid altered, cut short and lengthened, one far too
// long). The caller adds tokens issued for other queries.
func ForgedTokens(valid string) map[string]string {
	random := func(n int) []byte {
		b := make([]byte, n)
		_, _ = rand.Read(b)
		return b
	}
	raw, _ := base64.RawURLEncoding.DecodeString(valid)
	flipped := []byte(valid)
	mid := len(flipped) / 2
	if flipped[mid] == 'A' {
		flipped[mid] = 'B'
	} else {
		flipped[mid] = 'A'
	}
	// The first byte altered (a version, if there is one).
	head := append([]byte(nil), raw...)
	if len(head) > 0 {
		head[0] ^= 1
	}
	return map[string]string{
		"number 3":             "3",
		"quoted 3":             `"3"`,
		"negative":             "-1",
		"quoted key":           `"110101198512124321"`,
		"random text":          hex.EncodeToString(random(16)),
		"random bytes":         base64.RawURLEncoding.EncodeToString(random(24)),
		"random of its length": base64.RawURLEncoding.EncodeToString(random(len(raw))),
		"one character off":    string(flipped),
		"first byte off":       base64.RawURLEncoding.EncodeToString(head),
		"cut short":            valid[:len(valid)-min(4, len(valid)-1)],
		"lengthened":           valid + "AAAA",
		"all A":                strings.Repeat("A", len(valid)),
		"far too long":         strings.Repeat("A", 4096),
		"not base64":           strings.Repeat("%", len(valid)),
	}
}

// Pages reads every page of a query, the i-th through clients[i %
// len(clients)] (clients of one department on different nodes), and
// returns the records. It fails the test if a page token shows one of
// hidden, if two tokens differ in length (the length would tell keys
// apart), or if there are more than maxPages pages.
func Pages(t testing.TB, clients []*adapters.Client, dataset string, o adapters.QueryOptions, hidden []string, maxPages int) [][]byte {
	t.Helper()
	var recs [][]byte
	tokenLen := -1
	for i := 0; ; i++ {
		if i == maxPages {
			t.Fatalf("%s %+v: more than %d pages", dataset, o, maxPages)
		}
		r, err := clients[i%len(clients)].Query(context.Background(), dataset, o)
		if err != nil {
			t.Fatalf("%s %+v: page %d: %v", dataset, o, i, err)
		}
		recs = append(recs, r.Records...)
		if r.NextPageToken == "" {
			return recs
		}
		if h := HiddenInToken(r.NextPageToken, hidden); h != "" {
			t.Fatalf("%s: page token %q shows the hidden value %q", dataset, r.NextPageToken, h)
		}
		if tokenLen >= 0 && len(r.NextPageToken) != tokenLen {
			t.Fatalf("%s: page tokens of %d and %d characters: the length tells keys apart", dataset, tokenLen, len(r.NextPageToken))
		}
		tokenLen = len(r.NextPageToken)
		o.PageToken = r.NextPageToken
	}
}

// FirstToken is the page token of a query's first page (of one record).
func FirstToken(t testing.TB, c *adapters.Client, dataset string, o adapters.QueryOptions) string {
	t.Helper()
	o.Limit = 1
	r, err := c.Query(context.Background(), dataset, o)
	if err != nil {
		t.Fatalf("%s %+v: %v", dataset, o, err)
	}
	if r.NextPageToken == "" {
		t.Fatalf("%s %+v: one page only", dataset, o)
	}
	return r.NextPageToken
}

// TokenProbe is a query with a page token the hub did not issue for it.
type TokenProbe struct {
	Name    string
	Client  *adapters.Client
	Dataset string
	Options adapters.QueryOptions
}

// Probes are the forged tokens of ForgedTokens(valid), as c's queries of
// dataset.
func Probes(c *adapters.Client, dataset, valid string) []TokenProbe {
	var ps []TokenProbe
	for name, tok := range ForgedTokens(valid) {
		ps = append(ps, TokenProbe{Name: "forged: " + name, Client: c, Dataset: dataset, Options: adapters.QueryOptions{PageToken: tok}})
	}
	return ps
}

// RefusedAlike fails the test unless every probe is refused with
// INVALID_ARGUMENT naming page_token, all with one identical status
// (message and details): what a token holds must not change the answer.
// It returns that status.
func RefusedAlike(t testing.TB, probes []TokenProbe) *status.Status {
	t.Helper()
	var refusal *status.Status
	for _, p := range probes {
		_, err := p.Client.Query(context.Background(), p.Dataset, p.Options)
		st := status.Convert(err)
		if st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "page_token") {
			t.Errorf("%s token: %v, want INVALID_ARGUMENT on page_token", p.Name, err)
			continue
		}
		if refusal == nil {
			refusal = st
		} else if !proto.Equal(st.Proto(), refusal.Proto()) {
			t.Errorf("%s token: %v, but another got %v", p.Name, st.Proto(), refusal.Proto())
		}
	}
	return refusal
}
