package bus

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/xhub-gov/xhub/internal/secretfile"
)

// EmbeddedConfig configures the embedded nats-server.
type EmbeddedConfig struct {
	// Dir holds JetStream's files (required).
	Dir string
	// Listen, if set ("host:port"), opens a client port. The hub then writes
	// a user and password to PasswordFile (created if absent) and the server
	// refuses anyone without them: an open NATS port would bypass every grant.
	Listen string
	// PasswordFile is where the credentials for Listen live. Default:
	// Dir/../nats.password.
	PasswordFile string
	// TLS and CalloutIssuer, with Listen, open the port to departments'
	// systems too: a connection over TLS must present a certificate TLS
	// verifies (the hub's CA), and is authorised by the auth callout
	// service whose account key is CalloutIssuer (internal/natsauth).
	// Connections with the hub's user and password (other hub nodes)
	// bypass the callout and may stay plain.
	TLS           *tls.Config
	CalloutIssuer string
	// SyncAlways makes JetStream fsync every write.
	SyncAlways bool
	// MaxStore bounds what JetStream stores on disk, every stream
	// together; beyond it every write fails, the ledger's too, which is
	// why the hub bounds XHUB_DATA and XHUB_AUDIT well inside it. Zero:
	// the nats-server default, 75% of the disk's free space at start.
	MaxStore int64
	// Name of the server. Default "xhub".
	Name string
	Log  *slog.Logger
}

// Embedded is a running in-process nats-server.
type Embedded struct {
	Server *server.Server
	// URL is the client URL with credentials when Listen was set, else "".
	URL string
	// Addr is the client port's address when Listen was set, else "".
	Addr       string
	user, pass string
	slog       *serverLog
}

// Collectors are the embedded server's metrics: the connections it
// refused itself.
func (e *Embedded) Collectors() []prometheus.Collector {
	return []prometheus.Collector{e.slog.refused}
}

// StartEmbedded starts the server and waits until it accepts connections.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	if cfg.Dir == "" {
		return nil, errors.New("embedded nats: Dir is required")
	}
	if cfg.Name == "" {
		cfg.Name = "xhub"
	}
	opts := &server.Options{
		ServerName:         cfg.Name,
		JetStream:          true,
		StoreDir:           cfg.Dir,
		DontListen:         cfg.Listen == "",
		NoSigs:             true,
		NoLog:              true,
		MaxPayload:         8 << 20,
		SyncAlways:         cfg.SyncAlways,
		JetStreamMaxMemory: 256 << 20,
		JetStreamMaxStore:  cfg.MaxStore,
	}
	if cfg.Listen != "" {
		host, portStr, err := net.SplitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("embedded nats: --nats-listen %q: %w", cfg.Listen, err)
		}
		port, err := strconv.Atoi(portStr)
		if err != nil {
			return nil, fmt.Errorf("embedded nats: --nats-listen %q: bad port", cfg.Listen)
		}
		if port == 0 {
			port = -1 // random
		}
		if cfg.PasswordFile == "" {
			cfg.PasswordFile = filepath.Join(filepath.Dir(cfg.Dir), "nats.password")
		}
		user, pass, err := loadOrCreatePassword(cfg.PasswordFile)
		if err != nil {
			return nil, err
		}
		opts.Host, opts.Port = host, port
		opts.Username, opts.Password = user, pass
		if cfg.TLS != nil && cfg.CalloutIssuer != "" {
			opts.TLSConfig, opts.TLSVerify, opts.AllowNonTLS, opts.TLSTimeout = cfg.TLS, true, true, 5
			opts.AuthCallout = &server.AuthCallout{Issuer: cfg.CalloutIssuer, Account: server.DEFAULT_GLOBAL_ACCOUNT, AuthUsers: []string{user}}
			opts.AuthTimeout = 5
		}
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	sl := newServerLog(cfg.Log)
	srv.SetLoggerV2(sl, false, false, false)
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("embedded nats: not ready after 30s")
	}
	e := &Embedded{Server: srv, user: opts.Username, pass: opts.Password, slog: sl}
	if cfg.Listen != "" {
		addr := srv.Addr().(*net.TCPAddr)
		e.Addr = net.JoinHostPort(addr.IP.String(), strconv.Itoa(addr.Port))
		e.URL = fmt.Sprintf("nats://%s:%s@%s", opts.Username, opts.Password, e.Addr)
	}
	if cfg.Log != nil {
		cfg.Log.Info("embedded nats started", "dir", cfg.Dir, "listen", cfg.Listen != "")
	}
	return e, nil
}

// MaxStore is what JetStream may store on disk, as the server resolved it.
func (e *Embedded) MaxStore() int64 {
	if c := e.Server.JetStreamConfig(); c != nil {
		return c.MaxStore
	}
	return 0
}

// Connect opens an in-process connection.
func (e *Embedded) Connect(name string) (*nats.Conn, error) {
	opts := []nats.Option{nats.InProcessServer(e.Server), nats.Name(name), nats.MaxReconnects(-1)}
	if e.user != "" {
		opts = append(opts, nats.UserInfo(e.user, e.pass))
	}
	return nats.Connect("", opts...)
}

// Shutdown stops the server and waits for it.
func (e *Embedded) Shutdown() {
	e.Server.Shutdown()
	e.Server.WaitForShutdown()
}

func loadOrCreatePassword(path string) (user, pass string, err error) {
	if b, err := os.ReadFile(path); err == nil {
		u, p, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
		if !ok || u == "" || p == "" {
			return "", "", fmt.Errorf("embedded nats: %s is not user:password", path)
		}
		return u, p, nil
	}
	buf := make([]byte, 24)
	if _, err := rand.Read(buf); err != nil {
		return "", "", err
	}
	user, pass = "xhub", hex.EncodeToString(buf)
	if err := secretfile.Write(path, []byte(user+":"+pass+"\n")); err != nil {
		return "", "", fmt.Errorf("embedded nats: write %s: %w", path, err)
	}
	return user, pass, nil
}
