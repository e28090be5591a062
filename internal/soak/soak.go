package soak

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Queue is the queue every soak process uses.
const Queue = "soak"

// Config says what a soak run does.
type Config struct {
	Daguq    string        // the daguq binary
	Handler  []string      // the handler program (HandlerMain's flags follow)
	Dir      string        // an empty directory: database, records, logs, TMPDIR
	Duration time.Duration // how long producers, consumers and chaos run
	// Drain bounds the final drain, after the chaos. Default 30s.
	Drain time.Duration
	// Env is the environment every process starts from; the soak adds
	// DAGUQ_DB, TMPDIR and its own variables.
	Env []string
	// Logf reports progress; nil: silent.
	Logf func(format string, args ...any)
	// Seed makes the random choices repeatable (the processes still race);
	// 0: a random seed, reported in the result.
	Seed uint64
}

// A slot runs one consumer process at a time, restarted after it ends,
// with its own settings; together with the two producer slots they are the
// eight processes on the database.
type slot struct {
	name    string
	lease   time.Duration
	args    []string // consume flags besides queue, lease and consumer
	handler []string // HandlerMain flags
}

var consumerSlots = []slot{
	{name: "c0-single", lease: 2 * time.Second,
		args:    []string{"--mode", "watch", "--batch-size", "1", "--poll-interval", "100ms"},
		handler: []string{"-sleep-max=150ms", "-slow=0.1", "-slow-time=3500ms"}},
	{name: "c1-linger", lease: 2 * time.Second,
		args:    []string{"--mode", "watch", "--batch-size", "10", "--concurrency", "2", "--max-wait", "300ms", "--poll-interval", "100ms"},
		handler: []string{"-sleep-min=20ms", "-sleep-max=300ms", "-crash=0.03", "-slow=0.03", "-slow-time=3s"}},
	{name: "c2-children", lease: 3 * time.Second,
		args:    []string{"--mode", "watch", "--batch-size", "5", "--concurrency", "3", "--max-bytes", "400", "--poll-interval", "150ms"},
		handler: []string{"-sleep-max=200ms", "-child=0.1"}},
	{name: "c3-drain", lease: 6 * time.Second,
		args:    []string{"--mode", "drain", "--batch-size", "20", "--concurrency", "2", "--poll-interval", "100ms"},
		handler: []string{"-sleep-min=50ms", "-sleep-max=400ms", "-slow=0.1", "-slow-time=2s"}},
	{name: "c4-timeout", lease: 2 * time.Second,
		args:    []string{"--mode", "watch", "--batch-size", "3", "--batch-timeout", "1500ms", "--grace", "500ms", "--poll-interval", "100ms"},
		handler: []string{"-sleep-max=100ms", "-slow=0.1", "-slow-time=2500ms"}},
	{name: "c5-groups", lease: 2 * time.Second,
		args:    []string{"--mode", "watch", "--group-by", "--batch-size", "8", "--concurrency", "2", "--backoff", "200ms", "--poll-interval", "100ms"},
		handler: []string{"-sleep-max=100ms", "-crash=0.02", "-slow=0.05", "-slow-time=3s"}},
}

// The final drain: generous lease, retries at once, no chaos.
var drainSlot = slot{name: "final", lease: 30 * time.Second,
	args:    []string{"--mode", "drain", "--batch-size", "50", "--concurrency", "2", "--backoff", "none"},
	handler: []string{"-sleep-max=5ms"}}

// proc is one process the soak started.
type proc struct {
	name   string // slot and generation: c2-children.3, p1-bulk.17, final.1
	kind   string // consumer, producer, drain
	slot   string
	lease  time.Duration
	cmd    *exec.Cmd
	pid    int
	start  time.Time
	stdout string // file paths
	stderr string
	done   chan struct{}

	// under runner.mu
	stopped bool             // SIGSTOPped now
	sent    []syscall.Signal // signals the soak sent
	exit    int              // exit status, -1 when a signal ended it
	signal  syscall.Signal   // the signal that ended it
}

// chaosEvent is one thing the chaos driver did.
type chaosEvent struct {
	Action    string // kill, stop (up to past the lease), pause (within it), term, lock, kill-producer, term-producer
	Proc      string
	PID       int
	At, Until time.Time
}

// producerCall is one `daguq enqueue` process and what it printed.
type producerCall struct {
	Call    string
	Proc    *proc
	N       int // messages given
	Dedupe  string
	Summary *enqueueSummary // nil when it printed none (killed)
}

type enqueueSummary struct {
	Enqueued   int     `json:"enqueued"`
	Duplicates int     `json:"duplicates"`
	IDs        []int64 `json:"ids"`
	Truncated  bool    `json:"ids_truncated"`
}

// runner is one soak run.
type runner struct {
	cfg    Config
	db     string
	env    []string
	token  string
	seed   uint64
	ending chan struct{}
	// fullDisk: the database runs out of space on purpose, and an exit
	// status 3 saying so is expected.
	fullDisk  bool
	spaceBack time.Time // when the full disk had room again
	freed     int64     // bytes the ballast gave back

	mu      sync.Mutex
	isEnd   bool
	procs   []*proc
	running map[*proc]bool
	chaos   []chaosEvent
	calls   []*producerCall
	errs    []string // failures of the harness itself

	bg sync.WaitGroup // pending SIGCONTs and lock holders, started by the chaos driver only
}

// Run runs a soak and checks it. The error is for a harness that could not
// run; what the soak found is in the result's Violations.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	r, err := newRunner(ctx, cfg, filepath.Join(cfg.Dir, "soak.db"))
	if err != nil {
		return nil, err
	}
	defer r.killAll()
	began := time.Now()
	r.cfg.Logf("soak: %s of chaos on %s (seed %d)", cfg.Duration, r.db, r.seed)

	var wg sync.WaitGroup
	for i, s := range consumerSlots {
		wg.Add(1)
		go func() { defer wg.Done(); r.consumerSlot(s, r.seed+uint64(i)) }()
	}
	wg.Add(2)
	go func() { defer wg.Done(); r.singleProducer(r.seed + 100) }()
	go func() { defer wg.Done(); r.bulkProducer(r.seed + 101) }()
	chaosDone := make(chan struct{})
	go func() { defer close(chaosDone); r.chaosDriver(r.seed + 102) }()

	select {
	case <-time.After(cfg.Duration):
	case <-ctx.Done():
	}
	r.end()
	<-chaosDone
	r.bg.Wait() // every paused consumer continued, the write lock released
	r.stopConsumers()
	wg.Wait()
	return r.finish(ctx, began)
}

func newRunner(ctx context.Context, cfg Config, db string) (*runner, error) {
	if cfg.Drain <= 0 {
		cfg.Drain = 30 * time.Second
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	r := &runner{cfg: cfg, db: db, seed: seed,
		token: fmt.Sprintf("%d-%d", os.Getpid(), seed), ending: make(chan struct{}), running: map[*proc]bool{}}
	for _, d := range []string{"procs", "records", "tmp", "bodies"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o700); err != nil {
			return nil, err
		}
	}
	// One TMPDIR for the run, shared as on a host: a consumer may clean up
	// what a killed one left there.
	r.env = append(append([]string(nil), cfg.Env...), "DAGUQ_DB="+r.db, RunEnv+"="+r.token,
		"TMPDIR="+filepath.Join(cfg.Dir, "tmp"))
	if err := r.setup(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// end ends the chaos phase: no process starts but the final drain's.
func (r *runner) end() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.isEnd {
		r.isEnd = true
		close(r.ending)
	}
}

// finish drains what is left and checks the run.
func (r *runner) finish(ctx context.Context, began time.Time) (*Result, error) {
	chaosEnd := time.Now()
	r.cfg.Logf("soak: chaos over after %s; final drain", chaosEnd.Sub(began).Round(time.Millisecond))
	if err := r.finalDrain(ctx); err != nil {
		r.fail("final drain: %v", err)
	}
	r.cfg.Logf("soak: drained after %s; checking", time.Since(chaosEnd).Round(time.Millisecond))
	res, err := r.check(ctx)
	if err != nil {
		return nil, err
	}
	res.Seed = r.seed
	res.Duration = chaosEnd.Sub(began)
	res.Took = time.Since(began)
	return res, nil
}

// setup creates the database and adds the audit log.
func (r *runner) setup(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, r.cfg.Daguq, "migrate")
	cmd.Env = r.env
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("daguq migrate: %v\n%s", err, out)
	}
	return Instrument(r.db)
}

func (r *runner) fail(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *runner) isEnding() bool {
	select {
	case <-r.ending:
		return true
	default:
		return false
	}
}

// sleep waits d or until the chaos ends; false when it ended.
func (r *runner) sleep(d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-r.ending:
		return false
	}
}

// start starts a daguq process with its output in files. During the chaos
// (afterEnd false) it refuses once the chaos is over.
func (r *runner) start(name, kind, slotName string, lease time.Duration, args []string, afterEnd bool) (*proc, error) {
	p := &proc{name: name, kind: kind, slot: slotName, lease: lease, done: make(chan struct{}),
		stdout: filepath.Join(r.cfg.Dir, "procs", name+".stdout"),
		stderr: filepath.Join(r.cfg.Dir, "procs", name+".stderr")}
	stdout, err := os.Create(p.stdout)
	if err != nil {
		return nil, err
	}
	defer stdout.Close()
	stderr, err := os.Create(p.stderr)
	if err != nil {
		return nil, err
	}
	defer stderr.Close()
	cmd := exec.Command(r.cfg.Daguq, args...)
	cmd.Env = append(append([]string(nil), r.env...), SlotEnv+"="+slotName, RoleEnv+"="+RoleHandler,
		RecordsEnv+"="+filepath.Join(r.cfg.Dir, "records", name+".jsonl"))
	cmd.Dir = r.cfg.Dir
	cmd.Stdout, cmd.Stderr = stdout, stderr
	p.cmd = cmd

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.isEnd && !afterEnd {
		return nil, errEnding
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p.pid, p.start = cmd.Process.Pid, time.Now()
	r.procs = append(r.procs, p)
	r.running[p] = true
	go func() {
		err := cmd.Wait()
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.running, p)
		p.exit = 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			p.exit = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				p.signal = ws.Signal()
			}
		} else if err != nil {
			p.exit = -2
		}
		close(p.done)
	}()
	return p, nil
}

var errEnding = errors.New("the chaos is over")

// consumerSlot keeps one consumer of the slot's settings running until the
// chaos ends.
func (r *runner) consumerSlot(s slot, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	for gen := 1; !r.isEnding(); gen++ {
		name := fmt.Sprintf("%s.%d", s.name, gen)
		p, err := r.start(name, "consumer", s.name, s.lease, r.consumeArgs(s, name), false)
		if errors.Is(err, errEnding) {
			return
		}
		if err != nil {
			r.fail("%v", err)
			return
		}
		<-p.done
		if !r.sleep(time.Duration(100+rng.IntN(200)) * time.Millisecond) {
			return
		}
	}
}

func (r *runner) consumeArgs(s slot, name string) []string {
	args := []string{"consume", "--queue", Queue, "--lease", s.lease.String(), "--consumer", name,
		"--backoff-base", "100ms", "--backoff-max", "1s", "--progress-interval", "0s"}
	args = append(args, s.args...)
	args = append(append(args, "--"), r.cfg.Handler...)
	return append(args, s.handler...)
}

// stopConsumers sends SIGTERM to every consumer still running and waits
// for it; one that does not end within 20 s is killed and reported.
func (r *runner) stopConsumers() {
	r.mu.Lock()
	var live []*proc
	for p := range r.running {
		if p.kind == "consumer" {
			live = append(live, p)
		}
	}
	r.mu.Unlock()
	r.mu.Lock()
	for _, p := range live {
		if p.cmd.Process.Signal(syscall.SIGTERM) == nil {
			p.sent = append(p.sent, syscall.SIGTERM)
		}
	}
	r.mu.Unlock()
	for _, p := range live {
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			r.fail("%s (pid %d) still runs 20 s after SIGTERM: killed", p.name, p.pid)
			p.cmd.Process.Kill()
			<-p.done
		}
	}
}

// killAll kills whatever the soak started and still runs (after a failed
// run), and any process that carries the run's mark (handlers' children).
func (r *runner) killAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for p := range r.running {
		p.cmd.Process.Signal(syscall.SIGCONT)
		p.cmd.Process.Kill()
	}
	for pid := range leftProcesses(r.token) {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// singleProducer enqueues one message per process: a dedupe key (often one
// already used, so some are duplicates), sometimes a delay, a priority, a
// group, fewer attempts.
func (r *runner) singleProducer(seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 2))
	for n := 1; !r.isEnding(); n++ {
		call := fmt.Sprintf("s%d", n)
		body, _ := json.Marshal(Body{Call: call, Fail: planFail(rng), Pad: strings.Repeat("s", rng.IntN(100))})
		key := fmt.Sprintf("single-%d", rng.IntN(40))
		args := []string{"enqueue", "--queue", Queue, "--message", string(body), "--dedupe-key", key}
		args = append(args, r.options(rng)...)
		if !r.produce(&producerCall{Call: call, N: 1, Dedupe: key}, "p0-single."+strconv.Itoa(n), args) {
			return
		}
		r.sleep(time.Duration(20+rng.IntN(80)) * time.Millisecond)
	}
}

// bulkProducer enqueues JSON Lines files of 1..150 messages; now and then
// it repeats an earlier call's dedupe key, as a Dagu retry of the step would.
func (r *runner) bulkProducer(seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 3))
	for n := 1; !r.isEnding(); n++ {
		call := fmt.Sprintf("b%d", n)
		count := 1 + rng.IntN(150)
		var lines strings.Builder
		for i := range count {
			body, _ := json.Marshal(Body{Call: call, I: i, Fail: planFail(rng), Pad: strings.Repeat("b", rng.IntN(60))})
			lines.Write(append(body, '\n'))
		}
		file := filepath.Join(r.cfg.Dir, "bodies", call+".jsonl")
		if err := os.WriteFile(file, []byte(lines.String()), 0o600); err != nil {
			r.fail("%v", err)
			return
		}
		key := fmt.Sprintf("bulk-%d", n)
		if n > 1 && rng.IntN(5) == 0 {
			key = fmt.Sprintf("bulk-%d", 1+rng.IntN(n-1))
		}
		args := []string{"enqueue", "--queue", Queue, "--file", file, "--dedupe-key", key}
		args = append(args, r.options(rng)...)
		if !r.produce(&producerCall{Call: call, N: count, Dedupe: key}, "p1-bulk."+strconv.Itoa(n), args) {
			return
		}
		r.sleep(time.Duration(100+rng.IntN(300)) * time.Millisecond)
	}
}

// planFail picks how many first deliveries of a message fail: most none,
// some one, a few all of them (those go dead).
func planFail(rng *rand.Rand) int {
	switch x := rng.IntN(100); {
	case x < 75:
		return 0
	case x < 90:
		return 1
	case x < 95:
		return 2
	}
	return 99
}

func (r *runner) options(rng *rand.Rand) []string {
	var args []string
	if rng.IntN(4) == 0 {
		args = append(args, "--delay", fmt.Sprintf("%dms", 200+rng.IntN(1300)))
	}
	if rng.IntN(3) == 0 {
		args = append(args, "--priority", strconv.Itoa(rng.IntN(4)))
	}
	if rng.IntN(2) == 0 {
		args = append(args, "--group", fmt.Sprintf("g%d", rng.IntN(3)))
	}
	if rng.IntN(4) == 0 {
		args = append(args, "--max-attempts", "3")
	}
	return args
}

// produce runs one enqueue process and keeps what it printed; false when
// the chaos is over.
func (r *runner) produce(c *producerCall, name string, args []string) bool {
	p, err := r.start(name, "producer", strings.SplitN(name, ".", 2)[0], 0, args, false)
	if errors.Is(err, errEnding) {
		return false
	}
	if err != nil {
		r.fail("%v", err)
		return false
	}
	<-p.done
	c.Proc = p
	if out, err := os.ReadFile(p.stdout); err == nil && len(out) > 0 {
		var s enqueueSummary
		if json.Unmarshal(out, &s) == nil {
			c.Summary = &s
		}
	}
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
	return true
}

// chaosDriver acts every 0.4..1.2 s until the chaos ends.
func (r *runner) chaosDriver(seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 4))
	lockBusy := false
	var lockMu sync.Mutex
	for r.sleep(time.Duration(400+rng.IntN(800)) * time.Millisecond) {
		x := rng.IntN(100)
		switch {
		case x < 22:
			if p := r.pick(rng, "consumer", 0); p != nil {
				r.signal(p, syscall.SIGKILL, "kill")
			}
		case x < 44:
			// SIGSTOP up to past the lease: another consumer takes the batch
			// over (the lease ends between 2/3 and all of a lease after the
			// stop, with the last heartbeat), and the paused one, continued
			// before, while or after the new holder runs it, must be fenced
			// off.
			if p := r.pick(rng, "consumer", 3*time.Second); p != nil {
				d := p.lease*2/3 + time.Duration(rng.Int64N(int64(p.lease/3+1500*time.Millisecond)))
				r.pause(p, "stop", d)
			}
		case x < 52:
			// A pause well within the lease: nothing may be taken over.
			if p := r.pick(rng, "consumer", 0); p != nil {
				r.pause(p, "pause", p.lease/4)
			}
		case x < 68:
			if p := r.pick(rng, "consumer", 0); p != nil {
				r.signal(p, syscall.SIGTERM, "term")
			}
		case x < 84:
			// Producers are short-lived: wait a moment for one to run, then
			// kill it (its enqueue must be all or nothing) or stop it (an
			// enqueue has nothing to stop: it must finish).
			var p *proc
			for wait := time.Now().Add(time.Second); p == nil && time.Now().Before(wait) && !r.isEnding(); {
				if p = r.pick(rng, "producer", 0); p == nil {
					time.Sleep(2 * time.Millisecond)
				}
			}
			if p != nil && rng.IntN(3) > 0 {
				r.signal(p, syscall.SIGKILL, "kill-producer")
			} else if p != nil {
				r.signal(p, syscall.SIGTERM, "term-producer")
			}
		default:
			lockMu.Lock()
			busy := lockBusy
			lockBusy = true
			lockMu.Unlock()
			if !busy {
				hold := time.Duration(1000+rng.IntN(3000)) * time.Millisecond
				r.bg.Add(1)
				go func() {
					defer r.bg.Done()
					r.holdWriteLock(hold)
					lockMu.Lock()
					lockBusy = false
					lockMu.Unlock()
				}()
			}
		}
	}
}

// pick chooses a running, not paused process of kind (with a lease of at
// most maxLease when set), or nil.
func (r *runner) pick(rng *rand.Rand, kind string, maxLease time.Duration) *proc {
	r.mu.Lock()
	defer r.mu.Unlock()
	var cands []*proc
	for p := range r.running {
		if p.kind == kind && !p.stopped && (maxLease == 0 || p.lease <= maxLease) {
			cands = append(cands, p)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	// map order is random, but not rng's: sort for repeatable choices.
	sort.Slice(cands, func(i, j int) bool { return cands[i].name < cands[j].name })
	return cands[rng.IntN(len(cands))]
}

func (r *runner) signal(p *proc, sig syscall.Signal, action string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.running[p] {
		return
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		return
	}
	p.sent = append(p.sent, sig)
	now := time.Now()
	r.chaos = append(r.chaos, chaosEvent{Action: action, Proc: p.name, PID: p.pid, At: now, Until: now})
}

// pause sends SIGSTOP, and SIGCONT after d.
func (r *runner) pause(p *proc, action string, d time.Duration) {
	r.mu.Lock()
	if !r.running[p] || p.stopped {
		r.mu.Unlock()
		return
	}
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		r.mu.Unlock()
		return
	}
	p.stopped = true
	p.sent = append(p.sent, syscall.SIGSTOP)
	at := time.Now()
	r.mu.Unlock()
	r.bg.Add(1)
	go func() {
		defer r.bg.Done()
		time.Sleep(d)
		r.mu.Lock()
		defer r.mu.Unlock()
		p.cmd.Process.Signal(syscall.SIGCONT)
		p.stopped = false
		p.sent = append(p.sent, syscall.SIGCONT)
		r.chaos = append(r.chaos, chaosEvent{Action: action, Proc: p.name, PID: p.pid, At: at, Until: time.Now()})
	}()
}

// holdWriteLock takes the database's write lock from outside daguq (BEGIN
// IMMEDIATE) and holds it for d: every daguq write waits meanwhile.
func (r *runner) holdWriteLock(d time.Duration) {
	db, err := openDB(r.db, 60*time.Second)
	if err != nil {
		r.fail("write lock: %v", err)
		return
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		r.fail("write lock: begin: %v", err)
		return
	}
	at := time.Now()
	time.Sleep(d)
	tx.Rollback()
	r.mu.Lock()
	r.chaos = append(r.chaos, chaosEvent{Action: "lock", At: at, Until: time.Now()})
	r.mu.Unlock()
}

// finalDrain runs clean drain consumers until no live message is left:
// retries and delays come due, leases of killed consumers run out.
func (r *runner) finalDrain(ctx context.Context) error {
	db, err := openDB(r.db, 60*time.Second)
	if err != nil {
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(r.cfg.Drain)
	for n := 1; ; n++ {
		name := fmt.Sprintf("%s.%d", drainSlot.name, n)
		p, err := r.start(name, "drain", drainSlot.name, drainSlot.lease, r.consumeArgs(drainSlot, name), true)
		if err != nil {
			return err
		}
		<-p.done
		live, err := liveCount(ctx, db)
		if err != nil {
			return err
		}
		if live == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d messages still live after %s", live, r.cfg.Drain)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func liveCount(ctx context.Context, db *sql.DB) (int, error) {
	var n int
	err := db.QueryRowContext(ctx, `SELECT count(*) FROM messages WHERE state < 2`).Scan(&n) // ready, delayed or leased
	return n, err
}
