package postgres_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
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

// The bloat and vacuum proofs (make test-postgres-bloat), heavy: they run
// when DAGUQ_PG_BLOAT is set. DAGUQ_PG_BLOAT_N is the messages per cycle
// (default 1,000,000), DAGUQ_PG_BLOAT_HOLD how long a transaction idles
// (default 10m).
const (
	envBloat     = "DAGUQ_PG_BLOAT"
	envBloatN    = "DAGUQ_PG_BLOAT_N"
	envBloatHold = "DAGUQ_PG_BLOAT_HOLD"
)

// hotTables are the tables every message passes through.
var hotTables = []string{"daguq_messages", "daguq_bodies", "daguq_leases", "daguq_queue_counts", "daguq_count_deltas"}

func bloatEnv(t *testing.T) (n int, hold time.Duration) {
	t.Helper()
	if os.Getenv(envBloat) == "" {
		t.Skip("bloat proof skipped: set " + envBloat + "=1 (make test-postgres-bloat)")
	}
	n, hold = 1_000_000, 10*time.Minute
	if v := os.Getenv(envBloatN); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1000 {
			t.Fatalf("%s=%q: want a number of messages, at least 1000", envBloatN, v)
		}
	}
	if v := os.Getenv(envBloatHold); v != "" {
		var err error
		if hold, err = time.ParseDuration(v); err != nil {
			t.Fatalf("%s=%q: want a duration", envBloatHold, v)
		}
	}
	return n, hold
}

// Three cycles of n messages enqueued, then claimed and acked: at the peak
// of each cycle (n messages stored, the last cycle's dead versions vacuumed
// or not) the hot tables and their indexes are within 2x of a compacted
// copy, and the peaks stay flat: no cycle's is above 1.25x the first's.
// Acked rows are deleted at ack (no AckRetention): nothing is left after a
// cycle but what vacuum has not yet returned.
func TestBloatCycles(t *testing.T) {
	n, _ := bloatEnv(t)
	dbURL := pgtest.NewDatabase(t)
	s, err := postgres.Open(dbURL, postgres.Options{MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	conn := connect(t, dbURL)
	body := make([]byte, 100)
	var peaks []int64
	for cycle := 1; cycle <= 3; cycle++ {
		start := time.Now()
		for done := 0; done < n; {
			k := min(1000, n-done)
			msgs := make([]queuestore.NewMessage, k)
			for i := range msgs {
				msgs[i] = queuestore.NewMessage{Queue: "bloat", Body: body}
			}
			if _, err := s.Enqueue(ctx, msgs...); err != nil {
				t.Fatal(err)
			}
			done += k
		}
		enqueued := time.Since(start)
		peakRelations := relationSizes(t, conn)
		size, compact := hotSizes(t, conn)
		peaks = append(peaks, size)
		start = time.Now()
		drain(t, s, 4, 100, int64(n))
		drained := time.Since(start)
		after, _ := hotSizes(t, conn, "no copy")
		var live, rows int64
		if err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM daguq_messages), (SELECT count(*) FROM daguq_bodies)`).Scan(&live, &rows); err != nil {
			t.Fatal(err)
		}
		t.Logf("cycle %d: %d messages enqueued in %v (%.0f/s), drained in %v (%.0f/s); at the peak the hot tables with their indexes take %s, a compacted copy %s (%.2fx); after the drain %s, %d message and %d body rows left",
			cycle, n, enqueued.Round(time.Millisecond), float64(n)/enqueued.Seconds(), drained.Round(time.Millisecond), float64(n)/drained.Seconds(),
			mb(size), mb(compact), float64(size)/float64(compact), mb(after), live, rows)
		t.Logf("cycle %d: at the peak %s", cycle, peakRelations)
		if live != 0 || rows != 0 {
			t.Errorf("cycle %d: %d message and %d body rows left after every message was acked", cycle, live, rows)
		}
		if size > 2*compact {
			t.Errorf("cycle %d: the hot tables take %s, more than twice a compacted copy (%s)", cycle, mb(size), mb(compact))
		}
		if size*4 > peaks[0]*5 {
			t.Errorf("cycle %d: the peak %s is above 1.25x the first cycle's %s", cycle, mb(size), mb(peaks[0]))
		}
	}
}

// hotSizes is the size of the hot tables with their indexes and, unless
// noCopy is given, of a compacted copy of them (CREATE TABLE ... (LIKE ...
// INCLUDING ALL), the rows copied, VACUUM FULL).
func hotSizes(t *testing.T, conn *pgx.Conn, noCopy ...string) (size, compact int64) {
	t.Helper()
	ctx := context.Background()
	for _, table := range hotTables {
		var n int64
		if err := conn.QueryRow(ctx, `SELECT pg_total_relation_size($1::regclass)`, table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		size += n
		if len(noCopy) > 0 {
			continue
		}
		cp := "bloat_copy_" + table // names of ours, not input
		for _, stmt := range []string{
			`DROP TABLE IF EXISTS ` + cp,
			`CREATE TABLE ` + cp + ` (LIKE ` + table + ` INCLUDING ALL)`,
			`INSERT INTO ` + cp + ` SELECT * FROM ` + table,
			`VACUUM FULL ` + cp,
		} {
			if _, err := conn.Exec(ctx, stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
		if err := conn.QueryRow(ctx, `SELECT pg_total_relation_size($1::regclass)`, cp).Scan(&n); err != nil {
			t.Fatal(err)
		}
		compact += n
		if _, err := conn.Exec(ctx, `DROP TABLE `+cp); err != nil {
			t.Fatal(err)
		}
	}
	return size, compact
}

// drain claims and acks with workers until total messages are acked.
func drain(t *testing.T, s *postgres.Store, workers, batch int, total int64) {
	t.Helper()
	var acked atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for acked.Load() < total {
				l, err := s.Claim(ctx, queuestore.ClaimOptions{Queue: "bloat", Max: batch, Lease: time.Minute, Consumer: fmt.Sprint("w", w)})
				if err != nil {
					errs <- err
					return
				}
				if l == nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				if err := s.Ack(ctx, l); err != nil {
					errs <- err
					return
				}
				acked.Add(int64(len(l.Messages)))
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// relationSizes lists the hot tables and indexes by size.
func relationSizes(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	rows, err := conn.Query(context.Background(), `
SELECT c.relname, pg_relation_size(c.oid) FROM pg_class c
WHERE c.relname LIKE 'daguq\_%' AND c.relkind IN ('r', 'i') AND pg_relation_size(c.oid) > 65536
ORDER BY 2 DESC`)
	if err != nil {
		t.Fatal(err)
	}
	var out string
	for rows.Next() {
		var name string
		var size int64
		if err := rows.Scan(&name, &size); err != nil {
			t.Fatal(err)
		}
		out += fmt.Sprintf("%s %s, ", name, mb(size))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/(1<<20)) }

// A session idle in a transaction holds vacuum back for hold: meanwhile a
// steady producer and four consumers keep >= 65% of the throughput they had
// before, and after it ends they are back to >= 90% of it within
// min(5 minutes, hold/2).
func TestBloatIdleTransaction(t *testing.T) {
	_, hold := bloatEnv(t)
	dbURL := pgtest.NewDatabase(t)
	s, err := postgres.Open(dbURL, postgres.Options{MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()

	// A producer keeps a backlog of about 20,000 messages; consumers claim
	// 100 at a time and ack. acked counts what they finished.
	var enqueued, acked atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	body := make([]byte, 100)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if enqueued.Load()-acked.Load() > 20_000 {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			msgs := make([]queuestore.NewMessage, 500)
			for i := range msgs {
				msgs[i] = queuestore.NewMessage{Queue: "bloat", Body: body}
			}
			if _, err := s.Enqueue(ctx, msgs...); err != nil {
				if ctx.Err() == nil {
					errs <- err
				}
				return
			}
			enqueued.Add(500)
		}
	}()
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				l, err := s.Claim(ctx, queuestore.ClaimOptions{Queue: "bloat", Max: 100, Lease: time.Minute, Consumer: fmt.Sprint("w", w)})
				if err == nil && l != nil {
					err = s.Ack(ctx, l)
					acked.Add(int64(len(l.Messages)))
				}
				if err != nil {
					if ctx.Err() == nil {
						errs <- err
					}
					return
				}
				if l == nil {
					time.Sleep(5 * time.Millisecond)
				}
			}
		}()
	}
	defer func() {
		stop()
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}()

	window := 10 * time.Second
	rate := func() float64 {
		before := acked.Load()
		time.Sleep(window)
		return float64(acked.Load()-before) / window.Seconds()
	}
	rate() // warm up
	var base float64
	for range 3 {
		base += rate() / 3
	}
	t.Logf("baseline: %.0f messages/s, %s", base, loadAverage())

	holder := connect(t, dbURL)
	if _, err := holder.Exec(context.Background(), `SET idle_in_transaction_session_timeout = 0`); err != nil {
		t.Fatal(err)
	}
	tx, err := holder.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(context.Background(), `SELECT txid_current()`); err != nil {
		t.Fatal(err)
	}
	worst := base
	for held := time.Duration(0); held < hold; held += window {
		r := rate()
		worst = min(worst, r)
		t.Logf("transaction idle for %v: %.0f messages/s (%.0f%%), %s, %s", held+window, r, 100*r/base, deadRows(t, holder), loadAverage())
		if r < 0.65*base {
			t.Errorf("throughput %.0f/s with vacuum held back %v, below 65%% of the baseline %.0f/s", r, held+window, base)
		}
	}
	if err := tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	recover := min(5*time.Minute, max(hold/2, 3*window))
	for after := time.Duration(0); ; after += window {
		r := rate()
		t.Logf("%v after the transaction ended: %.0f messages/s (%.0f%%), %s, %s", after+window, r, 100*r/base, deadRows(t, holder), loadAverage())
		if r >= 0.9*base {
			break
		}
		if after+window >= recover {
			t.Errorf("throughput %.0f/s %v after vacuum was let go, below 90%% of the baseline %.0f/s", r, after+window, base)
			break
		}
	}
	t.Logf("baseline %.0f/s, worst window while held %.0f/s (%.0f%%)", base, worst, 100*worst/base)
}

// deadRows says the messages table's live and dead row counts.
func deadRows(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	var live, dead int64
	var size int64
	if err := conn.QueryRow(context.Background(), `
SELECT n_live_tup, n_dead_tup, pg_total_relation_size('daguq_messages') FROM pg_stat_user_tables WHERE relname = 'daguq_messages'`).Scan(&live, &dead, &size); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("messages table %s, %d live and %d dead rows", mb(size), live, dead)
}

// loadAverage says the machine's load over the last minute (Linux), for
// reading a window's throughput against what else ran.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "load unknown"
	}
	return "load " + strings.Fields(string(b))[0]
}
