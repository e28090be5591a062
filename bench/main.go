// Command bench measures daguq side by side with goqite, River's SQLite
// driver, a raw SQLite floor and the shell-glue file queue, in one run on
// one machine, and writes the results into docs/performance.md between the
// bench-peers markers, with an SVG chart next to it. On PostgreSQL it
// measures daguq's PostgreSQL store next to River's pgx driver and a raw
// SKIP LOCKED floor, on a throwaway server, into -out-postgres (pg.go).
//
//	cd bench && go run . -out ../docs/performance.md -out-postgres ../docs/postgres.md   (make bench-peers)
//	cd bench && go run . -quick                        (smoke run, prints only)
//
// Every consumer and producer is its own OS process: the binary re-executes
// itself as a worker (`bench worker SPEC`).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

type config struct {
	n, runs, shellN, correctN int
	bulk                      int
	drainCap, enqueueCap      time.Duration
	batches, procs            []int
	scaleDepths               []int
	scaleClaims               int
	skipScale, skipCLI        bool
	cliOnly                   bool
	cliBatches, cliConc       []int
	daguqBin                  string
	out, svg, dir             string
	only                      string
	backend                   string
	outPostgres               string
}

func main() {
	if len(os.Args) > 2 && os.Args[1] == "worker" {
		os.Exit(runWorker(os.Args[2]))
	}
	// The parent only orchestrates; keep it from competing with the workers.
	runtime.GOMAXPROCS(1)
	var c config
	quick := flag.Bool("quick", false, "smoke run: 5,000 messages, 1 run, 10k depth only")
	flag.IntVar(&c.n, "n", 100_000, "messages per throughput measurement")
	flag.IntVar(&c.runs, "runs", 3, "runs; each figure is the median, each ratio is taken inside a run")
	flag.IntVar(&c.shellN, "shell-n", 2_000, "messages for the shell-glue queue (it is slow)")
	flag.IntVar(&c.correctN, "correct-n", 20_000, "messages for the lost/doubled test with a concurrent producer")
	flag.DurationVar(&c.drainCap, "drain-cap", 8*time.Second, "stop a drain after this long and report its rate so far")
	flag.DurationVar(&c.enqueueCap, "enqueue-cap", 6*time.Second, "stop a single-message enqueue after this long")
	scaleMax := flag.Bool("scale-max", false, "add the 10,000,000-message depth (filling takes minutes and ~15 GB)")
	flag.BoolVar(&c.skipScale, "skip-scale", false, "skip the queue-depth measurements")
	flag.BoolVar(&c.skipCLI, "skip-cli", false, "skip the end-to-end `daguq consume` measurement")
	flag.BoolVar(&c.cliOnly, "cli-only", false, "run only the end-to-end `daguq consume` measurement (with its raw floor)")
	cliBatches := flag.String("cli-batches", "100,10", "batch sizes of the end-to-end `daguq consume` measurement")
	cliConc := flag.String("cli-concurrency", "1,2,4", "`daguq consume --concurrency` values to measure")
	flag.StringVar(&c.daguqBin, "daguq", "", "daguq binary for the CLI measurement (default: build ../cmd/daguq)")
	flag.StringVar(&c.out, "out", "", "Markdown file to update between the bench-peers markers (default: print only)")
	flag.StringVar(&c.svg, "svg", "", "SVG chart path (default: bench-peers.svg next to -out)")
	flag.StringVar(&c.dir, "dir", "", "scratch directory (default: a new temporary one, removed after)")
	flag.StringVar(&c.only, "only", "", "comma-separated systems to run (daguq, goqite, river, raw, shell; on both backends)")
	flag.StringVar(&c.backend, "backend", "both", "sqlite, postgres or both (both skips PostgreSQL, saying so, when it is not installed)")
	flag.StringVar(&c.outPostgres, "out-postgres", "", "Markdown file to update between the bench-postgres markers (default: print only)")
	flag.Parse()
	switch c.backend {
	case "sqlite", "postgres", "both":
	default:
		log.Fatalf("-backend must be sqlite, postgres or both, got %q", c.backend)
	}
	var err error
	if c.cliBatches, err = intList(*cliBatches); err != nil {
		log.Fatalf("-cli-batches: %v", err)
	}
	if c.cliConc, err = intList(*cliConc); err != nil {
		log.Fatalf("-cli-concurrency: %v", err)
	}
	c.bulk = 1000
	c.batches, c.procs = []int{1, 10, 100}, []int{1, 4}
	c.scaleDepths, c.scaleClaims = []int{10_000, 1_000_000}, 2000
	if *scaleMax {
		c.scaleDepths = append(c.scaleDepths, 10_000_000)
	}
	if *quick {
		c.n, c.runs, c.shellN, c.correctN = 5_000, 1, 200, 2_000
		c.drainCap, c.enqueueCap = 3*time.Second, 3*time.Second
		c.scaleDepths, c.scaleClaims = []int{10_000}, 500
	}
	if c.cliOnly && c.out != "" {
		log.Fatal("-cli-only prints its part only: -out rewrites the whole bench-peers block, run it without -cli-only")
	}
	if c.out != "" && c.svg == "" {
		c.svg = filepath.Join(filepath.Dir(c.out), "bench-peers.svg")
	}
	if err := run(c); err != nil {
		log.Fatal(err)
	}
}

func run(c config) error {
	dir := c.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "daguq-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(dir, "workers.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	if c.backend != "postgres" {
		if err := runSQLite(c, dir, logf); err != nil {
			return err
		}
	}
	if c.backend != "sqlite" && !c.cliOnly {
		return runPostgres(c, dir, logf)
	}
	return nil
}

// newBench is a bench of the wanted systems among all, keeping its
// databases in store.
func newBench(c config, dir string, log io.Writer, all []system, store storage) *bench {
	b := &bench{c: c, dir: dir, log: log, store: store}
	for _, s := range all {
		if b.wanted(s.name()) {
			b.systems = append(b.systems, s)
		}
	}
	b.rep = newReport(c, b.systems)
	b.rep.started = time.Now()
	b.rep.load = append(b.rep.load, loadAvg())
	b.rep.revision = daguqRevision()
	return b
}

// measure runs what every backend measures: the throughput runs and the
// lost/doubled count with a concurrent producer.
func (b *bench) measure() error {
	for r := range b.c.runs {
		if err := b.throughputRun(r); err != nil {
			return err
		}
	}
	return b.correctness()
}

// runSQLite measures the SQLite systems and the shell glue (unless
// -cli-only) and `daguq consume` end to end, and writes their section of
// -out.
func runSQLite(c config, dir string, logf io.Writer) error {
	b := newBench(c, dir, logf, systems, files{dir: dir})
	b.shell = b.wanted("shell")
	start := time.Now()
	if !c.cliOnly {
		if err := b.peers(); err != nil {
			return err
		}
	}
	if !c.skipCLI && b.wanted("daguq") {
		if err := b.cli(); err != nil {
			b.rep.cliNote = err.Error()
			b.progress("CLI measurement skipped: %v", err)
		}
	}
	b.rep.took = time.Since(start)
	b.rep.load = append(b.rep.load, loadAvg())
	md := b.rep.markdown()
	fmt.Println(md)
	if c.out != "" {
		if err := writeSection(c.out, "bench-peers", md); err != nil {
			return err
		}
		if err := os.WriteFile(c.svg, []byte(b.rep.svg()), 0o644); err != nil {
			return err
		}
		b.progress("wrote %s and %s", c.out, c.svg)
	}
	return nil
}

// peers runs every SQLite measurement but the CLI's.
func (b *bench) peers() error {
	if err := b.measure(); err != nil {
		return err
	}
	if err := b.pages(); err != nil {
		return err
	}
	if !b.c.skipScale {
		return b.scale()
	}
	return nil
}

// intList parses a comma-separated list of positive integers.
func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v < 1 {
			return nil, fmt.Errorf("want positive integers separated by commas, got %q", s)
		}
		out = append(out, v)
	}
	return out, nil
}

type bench struct {
	c       config
	dir     string
	log     io.Writer
	rep     *report
	systems []system
	store   storage
	shell   bool // run the shell-glue queue too
	// server is the database server's CPU time so far (PostgreSQL); nil
	// when the systems run in the workers' processes alone.
	server func() time.Duration
}

func (b *bench) serverCPU() time.Duration {
	if b.server == nil {
		return 0
	}
	return b.server()
}

func (b *bench) wanted(name string) bool {
	if b.c.only == "" {
		return true
	}
	key := strings.ToLower(strings.Fields(name)[0])
	for _, w := range strings.Split(b.c.only, ",") {
		if strings.TrimSpace(strings.ToLower(w)) == key {
			return true
		}
	}
	return false
}

func (b *bench) progress(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintf(os.Stderr, "%s %s\n", time.Now().Format("15:04:05"), msg)
	fmt.Fprintln(b.log, "==", msg)
}

// rotated gives the systems in a different order each run, so no system
// always runs first on a cold cache or last on a hot machine.
func (b *bench) rotated(run int) []system {
	n := len(b.systems)
	out := make([]system, n)
	for i := range n {
		out[i] = b.systems[(i+run)%n]
	}
	return out
}

func (b *bench) path(name string) string { return filepath.Join(b.dir, name) }

func removeDB(path string) {
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		os.Remove(p)
	}
}

func copyFile(dst, src string) error {
	removeDB(dst)
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func metricConsume(batch, procs int) string { return fmt.Sprintf("b%d p%d", batch, procs) }

// throughputRun is one run: every system enqueues single and bulk, then
// drains at every batch size and process count.
func (b *bench) throughputRun(run int) error {
	ctx := context.Background()
	n := b.c.n
	order := b.rotated(run)
	b.progress("run %d/%d: %d messages, systems %s", run+1, b.c.runs, n, names(order))
	templates := map[string]string{}
	for _, s := range order {
		db, err := b.store.fresh("single")
		if err != nil {
			return err
		}
		if err := s.create(ctx, db); err != nil {
			return fmt.Errorf("%s: create: %w", s.name(), err)
		}
		rs, err := runWorkers([]workerSpec{{Role: "produce", System: s.name(), DB: db, Batch: 1, N: n,
			CapMs: b.c.enqueueCap.Milliseconds()}}, stopAt(0, 0), b.log)
		if err != nil {
			return err
		}
		b.rep.add(run, s.name(), "enq1", rate(rs))
		b.rep.add(run, s.name(), "cpu enq1", float64(rs[0].CPUNs)/1e3/float64(max(rs[0].Acked, 1)))
		b.noteErrors(s.name(), "enqueue single", rs)
		if err := b.store.remove("single"); err != nil {
			return err
		}

		tmpl := fmt.Sprintf("template-%d", len(templates))
		rs, size, err := b.fill(s, tmpl, n)
		if err != nil {
			return err
		}
		b.rep.add(run, s.name(), "enqbulk", rate(rs))
		b.rep.add(run, s.name(), "cpu enqbulk", float64(rs[0].CPUNs)/1e3/float64(n))
		b.rep.add(run, s.name(), "bytes/msg", float64(size)/float64(n))
		templates[s.name()] = tmpl
		b.progress("  %-15s enqueue single %8.0f/s  bulk %8.0f/s", s.name(), b.rep.get(run, s.name(), "enq1"), b.rep.get(run, s.name(), "enqbulk"))
	}
	for _, batch := range b.c.batches {
		for _, procs := range b.c.procs {
			for _, s := range order {
				if err := b.drain(run, s, templates[s.name()], batch, procs); err != nil {
					return err
				}
			}
		}
	}
	// A batch-1 handler fed from claims of 10, each message acked alone.
	for _, s := range order {
		if isJobQueue(s) {
			continue
		}
		if err := b.drainWith(run, s, templates[s.name()], 10, 1, true); err != nil {
			return err
		}
	}
	for _, t := range templates {
		if err := b.store.remove(t); err != nil {
			return err
		}
	}
	if b.shell {
		if err := b.shellRun(run); err != nil {
			return err
		}
	}
	return nil
}

// fill makes a fresh database of s named name holding n messages, enqueued
// b.c.bulk per call, and settles it. size is what the messages added to
// the empty database.
func (b *bench) fill(s system, name string, n int) (rs []workerResult, size int64, err error) {
	db, err := b.store.fresh(name)
	if err != nil {
		return nil, 0, err
	}
	if err := s.create(context.Background(), db); err != nil {
		return nil, 0, err
	}
	empty, err := b.store.settle(name)
	if err != nil {
		return nil, 0, err
	}
	rs, err = runWorkers([]workerSpec{{Role: "produce", System: s.name(), DB: db, Batch: b.c.bulk, N: n}}, stopAt(0, 0), b.log)
	if err != nil {
		return nil, 0, err
	}
	if rs[0].Acked != n {
		return nil, 0, fmt.Errorf("%s: bulk enqueue stored %d of %d: %s", s.name(), rs[0].Acked, n, rs[0].FirstErr)
	}
	full, err := b.store.settle(name)
	return rs, full - empty, err
}

func names(ss []system) string {
	var out []string
	for _, s := range ss {
		out = append(out, s.name())
	}
	return strings.Join(out, ", ")
}

func rate(rs []workerResult) float64 {
	var n int
	for _, r := range rs {
		n += r.Acked
	}
	d := span(rs)
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func (b *bench) noteErrors(sys, what string, rs []workerResult) {
	for _, r := range rs {
		if r.Errors > 0 {
			b.rep.errors = append(b.rep.errors, fmt.Sprintf("%s, %s: %d errors, first: %s", sys, what, r.Errors, r.FirstErr))
			b.progress("  %s %s: %d errors, first: %s", sys, what, r.Errors, r.FirstErr)
		}
	}
}

// drain copies the system's filled template and drains it with procs
// consumer processes at batch size batch.
func (b *bench) drain(run int, s system, tmpl string, batch, procs int) error {
	return b.drainWith(run, s, tmpl, batch, procs, false)
}

// metricAhead names the drain of a batch-1 handler fed from claims of ahead.
func metricAhead(ahead int) string { return fmt.Sprintf("b1 ahead%d p1", ahead) }

func (b *bench) drainWith(run int, s system, tmpl string, batch, procs int, ackEach bool) error {
	ctx := context.Background()
	n := b.c.n
	if err := b.store.clone("drain", tmpl); err != nil {
		return err
	}
	db := b.store.locate("drain")
	var specs []workerSpec
	for i := range procs {
		specs = append(specs, workerSpec{Role: "consume", System: s.name(), DB: db, Batch: batch,
			UntilStop: isJobQueue(s), AckEach: ackEach, IDsFile: b.path(fmt.Sprintf("ids.%d", i))})
	}
	srv0 := b.serverCPU()
	rs, err := runWorkers(specs, stopAt(int64(n), b.c.drainCap), b.log)
	if err != nil {
		return fmt.Errorf("%s drain: %w", s.name(), err)
	}
	m := metricConsume(batch, procs)
	if ackEach {
		m = metricAhead(batch)
	}
	b.noteErrors(s.name(), "drain "+m, rs)
	t := newTally(n)
	var rss, cpu int64
	acked := 0
	for i, r := range rs {
		cpu += r.CPUNs
		if err := t.addFile(specs[i].IDsFile); err != nil {
			return err
		}
		os.Remove(specs[i].IDsFile)
		rss = max(rss, r.MaxRSSKB)
		acked += r.Acked
	}
	q, err := s.open(ctx, db)
	if err != nil {
		return err
	}
	left, err := q.remaining(ctx)
	q.close()
	if err != nil {
		return err
	}
	unique, doubled := t.summary()
	lost := max(n-unique-int(left), 0)
	b.rep.add(run, s.name(), m, rate(rs))
	b.rep.add(run, s.name(), "rss "+m, float64(rss))
	if acked > 0 {
		b.rep.add(run, s.name(), "cpu "+m, float64(cpu)/1e3/float64(acked)) // µs per message
		if srv := b.serverCPU() - srv0; srv > 0 {
			b.rep.add(run, s.name(), "srv "+m, float64(srv.Nanoseconds())/1e3/float64(acked))
		}
	}
	b.rep.addCheck(s.name(), m, check{delivered: unique + doubled, unique: unique, doubled: doubled, lost: lost,
		remaining: int(left), capped: acked < n})
	if batch == 100 && procs == 1 {
		if size, err := b.store.settle("drain"); err == nil {
			b.rep.add(run, s.name(), "drained bytes", float64(size))
		}
	}
	b.progress("  %-15s %-8s %8.0f/s  acked %d  lost %d doubled %d  rss %d MB", s.name(), m, rate(rs), acked, lost, doubled, rss/1024)
	return b.store.remove("drain")
}

func (b *bench) shellRun(run int) error {
	dir := b.path("shell")
	reset := func() error {
		os.RemoveAll(dir)
		return os.MkdirAll(dir, 0o700)
	}
	n := b.c.shellN
	if err := reset(); err != nil {
		return err
	}
	single, err := shellProduce(dir, n, false)
	if err != nil {
		return err
	}
	if err := reset(); err != nil {
		return err
	}
	bulk, err := shellProduce(dir, n, true)
	if err != nil {
		return err
	}
	b.rep.add(run, shellName, "enq1", single)
	b.rep.add(run, shellName, "enqbulk", bulk)
	b.progress("  %-15s enqueue single %8.0f/s  bulk %8.0f/s  (%d messages)", shellName, single, bulk, n)
	full, err := os.ReadFile(filepath.Join(dir, "q"))
	if err != nil {
		return err
	}
	for _, batch := range b.c.batches {
		for _, procs := range b.c.procs {
			if err := reset(); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, "q"), full, 0o600); err != nil {
				return err
			}
			r, err := shellDrain(dir, n, procs, batch, false, b.c.drainCap, b.log)
			if err != nil {
				return err
			}
			m := metricConsume(batch, procs)
			b.rep.add(run, shellName, m, r.rate)
			b.rep.addCheck(shellName, m, check{delivered: r.delivered, unique: r.unique, doubled: r.doubled,
				lost: r.lost, remaining: r.remaining, corrupt: r.corrupt, capped: r.timedOut})
			b.progress("  %-15s %-8s %8.0f/s  delivered %d  lost %d doubled %d corrupt %d", shellName, m, r.rate, r.delivered, r.lost, r.doubled, r.corrupt)
		}
	}
	return os.RemoveAll(dir)
}

// correctness runs one producer (one message per enqueue) and four
// consumers at the same time, and counts lost and doubled messages.
func (b *bench) correctness() error {
	ctx := context.Background()
	n := b.c.correctN
	b.progress("correctness: 1 producer + 4 consumers at once, %d messages", n)
	for _, s := range b.systems {
		db, err := b.store.fresh("correct")
		if err != nil {
			return err
		}
		if err := s.create(ctx, db); err != nil {
			return err
		}
		specs := []workerSpec{{Role: "produce", System: s.name(), DB: db, Batch: 1, N: n}}
		for i := range 4 {
			specs = append(specs, workerSpec{Role: "consume", System: s.name(), DB: db, Batch: 10,
				UntilStop: true, IDsFile: b.path(fmt.Sprintf("ids.%d", i))})
		}
		consumers := []int{1, 2, 3, 4}
		all := stopAt(int64(n), 0, consumers...)
		rule := func(v progressView) bool {
			// Done when every message was acked, or the producer finished
			// and nothing moved for 5 s (a loss), or after 5 minutes.
			return all(v) || (v.exited[0] && v.quiet > 5*time.Second) || v.elapsed > 5*time.Minute
		}
		rs, err := runWorkers(specs, rule, b.log)
		if err != nil {
			return err
		}
		b.noteErrors(s.name(), "correctness", rs)
		t := newTally(n)
		for i := 1; i < len(specs); i++ {
			if err := t.addFile(specs[i].IDsFile); err != nil {
				return err
			}
			os.Remove(specs[i].IDsFile)
		}
		q, err := s.open(ctx, db)
		if err != nil {
			return err
		}
		left, err := q.remaining(ctx)
		q.close()
		if err != nil {
			return err
		}
		unique, doubled := t.summary()
		c := check{delivered: unique + doubled, unique: unique, doubled: doubled,
			lost: max(rs[0].Acked-unique-int(left), 0), remaining: int(left), produced: rs[0].Acked}
		b.rep.correct[s.name()] = c
		b.progress("  %-15s produced %d delivered %d lost %d doubled %d left %d", s.name(), c.produced, c.delivered, c.lost, c.doubled, c.remaining)
		if err := b.store.remove("correct"); err != nil {
			return err
		}
	}
	if b.shell {
		dir := b.path("shell")
		os.RemoveAll(dir)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		r, err := shellDrain(dir, b.c.shellN, 4, 1, true, 3*time.Minute, b.log)
		if err != nil {
			return err
		}
		c := check{delivered: r.delivered, unique: r.unique, doubled: r.doubled, lost: r.lost,
			remaining: r.remaining, corrupt: r.corrupt, produced: b.c.shellN, capped: r.timedOut}
		b.rep.correct[shellName] = c
		b.progress("  %-15s produced %d delivered %d lost %d doubled %d corrupt %d", shellName, c.produced, c.delivered, c.lost, c.doubled, c.corrupt)
		os.RemoveAll(dir)
	}
	return nil
}

// pages counts the WAL pages each claim+ack writes, per message, for the
// systems with an explicit claim (River's completions are asynchronous).
func (b *bench) pages() error {
	ctx := context.Background()
	const n = 2000
	for _, s := range b.systems {
		if isJobQueue(s) {
			continue
		}
		db := b.path("pages.db")
		removeDB(db)
		if err := s.create(ctx, db); err != nil {
			return err
		}
		rs, err := runWorkers([]workerSpec{{Role: "produce", System: s.name(), DB: db, Batch: b.c.bulk, N: 3 * n}}, stopAt(0, 0), b.log)
		if err != nil {
			return err
		}
		if rs[0].Acked != 3*n {
			return fmt.Errorf("%s: fill for the page count: %s", s.name(), rs[0].FirstErr)
		}
		rs, err = runWorkers([]workerSpec{{Role: "pages", System: s.name(), DB: db, N: n}}, stopAt(0, 0), b.log)
		if err != nil {
			return err
		}
		if rs[0].Pages == nil {
			return fmt.Errorf("%s: page count: %s", s.name(), rs[0].FirstErr)
		}
		b.rep.pages[s.name()] = rs[0].Pages.PerMessage
		b.progress("  %-15s WAL pages per message: batch 1 %.1f, batch 100 %.2f", s.name(), rs[0].Pages.PerMessage[1], rs[0].Pages.PerMessage[100])
		removeDB(db)
	}
	return nil
}
