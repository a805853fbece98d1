// Package webhook owns the posting of departments' events to the URLs
// they set (catalog.KindDeptWebhook): each event once per deployment (a
// queue group of the nodes), as a JSON body signed with HMAC-SHA256 under
// a secret every node derives alike, retried with back-off, each outcome
// recorded in the XHUB_WEBHOOKS stream for the department to read.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/internal/bus"
)

// Headers of a delivery.
const (
	HeaderEvent     = "X-Xhub-Event"
	HeaderDelivery  = "X-Xhub-Delivery"
	HeaderTimestamp = "X-Xhub-Timestamp"
	// HeaderSignature is "sha256=" and the hex HMAC-SHA256, under the
	// department's secret, of the timestamp, ".", and the body.
	HeaderSignature = "X-Xhub-Signature-256"
)

// Sign is the signature of a delivery's timestamp and body.
func Sign(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Webhooks is what the dispatcher asks the control plane.
type Webhooks interface {
	Webhook(dept catalog.DeptID) (catalog.Webhook, bool)
}

// Config configures the dispatcher.
type Config struct {
	NC *nats.Conn          // required
	JS jetstream.JetStream // required: delivery records
	CP Webhooks            // required
	// Secret is dept's signing secret for the webhook set by entry seq.
	Secret func(dept catalog.DeptID, seq uint64) []byte // required
	// AllowPrivate lets webhooks reach any address (tests, or a hub whose
	// departments sit on a private network). Off, only globally routable
	// unicast addresses (CheckPublic): a department cannot make the hub
	// call into the hub's own network.
	AllowPrivate bool
	Log          *slog.Logger
	// Backoff is the wait before each retry. Zero: 0.5s, 1s, 2s, 4s, 8s.
	Backoff []time.Duration
	// Timeout bounds one attempt. Zero: 5s.
	Timeout time.Duration
	// Metrics counts deliveries by outcome. Zero: not counted.
	Metrics *Metrics
}

// Delivery is the record of one event's delivery.
type Delivery struct {
	ID       string    `json:"id"`
	Event    string    `json:"event"`
	Subject  string    `json:"subject"` // the request, grant or dispute
	URL      string    `json:"url"`
	Status   string    `json:"status"` // delivered | failed | dropped
	Attempts int       `json:"attempts"`
	Code     int       `json:"code,omitempty"` // the last HTTP status
	Error    string    `json:"error,omitempty"`
	At       time.Time `json:"at"`
}

// Body is what is posted.
type Body struct {
	Delivery string    `json:"delivery"`
	Event    string    `json:"event"`
	ID       string    `json:"id"` // the request, grant or dispute it is about
	Dept     string    `json:"dept"`
	Time     time.Time `json:"time"`
}

// MaxInFlightPerDept bounds the deliveries of one department at a time on
// one node; more are dropped and recorded so.
const MaxInFlightPerDept = 8

// Dispatcher posts events.
type Dispatcher struct {
	cfg    Config
	client *http.Client
	mu     sync.Mutex
	busy   map[catalog.DeptID]int
	wg     sync.WaitGroup
}

// Run dispatches until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Backoff == nil {
		cfg.Backoff = []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	d := &Dispatcher{cfg: cfg, busy: map[catalog.DeptID]int{}}
	d.client = d.newClient()
	sub, err := cfg.NC.QueueSubscribe(bus.EventPrefix+"*", bus.WebhookQueue, func(m *nats.Msg) {
		dept := catalog.DeptID(strings.TrimPrefix(m.Subject, bus.EventPrefix))
		var ev struct{ Kind, ID string }
		if json.Unmarshal(m.Data, &ev) != nil || ev.Kind == "" {
			return
		}
		d.dispatch(ctx, dept, ev.Kind, ev.ID)
	})
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	<-ctx.Done()
	_ = sub.Unsubscribe()
	d.wg.Wait()
	return nil
}

// newClient is the client deliveries go by: each connection it makes
// passes the guard, no proxy, no redirect followed.
func (d *Dispatcher) newClient() *http.Client {
	dialer := &net.Dialer{Timeout: d.cfg.Timeout, Control: d.control}
	return &http.Client{
		Timeout:   d.cfg.Timeout,
		Transport: &http.Transport{DialContext: dialer.DialContext, Proxy: nil, MaxIdleConnsPerHost: 2, IdleConnTimeout: 30 * time.Second},
		// A redirect could lead into the hub's network: not followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// control is the guard, run on each connection after the name is
// resolved and before it connects: a name that resolves to a public
// address once and to an internal one the next time (DNS rebinding) is
// caught on the connection that would go inside.
func (d *Dispatcher) control(_, address string, _ syscall.RawConn) error {
	if d.cfg.AllowPrivate {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &AddrError{Range: fmt.Sprintf("%q is not an IP address and port", address)}
	}
	return CheckPublic(ap.Addr())
}

func (d *Dispatcher) dispatch(ctx context.Context, dept catalog.DeptID, kind, id string) {
	w, ok := d.cfg.CP.Webhook(dept)
	if !ok {
		return
	}
	del := Delivery{ID: newID(), Event: kind, Subject: id, URL: w.URL, At: time.Now().UTC()}
	d.mu.Lock()
	if d.busy[dept] >= MaxInFlightPerDept {
		d.mu.Unlock()
		del.Status, del.Error = "dropped", fmt.Sprintf("%d deliveries of %s already in flight", MaxInFlightPerDept, dept)
		d.record(dept, del)
		return
	}
	d.busy[dept]++
	d.mu.Unlock()
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer func() {
			d.mu.Lock()
			d.busy[dept]--
			d.mu.Unlock()
		}()
		d.deliver(ctx, dept, w, del)
	}()
}

func (d *Dispatcher) deliver(ctx context.Context, dept catalog.DeptID, w catalog.Webhook, del Delivery) {
	body, _ := json.Marshal(Body{Delivery: del.ID, Event: del.Event, ID: del.Subject, Dept: string(dept), Time: del.At})
	secret := d.cfg.Secret(dept, w.Seq)
	for attempt := 0; ; attempt++ {
		del.Attempts = attempt + 1
		code, err := d.post(ctx, w.URL, del, body, secret)
		del.Code = code
		if err == nil {
			del.Status, del.Error = "delivered", ""
			break
		}
		// The department reads what failed; the hub's log keeps the
		// whole error, which may name the hub's resolver and addresses.
		del.Error = describe(err, d.cfg.Timeout)
		d.cfg.Log.Debug("webhook attempt failed", "dept", dept, "delivery", del.ID, "attempt", del.Attempts, "err", err)
		// A refused address is refused again: no retry.
		if attempt >= len(d.cfg.Backoff) || ctx.Err() != nil || errors.Is(err, ErrNotPublic) {
			del.Status = "failed"
			d.cfg.Log.Warn("webhook not delivered", "dept", dept, "event", del.Event, "delivery", del.ID, "attempts", del.Attempts, "err", err, "shown", del.Error)
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(d.cfg.Backoff[attempt]):
		}
	}
	del.At = time.Now().UTC()
	d.record(dept, del)
}

func (d *Dispatcher) post(ctx context.Context, url string, del Delivery, body, secret []byte) (int, error) {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "xhub-webhook/1")
	req.Header.Set(HeaderEvent, del.Event)
	req.Header.Set(HeaderDelivery, del.ID)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(secret, ts, body))
	res, err := d.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return res.StatusCode, &StatusError{Code: res.StatusCode}
	}
	return res.StatusCode, nil
}

func (d *Dispatcher) record(dept catalog.DeptID, del Delivery) {
	d.cfg.Metrics.ended(del.Status)
	b, _ := json.Marshal(del)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := d.cfg.JS.Publish(ctx, bus.WebhookPrefix+string(dept), b); err != nil {
		d.cfg.Log.Warn("webhook delivery not recorded", "dept", dept, "err", err)
	}
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Deliveries reads dept's last n delivery records, oldest first.
func Deliveries(ctx context.Context, js jetstream.JetStream, dept catalog.DeptID, n int) ([]Delivery, error) {
	stream, err := js.Stream(ctx, bus.WebhookStream)
	if err != nil {
		return nil, err
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{bus.WebhookPrefix + string(dept)}})
	if err != nil {
		return nil, err
	}
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(bus.WebhookPrefix+string(dept)))
	if err != nil {
		return nil, err
	}
	total := int(info.State.Subjects[bus.WebhookPrefix+string(dept)])
	var out []Delivery
	for len(out) < total {
		batch, err := cons.Fetch(min(total-len(out), 256), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return nil, err
		}
		got := 0
		for m := range batch.Messages() {
			got++
			var del Delivery
			if json.Unmarshal(m.Data(), &del) == nil {
				out = append(out, del)
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, err
		}
		if got == 0 {
			break
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out, nil
}
