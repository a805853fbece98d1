package dataplane

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"

	"github.com/xhub-gov/xhub/catalog"
	"github.com/xhub-gov/xhub/exchange/vocab"
	"github.com/xhub-gov/xhub/internal/bus"
)

// A query reaches a provider of its dataset in one of two ways. A provider
// connected to this node takes it directly (no frame, no NATS round
// trip), as NATS itself prefers a queue subscriber on the local server;
// otherwise it goes as a frame over NATS request-reply to the providers'
// queue group, answered by whichever node holds a provider stream. The
// answer is the same either way: its size is judged as the frame it would
// be, and a busy or closed local provider hands the call on to NATS.

// MaxProvidedDatasets bounds the datasets of one provider stream.
const MaxProvidedDatasets = 256

// ProviderSession routes the queries for a provider's datasets to it,
// while it is connected.
type ProviderSession struct {
	p        *Plane
	datasets []catalog.DatasetID
	calls    chan *Call // pointers: a buffer of values would cost 34 KB per stream
	subs     []*nats.Subscription
	msgs     chan *nats.Msg // every dataset's queries from NATS, in one
	stop     chan struct{}  // ends the goroutine that takes msgs
	mu       sync.Mutex
	pending  map[string]waiter
	next     atomic.Uint64
	closed   bool
	release  func()

	closeOnce sync.Once
}

// waiter is where a call's answer goes: a NATS reply to another node's
// request, or a channel of a query on this node.
type waiter struct {
	msg   *nats.Msg
	local chan Result
}

// OpenProvider subscribes, in the providers' queue group, to the queries
// of the given datasets; each must belong to the caller's department. The
// session's Calls channel delivers them; answer each with Answer.
func (p *Plane) OpenProvider(ctx context.Context, caller vocab.Identity, datasets []catalog.DatasetID) (*ProviderSession, error) {
	if len(datasets) == 0 || len(datasets) > MaxProvidedDatasets {
		return nil, vocab.Invalid("datasets", "name 1 to %d datasets to provide, not %d", MaxProvidedDatasets, len(datasets))
	}
	for _, id := range datasets {
		ds, err := p.publishedOnHead(ctx, id)
		if err != nil {
			return nil, err
		}
		if ds.Owner() != caller.Dept {
			return nil, vocab.Denied("%s: a system of %s may only provide its own department's datasets, not %s", caller.URI(), caller.Dept, id)
		}
	}
	release, err := p.providers.take(caller.Dept)
	if err != nil {
		return nil, err
	}
	s := &ProviderSession{p: p, datasets: datasets, calls: make(chan *Call, 256), pending: make(map[string]waiter), release: release,
		msgs: make(chan *nats.Msg, 256), stop: make(chan struct{})}
	p.m.providers.Inc()
	// One channel and one goroutine take the queries of all the stream's
	// datasets (a callback subscription would cost a goroutine per
	// dataset); handle never blocks, so the channel drains as it fills.
	for _, id := range datasets {
		sub, err := p.nc.ChanQueueSubscribe(bus.QueryPrefix+string(id), bus.ProviderQueue, s.msgs)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.subs = append(s.subs, sub)
	}
	go func() {
		for {
			select {
			case m := <-s.msgs:
				s.handle(m)
			case <-s.stop:
				return
			}
		}
	}()
	p.local.add(s)
	return s, nil
}

// Calls delivers the queries to answer.
func (s *ProviderSession) Calls() <-chan *Call { return s.calls }

// handle takes a call from another node (or this one, when no provider
// here could take it).
func (s *ProviderSession) handle(m *nats.Msg) {
	c, err := decodeCall(m.Data)
	if err != nil {
		s.reply(waiter{msg: m}, Result{Error: "malformed call"})
		return
	}
	if _, err := s.offer(c, waiter{msg: m}); err != nil {
		s.reply(waiter{msg: m}, Result{Error: err.Error()})
	}
}

// offer hands c to the provider, its answer to go to w, and returns the
// call's id.
func (s *ProviderSession) offer(c Call, w waiter) (string, error) {
	c.ID = fmt.Sprintf("c%d", s.next.Add(1))
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return "", errProviderGone
	case len(s.pending) >= s.p.cfg.MaxPendingCalls:
		s.mu.Unlock()
		return "", errProviderBusy
	}
	s.pending[c.ID] = w
	s.mu.Unlock()
	select {
	case s.calls <- &c:
		return c.ID, nil
	default:
		s.take(c.ID)
		return "", errProviderBusy
	}
}

var (
	errProviderGone = errors.New("provider disconnected")
	errProviderBusy = errors.New("provider busy: too many queries in flight")
)

// Awaited reports whether call id still has someone waiting for its
// answer: a call whose consumer has left (its query ended while the call
// waited to be sent) need not reach the provider at all.
func (s *ProviderSession) Awaited(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.pending[id]
	return ok
}

func (s *ProviderSession) take(id string) (waiter, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.pending[id]
	delete(s.pending, id)
	return w, ok
}

func (s *ProviderSession) reply(w waiter, r Result) {
	if n, max := r.size(), s.p.nc.MaxPayload(); int64(n) > max {
		// One answer is one NATS message: say so, rather than let the
		// consumer wait for an answer that cannot be delivered. A local
		// answer is held to the same bound, so where the provider is
		// connected does not change what the consumer sees.
		s.p.lg.Warn("provider answer too large", "bytes", n, "max", max)
		r = Result{Error: fmt.Sprintf("the answer is %d bytes, more than one answer may carry (%d): ask for fewer records per page (limit) or fewer fields", n, max)}
	}
	if w.local != nil {
		w.local <- r // buffered for its one answer
		return
	}
	if err := w.msg.Respond(r.encode()); err != nil {
		s.p.lg.Debug("provider reply", "err", err)
	}
}

// Answer sends the provider's result for a call.
func (s *ProviderSession) Answer(r Result) error {
	w, ok := s.take(r.CallID)
	if !ok {
		return vocab.Invalid("call_id", "%q is not a call awaiting an answer", r.CallID)
	}
	r.CallID = ""
	s.reply(w, r)
	return nil
}

// Close unsubscribes and answers every call still waiting with an error,
// so consumers see UNAVAILABLE at once rather than a timeout.
func (s *ProviderSession) Close() {
	for _, sub := range s.subs {
		_ = sub.Unsubscribe()
	}
	s.closeOnce.Do(func() {
		s.p.local.remove(s)
		s.p.m.providers.Dec()
		s.release()
		close(s.stop)
		// Queries taken from NATS and not handled yet are refused at once.
		for {
			select {
			case m := <-s.msgs:
				s.reply(waiter{msg: m}, Result{Error: errProviderGone.Error()})
			default:
				return
			}
		}
	})
	s.mu.Lock()
	s.closed = true
	pending := s.pending
	s.pending = map[string]waiter{}
	s.mu.Unlock()
	for _, w := range pending {
		s.reply(w, Result{Error: errProviderGone.Error()})
	}
}

// localProviders are the provider sessions connected to this node, by
// dataset; each query picks the next in turn.
type localProviders struct {
	mu   sync.RWMutex
	by   map[catalog.DatasetID][]*ProviderSession
	turn atomic.Uint64
}

func (l *localProviders) add(s *ProviderSession) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.by == nil {
		l.by = make(map[catalog.DatasetID][]*ProviderSession)
	}
	for _, id := range s.datasets {
		l.by[id] = append(l.by[id], s)
	}
}

func (l *localProviders) remove(s *ProviderSession) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range s.datasets {
		list := l.by[id]
		for i, o := range list {
			if o == s {
				list = append(list[:i:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(l.by, id)
		} else {
			l.by[id] = list
		}
	}
}

func (l *localProviders) pick(id catalog.DatasetID) *ProviderSession {
	l.mu.RLock()
	defer l.mu.RUnlock()
	list := l.by[id]
	if len(list) == 0 {
		return nil
	}
	return list[l.turn.Add(1)%uint64(len(list))]
}

// ask sends call to a provider and waits for its answer until ctx ends.
func (p *Plane) ask(ctx context.Context, call Call) (Result, error) {
	if s := p.local.pick(call.Dataset); s != nil {
		ch := make(chan Result, 1)
		if id, err := s.offer(call, waiter{local: ch}); err == nil {
			p.m.routes.WithLabelValues("local").Inc()
			select {
			case r := <-ch:
				return r, nil
			case <-ctx.Done():
				// The provider may still answer; its answer then finds no
				// waiter and is refused like any unknown call.
				s.take(id)
				return Result{}, ctx.Err()
			}
		}
	}
	p.m.routes.WithLabelValues("nats").Inc()
	msg, err := p.nc.RequestWithContext(ctx, bus.QueryPrefix+string(call.Dataset), call.encode())
	if err != nil {
		return Result{}, err
	}
	r, err := decodeResult(msg.Data)
	if err != nil {
		return Result{}, &vocab.Error{Kind: vocab.KindUnavailable, Msg: "provider answer is malformed: " + err.Error()}
	}
	return r, nil
}
