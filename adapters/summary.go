package adapters

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/ledger"
)

// Body is the entry's body, decoded from its exact leaf bytes.
func (e Entry) Body() (map[string]any, error) {
	le, err := ledger.Parse(e.Raw)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	d := json.NewDecoder(strings.NewReader(string(le.Body)))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("entry %d body: %w", e.Seq, err)
	}
	return m, nil
}

// Summary says in one line what an entry decided, from its body: who was
// granted which fields until when, why a request was refused, what a
// dataset update changed. Unknown kinds list their body's plain values.
// It is always one line of printable text: a control character, line
// separator or bidi override in the body (which entries written before
// the hub refused them may hold) is escaped (catalog.EscapeLine), so a
// purpose or a reason can neither forge a row of ledger log nor send the
// terminal an escape sequence.
func Summary(e Entry) string {
	b, err := e.Body()
	if err != nil || b == nil {
		return ""
	}
	s := func(k string) string { return plain(b[k]) }
	day := func(k string) string {
		t, err := time.Parse(time.RFC3339Nano, s(k))
		if err != nil {
			return s(k)
		}
		return t.UTC().Format("2006-01-02")
	}
	minute := func(k string) string {
		t, err := time.Parse(time.RFC3339Nano, s(k))
		if err != nil {
			return s(k)
		}
		return t.UTC().Format("2006-01-02 15:04")
	}
	why := func(out string) string {
		if r := s("reason"); r != "" {
			out += ": " + r
		}
		return out
	}
	fields := func() string {
		if f := s("fields"); f != "" {
			return f
		}
		return "all fields"
	}
	var out string
	switch e.Kind {
	case ledger.KindShareRequested:
		out = fmt.Sprintf("%s asks for %s of %s for %s days: %s", s("requester"), fields(), s("dataset"), s("days"), s("purpose"))
	case ledger.KindShareApproved, ledger.KindGrantCreated:
		out = why(fmt.Sprintf("grant %s of %s until %s (request %s)", s("grant"), fields(), day("expires_at"), s("request")))
	case ledger.KindShareRejected:
		out = why(fmt.Sprintf("request %s rejected", s("request")))
	case ledger.KindShareWithdrawn:
		out = why(fmt.Sprintf("request %s withdrawn", s("request")))
	case ledger.KindGrantRevoked:
		out = why(fmt.Sprintf("grant %s revoked", s("grant")))
	case ledger.KindGrantExpired:
		out = fmt.Sprintf("grant %s expired", s("grant"))
	case ledger.KindDatasetPublished:
		out = fmt.Sprintf("%q, %s, schema %s:%s", s("title"), s("share_type"), s("schema_subject"), s("schema_version"))
	case ledger.KindDatasetUpdated:
		var ch []string
		for _, k := range []string{"title", "description", "keywords", "frequency", "share_type"} {
			if _, ok := b[k]; ok {
				ch = append(ch, k+"="+s(k))
			}
		}
		if sc, ok := b["schema"].(map[string]any); ok {
			ref := plain(sc["subject"])
			if v := plain(sc["version"]); v != "" {
				ref += ":" + v
			}
			ch = append(ch, "schema="+ref)
		}
		if _, ok := b["retention"]; ok {
			ch = append(ch, "retention="+s("retention"))
		}
		out = "changed " + strings.Join(ch, "; ")
	case ledger.KindDisputeOpened:
		out = fmt.Sprintf("%s disputes %s", s("opener"), s("dataset"))
		if k := s("record_key"); k != "" {
			out += " record " + k
		}
		if f := s("field"); f != "" {
			out += " field " + f
		}
		out += fmt.Sprintf(" (%s working days): %s", s("days"), s("reason"))
	case ledger.KindDisputeResolved:
		out = fmt.Sprintf("dispute %s %s: %s", s("dispute"), s("outcome"), s("reason"))
	case ledger.KindDatasetRetired:
		out = why("retired")
	case ledger.KindDeptAdded:
		out = fmt.Sprintf("%s (%s)", s("id"), s("name"))
	case ledger.KindCredIssued:
		out = fmt.Sprintf("%s, serial %s, until %s", s("identity"), s("serial"), day("not_after"))
	case ledger.KindCredRevoked:
		out = why(fmt.Sprintf("serial %s revoked", s("serial")))
	case ledger.KindSchemaRegistered:
		out = fmt.Sprintf("version %s of %s, fields %s", s("version"), s("subject"), s("fields"))
		if c := s("compat"); c != "" {
			out += ", compatibility " + c
		}
	case ledger.KindSchemaCompat:
		out = fmt.Sprintf("%s compatibility %s", s("subject"), s("compat"))
	case ledger.KindDeptWebhook:
		out = "webhook removed"
		if u := s("url"); u != "" {
			out = "webhook " + u
		}
	case ledger.KindHubInit:
		out = fmt.Sprintf("CA sha256 %s, ledger key %s", s("ca_sha256"), s("verifier_key"))
	case ledger.KindNodeToken:
		out = fmt.Sprintf("join token %s", s("id"))
		if n := s("name"); n != "" {
			out += " for " + n
		}
		out += " until " + minute("expires_at")
	case ledger.KindNodeJoined:
		out = fmt.Sprintf("node %s joined with token %s", s("name"), s("token"))
	default:
		keys := make([]string, 0, len(b))
		for k := range b {
			if v := s(k); v != "" && len(v) <= 80 && !(k == "seq" && v == "0") {
				keys = append(keys, k+"="+v)
			}
		}
		sort.Strings(keys)
		out = strings.Join(keys, " ")
	}
	out = catalog.EscapeLine(out)
	if r := []rune(out); len(r) > 160 {
		out = string(r[:157]) + "..."
	}
	return out
}

// plain is a body value as a summary shows it: text and numbers as they
// are, a list joined by commas (an object in it by its name), an object
// as JSON, a zero time (which no command decides) as nothing; never Go's
// formatting of a map.
func plain(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil && t.IsZero() {
			return ""
		}
		return v
	case json.Number:
		return v.String()
	case bool:
		return fmt.Sprint(v)
	case []any:
		parts := make([]string, 0, len(v))
		for _, x := range v {
			if m, ok := x.(map[string]any); ok {
				if n, ok := m["name"].(string); ok {
					parts = append(parts, n)
					continue
				}
			}
			if p := plain(x); p != "" {
				parts = append(parts, p)
			}
		}
		return strings.Join(parts, ",")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(b)
}
