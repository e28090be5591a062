package queuestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/daguq/daguq/internal/malloctune"
)

// Benchmarks: the store next to a naive single-table queue, measured in
// the same run (make bench). Every b.N counts messages, and each benchmark
// reports msgs/s. docs/performance.md has the figures.
//
// Two switches measure what a tuning gives, in this process and in the
// consumer processes: DAGUQ_BENCH_MALLOC=default leaves glibc's malloc
// settings alone (no malloctune), and DAGUQ_BENCH_BUSY=sqlite makes the
// store wait for the write lock in SQLite's busy handler, as the naive
// baseline does, instead of retrying in Go.

const benchQueue = "bench"

var benchBody = []byte(strings.Repeat("0123456789abcdef", 64)) // 1 KiB

var benchSetupOnce sync.Once

// benchSetup applies the two switches above; the consumer processes inherit
// the environment and call it too.
func benchSetup() {
	benchSetupOnce.Do(func() {
		if os.Getenv("DAGUQ_BENCH_BUSY") == "sqlite" {
			lockWaitInSQLite = true
		}
		if os.Getenv("DAGUQ_BENCH_MALLOC") != "default" {
			malloctune.Apply()
		}
	})
}

// The naive baseline: one table, the body inline, so the claim rewrites the
// whole row. Same driver, WAL, synchronous=NORMAL,
// immediate transactions and one connection as the store; SQLite's own busy
// handler waits for the write lock.
const naiveSchema = `
CREATE TABLE IF NOT EXISTS naive_messages (
    id           INTEGER PRIMARY KEY,
    queue        TEXT    NOT NULL,
    priority     INTEGER NOT NULL,
    available_at INTEGER NOT NULL,
    lease_until  INTEGER,
    attempts     INTEGER NOT NULL DEFAULT 0,
    created_at   INTEGER NOT NULL,
    body         BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS naive_claim ON naive_messages (queue, priority DESC, available_at, id);`

const (
	naiveClaim = `
UPDATE naive_messages SET available_at = ?1, lease_until = ?1, attempts = attempts + 1
WHERE id IN (
    SELECT id FROM naive_messages
    WHERE queue = ?2 AND available_at <= ?3
    ORDER BY priority DESC, available_at, id
    LIMIT ?4)
RETURNING id, attempts, body`
	naiveAck = `DELETE FROM naive_messages WHERE id IN (SELECT value FROM json_each(?1))`
)

type naiveQueue struct {
	db      *sql.DB
	inserts map[int]*sql.Stmt // multi-row INSERT by row count
}

func openNaive(path string) (*naiveQueue, error) {
	params := url.Values{}
	params.Set("_journal_mode", "WAL")
	params.Set("_busy_timeout", "30000")
	params.Set("_txlock", "immediate")
	params.Set("_synchronous", "NORMAL")
	db, err := sql.Open("sqlite3", "file:"+path+"?"+params.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(naiveSchema); err != nil {
		db.Close()
		return nil, err
	}
	return &naiveQueue{db: db, inserts: map[int]*sql.Stmt{}}, nil
}

func (q *naiveQueue) Close() error { return q.db.Close() }

// enqueue inserts n messages with one multi-row INSERT in one transaction.
func (q *naiveQueue) enqueue(ctx context.Context, n int, body []byte, priority func() int64) error {
	stmt := q.inserts[n]
	if stmt == nil {
		var sb strings.Builder
		sb.WriteString("INSERT INTO naive_messages (queue, priority, available_at, created_at, body) VALUES ")
		for i := range n {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString("(?, ?, ?, ?, ?)")
		}
		var err error
		if stmt, err = q.db.PrepareContext(ctx, sb.String()); err != nil {
			return err
		}
		q.inserts[n] = stmt
	}
	now := time.Now().UnixMilli()
	args := make([]any, 0, 5*n)
	for range n {
		args = append(args, benchQueue, priority(), now, now, body)
	}
	tx, err := q.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if _, err := tx.StmtContext(ctx, stmt).ExecContext(ctx, args...); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// claimAck claims up to n messages and deletes them: two transactions, as
// a consumer that handles the batch in between would run them.
func (q *naiveQueue) claimAck(ctx context.Context, n int, lease time.Duration) (int, error) {
	tx, err := q.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	now := time.Now().UnixMilli()
	rows, err := tx.QueryContext(ctx, naiveClaim, now+lease.Milliseconds(), benchQueue, now, n)
	if err != nil {
		tx.Rollback()
		return 0, err
	}
	var ids []int64
	for rows.Next() {
		var id, attempts int64
		var body []byte
		if err := rows.Scan(&id, &attempts, &body); err != nil {
			rows.Close()
			tx.Rollback()
			return 0, err
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		tx.Rollback()
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, nil
	}
	list, _ := json.Marshal(ids)
	tx, err = q.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, naiveAck, string(list)); err != nil {
		tx.Rollback()
		return 0, err
	}
	return len(ids), tx.Commit()
}

// threePriorities spreads messages over three priorities, as a queue with
// mixed traffic has them.
func threePriorities() int64 { return rand.Int64N(3) }

func BenchmarkEnqueue(b *testing.B) {
	benchSetup()
	for _, batch := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("store/batch=%d", batch), func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			msgs := make([]NewMessage, batch)
			b.ResetTimer()
			cpu := processCPU()
			for sent := 0; sent < b.N; sent += batch {
				n := min(batch, b.N-sent)
				for i := range n {
					msgs[i] = NewMessage{Queue: benchQueue, Body: benchBody, Priority: threePriorities()}
				}
				if _, err := s.Enqueue(ctx, msgs[:n]...); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			reportRate(b, processCPU()-cpu)
		})
		b.Run(fmt.Sprintf("naive/batch=%d", batch), func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			q, err := openNaive(filepath.Join(b.TempDir(), "naive.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer q.Close()
			b.ResetTimer()
			cpu := processCPU()
			for sent := 0; sent < b.N; sent += batch {
				if err := q.enqueue(ctx, min(batch, b.N-sent), benchBody, threePriorities); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			reportRate(b, processCPU()-cpu)
		})
	}
}

func BenchmarkClaimAck(b *testing.B) {
	benchSetup()
	for _, procs := range []int{1, 4} {
		for _, batch := range []int{1, 10, 100} {
			for _, schema := range []string{"store", "store-ackclaim", "naive"} {
				name := fmt.Sprintf("%s/procs=%d/batch=%d", schema, procs, batch)
				b.Run(name, func(b *testing.B) {
					benchClaimAck(b, schema, procs, batch)
				})
			}
		}
	}
}

// benchClaimAck fills a fresh database with b.N messages, then times procs
// consumer processes draining it with claim+ack batches.
func benchClaimAck(b *testing.B, schema string, procs, batch int) {
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "bench.db")
	switch schema {
	case "store", "store-ackclaim":
		s, err := Open(path, Options{})
		if err != nil {
			b.Fatal(err)
		}
		msgs := make([]NewMessage, 0, 1000)
		for sent := 0; sent < b.N; sent += len(msgs) {
			msgs = msgs[:0]
			for range min(1000, b.N-sent) {
				msgs = append(msgs, NewMessage{Queue: benchQueue, Body: benchBody, Priority: threePriorities()})
			}
			if _, err := s.Enqueue(ctx, msgs...); err != nil {
				b.Fatal(err)
			}
		}
		s.Close()
	case "naive":
		q, err := openNaive(path)
		if err != nil {
			b.Fatal(err)
		}
		for sent := 0; sent < b.N; sent += 1000 {
			if err := q.enqueue(ctx, min(1000, b.N-sent), benchBody, threePriorities); err != nil {
				b.Fatal(err)
			}
		}
		q.Close()
	}
	consumers := make([]*proc, procs)
	for i := range consumers {
		consumers[i] = startProc(b, "bench-consume", procArgs{DB: path, Queue: benchQueue,
			Name: fmt.Sprintf("c%d", i), Batch: batch, Lease: time.Minute, Schema: schema})
	}
	for _, c := range consumers {
		if line := c.readLine(b); line != "ready" {
			b.Fatalf("%s: want ready, got %q", c.name, line)
		}
	}
	b.ResetTimer()
	for _, c := range consumers {
		if _, err := c.stdin.Write([]byte("go\n")); err != nil {
			b.Fatal(err)
		}
	}
	total := 0
	var slowest, written int64
	counted := true
	for _, c := range consumers {
		line := c.readLine(b)
		var n int
		var us, bytes int64
		if _, err := fmt.Sscanf(line, "done %d %d %d", &n, &us, &bytes); err != nil {
			b.Fatalf("%s: want done N µs bytes, got %q: %v", c.name, line, err)
		}
		total += n
		slowest = max(slowest, us)
		written += bytes
		counted = counted && bytes >= 0
	}
	b.StopTimer()
	var cpu time.Duration
	for _, c := range consumers {
		c.wait(b)
		cpu += c.cmd.ProcessState.UserTime() + c.cmd.ProcessState.SystemTime()
	}
	if total != b.N {
		b.Fatalf("consumers took %d messages, want %d", total, b.N)
	}
	reportRate(b, cpu)
	// The longest single claim+ack of any consumer: how long an unlucky
	// process waited for the write lock.
	b.ReportMetric(float64(slowest)/1000, "max-ms")
	// Bytes written to the WAL and, by checkpoints, to the database file:
	// a count that other load on the machine cannot move.
	if counted {
		b.ReportMetric(float64(written)/1024/float64(b.N), "written-KiB/msg")
	}
}

// reportRate reports messages per second of wall time, and the CPU time
// (user and system, of every process that did the work) per message: the
// machines are shared, and CPU time moves less than wall time when a
// neighbour is busy.
func reportRate(b *testing.B, cpu time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/msg")
}

// bytesWritten is how many bytes this process has passed to write calls
// (wchar in /proc/self/io), or -1 where that is not available.
func bytesWritten() int64 {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}

// processCPU is the CPU time this process has used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func init() {
	procRoles["bench-consume"] = benchConsume
}

// benchConsume opens the database, says "ready", waits for "go" on stdin,
// then claims and acks until the queue is empty and says "done N µs bytes":
// how many messages it took, its longest claim+ack in microseconds and how
// many bytes it wrote to files meanwhile.
func benchConsume(args procArgs) error {
	benchSetup()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var claimAck func() (int, error)
	switch args.Schema {
	case "store":
		s, err := Open(args.DB, Options{})
		if err != nil {
			return err
		}
		defer s.Close()
		claimAck = func() (int, error) {
			lease, err := s.Claim(ctx, ClaimOptions{Queue: args.Queue, Max: args.Batch, Lease: args.Lease, Consumer: args.Name})
			if err != nil || lease == nil {
				return 0, err
			}
			return len(lease.Messages), s.Ack(ctx, lease)
		}
	case "store-ackclaim":
		// Each batch is acked by the transaction that claims the next.
		s, err := Open(args.DB, Options{})
		if err != nil {
			return err
		}
		defer s.Close()
		var done *Lease
		claimAck = func() (int, error) {
			opts := ClaimOptions{Queue: args.Queue, Max: args.Batch, Lease: args.Lease, Consumer: args.Name}
			var err error
			if done == nil {
				done, err = s.Claim(ctx, opts)
			} else {
				done, err = s.AckClaim(ctx, done, nil, opts)
			}
			if err != nil || done == nil {
				return 0, err
			}
			return len(done.Messages), nil
		}
	case "naive":
		q, err := openNaive(args.DB)
		if err != nil {
			return err
		}
		defer q.Close()
		claimAck = func() (int, error) { return q.claimAck(ctx, args.Batch, args.Lease) }
	default:
		return fmt.Errorf("schema %q: want store, store-ackclaim or naive", args.Schema)
	}
	procOutput("ready")
	var line [16]byte
	if _, err := os.Stdin.Read(line[:]); err != nil {
		return fmt.Errorf("wait for go: %w", err)
	}
	writtenBefore := bytesWritten()
	total := 0
	var slowest time.Duration
	for {
		start := time.Now()
		n, err := claimAck()
		if err != nil {
			return err
		}
		slowest = max(slowest, time.Since(start))
		if n == 0 {
			break
		}
		total += n
	}
	written := int64(-1)
	if writtenBefore >= 0 {
		written = bytesWritten() - writtenBefore
	}
	procOutput("done", total, slowest.Microseconds(), written)
	return nil
}

// BenchmarkClaimBehindDelayed times single claims (with their acks) of ready
// messages in a queue that also holds delayed messages of every priority
// (delayed=N), next to the same queue without them (delayed=0), and reports
// the claim's p50 and p99. Delayed messages wait outside the ready set, so
// the two should match. DAGUQ_BENCH_DELAYED sets N (default 1,000,000).
func BenchmarkClaimBehindDelayed(b *testing.B) {
	delayed := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("DAGUQ_BENCH_DELAYED")); err == nil {
		delayed = v
	}
	for _, n := range []int{0, delayed} {
		b.Run(fmt.Sprintf("delayed=%d", n), func(b *testing.B) {
			ctx := context.Background()
			s, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			later := time.Now().Add(24 * time.Hour)
			msgs := make([]NewMessage, 0, 1000)
			for sent := 0; sent < n; sent += len(msgs) {
				msgs = msgs[:0]
				for i := range min(1000, n-sent) {
					msgs = append(msgs, NewMessage{Queue: benchQueue, Body: benchBody, Priority: int64(i % 10), NotBefore: later})
				}
				if _, err := s.Enqueue(ctx, msgs...); err != nil {
					b.Fatal(err)
				}
			}
			ready := make([]NewMessage, 0, b.N)
			for range b.N {
				ready = append(ready, NewMessage{Queue: benchQueue, Body: benchBody})
			}
			for start := 0; start < len(ready); start += 1000 {
				if _, err := s.Enqueue(ctx, ready[start:min(start+1000, len(ready))]...); err != nil {
					b.Fatal(err)
				}
			}
			took := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				l, err := s.Claim(ctx, ClaimOptions{Queue: benchQueue, Max: 1, Lease: time.Minute})
				took = append(took, time.Since(t0))
				if err != nil || l == nil {
					b.Fatal("claim", l, err)
				}
				if err := s.Ack(ctx, l); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// BenchmarkStatsAtDepth times Stats and Metrics on a queue of
// DAGUQ_BENCH_DEPTH messages (default 10,000,000; small bodies, a tenth of
// them delayed, some in flight): they read the kept counts, so they should
// answer in well under 100 ms at any depth.
func BenchmarkStatsAtDepth(b *testing.B) {
	depth := 10_000_000
	if v, err := strconv.Atoi(os.Getenv("DAGUQ_BENCH_DEPTH")); err == nil {
		depth = v
	}
	ctx := context.Background()
	s, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	later := time.Now().Add(time.Hour)
	msgs := make([]NewMessage, 0, 10_000)
	for sent := 0; sent < depth; sent += len(msgs) {
		msgs = msgs[:0]
		for i := range min(10_000, depth-sent) {
			m := NewMessage{Queue: benchQueue, Body: []byte("{}"), Priority: int64(i % 3)}
			if i%10 == 0 {
				m.NotBefore = later
			}
			msgs = append(msgs, m)
		}
		if _, err := s.Enqueue(ctx, msgs...); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := s.Claim(ctx, ClaimOptions{Queue: benchQueue, Max: 1000, Lease: time.Hour}); err != nil {
		b.Fatal(err)
	}
	var statsTook, metricsTook time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		st, err := s.Stats(ctx, benchQueue)
		statsTook = max(statsTook, time.Since(t0))
		if err != nil || st.Ready+st.Delayed+st.InFlight != int64(depth) {
			b.Fatalf("stats %+v, %v; want %d messages", st, err, depth)
		}
		t0 = time.Now()
		if _, err := s.Metrics(ctx); err != nil {
			b.Fatal(err)
		}
		metricsTook = max(metricsTook, time.Since(t0))
	}
	b.ReportMetric(float64(statsTook.Microseconds())/1000, "max-stats-ms")
	b.ReportMetric(float64(metricsTook.Microseconds())/1000, "max-metrics-ms")
}
