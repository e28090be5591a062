package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/daguq/daguq/internal/pgtest"
	"github.com/daguq/daguq/queuestore"
	"github.com/daguq/daguq/queuestore/postgres"
	"github.com/daguq/daguq/queuestore/storetest"
)

// The PostgreSQL store keeps the contract: the suite the SQLite store runs,
// each test on a database of its own.
func TestContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, openWith, storetest.RowCounter(countRows))
}

// openWith opens a store on a new database of the test server with the
// suite's options.
func openWith(t *testing.T, opts queuestore.Options) queuestore.Backend {
	return open(t, postgres.Options{MaxAttempts: opts.MaxAttempts, AckRetention: opts.AckRetention,
		Backoff: opts.Backoff, Now: opts.Now})
}

// open opens a store on a new database of the test server.
func open(tb testing.TB, opts postgres.Options) *postgres.Store {
	tb.Helper()
	if opts.MaxConns == 0 {
		opts.MaxConns = 4
	}
	s, err := postgres.Open(pgtest.NewDatabase(tb), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// countRows is Stats the slow way: by counting rows.
func countRows(tb testing.TB, b queuestore.Backend, queue string, now time.Time) storetest.Rows {
	tb.Helper()
	var r storetest.Rows
	err := b.(*postgres.Store).ConnPool().QueryRow(context.Background(), `
SELECT count(*) FILTER (WHERE state = 0),
       count(*) FILTER (WHERE state = 0 OR (state = 1 AND visible_at <= $2)),
       count(*) FILTER (WHERE state = 1 AND visible_at > $2 AND lease_id IS NULL),
       count(*) FILTER (WHERE state = 1 AND visible_at > $2 AND lease_id IS NOT NULL),
       count(*) FILTER (WHERE state = 2), count(*) FILTER (WHERE state = 3),
       (SELECT count(*) FROM daguq_bodies)
FROM daguq_messages WHERE queue = $1`, queue, now.UnixMilli()).Scan(&r.ReadySet, &r.Ready, &r.Delayed, &r.InFlight, &r.Dead, &r.Acked, &r.Bodies)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// pgBouncerSettings are the URL settings a store needs behind PgBouncer in
// transaction pooling mode (docs/postgres.md#pgbouncer): no prepared
// statements (without them, concurrent claims fail with 'prepared
// statement "stmtcache_..." already exists' on PgBouncer 1.18), no LISTEN.
const pgBouncerSettings = "?default_query_exec_mode=simple_protocol&daguq_listen=off"

// The contract holds behind PgBouncer in transaction pooling mode, in
// poll-only mode with pgx's simple protocol: every transaction of the store
// runs on whatever server connection PgBouncer lends it.
func TestContractPgBouncer(t *testing.T) {
	t.Parallel()
	storetest.Run(t, openPgBouncer, storetest.RowCounter(countRows))
}

// openPgBouncer is openWith behind PgBouncer.
func openPgBouncer(t *testing.T, opts queuestore.Options) queuestore.Backend {
	s, err := postgres.Open(pgtest.NewPgBouncerDatabase(t)+pgBouncerSettings, postgres.Options{MaxConns: 4,
		MaxAttempts: opts.MaxAttempts, AckRetention: opts.AckRetention, Backoff: opts.Backoff, Now: opts.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Queues move between PostgreSQL databases (also behind PgBouncer), and
// between PostgreSQL and SQLite both ways.
func TestMoves(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		from, to storetest.Opener
	}{
		{"PostgresToPostgres", openWith, openWith},
		{"SQLiteToPostgres", storetest.OpenSQLite, openWith},
		{"PostgresToSQLite", openWith, storetest.OpenSQLite},
		// Behind PgBouncer in transaction pooling mode, both ways.
		{"PgBouncerToPostgres", openPgBouncer, openWith},
		{"PostgresToPgBouncer", openWith, openPgBouncer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			storetest.RunMoves(t, tc.from, tc.to)
		})
	}
}
