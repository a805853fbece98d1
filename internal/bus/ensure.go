package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// MismatchError says how a stream in the cluster differs from what this
// node would make, in the settings a node may not change on its own.
type MismatchError struct {
	Stream string
	Diffs  []string
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("stream %s in the cluster differs from this node's: %s (every node of a deployment must be started with the same --replicas; to change a stream's replicas, edit it with the nats CLI first)",
		e.Stream, strings.Join(e.Diffs, "; "))
}

// EnsureStreams makes each stream exist as configured, as several nodes
// may do at once against a cluster that may still be forming: a missing
// stream is created (another node creating it first is fine), an existing
// one is compared. Replicas, storage and subjects are the deployment's
// and must match (a *MismatchError names what differs); other settings
// are brought to this node's (logged). Anything else — no JetStream yet,
// no stream leader yet, a timeout — is retried with a back-off of at most
// maxBackoff, logged each time, until ctx ends.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, want []jetstream.StreamConfig, log *slog.Logger) error {
	for _, sc := range want {
		backoff := 100 * time.Millisecond
		for attempt := 1; ; attempt++ {
			err := ensureStream(ctx, js, sc, log)
			if err == nil {
				break
			}
			var mm *MismatchError
			if errors.As(err, &mm) {
				return err
			}
			if ctx.Err() != nil {
				return fmt.Errorf("stream %s: %w (last: %v)", sc.Name, ctx.Err(), err)
			}
			log.Warn("stream not ready; retrying", "stream", sc.Name, "attempt", attempt, "in", backoff, "err", err)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return fmt.Errorf("stream %s: %w (last: %v)", sc.Name, ctx.Err(), err)
			}
			backoff = min(2*backoff, maxBackoff)
		}
	}
	return nil
}

const maxBackoff = 5 * time.Second

// defaultDuplicates is the server's duplicate window when none is set.
const defaultDuplicates = 2 * time.Minute

// attemptTimeout bounds one call to the cluster.
const attemptTimeout = 5 * time.Second

func ensureStream(ctx context.Context, js jetstream.JetStream, sc jetstream.StreamConfig, log *slog.Logger) error {
	if nc := js.Conn(); !nc.IsConnected() {
		return fmt.Errorf("not connected to NATS (%s)", nc.Status())
	}
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	s, err := js.Stream(ctx, sc.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = js.CreateStream(ctx, sc)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			s, err = js.Stream(ctx, sc.Name) // another node made it first
		}
	}
	if err != nil {
		return err
	}
	info := s.CachedInfo()
	if info.Cluster != nil && info.Cluster.Leader == "" {
		return errors.New("no stream leader elected yet")
	}
	if diffs := fixedDiffs(info.Config, sc); len(diffs) > 0 {
		return &MismatchError{Stream: sc.Name, Diffs: diffs}
	}
	if diffs := otherDiffs(info.Config, sc); len(diffs) > 0 {
		if _, err := js.UpdateStream(ctx, sc); err != nil {
			var api *jetstream.APIError
			if errors.As(err, &api) {
				return &MismatchError{Stream: sc.Name, Diffs: append(diffs, "the cluster refused to change them: "+api.Description)}
			}
			return fmt.Errorf("update (%s): %w", strings.Join(diffs, "; "), err)
		}
		log.Info("stream settings updated to this node's", "stream", sc.Name, "changes", strings.Join(diffs, "; "))
	}
	return nil
}

// fixedDiffs are the differences a node may not resolve by itself.
func fixedDiffs(have, want jetstream.StreamConfig) []string {
	var d []string
	if have.Replicas != want.Replicas {
		d = append(d, fmt.Sprintf("replicas %d in the cluster, %d here", have.Replicas, want.Replicas))
	}
	if have.Storage != want.Storage {
		d = append(d, fmt.Sprintf("storage %s in the cluster, %s here", have.Storage, want.Storage))
	}
	if !slices.Equal(have.Subjects, want.Subjects) {
		d = append(d, fmt.Sprintf("subjects %v in the cluster, %v here", have.Subjects, want.Subjects))
	}
	return d
}

// otherDiffs are the settings this node brings to its own (unset ones
// compared as the server's defaults).
func otherDiffs(have, want jetstream.StreamConfig) []string {
	if want.MaxBytes == 0 {
		want.MaxBytes = -1
	}
	if want.MaxMsgSize == 0 {
		want.MaxMsgSize = -1
	}
	if want.MaxMsgsPerSubject == 0 {
		want.MaxMsgsPerSubject = -1
	}
	if want.Duplicates == 0 {
		want.Duplicates = defaultDuplicates
		if want.MaxAge > 0 && want.MaxAge < defaultDuplicates {
			want.Duplicates = want.MaxAge
		}
	}
	var d []string
	diff := func(name string, h, w any) {
		if h != w {
			d = append(d, fmt.Sprintf("%s %v → %v", name, h, w))
		}
	}
	diff("max_age", have.MaxAge, want.MaxAge)
	diff("max_bytes", have.MaxBytes, want.MaxBytes)
	diff("max_msg_size", have.MaxMsgSize, want.MaxMsgSize)
	diff("max_msgs_per_subject", have.MaxMsgsPerSubject, want.MaxMsgsPerSubject)
	diff("discard_new_per_subject", have.DiscardNewPerSubject, want.DiscardNewPerSubject)
	diff("duplicate_window", have.Duplicates, want.Duplicates)
	diff("deny_delete", have.DenyDelete, want.DenyDelete)
	diff("deny_purge", have.DenyPurge, want.DenyPurge)
	diff("allow_direct", have.AllowDirect, want.AllowDirect)
	diff("discard", have.Discard, want.Discard)
	diff("allow_atomic", have.AllowAtomicPublish, want.AllowAtomicPublish)
	diff("allow_msg_ttl", have.AllowMsgTTL, want.AllowMsgTTL)
	for k, w := range want.Metadata {
		diff("metadata "+k, have.Metadata[k], w)
	}
	for k, h := range have.Metadata {
		if _, ok := want.Metadata[k]; !ok && strings.HasPrefix(k, "xhub.") {
			diff("metadata "+k, h, "")
		}
	}
	return d
}
