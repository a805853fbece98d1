package api

import (
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/xhub-gov/xhub/internal/ratelog"
)

// handshakeWatch counts refused handshakes by reason and logs them, at
// most one line per HandshakeLogEvery (with the number left unlogged), so
// that a flood of bad clients cannot flood the log.
type handshakeWatch struct {
	log     *slog.Logger
	now     func() time.Time
	counter *prometheus.CounterVec
	lines   *ratelog.Limiter
}

// HandshakeLogEvery bounds the log lines about refused handshakes.
const HandshakeLogEvery = time.Second

func newHandshakeWatch(log *slog.Logger, now func() time.Time) *handshakeWatch {
	w := &handshakeWatch{log: log, now: now, lines: ratelog.New(HandshakeLogEvery), counter: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "xhub_tls_handshakes_refused_total",
		Help: "TLS handshakes the hub refused, by reason (unknown_authority, expired, no_certificate, other).",
	}, []string{"reason"})}
	for _, r := range []string{"unknown_authority", "expired", "no_certificate", "other"} {
		w.counter.WithLabelValues(r) // served at 0 from the start
	}
	return w
}

func (w *handshakeWatch) refused(remote net.Addr, err error) {
	reason := handshakeReason(err)
	w.counter.WithLabelValues(reason).Inc()
	suppressed, ok := w.lines.Allow(w.now())
	if !ok {
		return
	}
	w.log.Warn("TLS handshake refused", "remote", remote.String(), "reason", reason, "err", err, "unlogged_before", suppressed)
}

func handshakeReason(err error) string {
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	switch {
	case errors.As(err, &ua):
		return "unknown_authority"
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		return "expired"
	case strings.Contains(err.Error(), "didn't provide a certificate"):
		return "no_certificate"
	}
	return "other"
}
