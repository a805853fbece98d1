package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/xhub-gov/xhub/internal/testenv"
)

var (
	cmdPGOnce sync.Once
	cmdPGDSN  string
	cmdPGSkip string
	cmdPGDir  string // a cluster started here, stopped by TestMain
)

func stopTestPG() {
	if cmdPGDir != "" {
		_ = exec.Command("bash", "../../.ci/pg-start", cmdPGDir, "stop").Run()
		os.RemoveAll(cmdPGDir)
	}
}

// pgDSN is a PostgreSQL for the CLI's adapter: XHUB_PG_DSN (what .ci/run
// starts), or a throwaway cluster started here when PostgreSQL is installed.
func pgDSN(t *testing.T) string {
	t.Helper()
	cmdPGOnce.Do(func() {
		if cmdPGDSN = os.Getenv("XHUB_PG_DSN"); cmdPGDSN != "" {
			return
		}
		found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
		if _, err := exec.LookPath("initdb"); err != nil && len(found) == 0 {
			cmdPGSkip = "no PostgreSQL on this machine (install it or set XHUB_PG_DSN)"
			return
		}
		dir, err := os.MkdirTemp("", "xhub-cmd-pg-")
		if err != nil {
			cmdPGSkip = err.Error()
			return
		}
		out, err := exec.Command("bash", "../../.ci/pg-start", dir).Output()
		if err != nil {
			cmdPGSkip = "could not start PostgreSQL: " + err.Error()
			return
		}
		cmdPGDir = dir
		cmdPGDSN = strings.TrimSpace(string(out))
	})
	if cmdPGDSN == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL is needed in CI: %s", cmdPGSkip)
		}
		t.Skip(cmdPGSkip)
	}
	return cmdPGDSN
}

// TestAdapterPostgresBackfill: `adapter postgres --watch` publishes the
// rows already in the table first, with progress lines, then follows
// changes; a subscriber gets each row once.
func TestAdapterPostgresBackfill(t *testing.T) {
	// A database of its own: the adapters' own tests use the same server
	// at the same time, and drop the outbox tables they share.
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, pgDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	db := fmt.Sprintf("xhub_cmd_%d", time.Now().UnixNano())
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
		admin.Close(context.Background())
	})
	dsn := pgDSN(t) + " dbname=" + db            // the last dbname counts
	if strings.HasPrefix(pgDSN(t), "postgres") { // a URL
		dsn = strings.Replace(pgDSN(t), "/"+admin.Config().Database, "/"+db, 1)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `DROP TABLE IF EXISTS cli_cases; CREATE TABLE cli_cases (id bigint PRIMARY KEY, name text, ward text NOT NULL);
INSERT INTO cli_cases VALUES (1,'Ana','north'),(2,'Bo','south'),(3,'Cy','north')`); err != nil {
		t.Fatal(err)
	}
	f := newShareFixture(t)
	env := f.env
	taxSys := filepath.Join(t.TempDir(), "tax-sys.creds")
	mustX(t, env, env.Node.AdminCreds, "creds", "issue", "--dept", "tax", "--role", "system", "--out", taxSys)
	mustX(t, env, f.tax, "share", "request", "health.open", "--purpose", "feed", "--fields", "id,ward")
	sctx, stopSub := context.WithCancel(ctx)
	subOut, subErr := &syncBuffer{}, &syncBuffer{}
	subDone := make(chan error, 1)
	go func() {
		subDone <- run(sctx, []string{"subscribe", "health.open", "--name", "cli", "--from", "beginning", "--hub", env.Addr(), "--creds", taxSys}, subOut, subErr)
	}()
	actx, stopAdapter := context.WithCancel(ctx)
	aOut, aErr := &syncBuffer{}, &syncBuffer{}
	aDone := make(chan error, 1)
	go func() {
		aDone <- run(actx, []string{"adapter", "postgres", "--dataset", "health.open", "--dsn", dsn, "--table", "cli_cases", "--watch", "--hub", env.Addr(), "--creds", f.hsys}, aOut, aErr)
	}()
	testenv.WaitFor(t, 20*time.Second, "the backfill's progress", func() bool {
		return strings.Contains(aErr.String(), "backfill of cli_cases: 3 of 3 rows (100%)")
	})
	testenv.WaitFor(t, 20*time.Second, "the three rows at the subscriber", func() bool { return strings.Count(subOut.String(), "\n") >= 3 })
	if _, err := conn.Exec(ctx, `INSERT INTO cli_cases VALUES (4,'Di','east')`); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(40 * time.Second)
	for !strings.Contains(subOut.String(), `"id":4`) {
		if time.Now().After(deadline) {
			var n int
			_ = conn.QueryRow(ctx, `SELECT count(*) FROM xhub_outbox`).Scan(&n)
			var cursor, pending int64
			var bf *string
			_ = conn.QueryRow(ctx, `SELECT seq, pending, backfill FROM xhub_cursor`).Scan(&cursor, &pending, &bf)
			t.Fatalf("the new row did not arrive in 40s; outbox %d rows, cursor %d pending %d backfill %v\nadapter stdout:\n%s\nadapter stderr:\n%s\nsubscriber:\n%s\n%s",
				n, cursor, pending, bf != nil, aOut.String(), aErr.String(), subOut.String(), subErr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	stopAdapter()
	stopSub()
	<-aDone
	<-subDone
	got := subOut.String()
	for _, id := range []string{`"id":1,`, `"id":2,`, `"id":3,`, `"id":4,`} {
		if strings.Count(got, id) != 1 {
			t.Errorf("%s delivered %d times:\n%s", id, strings.Count(got, id), got)
		}
	}
	if strings.Contains(got, "Ana") {
		t.Errorf("a field outside the grant:\n%s", got)
	}
}
