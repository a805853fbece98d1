package postgres

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Outbox objects the adapter installs (idempotently).
const installSQL = `
CREATE TABLE IF NOT EXISTS xhub_outbox (
  seq     bigserial PRIMARY KEY,
  tbl     text NOT NULL,
  row_key text NOT NULL,
  at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS xhub_outbox_tbl_seq ON xhub_outbox (tbl, seq);
CREATE TABLE IF NOT EXISTS xhub_cursor (
  name    text PRIMARY KEY,
  seq     bigint NOT NULL,          -- every outbox row up to here is published
  pending bigint NOT NULL DEFAULT 0 -- a batch up to here may have been published
);
CREATE OR REPLACE FUNCTION xhub_outbox_record() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO xhub_outbox (tbl, row_key)
    VALUES (TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, to_jsonb(NEW) ->> TG_ARGV[0]);
  PERFORM pg_notify('xhub_outbox', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME);
  RETURN NEW;
END $$;
-- Which transaction recorded a change: a change the backfill's snapshot
-- already shows is not published again.
ALTER TABLE xhub_outbox ADD COLUMN IF NOT EXISTS xid xid8 NOT NULL DEFAULT pg_current_xact_id();
-- NULL: a backfill is due; 'none': none was asked for (and cursors made
-- before backfills existed); else the backfill's snapshot.
ALTER TABLE xhub_cursor ADD COLUMN IF NOT EXISTS backfill text DEFAULT 'none';`

// Publisher stores one batch; retried with the same id it stores once.
type Publisher func(ctx context.Context, records [][]byte, batchID string) error

// WatchBatch bounds the rows published at once.
const WatchBatch = 500

// Install installs (idempotently) the outbox, the trigger on the table
// and the cursor stored under name: from its return on, every inserted or
// updated row is recorded for Watch. Watch calls it; call it yourself to
// know when changes start being recorded.
func (s *Source) Install(ctx context.Context, name string) error {
	return s.install(ctx, name, false)
}

func (s *Source) install(ctx context.Context, name string, backfill bool) error {
	trigger := pgx.Identifier{"xhub_outbox_" + s.table[1]}.Sanitize()
	if _, err := s.pool.Exec(ctx, installSQL); err != nil {
		return fmt.Errorf("postgres watch: install outbox: %w", err)
	}
	// The key column name is a trigger argument: a string literal, quoted.
	// Drop and create run in one implicit transaction: no row is missed.
	keyLit := "'" + strings.ReplaceAll(s.key, "'", "''") + "'"
	if _, err := s.pool.Exec(ctx, "DROP TRIGGER IF EXISTS "+trigger+" ON "+s.table.Sanitize()+"; CREATE TRIGGER "+trigger+
		" AFTER INSERT OR UPDATE ON "+s.table.Sanitize()+" FOR EACH ROW EXECUTE FUNCTION xhub_outbox_record("+keyLit+")"); err != nil {
		return fmt.Errorf("postgres watch: install trigger: %w", err)
	}
	initial := "none"
	if backfill {
		initial = "" // NULL below: due
	}
	if _, err := s.pool.Exec(ctx, "INSERT INTO xhub_cursor (name, seq, backfill) VALUES ($1, 0, NULLIF($2, '')) ON CONFLICT (name) DO NOTHING", name, initial); err != nil {
		return fmt.Errorf("postgres watch: cursor: %w", err)
	}
	return nil
}

// Watch publishes inserted and updated rows, in the order they changed,
// from the cursor stored under name: it installs the outbox trigger on the
// table, publishes each run of changes as one batch whose id names the
// outbox range (so a publish retried after a crash is deduplicated by the
// hub), then advances the cursor. It waits for NOTIFY, and polls every
// poll as a fallback. It returns when ctx ends.
func (s *Source) Watch(ctx context.Context, name string, poll time.Duration, publish Publisher) error {
	return s.WatchWith(ctx, name, WatchOptions{Poll: poll}, publish)
}

// WatchOptions change how Watch starts.
type WatchOptions struct {
	// Poll is the fallback poll interval. Zero: 5s.
	Poll time.Duration
	// Backfill, for a cursor name not seen before, first publishes every
	// row the table holds (in batches, in key order), from one snapshot,
	// then follows changes: a change the snapshot shows is not published
	// again, one it does not is. A crash mid-backfill starts it again
	// under the same batch ids (key ranges), which the hub stores once.
	Backfill bool
	// Progress, if set, is told the backfill's progress after each batch.
	Progress func(done, total int64)
}

// WatchWith is Watch with options.
func (s *Source) WatchWith(ctx context.Context, name string, o WatchOptions, publish Publisher) error {
	poll := o.Poll
	if poll <= 0 {
		poll = 5 * time.Second
	}
	tbl := s.table[0] + "." + s.table[1]
	if err := s.install(ctx, name, o.Backfill); err != nil {
		return err
	}
	if err := s.backfill(ctx, name, tbl, o.Progress, publish); err != nil {
		return err
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "LISTEN xhub_outbox"); err != nil {
		return fmt.Errorf("postgres watch: listen: %w", err)
	}
	cols, _ := s.columns(nil)
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = "t." + pgx.Identifier{c}.Sanitize()
	}
	changes := "SELECT o.seq, jsonb_strip_nulls(to_jsonb(x)) FROM xhub_outbox o CROSS JOIN LATERAL (SELECT " + strings.Join(quoted, ", ") +
		" FROM " + s.table.Sanitize() + " t WHERE t." + pgx.Identifier{s.key}.Sanitize() + "::text = o.row_key) x" +
		" WHERE o.tbl = $1 AND o.seq > $2 AND o.seq <= $3" +
		" AND NOT coalesce(pg_visible_in_snapshot(o.xid, (SELECT nullif(backfill, 'none')::pg_snapshot FROM xhub_cursor WHERE name = $4)), false)" +
		" ORDER BY o.seq LIMIT " + strconv.Itoa(WatchBatch)
	for {
		for {
			n, err := s.publishChanges(ctx, name, tbl, changes, publish)
			if ctx.Err() != nil {
				return nil // stopping; a pending batch is republished on restart
			}
			if err != nil {
				return err
			}
			if n < WatchBatch {
				break
			}
		}
		wctx, cancel := context.WithTimeout(ctx, poll)
		_, err := conn.Conn().WaitForNotification(wctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && wctx.Err() == nil {
			return fmt.Errorf("postgres watch: %w", err)
		}
	}
}

// publishChanges publishes one run of changes after the cursor and
// advances it; it returns how many rows it published. The run is first
// recorded as pending, then published under an id naming its outbox range,
// then the cursor advances: after a crash in between, the same range is
// published again under the same id, and the hub stores it once.
func (s *Source) publishChanges(ctx context.Context, name, tbl, changes string, publish Publisher) (int, error) {
	var cursor, pending int64
	if err := s.pool.QueryRow(ctx, "SELECT seq, pending FROM xhub_cursor WHERE name = $1", name).Scan(&cursor, &pending); err != nil {
		return 0, fmt.Errorf("postgres watch: cursor: %w", err)
	}
	upto := pending
	if upto == 0 {
		upto = math.MaxInt64
	}
	rows, err := s.pool.Query(ctx, changes, tbl, cursor, upto, name)
	if err != nil {
		return 0, fmt.Errorf("postgres watch: changes: %w", err)
	}
	var recs [][]byte
	last := cursor
	for rows.Next() {
		var seq int64
		var rec []byte
		if err := rows.Scan(&seq, &rec); err != nil {
			rows.Close()
			return 0, err
		}
		last = seq
		recs = append(recs, rec)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	if pending > 0 {
		last = pending
	}
	if len(recs) == 0 {
		// Outbox rows whose table rows were deleted before being read:
		// move past them.
		var maxSeq int64
		if err := s.pool.QueryRow(ctx, "SELECT coalesce(max(seq), 0) FROM xhub_outbox WHERE tbl = $1 AND seq > $2", tbl, cursor).Scan(&maxSeq); err != nil {
			return 0, err
		}
		if maxSeq > cursor {
			_, err := s.pool.Exec(ctx, "UPDATE xhub_cursor SET seq = $2, pending = 0 WHERE name = $1", name, maxSeq)
			return 0, err
		}
		return 0, nil
	}
	if pending == 0 {
		if _, err := s.pool.Exec(ctx, "UPDATE xhub_cursor SET pending = $2 WHERE name = $1", name, last); err != nil {
			return 0, fmt.Errorf("postgres watch: mark pending: %w", err)
		}
	}
	batchID := fmt.Sprintf("%s:%s:%d-%d", name, tbl, cursor, last)
	if err := publish(ctx, recs, batchID); err != nil {
		return 0, fmt.Errorf("postgres watch: publish %s: %w", batchID, err)
	}
	// The batch is stored: finish the bookkeeping even if we are stopping.
	if _, err := s.pool.Exec(context.WithoutCancel(ctx), "UPDATE xhub_cursor SET seq = $2, pending = 0 WHERE name = $1", name, last); err != nil {
		return 0, fmt.Errorf("postgres watch: advance cursor: %w", err)
	}
	return len(recs), nil
}

// backfill publishes every row of the table from one snapshot, if the
// cursor name is due one, and records the snapshot.
func (s *Source) backfill(ctx context.Context, name, tbl string, progress func(done, total int64), publish Publisher) error {
	var due bool
	if err := s.pool.QueryRow(ctx, "SELECT backfill IS NULL FROM xhub_cursor WHERE name = $1", name).Scan(&due); err != nil {
		return fmt.Errorf("postgres backfill: cursor: %w", err)
	}
	if !due {
		return nil
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("postgres backfill: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var snap string
	var total int64
	if err := tx.QueryRow(ctx, "SELECT pg_current_snapshot()::text").Scan(&snap); err != nil {
		return fmt.Errorf("postgres backfill: snapshot: %w", err)
	}
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+s.table.Sanitize()).Scan(&total); err != nil {
		return fmt.Errorf("postgres backfill: count: %w", err)
	}
	cols, _ := s.columns(nil)
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = pgx.Identifier{c}.Sanitize()
	}
	keyCol := pgx.Identifier{s.key}.Sanitize()
	rows, err := tx.Query(ctx, "SELECT t."+keyCol+"::text, jsonb_strip_nulls(to_jsonb(x)) FROM "+s.table.Sanitize()+" t CROSS JOIN LATERAL (SELECT "+
		"t."+strings.Join(quoted, ", t.")+") x ORDER BY t."+keyCol)
	if err != nil {
		return fmt.Errorf("postgres backfill: %w", err)
	}
	var recs [][]byte
	var first, last string
	var done int64
	flush := func() error {
		if len(recs) == 0 {
			return nil
		}
		// The id names the key range (hashed: keys may be long), so a
		// backfill started again stores each range once.
		h := sha256.Sum256([]byte(tbl + "\x00" + first + "\x00" + last))
		id := fmt.Sprintf("%s:backfill:%x", name, h[:12])
		if err := publish(ctx, recs, id); err != nil {
			return fmt.Errorf("postgres backfill: publish %s: %w", id, err)
		}
		done += int64(len(recs))
		if progress != nil {
			progress(done, total)
		}
		recs = recs[:0]
		return nil
	}
	for rows.Next() {
		var key string
		var rec []byte
		if err := rows.Scan(&key, &rec); err != nil {
			rows.Close()
			return err
		}
		if len(recs) == 0 {
			first = key
		}
		last = key
		recs = append(recs, rec)
		if len(recs) == WatchBatch {
			if err := flush(); err != nil {
				rows.Close()
				return err
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres backfill: %w", err)
	}
	if err := flush(); err != nil {
		return err
	}
	if progress != nil && total == 0 {
		progress(0, 0)
	}
	if _, err := s.pool.Exec(context.WithoutCancel(ctx), "UPDATE xhub_cursor SET backfill = $2 WHERE name = $1", name, snap); err != nil {
		return fmt.Errorf("postgres backfill: record: %w", err)
	}
	return nil
}
