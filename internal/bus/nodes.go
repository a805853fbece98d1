package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// NodesStream holds each hub node's last heartbeat on NodePrefix<name>:
// one message per node (the last), a node not heard from for NodesMaxAge
// forgotten, at most MaxNodes nodes and NodeMaxBytes per heartbeat. It is
// what `xhub node list` shows (which nodes are up, their applied
// sequence and version) and where a node finds every node's advertised
// addresses for the creds files it issues. It is not the ledger: an
// address learnt here only tells a client where to dial, and the client
// still checks the node's certificate against the hub's CA.
const (
	NodesStream  = "XHUB_NODES"
	NodePrefix   = "xhub.node."
	NodesMaxAge  = 7 * 24 * time.Hour
	MaxNodes     = 256
	NodeMaxBytes = 8 << 10
)

// Nodes is the stream of node heartbeats.
func Nodes(replicas int) jetstream.StreamConfig {
	if replicas < 1 {
		replicas = 1
	}
	return jetstream.StreamConfig{
		Name: NodesStream, Description: "xhub hub nodes: each one's last heartbeat",
		Subjects: []string{NodePrefix + ">"}, Storage: jetstream.FileStorage, Replicas: replicas,
		MaxAge: NodesMaxAge, MaxMsgsPerSubject: 1, MaxMsgs: MaxNodes, MaxMsgSize: NodeMaxBytes, Discard: jetstream.DiscardOld,
	}
}

// NodeBeat is one heartbeat of a node.
type NodeBeat struct {
	Name string `json:"name"`
	// Instance is random per process start: two beats under one name
	// from different instances are two nodes given the same --name.
	Instance  string    `json:"instance"`
	Addrs     []string  `json:"addrs,omitempty"` // advertised host:port, as clients dial them
	Version   string    `json:"version"`
	Applied   uint64    `json:"applied"`
	StartedAt time.Time `json:"started_at"`
	// SeenAt is when the node beat, by its own clock; as read (Beats,
	// LastBeat) never later than when the stream stored it, by the NATS
	// server's: a node whose clock runs ahead would otherwise stay up
	// after it died, for as long as its clock is ahead.
	SeenAt   time.Time     `json:"seen_at"`
	Interval time.Duration `json:"interval"`
}

// Up says whether the node beat recently enough at now: within three of
// its intervals (missing two beats is down). A beat read from the stream
// is judged on when it was stored at the latest (see SeenAt).
func (b NodeBeat) Up(now time.Time) bool {
	return now.Sub(b.SeenAt) <= 3*max(b.Interval, time.Second)
}

// PublishBeat stores b as its node's last heartbeat.
func PublishBeat(ctx context.Context, js jetstream.JetStream, b NodeBeat) error {
	data, err := json.Marshal(b)
	if err != nil {
		return err
	}
	_, err = js.Publish(ctx, NodePrefix+b.Name, data)
	return err
}

// Beats reads every node's last heartbeat, by name. A beat that does not
// decode, or names another subject than its own, is skipped: the stream
// is written by nodes, but a reader trusts none of it for more than an
// address to try.
func Beats(ctx context.Context, js jetstream.JetStream) ([]NodeBeat, error) {
	s, err := js.Stream(ctx, NodesStream)
	if err != nil {
		return nil, fmt.Errorf("nodes: %w", err)
	}
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(NodePrefix+">"))
	if err != nil {
		return nil, fmt.Errorf("nodes: %w", err)
	}
	subjects := make([]string, 0, len(info.State.Subjects))
	for subj := range info.State.Subjects {
		subjects = append(subjects, subj)
	}
	sort.Strings(subjects)
	if len(subjects) > MaxNodes {
		subjects = subjects[:MaxNodes]
	}
	var out []NodeBeat
	for _, subj := range subjects {
		m, err := s.GetLastMsgForSubject(ctx, subj)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // aged out meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("nodes: %w", err)
		}
		var b NodeBeat
		if json.Unmarshal(m.Data, &b) != nil || NodePrefix+b.Name != subj || !strings.HasPrefix(subj, NodePrefix) {
			continue
		}
		out = append(out, heard(b, m))
	}
	return out, nil
}

// ValidNodeName says whether s may be a node's name (--name): 1 to 64
// letters, digits, '-', '_' or '.', a NATS subject token or dot-separated
// tokens, never a wildcard.
func ValidNodeName(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool {
		return !(r == '-' || r == '_' || r == '.' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	})
}

// ForgetBeat removes the heartbeat stored under name (a node's name, as
// its --name: never a wildcard).
func ForgetBeat(ctx context.Context, js jetstream.JetStream, name string) error {
	if !ValidNodeName(name) {
		return fmt.Errorf("nodes: %q is not a node's name", name)
	}
	s, err := js.Stream(ctx, NodesStream)
	if err != nil {
		return fmt.Errorf("nodes: %w", err)
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSubject(NodePrefix+name)); err != nil {
		return fmt.Errorf("nodes: %w", err)
	}
	return nil
}

// LastBeat is the last heartbeat stored under name.
func LastBeat(ctx context.Context, js jetstream.JetStream, name string) (NodeBeat, error) {
	var b NodeBeat
	s, err := js.Stream(ctx, NodesStream)
	if err != nil {
		return b, err
	}
	m, err := s.GetLastMsgForSubject(ctx, NodePrefix+name)
	if err != nil {
		return b, err
	}
	if err := json.Unmarshal(m.Data, &b); err != nil {
		return b, err
	}
	return heard(b, m), nil
}

// heard is b as stored in m: a beat may say it is older than when the
// NATS server stored it (a node whose clock runs behind shows down
// sooner), never younger. The server's clock is one for every node, and
// it is not the writer's.
func heard(b NodeBeat, m *jetstream.RawStreamMsg) NodeBeat {
	if !m.Time.IsZero() && b.SeenAt.After(m.Time) {
		b.SeenAt = m.Time.UTC()
	}
	return b
}
