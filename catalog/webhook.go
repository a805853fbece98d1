package catalog

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/xhub-gov/xhub/exchange/keyspace"
	"github.com/xhub-gov/xhub/exchange/vocab"
)

// ledger.KindDeptWebhook sets (or, with an empty URL, removes) the URL the hub
// posts a department's events to. The signing secret is not in the
// entry: every node derives it from the deployment's key and the entry's
// sequence, so setting the URL again rotates it.

// MaxWebhookURLLen bounds a webhook URL.
const MaxWebhookURLLen = 2048

// Webhook is the body of a dept.webhook entry and the department's view.
type Webhook struct {
	Dept  DeptID    `json:"dept"`
	URL   string    `json:"url"` // "": none
	SetAt time.Time `json:"set_at,omitzero"`
	Seq   uint64    `json:"seq,omitempty"`
}

// WebhookKey is where a department's webhook lives.
func WebhookKey(id DeptID) string { return keyspace.Webhooks.Key(string(id)) }

// CheckWebhookURL checks a webhook URL: http or https, a host, no user
// information, bounded.
func CheckWebhookURL(raw string) error {
	if raw == "" {
		return nil
	}
	if len(raw) > MaxWebhookURLLen {
		return vocab.Invalid("url", "is %d bytes, at most %d", len(raw), MaxWebhookURLLen)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || strings.ContainsAny(raw, " \t\n") {
		return vocab.Invalid("url", "%q is not an http(s) URL", raw)
	}
	if u.User != nil {
		return vocab.Invalid("url", "carries user information: the hub signs each delivery instead")
	}
	return nil
}

// NewWebhook checks the setting of dept's webhook.
func NewWebhook(v Views, dept DeptID, rawURL string) (Webhook, error) {
	var d Department
	if ok, err := v.Get(DeptKey(dept), &d); err != nil {
		return Webhook{}, err
	} else if !ok {
		return Webhook{}, vocab.NotFound("department %s is not registered", dept)
	}
	if err := CheckWebhookURL(rawURL); err != nil {
		return Webhook{}, err
	}
	return Webhook{Dept: dept, URL: rawURL}, nil
}

// ApplyDeptWebhook applies a dept.webhook entry.
func ApplyDeptWebhook(v Views, body []byte, at time.Time, seq uint64) (Webhook, error) {
	var w Webhook
	if err := json.Unmarshal(body, &w); err != nil {
		return w, err
	}
	var d Department
	if ok, err := v.Get(DeptKey(w.Dept), &d); err != nil || !ok {
		return w, fmt.Errorf("department %s unknown", w.Dept)
	}
	w.SetAt, w.Seq = at, seq
	return w, v.Put(WebhookKey(w.Dept), w)
}
