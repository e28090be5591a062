package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/daguq/daguq/internal/pgtest"
	"github.com/daguq/daguq/queuestore"
	"github.com/daguq/daguq/queuestore/postgres"
)

// Processes that open a new database at once migrate it once: the
// advisory lock makes them take turns, and the later ones find the work
// done.
func TestConcurrentOpensMigrateOnce(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := postgres.Open(dbURL, postgres.Options{MaxConns: 2})
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			_, err = s.Enqueue(context.Background(), queuestore.NewMessage{Queue: "q", Body: []byte("x")})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	conn := connect(t, dbURL)
	var versions, latest int
	if err := conn.QueryRow(context.Background(), `SELECT count(*), max(version) FROM daguq_schema_migrations`).Scan(&versions, &latest); err != nil {
		t.Fatal(err)
	}
	if versions != postgres.SchemaVersion() || latest != postgres.SchemaVersion() {
		t.Fatalf("%d migrations recorded up to %d, want each of 1..%d once", versions, latest, postgres.SchemaVersion())
	}
}

// A database written by a newer daguq is refused and left alone, and so is
// one with daguq's tables but no record of migrations.
func TestOpenRefusesUnknownSchemas(t *testing.T) {
	t.Parallel()
	dbURL := pgtest.NewDatabase(t)
	s, err := postgres.Open(dbURL, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	conn := connect(t, dbURL)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, `INSERT INTO daguq_schema_migrations (version) VALUES (999)`); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Open(dbURL, postgres.Options{}); !errors.Is(err, queuestore.ErrSchemaTooNew) || !strings.Contains(err.Error(), "999") {
		t.Fatalf("open of a newer schema: %v, want ErrSchemaTooNew naming 999", err)
	}
	if _, err := conn.Exec(ctx, `DROP TABLE daguq_schema_migrations`); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Open(dbURL, postgres.Options{}); !errors.Is(err, queuestore.ErrNotDaguqDatabase) {
		t.Fatalf("open of tables without their migrations: %v, want ErrNotDaguqDatabase", err)
	}
}

// No error and no description carries the password, whatever the URL form
// and whatever failed: a URL pgx cannot parse, a server that refuses the
// connection, a wrong password.
func TestNoErrorCarriesThePassword(t *testing.T) {
	t.Parallel()
	const pw = "s3cr3t-Pw"
	dbURL := pgtest.NewDatabase(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	wrong := *u
	wrong.User = url.UserPassword("daguq", pw)
	tests := []struct {
		name, url string
	}{
		{"refused", "postgres://daguq:" + pw + "@127.0.0.1:1/db?connect_timeout=5"},
		{"bad port", "postgres://daguq:" + pw + "@127.0.0.1:notaport/db"},
		{"bad escape", "postgresql://daguq:" + pw + "%zz@127.0.0.1/db"},
		{"slash in password", "postgres://daguq:" + pw + "/x@127.0.0.1:1/db"},
		{"password parameter", "postgres://daguq@127.0.0.1:1/db?password=" + pw + "&connect_timeout=5"},
		{"wrong password", wrong.String()},
		{"key=value", "host=127.0.0.1 port=1 user=daguq password=" + pw + " dbname=db connect_timeout=5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := postgres.Open(tt.url, postgres.Options{})
			if err == nil {
				t.Fatal("open succeeded")
			}
			if strings.Contains(err.Error(), pw) || strings.Contains(fmt.Sprintf("%+v", err), pw) {
				t.Fatalf("error carries the password: %v", err)
			}
			if !strings.Contains(err.Error(), "xxxxx") && !strings.Contains(err.Error(), "127.0.0.1") {
				t.Errorf("error %q names neither the redacted URL nor the host", err)
			}
			if r := postgres.Redact(tt.url); strings.Contains(r, pw) {
				t.Errorf("Redact(%q) = %q", tt.url, r)
			}
		})
	}
	s, err := postgres.Open(dbURL, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if d := s.Describe(); strings.Contains(d, pgtest.Password) || !strings.Contains(d, "daguq:xxxxx@127.0.0.1") {
		t.Fatalf("Describe() = %q, want the URL with the password redacted", d)
	}
}

// The claim walks the ready set's index in claim order (no sort, no seq
// scan), the move of due messages walks the live index in time order, and
// the claim's other statements find their rows by id or lease id: with the
// settings a claim's transaction has (sorts off), with statistics taken when
// few messages were ready (the planner then once sorted the whole ready set
// instead of walking its index) and with fresh ones.
func TestClaimPlansUseTheirIndexes(t *testing.T) {
	t.Parallel()
	s := open(t, postgres.Options{})
	ctx := context.Background()
	var msgs []queuestore.NewMessage
	for i := range 5000 {
		m := queuestore.NewMessage{Queue: fmt.Sprintf("q%d", i%5), Body: []byte("x"), Priority: int64(i % 3)}
		msgs = append(msgs, m)
	}
	if _, err := s.Enqueue(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	// All leased, then statistics, then as many ready again.
	if _, err := s.ConnPool().Exec(ctx, `UPDATE daguq_messages SET state = 1, visible_at = visible_at + 60000, lease_id = id`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConnPool().Exec(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Enqueue(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	// Generic plans, as the store's prepared statements come to use: the
	// planner knows no parameter, and guesses a handful of rows.
	plans := []struct {
		name, sql, args, index string
	}{
		{"pick", `
SELECT id, size, group_key, sort_key FROM daguq_messages
WHERE queue = $1 AND state = 0 AND sort_key >= $2 AND sort_key < $3 AND priority BETWEEN $4 AND $5
ORDER BY sort_key, id LIMIT $6 FOR UPDATE SKIP LOCKED`, `'q1', -9223372036854775808, 9223372036854775807, -1000000, 1000000, 10`, "daguq_messages_ready"},
		{"promote", `
SELECT id FROM daguq_messages WHERE queue = $1 AND state = 1 AND visible_at <= $2 AND visible_at >= $3
ORDER BY visible_at LIMIT 1000 FOR UPDATE SKIP LOCKED`, `'q1', 0, -9223372036854775808`, "daguq_messages_live"},
		{"floor", `
SELECT sort_key FROM daguq_messages WHERE queue = $1 AND state = 0 AND sort_key >= $2
ORDER BY sort_key, id LIMIT 1`, `'q1', 0`, "daguq_messages_ready"},
		{"lease", `UPDATE daguq_messages SET state = 1, lease_id = $1 WHERE id = ANY($2)`, `7, '{1,2,3}'`, "daguq_messages_pkey"},
		{"lease in the claim's statement", `
WITH picked AS MATERIALIZED (SELECT unnest($1::bigint[]) AS id)
UPDATE daguq_messages SET state = 1, lease_id = 7 WHERE id = ANY (ARRAY(SELECT id FROM picked))`, `'{1,2,3}'`, "daguq_messages_pkey"},
		{"drop lease", `SELECT 1 FROM daguq_messages WHERE lease_id = $1`, `7`, "daguq_messages_lease"},
	}
	for _, analyzed := range []bool{false, true} {
		if analyzed {
			if _, err := s.ConnPool().Exec(ctx, `ANALYZE`); err != nil {
				t.Fatal(err)
			}
		}
		for _, p := range plans {
			plan := explainInClaim(t, s, p.sql, p.args)
			if !strings.Contains(plan, p.index) || strings.Contains(plan, "Sort") || strings.Contains(plan, "Seq Scan") {
				t.Errorf("%s plan (fresh statistics: %v) does not walk %s in order:\n%s", p.name, analyzed, p.index, plan)
			}
		}
	}
}

// explainInClaim is the generic plan of query in a transaction with a
// claim's settings, executed with args (SQL literals).
func explainInClaim(t *testing.T, s *postgres.Store, query, args string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := s.ConnPool().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	for _, stmt := range []string{`SET LOCAL enable_sort = off`, `SET LOCAL plan_cache_mode = force_generic_plan`,
		`PREPARE claim_plan AS ` + query} {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	defer conn.Exec(ctx, `DEALLOCATE claim_plan`)
	rows, err := tx.Query(ctx, "EXPLAIN EXECUTE claim_plan("+args+")")
	if err != nil {
		t.Fatal(err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// The hot tables carry their autovacuum settings.
func TestHotTablesVacuumEarly(t *testing.T) {
	t.Parallel()
	s := open(t, postgres.Options{})
	for _, table := range []string{"daguq_messages", "daguq_bodies", "daguq_leases", "daguq_queue_counts", "daguq_count_deltas"} {
		var opts []string
		err := s.ConnPool().QueryRow(context.Background(), `SELECT coalesce(reloptions, '{}') FROM pg_class WHERE relname = $1`, table).Scan(&opts)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.Join(opts, ","), "autovacuum_vacuum_cost_limit=2000") {
			t.Errorf("%s options %v, want the autovacuum settings", table, opts)
		}
	}
}

func connect(tb testing.TB, dbURL string) *pgx.Conn {
	tb.Helper()
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// A claim's lease never begins before the previous lease of a message it
// takes ended, also when another claim moved that message into the ready
// set after this claim read its clock (here: a claim whose clock is behind).
func TestClaimLeaseBeginsAfterPreviousLease(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := pgtest.NewDatabase(t)
	base := time.Now()
	var ahead, behind atomic.Int64 // each store's clock, ms
	ahead.Store(base.UnixMilli())
	behind.Store(base.UnixMilli())
	openAt := func(clock *atomic.Int64) *postgres.Store {
		s, err := postgres.Open(dbURL, postgres.Options{MaxConns: 1, Now: func() time.Time { return time.UnixMilli(clock.Load()) }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := openAt(&ahead), openAt(&behind)
	if _, err := a.Enqueue(ctx, queuestore.NewMessage{Queue: "q", Body: []byte("m"), Priority: 5}); err != nil {
		t.Fatal(err)
	}
	first, err := a.Claim(ctx, queuestore.ClaimOptions{Queue: "q", Max: 1, Lease: time.Second})
	if err != nil || first == nil {
		t.Fatalf("first claim: %v, %v", first, err)
	}
	// The lease ran out: a claim of another priority band moves the
	// message back into the ready set and leaves it there.
	ahead.Store(base.Add(2 * time.Second).UnixMilli())
	low := int64(0)
	if l, err := a.Claim(ctx, queuestore.ClaimOptions{Queue: "q", Max: 1, Lease: time.Second, MaxPriority: &low}); err != nil || l != nil {
		t.Fatalf("claim of the other band: %v, %v", l, err)
	}
	behind.Store(base.Add(500 * time.Millisecond).UnixMilli()) // before the first lease ended
	second, err := b.Claim(ctx, queuestore.ClaimOptions{Queue: "q", Max: 1, Lease: time.Minute})
	if err != nil || second == nil {
		t.Fatalf("second claim: %v, %v", second, err)
	}
	if began := second.ExpiresAt.Add(-time.Minute); began.Before(first.ExpiresAt) {
		t.Errorf("the second lease began at %s, before the first ended at %s", began, first.ExpiresAt)
	}
}
