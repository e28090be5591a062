package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/daguq/daguq/internal/pgtest"
)

// pgSettings are the bench server's settings besides pgtest's (fsync,
// synchronous_commit and full_page_writes off): room for the queues in
// shared buffers, and no checkpoint forced by WAL volume in a drain. The
// same server and settings for every system.
var pgSettings = []string{"shared_buffers=512MB", "max_wal_size=8GB", "checkpoint_timeout=30min"}

// runPostgres measures the PostgreSQL systems on a throwaway server and
// writes their section of -out-postgres. With -backend both it skips,
// saying so, when PostgreSQL is not installed.
func runPostgres(c config, dir string, logf io.Writer) error {
	srv, err := pgtest.StartServer(pgSettings...)
	if errors.Is(err, pgtest.ErrNotInstalled) && c.backend == "both" {
		msg := fmt.Sprintf("PostgreSQL part skipped: %v (no initdb on PATH or in /usr/lib/postgresql/*/bin; apt-get install postgresql)", err)
		fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), msg)
		fmt.Printf("\n%s\n", msg)
		return nil
	}
	if err != nil {
		return fmt.Errorf("PostgreSQL server: %w", err)
	}
	defer srv.Close()
	b := newBench(c, dir, logf, pgSystems, databases{srv: srv})
	b.server = func() time.Duration { return treeCPU(srv.PID()) }
	b.progress("PostgreSQL: throwaway server (pid %d), settings %s", srv.PID(), strings.Join(pgSettings, " "))
	version, err := srv.Version()
	if err != nil {
		return err
	}
	start := time.Now()
	if err := b.measure(); err != nil {
		return err
	}
	b.rep.took = time.Since(start)
	b.rep.load = append(b.rep.load, loadAvg())
	md := b.rep.postgresMarkdown(version)
	fmt.Println(md)
	if c.outPostgres != "" {
		if err := writeSection(c.outPostgres, "bench-postgres", md); err != nil {
			return err
		}
		b.progress("wrote %s", c.outPostgres)
	}
	return nil
}

const (
	pgDaguq = "daguq (PostgreSQL)"
	pgRiver = "River (PostgreSQL)"
	pgRaw   = "raw PostgreSQL"
)

// pgTargets are issue 11's goals for the PostgreSQL backend.
var pgTargets = []target{
	{"daguq claim+ack at batch 100 / raw floor, 4 processes", pgDaguq, "b100 p4", pgRaw, "b100 p4", 0.8},
	{"daguq / River, batch 10, 1 process", pgDaguq, "b10 p1", pgRiver, "b10 p1", 2},
	{"daguq / River, batch 10, 4 processes", pgDaguq, "b10 p4", pgRiver, "b10 p4", 2},
	{"daguq / River, batch 100, 1 process", pgDaguq, "b100 p1", pgRiver, "b100 p1", 2},
	{"daguq / River, batch 100, 4 processes", pgDaguq, "b100 p4", pgRiver, "b100 p4", 2},
	{"daguq 4 processes / 1 process, batch 10", pgDaguq, "b10 p4", pgDaguq, "b10 p1", 1.5},
}

// cpuRatio is t in CPU per message: the denominator system's consumer and
// server CPU over the numerator's, taken inside each run.
func (r *report) cpuRatio(t target) (med, lo, hi float64, ok bool) {
	var xs []float64
	for _, run := range r.runs {
		num := run[t.ns]["cpu "+t.nm] + run[t.ns]["srv "+t.nm]
		den := run[t.ds]["cpu "+t.dm] + run[t.ds]["srv "+t.dm]
		if num > 0 && den > 0 {
			xs = append(xs, den/num)
		}
	}
	if len(xs) == 0 {
		return 0, 0, 0, false
	}
	m := median(xs) // sorts
	return m, xs[0], xs[len(xs)-1], true
}

func (r *report) postgresMarkdown(version string) string {
	var w bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }
	c := r.c
	p("### Measured side by side (bench/)")
	p("")
	p("Measured by `cd bench && go run . %s` (`make bench-peers` runs it with the SQLite part)",
		strings.Join(os.Args[1:], " "))
	p("on %s: %d cores (%s), %s, PostgreSQL %s, pgx %s, River %s with riverpgxv5 %s. The whole run took %s.",
		r.started.UTC().Format("2006-01-02"), runtime.NumCPU(), cpuModel(), runtime.Version(), version,
		moduleVersion("github.com/jackc/pgx/v5"), moduleVersion("github.com/riverqueue/river"),
		moduleVersion("github.com/riverqueue/river/riverdriver/riverpgxv5"), r.took.Round(time.Second))
	r.provenance(p)
	p("")
	p("One throwaway server on the same machine as the consumers (initdb in a temporary directory, as the tests'")
	p("internal/pgtest starts it), for every system: **fsync, synchronous_commit and full_page_writes off**, so")
	p("these are figures of CPU and locking, not of a disk's flushes; %s.", strings.Join(pgSettings, ", "))
	p("Each system gets a database of its own, filled once per run, vacuumed and analyzed, and copied (`CREATE")
	p("DATABASE ... TEMPLATE`) before every drain. The")
	p("same work as on SQLite ([performance.md](performance.md)): %s messages of 1 KiB, each body starting with a",
		commas(int64(c.n)))
	p("unique id; every producer and consumer is its own OS process; the handler only notes the id; leases are 10")
	p("minutes. Each figure is the median of %d runs; each ratio is taken inside one run, and the median of those", c.runs)
	p("(with its range) is shown.")
	p("")
	p("Messages/s. Enqueue: one message per call and 1,000 per call. Drain: claim a batch of b, run the no-op")
	p("handler on each, ack the batch; ×1 and ×4 consumer processes.")
	p("")
	r.rateTable(p)
	p("CPU per message, µs, median of runs: the consumer processes (user+sys), then the server's (the postmaster")
	p("and all its processes, backends and autovacuum included, from /proc). The server shares the 2 cores with")
	p("the consumers, so the two add up to most of what a drain costs.")
	p("")
	r.cpuTable(p, "cpu ")
	r.cpuTable(p, "srv ")
	p("### Targets, as ratios inside one run")
	p("")
	p("| target | ratio: median (range over runs) | goal | met |")
	p("|---|---:|---:|---|")
	for _, t := range pgTargets {
		r.targetRow(p, t)
	}
	r.lossRow(p, pgDaguq)
	p("")
	p("The same targets in CPU time per message (consumers and server added up; the second system's over the")
	p("first's, so that, like a ratio of rates, more is better for the first). On a shared machine other load")
	p("moves wall-clock rates far more than CPU time; with the server and the consumers CPU-bound on 2 cores, a")
	p("drain's rate follows its CPU per message. It cannot show what 4 processes gain by overlapping waits, so")
	p("the last target has no CPU counterpart.")
	p("")
	for _, t := range pgTargets {
		if t.ns == t.ds {
			continue
		}
		if m, lo, hi, ok := r.cpuRatio(t); ok {
			p("- %s: %.2f× (%.2f–%.2f)", t.label, m, lo, hi)
		}
	}
	p("")
	p("More ratios from the same runs (median):")
	p("")
	for _, x := range []target{
		{label: "daguq / raw floor, batch 1, 1 process", ns: pgDaguq, nm: "b1 p1", ds: pgRaw, dm: "b1 p1"},
		{label: "daguq / raw floor, batch 10, 1 process", ns: pgDaguq, nm: "b10 p1", ds: pgRaw, dm: "b10 p1"},
		{label: "daguq / raw floor, batch 100, 1 process", ns: pgDaguq, nm: "b100 p1", ds: pgRaw, dm: "b100 p1"},
		{label: "daguq / raw floor, batch 10, 4 processes", ns: pgDaguq, nm: "b10 p4", ds: pgRaw, dm: "b10 p4"},
		{label: "raw floor 4 processes / 1 process, batch 10 (what 2 cores allow)", ns: pgRaw, nm: "b10 p4", ds: pgRaw, dm: "b10 p1"},
		{label: "River 4 processes / 1 process, batch 10", ns: pgRiver, nm: "b10 p4", ds: pgRiver, dm: "b10 p1"},
		{label: "daguq / River, batch 1, 1 process", ns: pgDaguq, nm: "b1 p1", ds: pgRiver, dm: "b1 p1"},
		{label: "daguq enqueue 1/call / River", ns: pgDaguq, nm: "enq1", ds: pgRiver, dm: "enq1"},
		{label: "daguq enqueue 1,000/call / River", ns: pgDaguq, nm: "enqbulk", ds: pgRiver, dm: "enqbulk"},
		{label: "daguq enqueue 1,000/call / raw floor", ns: pgDaguq, nm: "enqbulk", ds: pgRaw, dm: "enqbulk"},
	} {
		if m, lo, hi, ok := r.ratio(x.ns, x.nm, x.ds, x.dm); ok {
			p("- %s: %.2f× (%.2f–%.2f)", x.label, m, lo, hi)
		}
	}
	p("")
	r.correctness(p)
	p("Size: the database after the fill (`pg_database_size`), per million messages:")
	for _, s := range r.systemNames() {
		if bpm, ok := r.med(s, "bytes/msg"); ok {
			p("%s %.0f MB;", s, bpm)
		}
	}
	p("")
	p("### How each system is driven")
	p("")
	p("- **daguq (PostgreSQL)**: `queuestore/postgres.Store` with its default options (a pgx pool of 4, its own")
	p("  vacuum every 20,000 acks) through the public API: `Enqueue`, `Claim` with `Max` = batch, `Ack` of the")
	p("  lease (docs/postgres.md#how-a-claim-works).")
	p("- **River (PostgreSQL)**: River with riverpgxv5 on a pgx pool, set up as on SQLite: a message is a job whose")
	p("  args carry the body, batch N is `MaxWorkers` = N (each fetch locks up to N jobs), completions are written by")
	p("  River's batching completer and counted from completion events; `FetchCooldown` 1 ms (River's minimum),")
	p("  `FetchPollInterval` 20 ms, LISTEN/NOTIFY on; `Insert` and `InsertMany` (one statement for all rows).")
	p("- **raw PostgreSQL**, the floor: daguq's physical layout (a small row per message with a state, a partial")
	p("  index over the ready ones, bodies in their own table) and statement shapes (claim = the ready rows picked in")
	p("  a `MATERIALIZED` CTE with `FOR UPDATE SKIP LOCKED`, then updated, bodies returned; ack = one `DELETE` of")
	p("  messages and bodies by an id array), each statement its own transaction, with no queue logic: no queue")
	p("  name, priority, attempts, lease row, settings, advisory lock, kept counts or chores.")
	p("")
	r.errorsSection(p)
	return strings.TrimRight(w.String(), "\n")
}
