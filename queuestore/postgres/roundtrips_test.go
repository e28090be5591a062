package postgres

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/daguq/daguq/internal/pgtest"
	"github.com/daguq/daguq/queuestore"
)

// roundTrips counts the statements and batches a connection sends: one
// round trip each (once its statements are prepared).
type roundTrips struct {
	mu    sync.Mutex
	sent  []string // each round trip: its statements' first words
	count bool
}

func (r *roundTrips) note(sqls ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.count {
		return
	}
	words := make([]string, len(sqls))
	for i, sql := range sqls {
		words[i] = strings.Join(strings.Fields(sql)[:min(3, len(strings.Fields(sql)))], " ")
	}
	r.sent = append(r.sent, strings.Join(words, " + "))
}

// take starts counting anew and returns what was counted.
func (r *roundTrips) take(count bool) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	sent := r.sent
	r.sent, r.count = nil, count
	return sent
}

func (r *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	r.note(d.SQL)
	return ctx
}

func (r *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (r *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchStartData) context.Context {
	sqls := make([]string, len(d.Batch.QueuedQueries))
	for i, q := range d.Batch.QueuedQueries {
		sqls[i] = q.SQL
	}
	r.note(sqls...)
	return ctx
}

func (r *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (r *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// A claim, an ack and an ack with the next claim (AckClaim) of a consumer
// in its steady state (statements prepared, no chore due) cost few round
// trips: each is one wait for the server on both sides, whatever the
// batch size (docs/postgres.md#where-daguqs-time-goes).
func TestRoundTrips(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := time.Now()
	counter := &roundTrips{}
	s := openOneConn(t, Options{Now: func() time.Time { return clock }, tracer: counter}, 100)
	claim := queuestore.ClaimOptions{Queue: "q", Max: 10, Lease: time.Minute}
	// One round first: statements get prepared, chores run.
	lease, err := s.Claim(ctx, claim)
	if err != nil || lease == nil {
		t.Fatalf("claim: %v, %v", lease, err)
	}
	if lease, err = s.AckClaim(ctx, lease, nil, claim); err != nil || lease == nil {
		t.Fatalf("ack and claim: %v, %v", lease, err)
	}
	if err := s.Ack(ctx, lease); err != nil {
		t.Fatal(err)
	}

	for _, step := range []struct {
		name string
		max  int
		run  func() error
	}{
		{"claim", 3, func() (err error) { lease, err = s.Claim(ctx, claim); return err }},
		{"ack and claim", 3, func() (err error) { lease, err = s.AckClaim(ctx, lease, nil, claim); return err }},
		{"ack", 2, func() error { return s.Ack(ctx, lease) }},
	} {
		counter.take(true)
		if err := step.run(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		sent := counter.take(false)
		t.Logf("%s: %d round trips:\n  %s", step.name, len(sent), strings.Join(sent, "\n  "))
		if len(sent) > step.max {
			t.Errorf("%s: %d round trips, want at most %d", step.name, len(sent), step.max)
		}
	}
}

// The claim's statements are planned once per connection, generic from
// the first call (sqlClaimStart): the cost of the sort that puts a claim's
// rows in order made the server plan sqlClaim for each call on a queue of
// 10,000 messages (measured with pg_stat_statements.track_planning), and
// planning it cost as much as running it.
func TestClaimPlannedOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openOneConn(t, Options{}, 200)
	claim := queuestore.ClaimOptions{Queue: "q", Max: 10, Lease: time.Minute}
	lease, err := s.Claim(ctx, claim)
	for lease != nil && err == nil {
		lease, err = s.AckClaim(ctx, lease, nil, claim)
	}
	if err != nil {
		t.Fatal(err)
	}
	// The pool's one connection ran every claim.
	var generic, custom int64
	err = s.pool.QueryRow(ctx, `SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1`,
		sqlClaim).Scan(&generic, &custom)
	if err != nil {
		t.Fatal(err)
	}
	if custom > 1 || generic < 20 {
		t.Errorf("20 claims: the claim statement was planned for %d of its calls, a generic plan served %d", custom, generic)
	}
}

// openOneConn opens a store of one connection on a new database, with n
// messages enqueued on queue "q".
func openOneConn(tb testing.TB, opts Options, n int) *Store {
	tb.Helper()
	opts.MaxConns = 1
	s, err := Open(pgtest.NewDatabase(tb), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	msgs := make([]queuestore.NewMessage, n)
	for i := range msgs {
		msgs[i] = queuestore.NewMessage{Queue: "q", Body: []byte(fmt.Sprint(i))}
	}
	if _, err := s.Enqueue(context.Background(), msgs...); err != nil {
		tb.Fatal(err)
	}
	return s
}
