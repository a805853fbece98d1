package bus

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/xhub-gov/xhub/internal/ratelog"
)

// serverLog is the embedded nats-server's logger. A client on the NATS
// port can make the server log a line per connection (a TLS handshake
// without a certificate, a wrong password): those are counted in
// xhub_nats_handshakes_refused_total by reason and logged at most once a
// second with the number left unlogged; the server's other warnings and
// errors are logged at the same bounded rate; notices and traces are
// dropped.
type serverLog struct {
	log     *slog.Logger
	refused *prometheus.CounterVec
	lines   *ratelog.Limiter // refusals
	others  *ratelog.Limiter // the server's other warnings and errors
}

var _ server.Logger = (*serverLog)(nil)

// Refusals the embedded server logs itself (the auth callout counts its
// own in xhub_nats_connections_refused_total).
const (
	refusedTLS  = "tls_handshake" // no client certificate, or one TLS refuses
	refusedAuth = "authorization" // a wrong user or password
)

func newServerLog(log *slog.Logger) *serverLog {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &serverLog{
		log: log.With("component", "nats-server"), lines: ratelog.New(time.Second), others: ratelog.New(time.Second),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "xhub_nats_handshakes_refused_total",
			Help: "Connections to the embedded NATS port its server refused itself: TLS handshakes (reason tls_handshake: no or a bad client certificate) and failed authentications (reason authorization: wrong passwords, and also the connections the auth callout refused, which xhub_nats_connections_refused_total counts by their reason).",
		}, []string{"reason"}),
	}
	l.refused.WithLabelValues(refusedTLS)
	l.refused.WithLabelValues(refusedAuth)
	return l
}

// refusal says whether a line of the server's is about a refused
// connection, and the reason to count it under ("" for a line that goes
// with a refusal the auth callout counts itself).
func (l *serverLog) refusal(line string) (reason string, ok bool) {
	switch {
	case strings.Contains(line, "TLS handshake error"), strings.Contains(line, "TLS handshake timeout"):
		return refusedTLS, true
	case strings.Contains(line, "auth callout"), strings.Contains(line, "Auth callout"):
		return "", true // the callout's refusal: counted in xhub_nats_connections_refused_total
	case strings.Contains(line, "Authorization Violation"), strings.Contains(line, "authentication error"):
		return refusedAuth, true
	}
	return "", false
}

func (l *serverLog) report(level slog.Level, format string, v []any) {
	line := fmt.Sprintf(format, v...)
	if reason, ok := l.refusal(line); ok {
		if reason != "" {
			l.refused.WithLabelValues(reason).Inc()
		}
		if unlogged, ok := l.lines.Allow(time.Now()); ok {
			l.log.Info(ServerRefusalLine, "reason", reason, "detail", line, "unlogged_before", unlogged)
		}
		return
	}
	if unlogged, ok := l.others.Allow(time.Now()); ok {
		l.log.Log(context.Background(), level, line, "unlogged_before", unlogged)
	}
}

// ServerRefusalLine is the message of the embedded server's sampled log
// line about refused connections.
const ServerRefusalLine = "NATS connection refused by the server"

func (l *serverLog) Noticef(string, ...any)         {}
func (l *serverLog) Debugf(string, ...any)          {}
func (l *serverLog) Tracef(string, ...any)          {}
func (l *serverLog) Warnf(format string, v ...any)  { l.report(slog.LevelWarn, format, v) }
func (l *serverLog) Errorf(format string, v ...any) { l.report(slog.LevelError, format, v) }
func (l *serverLog) Fatalf(format string, v ...any) { l.report(slog.LevelError, format, v) }
