package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// check is what a drain delivered, against what was enqueued.
type check struct {
	produced                   int
	delivered, unique, doubled int
	lost, remaining, corrupt   int
	capped                     bool // stopped by the time cap, not drained
}

type scaleRow struct {
	system   string
	depth    int
	fillRate float64
	bytes    int64
	rssKB    int64
	batches  []scaleBatch
}

// cliResult is what the CLI measurement keeps beside its rates (in runs,
// under cliSys).
type cliResult struct {
	cliStart    time.Duration // daguq consume on an empty queue: start, open, exit
	cliRSSKB    int64
	enqueueRate float64
}

type report struct {
	c        config
	started  time.Time
	took     time.Duration
	runs     []map[string]map[string]float64 // run -> system -> metric -> value
	checks   map[string]map[string][]check   // system -> metric -> one per run
	correct  map[string]check
	scale    []scaleRow
	cli      *cliResult
	cliNote  string
	errors   []string
	load     []string // /proc/loadavg at the start and the end
	revision string   // the daguq commit the bench was built against
	pages    map[string]map[int]float64
	order    []string // the systems measured, in report order
}

// daguqRevision names the commit of the root module and whether the store
// or the bench differ from it in the work tree.
func daguqRevision() string {
	out, err := exec.Command("git", "-C", "..", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		if rev := os.Getenv("DAGUQ_REVISION"); rev != "" { // a tree exported from git
			return "`" + rev + "`"
		}
		return ""
	}
	rev := strings.TrimSpace(string(out))
	dirty, _ := exec.Command("git", "-C", "..", "status", "--porcelain", "--untracked-files=no", "--", "queuestore", "bench").Output()
	if len(bytes.TrimSpace(dirty)) > 0 {
		rev += " with uncommitted changes in queuestore/ or bench/"
	}
	return "`" + rev + "`"
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func newReport(c config, systems []system) *report {
	r := &report{c: c, checks: map[string]map[string][]check{}, correct: map[string]check{},
		pages: map[string]map[int]float64{}}
	for _, s := range systems {
		r.order = append(r.order, s.name())
	}
	for range c.runs {
		r.runs = append(r.runs, map[string]map[string]float64{})
	}
	return r
}

func (r *report) add(run int, sys, metric string, v float64) {
	if r.runs[run][sys] == nil {
		r.runs[run][sys] = map[string]float64{}
	}
	r.runs[run][sys][metric] = v
}

func (r *report) get(run int, sys, metric string) float64 { return r.runs[run][sys][metric] }

func (r *report) addCheck(sys, metric string, c check) {
	if r.checks[sys] == nil {
		r.checks[sys] = map[string][]check{}
	}
	r.checks[sys][metric] = append(r.checks[sys][metric], c)
}

// med is the median of a metric over the runs that have it.
func (r *report) med(sys, metric string) (float64, bool) {
	var xs []float64
	for _, run := range r.runs {
		if v, ok := run[sys][metric]; ok {
			xs = append(xs, v)
		}
	}
	return median(xs), len(xs) > 0
}

// ratio is num/den taken inside each run; it returns the median and range.
func (r *report) ratio(numSys, numMetric, denSys, denMetric string) (med, lo, hi float64, ok bool) {
	var xs []float64
	for _, run := range r.runs {
		a, okA := run[numSys][numMetric]
		b, okB := run[denSys][denMetric]
		if okA && okB && b > 0 {
			xs = append(xs, a/b)
		}
	}
	if len(xs) == 0 {
		return 0, 0, 0, false
	}
	m := median(xs) // sorts
	return m, xs[0], xs[len(xs)-1], true
}

// systemNames lists the systems measured, in the fixed report order.
func (r *report) systemNames() []string {
	var out []string
	for _, s := range append(r.order, shellName) {
		for _, run := range r.runs {
			if _, ok := run[s]; ok {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return commas(int64(v + 0.5))
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func commas(n int64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (r *report) cell(sys, metric string) string {
	v, ok := r.med(sys, metric)
	if !ok {
		return "–"
	}
	s := num(v)
	if cs := r.checks[sys][metric]; len(cs) > 0 {
		capped, broken := 0, 0
		for _, c := range cs {
			if c.capped {
				capped++
			}
			if c.lost+c.doubled+c.corrupt > 0 {
				broken++
			}
		}
		if capped > 0 {
			s += "*"
		}
		if broken > 0 {
			s += "†"
		}
	}
	return s
}

func (r *report) cellPlain(sys, metric string) string {
	v, ok := r.med(sys, metric)
	if !ok {
		return "–"
	}
	return num(v)
}

func moduleVersion(path string) string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "?"
	}
	for _, d := range info.Deps {
		if d.Path == path {
			return d.Version
		}
	}
	return "?"
}

func sqliteVersion() string {
	db, err := openDB(":memory:")
	if err != nil {
		return "?"
	}
	defer db.Close()
	var v string
	db.QueryRow(`SELECT sqlite_version()`).Scan(&v)
	return v
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "model name") {
			if _, v, ok := strings.Cut(line, ":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return runtime.GOARCH
}

// provenance names the daguq revision measured and the machine's load.
func (r *report) provenance(p func(string, ...any)) {
	if r.revision != "" {
		p("daguq revision measured: %s.", r.revision)
	}
	if len(r.load) == 2 {
		p("Load average (1, 5, 15 min) at the start: %s; at the end: %s (the machine is shared with other work).", r.load[0], r.load[1])
	}
}

func (r *report) markdown() string {
	var w bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&w, format+"\n", args...) }
	c := r.c
	p("## Side by side with the peers (bench/)")
	p("")
	p("Measured by `make bench-peers` (`cd bench && go run . -out ../docs/performance.md`; bench/ is its own Go")
	p("module, so no peer becomes a dependency of daguq) on %s: %d cores (%s), %s, mattn/go-sqlite3 %s",
		r.started.UTC().Format("2006-01-02"), runtime.NumCPU(), cpuModel(), runtime.Version(), moduleVersion("github.com/mattn/go-sqlite3"))
	p("(SQLite %s), goqite %s, River %s with riversqlite %s. The whole run took %s.",
		sqliteVersion(), moduleVersion("maragu.dev/goqite"), moduleVersion("github.com/riverqueue/river"),
		moduleVersion("github.com/riverqueue/river/riverdriver/riversqlite"), r.took.Round(time.Second))
	r.provenance(p)
	p("")
	if c.cliOnly {
		r.cliSection(p)
		return strings.TrimRight(w.String(), "\n")
	}
	p("The same work for every system: %s messages of 1 KiB (the shell-glue queue: %s, it is slow), each body",
		commas(int64(c.n)), commas(int64(c.shellN)))
	p("starting with a unique id; every producer and consumer is its own OS process (the bench binary re-executes")
	p("itself); the handler does nothing but note the id. All SQLite systems get daguq's connection settings: WAL,")
	p("immediate write transactions, synchronous=NORMAL, a cache of 64 prepared statements, one connection per")
	p("process; daguq waits for another process's write lock in Go with short pauses, the peers through")
	p("SQLite's busy_timeout (30 s). Leases")
	p("(visibility timeouts) are 10 minutes, so none expires. Each figure is the median of %d runs; each ratio is", c.runs)
	p("taken inside one run, and the median of those (with its range) is shown. Run-to-run noise on this kind of")
	p("machine is up to ±30%%: compare ratios, not absolute numbers across runs.")
	p("")
	p("### Throughput, messages/s")
	p("")
	p("Enqueue: one message per call (one transaction each) and 1,000 per call. Drain: claim a batch of b, run the")
	p("no-op handler on each message, ack the batch; ×1 and ×4 consumer processes on one database file.")
	p("")
	r.rateTable(p)
	p("![Throughput against batch size and against consumer processes](bench-peers.svg)")
	p("")
	p("CPU time per message (user+sys of the worker processes, µs; median of runs). This machine is shared, so")
	p("wall-clock rates move with other load; CPU per message moves much less and backs up the ratios above.")
	p("")
	r.cpuTable(p, "cpu ")
	r.pagesSection(p)
	r.targets(p)
	r.correctness(p)
	r.resources(p)
	r.scaleSection(p)
	r.cliSection(p)
	r.reading(p)
	r.mapping(p)
	r.errorsSection(p)
	return strings.TrimRight(w.String(), "\n")
}

// rateTable is the throughput table (enqueue and every drain) with its
// notes.
func (r *report) rateTable(p func(string, ...any)) {
	p("| system | enqueue 1/call | enqueue 1,000/call | b1 ×1 | b10 ×1 | b100 ×1 | b1 ×4 | b10 ×4 | b100 ×4 |")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	anyCapped, anyBroken := false, false
	for _, s := range r.systemNames() {
		row := []string{s, r.cell(s, "enq1"), r.cell(s, "enqbulk")}
		for _, procs := range r.c.procs {
			for _, batch := range r.c.batches {
				cell := r.cell(s, metricConsume(batch, procs))
				anyCapped = anyCapped || strings.Contains(cell, "*")
				anyBroken = anyBroken || strings.Contains(cell, "†")
				row = append(row, cell)
			}
		}
		p("| %s |", strings.Join(row, " | "))
	}
	p("")
	var parts []string
	for _, s := range r.systemNames() {
		if x, ok := r.med(s, metricAhead(10)); ok {
			parts = append(parts, fmt.Sprintf("%s %s", s, num(x)))
		}
	}
	if len(parts) > 0 {
		p("A batch-1 handler fed from claims of 10 (one claim transaction per 10 messages, then each message")
		p("handled and acked alone, in its own transaction, before the next), messages/s, 1 process: %s.", strings.Join(parts, ", "))
		p("")
	}
	if anyCapped {
		p("\\* stopped by the %s drain cap (`-drain-cap`) before all messages were acked: the rate is over the", r.c.drainCap)
		p("messages acked until then. Single-message enqueue also stops after %s (`-enqueue-cap`).", r.c.enqueueCap)
		p("")
	}
	if anyBroken {
		p("† this drain lost, doubled or mangled messages: the rate counts distinct whole messages delivered, and the")
		p("drain may have ended early because messages vanished (see \"Lost and doubled messages\").")
		p("")
	}
}

// cpuTable is a table of CPU time per message: the metrics named prefix
// and the metric of each column.
func (r *report) cpuTable(p func(string, ...any), prefix string) {
	p("| system | enqueue 1/call | enqueue 1,000/call | b1 ×1 | b10 ×1 | b100 ×1 | b1 ×4 | b10 ×4 | b100 ×4 |")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, s := range r.systemNames() {
		if s == shellName {
			continue
		}
		row := []string{s, r.cellPlain(s, prefix+"enq1"), r.cellPlain(s, prefix+"enqbulk")}
		for _, procs := range r.c.procs {
			for _, batch := range r.c.batches {
				row = append(row, r.cellPlain(s, prefix+metricConsume(batch, procs)))
			}
		}
		p("| %s |", strings.Join(row, " | "))
	}
	p("")
}

func (r *report) errorsSection(p func(string, ...any)) {
	if len(r.errors) > 0 {
		p("### Errors seen")
		p("")
		for _, e := range r.errors {
			p("- %s", e)
		}
		p("")
	}
}

func (r *report) pagesSection(p func(string, ...any)) {
	if len(r.pages) == 0 {
		return
	}
	p("WAL pages (4 KiB each) written per message by claim+ack, counted from the WAL's growth with automatic")
	p("checkpoints off, one process, 2,000 messages each way. A count, not a timing: other load cannot move it.")
	p("")
	p("| system | batch 1 | batch 100 |")
	p("|---|---:|---:|")
	for _, s := range r.systemNames() {
		if pm, ok := r.pages[s]; ok {
			p("| %s | %.1f | %.2f |", s, pm[1], pm[100])
		}
	}
	p("")
}

// target is a goal for a ratio of two measurements of one run.
type target struct {
	label          string
	ns, nm, ds, dm string
	goal           float64
}

// targetRow is the target's row: the median ratio and its range, and
// whether it met the goal.
func (r *report) targetRow(p func(string, ...any), t target) {
	m, lo, hi, met, ok := r.verdict(t)
	if !ok {
		p("| %s | not measured | ≥ %.1f× | – |", t.label, t.goal)
		return
	}
	p("| %s | %.2f× (%.2f–%.2f) | ≥ %.1f× | %s |", t.label, m, lo, hi, t.goal, met)
}

// verdict is t's median ratio, its range, and whether it met the goal.
func (r *report) verdict(t target) (m, lo, hi float64, met string, ok bool) {
	m, lo, hi, ok = r.ratio(t.ns, t.nm, t.ds, t.dm)
	met = "yes"
	if m < t.goal {
		met = fmt.Sprintf("**no**: %.0f%% short", (1-m/t.goal)*100)
	}
	return m, lo, hi, met, ok
}

// lossRow counts what sys lost and doubled over every drain of the run and
// the concurrent-producer test.
func (r *report) lossRow(p func(string, ...any), sys string) {
	lost, doubled, seen := 0, 0, 0
	for _, cs := range r.checks[sys] {
		for _, c := range cs {
			lost += c.lost
			doubled += c.doubled
			seen += c.delivered
		}
	}
	if c, ok := r.correct[sys]; ok {
		lost += c.lost
		doubled += c.doubled
		seen += c.delivered
	}
	met := "yes"
	if lost+doubled > 0 {
		met = "**no**"
	}
	p("| %s lost + doubled messages, every drain of this run (%s deliveries) | %d lost, %d doubled | 0 | %s |",
		strings.Fields(sys)[0], commas(int64(seen)), lost, doubled, met)
}

func (r *report) targets(p func(string, ...any)) {
	p("### Targets, as ratios inside one run")
	p("")
	p("| target | ratio: median (range over runs) | goal | met |")
	p("|---|---:|---:|---|")
	ts := []target{
		{"daguq claim+ack at batch 1 / goqite receive+delete, 1 process", "daguq", "b1 p1", "goqite", "b1 p1", 2},
		{"the same, 4 processes", "daguq", "b1 p4", "goqite", "b1 p4", 2},
		{"daguq claim+ack at batch 100 / raw SQLite floor, 1 process", "daguq", "b100 p1", "raw SQLite", "b100 p1", 0.7},
		{"the same, 4 processes", "daguq", "b100 p4", "raw SQLite", "b100 p4", 0.7},
	}
	for _, conc := range r.c.cliConc {
		for _, b := range r.c.cliBatches {
			goal := map[int]float64{100: 0.8, 10: 0.5}[b]
			if goal > 0 {
				ts = append(ts, target{fmt.Sprintf("`daguq consume --batch-size %d --concurrency %d -- true` / raw floor at batch %d", b, conc, b),
					cliSys, metricCLI(wayConc(conc), b), cliSys, metricCLI(wayRaw, b), goal})
			}
		}
	}
	for _, x := range ts {
		m, lo, hi, met, ok := r.verdict(x)
		if !ok {
			p("| %s | not measured | ≥ %.1f× | – |", x.label, x.goal)
			continue
		}
		if bound, ok := r.cpuBound(x.nm, x.dm); ok && x.ns == cliSys {
			met += fmt.Sprintf("; CPU allows %.2f×", bound)
			if m >= x.goal && bound < x.goal {
				met = fmt.Sprintf("**no** by CPU: at most %.2f× on %d cores (the wall-clock ratio is flattered by load)", bound, runtime.NumCPU())
			}
		}
		p("| %s | %.2f× (%.2f–%.2f) | ≥ %.1f× | %s |", x.label, m, lo, hi, x.goal, met)
	}
	ahead := metricAhead(10)
	for _, t := range []target{
		{"daguq, batch-1 handler fed from claims of 10, each message acked alone / goqite receive+delete", "daguq", ahead, "goqite", "b1 p1", 2},
		{"the same for both: daguq / goqite, each claiming 10 ahead and acking each message alone", "daguq", ahead, "goqite", ahead, 2},
	} {
		if _, _, _, _, ok := r.verdict(t); ok {
			r.targetRow(p, t)
		}
	}
	r.lossRow(p, "daguq")
	p("")
	p("More ratios from the same runs (median):")
	p("")
	for _, x := range []struct{ label, ns, nm, ds, dm string }{
		{"daguq / goqite, batch 10, 1 process", "daguq", "b10 p1", "goqite", "b10 p1"},
		{"daguq / goqite, batch 100, 1 process", "daguq", "b100 p1", "goqite", "b100 p1"},
		{"daguq / River, batch 1, 1 process", "daguq", "b1 p1", "River (SQLite)", "b1 p1"},
		{"daguq / River, batch 100, 1 process", "daguq", "b100 p1", "River (SQLite)", "b100 p1"},
		{"daguq / River, batch 100, 4 processes", "daguq", "b100 p4", "River (SQLite)", "b100 p4"},
		{"daguq / raw floor, batch 1, 1 process", "daguq", "b1 p1", "raw SQLite", "b1 p1"},
		{"daguq / raw floor, batch 10, 1 process", "daguq", "b10 p1", "raw SQLite", "b10 p1"},
		{"daguq 4 processes / 1 process, batch 100", "daguq", "b100 p4", "daguq", "b100 p1"},
		{"daguq enqueue 1/call / goqite", "daguq", "enq1", "goqite", "enq1"},
		{"daguq enqueue 1,000/call / goqite", "daguq", "enqbulk", "goqite", "enqbulk"},
		{"daguq enqueue 1,000/call / raw floor", "daguq", "enqbulk", "raw SQLite", "enqbulk"},
		{"daguq / shell glue, batch 1, 1 process", "daguq", "b1 p1", shellName, "b1 p1"},
	} {
		if m, lo, hi, ok := r.ratio(x.ns, x.nm, x.ds, x.dm); ok {
			p("- %s: %.2f× (%.2f–%.2f)", x.label, m, lo, hi)
		}
	}
	p("")
}

func (r *report) correctness(p func(string, ...any)) {
	p("### Lost and doubled messages")
	p("")
	p("One producer (one message per enqueue) and 4 consumers (batch 10, polling when empty) on one queue at the")
	p("same time, until every message was acked (or nothing moved for 5 s after the producer finished). A message")
	p("is lost when no consumer saw it and it is not left in the queue; doubled counts repeat deliveries.")
	p("")
	p("| system | produced | deliveries | distinct | lost | doubled | corrupt lines | left in queue |")
	p("|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, s := range r.systemNames() {
		c, ok := r.correct[s]
		if !ok {
			continue
		}
		p("| %s | %s | %s | %s | %s | %s | %d | %d |", s, commas(int64(c.produced)), commas(int64(c.delivered)),
			commas(int64(c.unique)), bold(c.lost), bold(c.doubled), c.corrupt, c.remaining)
	}
	p("")
	p("The same count over every 4-process drain of the throughput runs (a pre-filled queue, no producer):")
	p("")
	p("| system | deliveries | lost | doubled | corrupt lines |")
	p("|---|---:|---:|---:|---:|")
	for _, s := range r.systemNames() {
		var d, l, dbl, cor int
		for m, cs := range r.checks[s] {
			if !strings.HasSuffix(m, " p4") {
				continue
			}
			for _, c := range cs {
				d += c.delivered
				l += c.lost
				dbl += c.doubled
				cor += c.corrupt
			}
		}
		p("| %s | %s | %s | %s | %d |", s, commas(int64(d)), bold(l), bold(dbl), cor)
	}
	p("")
}

func bold(n int) string {
	if n == 0 {
		return "0"
	}
	return "**" + commas(int64(n)) + "**"
}

func (r *report) resources(p func(string, ...any)) {
	p("### Size and memory")
	p("")
	p("Database file (after a WAL checkpoint) holding the %s messages, scaled to a million; the file after the", commas(int64(r.c.n)))
	p("batch-100 drain (SQLite does not shrink a file by itself); the largest peak RSS (VmHWM) of the consumer")
	p("processes of one drain.")
	p("")
	p("| system | MB per million messages | file after drain, MB | consumer peak RSS b1 ×1, MB | b100 ×1 | b100 ×4 |")
	p("|---|---:|---:|---:|---:|---:|")
	for _, s := range r.systemNames() {
		if s == shellName {
			continue
		}
		bpm, _ := r.med(s, "bytes/msg")
		drained, _ := r.med(s, "drained bytes")
		r1, _ := r.med(s, "rss b1 p1")
		r100, _ := r.med(s, "rss b100 p1")
		r4, _ := r.med(s, "rss b100 p4")
		p("| %s | %s | %.0f | %.0f | %.0f | %.0f |", s, num(bpm), drained/1e6, r1/1024, r100/1024, r4/1024)
	}
	p("")
}

func (r *report) scaleSection(p func(string, ...any)) {
	if len(r.scale) == 0 {
		return
	}
	p("### Queue depth")
	p("")
	p("One database per system filled (1,000 per enqueue) to each depth in turn; then one consumer process times")
	p("%s claims of 1 and %s claims of 100, acking each and enqueueing as many new messages (untimed) so the",
		commas(int64(r.c.scaleClaims)), commas(int64(r.c.scaleClaims/10)))
	p("depth stays put. Latency is of the claim call alone; msg/s is over the timed claim+ack calls. One pass.")
	p("")
	p("| system | depth | fill msg/s | claim p50 / p99, b1, ms | claim+ack b1, msg/s | claim p50 / p99, b100, ms | claim+ack b100, msg/s | file, MB | MB per million | consumer RSS, MB |")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, row := range r.scale {
		var b1, b100 scaleBatch
		for _, b := range row.batches {
			if b.Batch == 1 {
				b1 = b
			} else {
				b100 = b
			}
		}
		p("| %s | %s | %s | %.3f / %.3f | %s | %.2f / %.2f | %s | %.0f | %.0f | %d |", row.system, commas(int64(row.depth)),
			num(row.fillRate), b1.ClaimP50, b1.ClaimP99, num(b1.Rate), b100.ClaimP50, b100.ClaimP99, num(b100.Rate),
			float64(row.bytes)/1e6, float64(row.bytes)/float64(row.depth), row.rssKB/1024)
	}
	p("")
	for _, s := range r.order {
		var first, last *scaleRow
		for i := range r.scale {
			if r.scale[i].system == s {
				if first == nil {
					first = &r.scale[i]
				}
				last = &r.scale[i]
			}
		}
		if first == nil || first == last {
			continue
		}
		for i, b := range last.batches {
			a := first.batches[i]
			p("- %s, batch %d: from %s to %s messages the claim p50 went %.3f → %.3f ms (%.2f×), claim+ack rate %.2f×: %s.",
				s, b.Batch, commas(int64(first.depth)), commas(int64(last.depth)), a.ClaimP50, b.ClaimP50, b.ClaimP50/a.ClaimP50,
				b.Rate/a.Rate, flatness(b.Rate/a.Rate))
		}
	}
	if !contains(r.c.scaleDepths, 10_000_000) {
		p("- 10,000,000 messages: not in this run (`-scale-max` adds it; filling takes minutes and ~15 GB).")
	}
	p("")
}

func flatness(x float64) string {
	switch {
	case x >= 0.8:
		return "flat (within the noise)"
	case x >= 0.5:
		return "slower with depth"
	default:
		return "**not flat**"
	}
}

func (r *report) cliSection(p func(string, ...any)) {
	p("### End to end through the CLI")
	p("")
	if r.cli == nil {
		if r.cliNote != "" {
			p("Not measured in this run: %s.", r.cliNote)
		} else {
			p("Not measured in this run (`-skip-cli`).")
		}
		p("")
		return
	}
	c := r.c
	p("%s messages drained by one consumer process each way (`-cli-only` runs this part alone), median of %d", commas(int64(c.n)), c.runs)
	p("runs; a ratio to the raw floor is taken inside each run (median and range). The CLI drains run")
	p("`daguq consume --queue bench --batch-size B --concurrency C --progress-interval 0 -- true`; CPU counts")
	p("every process of a drain (for the CLI: daguq, its handler supervisors and every `true`).")
	p("")
	head := []string{"drain"}
	for _, b := range c.cliBatches {
		head = append(head, fmt.Sprintf("b%d msg/s", b), fmt.Sprintf("b%d / raw floor", b), fmt.Sprintf("b%d CPU µs/msg", b))
	}
	p("| %s |", strings.Join(head, " | "))
	p("|---|%s", strings.Repeat("---:|", len(head)-1))
	rows := []struct{ label, way string }{
		{"raw SQLite floor: claim+ack in process", wayRaw},
		{"daguq store in process: Claim, no-op, Ack", wayIn},
		{"the same, starting `true` per batch (fork+exec)", wayExec},
	}
	for _, conc := range c.cliConc {
		rows = append(rows, struct{ label, way string }{fmt.Sprintf("`daguq consume --concurrency %d -- true`", conc), wayConc(conc)})
	}
	for _, row := range rows {
		cells := []string{row.label}
		for _, b := range c.cliBatches {
			m := metricCLI(row.way, b)
			cells = append(cells, r.cellPlain(cliSys, m))
			if mid, lo, hi, ok := r.ratio(cliSys, m, cliSys, metricCLI(wayRaw, b)); ok {
				cells = append(cells, fmt.Sprintf("%.2f× (%.2f–%.2f)", mid, lo, hi))
			} else {
				cells = append(cells, "–")
			}
			cells = append(cells, r.cellPlain(cliSys, "cpu "+m))
		}
		p("| %s |", strings.Join(cells, " | "))
	}
	p("")
	p("On %d cores a CLI drain can spread its CPU over every core while the floor is one thread that never", runtime.NumCPU())
	p("waits, so CLI / floor is at most cores × (floor CPU per message) / (CLI CPU per message), a")
	p("bound that load does not flatter: the \"CPU allows\" figures. On a loaded machine the wall-clock ratio can exceed it.")
	p("")
	for _, b := range c.cliBatches {
		var parts []string
		for _, conc := range c.cliConc {
			if bound, ok := r.cpuBound(metricCLI(wayConc(conc), b), metricCLI(wayRaw, b)); ok {
				parts = append(parts, fmt.Sprintf("concurrency %d %.2f×", conc, bound))
			}
		}
		if len(parts) > 0 {
			p("- Batch %d, CPU allows: %s.", b, strings.Join(parts, ", "))
		}
	}
	for _, b := range c.cliBatches {
		var parts []string
		for _, row := range rows {
			if v, ok := r.med(cliSys, metricCLI(row.way, b)); ok && v > 0 {
				name := strings.TrimPrefix(row.way, wayCLI)
				if name == row.way {
					name = map[string]string{wayRaw: "raw floor", wayIn: "store in process", wayExec: "with `true`"}[row.way]
				} else {
					name = "consume ×" + name
				}
				parts = append(parts, fmt.Sprintf("%s %.3f", name, float64(b)*1e3/v))
			}
		}
		p("- Batch %d, ms per batch: %s.", b, strings.Join(parts, ", "))
	}
	p("- `daguq consume` on an empty queue (start, open the database, find nothing, exit): %.1f ms, in every CLI", ms(r.cli.cliStart))
	p("  drain above.")
	p("- Peak RSS of `daguq consume`: %d MB. Filling the queue with `daguq enqueue --raw --file` (one transaction", r.cli.cliRSSKB/1024)
	p("  for all): %s msg/s.", num(r.cli.enqueueRate))
	p("")
}

// cpuBound is the most a CLI drain (metric num) can reach against the
// floor (metric den) on this machine's cores, from their median CPU per
// message: the floor is one thread that never waits.
func (r *report) cpuBound(num, den string) (float64, bool) {
	cliCPU, ok1 := r.med(cliSys, "cpu "+num)
	floorCPU, ok2 := r.med(cliSys, "cpu "+den)
	if !ok1 || !ok2 || cliCPU <= 0 {
		return 0, false
	}
	return float64(runtime.NumCPU()) * floorCPU / cliCPU, true
}

// reading explains the mechanisms behind the shapes of the curves; it
// states no number, so it holds for any run.
func (r *report) reading(p func(string, ...any)) {
	p("### Reading the numbers")
	p("")
	p("- **goqite** has no batch receive. Each `ReceiveTx` finds the next message by walking its index")
	p("  `(queue, priority, created)` from the oldest entry, skipping messages already received but not yet deleted,")
	p("  which stay at the front of that index. A batch of N inside one transaction therefore reads about N²/2")
	p("  rows, and with 4 consumers each one also skips the others' in-flight messages: batching barely helps it.")
	p("- **River**'s SQLite driver inserts and completes jobs one row at a time (its own documentation says so),")
	p("  completion is asynchronous, and a producer fetches at most once per `FetchCooldown`. It is built around")
	p("  PostgreSQL; on SQLite it pays for a job system (states, attempts, metadata, a leader) on every message.")
	p("- **daguq against the raw floor**: the floor makes two write transactions per batch (claim, then ack) on the")
	p("  same layout, with one index on messages; daguq's drain makes one (`AckClaim`: the ack of a batch and the")
	p("  claim of the next), but checks the queue's settings and keeps three indexes on messages and the queue's")
	p("  counts row. At batch 1 those fixed costs are most of the cost (WAL pages and CPU per message above); at")
	p("  batch 100 they are spread over 100 messages.")
	p("- **4 processes** share one write lock: only the work outside a write transaction (the handler, decoding)")
	p("  overlaps, so on 2 cores more consumer processes add little, and lock hand-offs can cost more than that.")
	p("- **The shell glue** rewrites the whole file for every take (cost grows with the queue) and is not atomic:")
	p("  a line appended between `tail` and `mv` vanishes, two consumers can read the same head line, and with a")
	p("  shared temp file one consumer's `mv` can publish another's half-written or stale copy.")
	p("")
}

func (r *report) mapping(p func(string, ...any)) {
	p("### How each system is driven")
	p("")
	p("- **daguq**: `queuestore.Store` through its public API: `Enqueue` (1 or 1,000 messages per call, one")
	p("  transaction), `Claim` with `Max` = batch, then, for each later batch, `AckClaim`: the ack of the whole")
	p("  lease and the claim of the next batch in one transaction (the WAL pages above are counted on that loop")
	p("  too); the batch-1 handler fed from claims of 10 uses `Claim` and an `Ack` per message. The bench's")
	p("  worker processes keep glibc's malloc defaults for every system; the `daguq` binary raises glibc's trim")
	p("  threshold at start (internal/malloctune), so only the end-to-end CLI figures include that.")
	p("- **goqite** (maragu.dev/goqite, its own schema): `Send` / `SendTx` ×1,000 in one transaction; at batch 1")
	p("  `Receive` then `Delete`. goqite has no batch receive: batch N is N `ReceiveTx` in one transaction, then N")
	p("  `DeleteTx` in one transaction, the most batching its public API allows.")
	p("- **River (SQLite)**: a job queue, not a message queue. A message is a job whose args carry the body; `Insert` /")
	p("  `InsertMany` (its SQLite driver inserts row by row); the handler is a worker whose `Work` does nothing; the")
	p("  ack is River's completion, counted from completion events. River has no claim-N call: batch N is")
	p("  `MaxWorkers` = N, so each fetch locks up to N jobs in one statement and runs them in N goroutines, while")
	p("  completions are written asynchronously by River's completer. `FetchCooldown` is set to River's minimum, 1 ms")
	p("  (default 100 ms), and `FetchPollInterval` to 20 ms (default 1 s), since there is no LISTEN/NOTIFY on SQLite.")
	p("  River never reports an empty queue: the bench stops its clients when every job has completed.")
	p("- **raw SQLite**, the floor: daguq's physical layout (a small row per message, bodies in their own table) and")
	p("  statement shapes (claim = one `UPDATE … RETURNING` in an immediate transaction, ack = `DELETE` by a JSON id")
	p("  list in another) with no queue logic: no queue name, priority, attempts, lease table, settings or chores.")
	p("  It drives SQLite as the store does (explicit `BEGIN IMMEDIATE` on the connection, statements without")
	p("  per-call cancellation, so database/sql starts no goroutine per transaction or statement), so the")
	p("  difference is the queue logic alone.")
	p("- **shell glue**: the file queue from the original Dagu discussion. Producer: `echo \"$MSG\" >> q` once per")
	p("  message (bulk: one `>>` for all); consumer: `head -n B q; tail -n +B+1 q > temp; mv temp q` in `sh`, every")
	p("  consumer with the same temp name as copies of one DAG would. Fewer messages (%s), since each take rewrites", commas(int64(r.c.shellN)))
	p("  the whole file.")
	p("")
}

// writeSection replaces the text between the markers named marker
// (<!-- marker:begin --> and <!-- marker:end -->) in path, or appends the
// section with its markers when they are missing.
func writeSection(path, marker, md string) error {
	begin, end := "<!-- "+marker+":begin -->", "<!-- "+marker+":end -->"
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	section := begin + "\n<!-- Written by `make bench-peers` (bench/); edits here are overwritten. -->\n" + md + "\n" + end
	s := string(old)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	switch {
	case i >= 0 && j > i:
		s = s[:i] + section + s[j+len(end):]
	case len(strings.TrimSpace(s)) == 0:
		s = "# Performance\n\n" + section + "\n"
	default:
		s = strings.TrimRight(s, "\n") + "\n\n" + section + "\n"
	}
	return os.WriteFile(path, []byte(s), 0o644)
}
