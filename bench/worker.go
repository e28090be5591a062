package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The bench binary re-executes itself as a worker: `bench worker SPEC`, with
// SPEC a JSON workerSpec. A worker opens the database, prints "ready", waits
// for "go" on stdin, prints "p N" progress lines (messages acked so far) and
// finally one "result JSON" line. "stop" (or EOF) on stdin stops it.

type workerSpec struct {
	Role      string // "produce", "consume" or "scale"
	System    string
	DB        string
	Batch     int    // consume: claim size; produce: messages per enqueue call
	N         int    // produce: how many messages; scale: how many claims
	StartID   int    // produce: first message id
	UntilStop bool   // consume: keep polling an empty queue until told to stop
	AckEach   bool   // consume: hand messages over one at a time and ack each alone
	IDsFile   string // consume: where to write the delivered ids
	CapMs     int64  // produce: stop after this long
}

type workerResult struct {
	Acked     int
	Delivered int
	Start     int64 // unix ns when "go" arrived
	End       int64 // unix ns of the last ack (or enqueue)
	MaxRSSKB  int64
	CPUNs     int64 // user+sys time of this process between "go" and the end
	Errors    int
	FirstErr  string
	Scale     *scaleResult `json:",omitempty"`
	Pages     *pagesResult `json:",omitempty"`
}

// handler is the no-op message handler: it only records which message ids
// it saw, and counts acks.
type handler struct {
	mu      sync.Mutex
	ids     []uint32
	ack     atomic.Int64
	lastAck atomic.Int64
	errs    atomic.Int64
	errMu   sync.Mutex
	first   string
}

func (h *handler) deliver(b []byte) {
	id := bodyID(b)
	h.mu.Lock()
	h.ids = append(h.ids, uint32(id))
	h.mu.Unlock()
}

func (h *handler) acked(n int) {
	h.ack.Add(int64(n))
	h.lastAck.Store(time.Now().UnixNano())
}

func (h *handler) fail(err error) {
	if h.errs.Add(1) == 1 {
		h.errMu.Lock()
		h.first = err.Error()
		h.errMu.Unlock()
	}
}

func (h *handler) errorCount() int64 { return h.errs.Load() }

func (h *handler) writeIDs(path string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	b := make([]byte, 4*len(h.ids))
	for i, id := range h.ids {
		binary.LittleEndian.PutUint32(b[4*i:], id)
	}
	return os.WriteFile(path, b, 0o600)
}

// cpuTime is this process's user+sys time so far.
func cpuTime() time.Duration {
	var total time.Duration
	// Children: the handler processes a consume-exec worker started.
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if err := syscall.Getrusage(who, &ru); err == nil {
			total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	return total
}

// maxRSSKB is this process's peak resident set in KiB: VmHWM from
// /proc/self/status. getrusage's ru_maxrss would do on its own, but Linux
// carries the parent's peak across fork+exec into it (signal->maxrss), so a
// worker would report the orchestrating parent's size; VmHWM belongs to the
// worker's own address space. getrusage is the fallback off Linux.
func maxRSSKB() int64 {
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				f := strings.Fields(v)
				if len(f) > 0 {
					if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
						return n
					}
				}
			}
		}
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss
}

// runWorker is the worker side; it returns the process exit code.
func runWorker(specJSON string) int {
	var spec workerSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "worker spec:", err)
		return 2
	}
	if err := workerMain(spec); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 1
	}
	return 0
}

func workerMain(spec workerSpec) error {
	ctx := context.Background()
	sys, err := systemByName(spec.System)
	if err != nil {
		return err
	}
	q, err := sys.open(ctx, spec.DB)
	if err != nil {
		return err
	}
	defer q.close()

	goCh, stopCh := make(chan struct{}), make(chan struct{})
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		started := false
		for sc.Scan() {
			switch sc.Text() {
			case "go":
				if !started {
					started = true
					close(goCh)
				}
			case "stop":
				close(stopCh)
				return
			}
		}
		if !started {
			close(goCh)
		}
		close(stopCh)
	}()
	out := bufio.NewWriter(os.Stdout)
	var outMu sync.Mutex
	say := func(format string, args ...any) {
		outMu.Lock()
		fmt.Fprintf(out, format+"\n", args...)
		out.Flush()
		outMu.Unlock()
	}
	say("ready")
	<-goCh
	// BENCH_CPUPROFILE=dir writes each worker's CPU profile there.
	if dir := os.Getenv("BENCH_CPUPROFILE"); dir != "" {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%s-b%d-%d.prof", spec.Role, strings.Fields(spec.System)[0], spec.Batch, os.Getpid())))
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(f)
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}

	h := &handler{}
	cpu0 := cpuTime()
	res := workerResult{Start: time.Now().UnixNano()}
	progressDone := make(chan struct{})
	go func() { // progress, so the parent can stop systems that never see "empty"
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		last := int64(-1)
		for {
			select {
			case <-progressDone:
				return
			case <-t.C:
				if n := h.ack.Load(); n != last {
					last = n
					say("p %d", n)
				}
			}
		}
	}()

	var runErr error
	switch spec.Role {
	case "produce":
		runErr = produce(ctx, q, spec, stopCh, h)
	case "consume":
		if spec.AckEach {
			bq, ok := q.(batchQueue)
			if !ok {
				runErr = fmt.Errorf("%s has no explicit claim", spec.System)
				break
			}
			runErr = claimAheadLoop(ctx, bq, spec.Batch, stopCh, h)
			break
		}
		runErr = q.consume(ctx, spec.Batch, spec.UntilStop, stopCh, h)
	case "consume-exec":
		bq, ok := q.(batchQueue)
		if !ok {
			runErr = fmt.Errorf("%s has no explicit claim", spec.System)
			break
		}
		runErr = consumeExec(ctx, bq, spec.Batch, stopCh, h)
	case "scale":
		bq, ok := q.(batchQueue)
		if !ok {
			runErr = fmt.Errorf("%s has no explicit claim", spec.System)
			break
		}
		res.Scale, runErr = scaleClaims(ctx, bq, spec, h)
	case "pages":
		bq, ok := q.(batchQueue)
		if !ok {
			runErr = fmt.Errorf("%s has no explicit claim", spec.System)
			break
		}
		res.Pages, runErr = walPages(ctx, bq, spec)
	default:
		runErr = fmt.Errorf("unknown role %q", spec.Role)
	}
	close(progressDone)
	if runErr != nil {
		h.fail(runErr)
	}
	res.Acked = int(h.ack.Load())
	res.Delivered = len(h.ids)
	res.End = h.lastAck.Load() // 0 when nothing was acked
	res.Errors = int(h.errs.Load())
	res.FirstErr = h.first
	if spec.IDsFile != "" {
		if err := h.writeIDs(spec.IDsFile); err != nil {
			return err
		}
	}
	res.CPUNs = int64(cpuTime() - cpu0)
	res.MaxRSSKB = maxRSSKB()
	b, _ := json.Marshal(res)
	say("result %s", b)
	return nil
}

// produce enqueues spec.N messages in calls of spec.Batch, stopping early
// when told to or when spec.CapMs has passed. Acks count enqueued messages.
func produce(ctx context.Context, q queue, spec workerSpec, stop <-chan struct{}, h *handler) error {
	deadline := time.Now().Add(time.Duration(spec.CapMs) * time.Millisecond)
	bodies := make([][]byte, 0, spec.Batch)
	for i := 0; i < spec.N; i += spec.Batch {
		select {
		case <-stop:
			return nil
		default:
		}
		if spec.CapMs > 0 && time.Now().After(deadline) {
			return nil
		}
		bodies = bodies[:0]
		for id := spec.StartID + i; id < spec.StartID+min(i+spec.Batch, spec.N); id++ {
			bodies = append(bodies, body(id))
		}
		if err := q.enqueue(ctx, bodies); err != nil {
			return fmt.Errorf("enqueue: %w", err)
		}
		h.acked(len(bodies))
	}
	return nil
}

// proc is the parent's handle on one worker process.
type proc struct {
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	ready    chan struct{}
	progress atomic.Int64
	result   chan workerResult
}

// startWorker starts a worker and waits until it is ready. Its stderr goes
// to logw.
func startWorker(spec workerSpec, logw io.Writer) (*proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(spec)
	cmd := exec.Command(self, "worker", string(b))
	cmd.Stderr = logw
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, stdin: stdin, ready: make(chan struct{}), result: make(chan workerResult, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		got := false
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "ready":
				close(p.ready)
			case strings.HasPrefix(line, "p "):
				n, _ := strconv.ParseInt(line[2:], 10, 64)
				p.progress.Store(n)
			case strings.HasPrefix(line, "result "):
				var r workerResult
				if err := json.Unmarshal([]byte(line[7:]), &r); err == nil {
					got = true
					p.result <- r
				}
			}
		}
		if !got {
			p.result <- workerResult{Errors: 1, FirstErr: "worker exited without a result"}
		}
	}()
	select {
	case <-p.ready:
		return p, nil
	case r := <-p.result:
		cmd.Wait()
		return nil, fmt.Errorf("worker %s/%s did not start: %s (see the log)", spec.System, spec.Role, r.FirstErr)
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		cmd.Wait()
		return nil, errors.New("worker did not start within a minute")
	}
}

func (p *proc) send(cmd string) { fmt.Fprintln(p.stdin, cmd) }

// progressView is what a stop rule sees: each worker's acks so far, whether
// it has exited, and the time since the workers were let go.
type progressView struct {
	acked   []int64
	exited  []bool
	elapsed time.Duration
	quiet   time.Duration // since the total last changed
}

// stopRule says when to tell the workers to stop.
type stopRule func(progressView) bool

// stopAt stops when the workers in idx (all when nil) have acked target
// messages or cap has passed (0: no cap).
func stopAt(target int64, capDur time.Duration, idx ...int) stopRule {
	return func(v progressView) bool {
		var total int64
		for i, n := range v.acked {
			if idx == nil || contains(idx, i) {
				total += n
			}
		}
		return (target > 0 && total >= target) || (capDur > 0 && v.elapsed > capDur)
	}
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// runWorkers starts one worker per spec, lets them go at once, and tells
// them to stop when rule says so. It returns their results in spec order.
func runWorkers(specs []workerSpec, rule stopRule, logw io.Writer) ([]workerResult, error) {
	var procs []*proc
	cleanup := func() {
		for _, p := range procs {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	}
	for _, s := range specs {
		p, err := startWorker(s, logw)
		if err != nil {
			cleanup()
			return nil, err
		}
		procs = append(procs, p)
	}
	for _, p := range procs {
		p.send("go")
	}
	start := time.Now()
	results := make([]workerResult, len(procs))
	have := make([]bool, len(procs))
	stopped := false
	var stoppedAt time.Time
	stopAll := func() {
		if stopped {
			return
		}
		stopped = true
		for _, p := range procs {
			p.send("stop")
		}
	}
	lastTotal, lastChange := int64(-1), time.Now()
	view := progressView{acked: make([]int64, len(procs)), exited: have}
	for left := len(procs); left > 0; {
		var total int64
		for i, p := range procs {
			if have[i] {
				continue
			}
			select {
			case r := <-p.result:
				results[i], have[i] = r, true
				left--
				p.stdin.Close()
				p.cmd.Wait()
			default:
			}
		}
		for i, p := range procs {
			if have[i] {
				view.acked[i] = int64(results[i].Acked)
			} else {
				view.acked[i] = p.progress.Load()
			}
			total += view.acked[i]
		}
		if total != lastTotal {
			lastTotal, lastChange = total, time.Now()
		}
		view.elapsed, view.quiet = time.Since(start), time.Since(lastChange)
		if !stopped && rule(view) {
			stopAll()
			stoppedAt = time.Now()
		}
		if stopped && time.Since(stoppedAt) > 2*time.Minute {
			cleanup()
			return nil, errors.New("workers did not stop within two minutes of being told")
		}
		time.Sleep(2 * time.Millisecond)
	}
	return results, nil
}

// span is the time from the first worker's start to the last ack.
func span(rs []workerResult) time.Duration {
	var first, last int64
	for _, r := range rs {
		if first == 0 || r.Start < first {
			first = r.Start
		}
		if r.End > last {
			last = r.End
		}
	}
	if last == 0 {
		return 0
	}
	return time.Duration(last - first)
}
