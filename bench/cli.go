package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cliSys keys the CLI measurements in the report's runs: not a system of
// the throughput tables.
const cliSys = "CLI"

// The ways the CLI measurement drains one queue, each in its own process.
const (
	wayRaw  = "raw"  // the raw SQLite floor: claim+ack, no queue logic
	wayIn   = "in"   // daguq's store in process: Claim, no-op, Ack
	wayExec = "exec" // the same, starting `true` per batch (fork+exec)
	wayCLI  = "cli"  // `daguq consume --concurrency C -- true`, C appended
)

// metricCLI names a CLI measurement of way at batch.
func metricCLI(way string, batch int) string { return fmt.Sprintf("%s b%d", way, batch) }

func wayConc(c int) string { return wayCLI + strconv.Itoa(c) }

// cli drains the same queue several ways, each in its own process, at each
// of the CLI batch sizes: the raw floor, the store in process, the same
// starting `true` per batch, and `daguq consume -- true` at each
// concurrency. The raw floor and the CLI drains in one run give the ratios
// issue 10 asks for; the in-process drains split the CLI's cost into the
// store, the handler's process and what consume does around it.
func (b *bench) cli() error {
	bin, err := b.daguqBinary()
	if err != nil {
		return err
	}
	n := b.c.n
	b.progress("CLI: %d messages through %s consume -- true, batches %v, concurrency %v", n, filepath.Base(bin), b.c.cliBatches, b.c.cliConc)
	tmpl, enqueueRate, err := b.cliTemplate(bin)
	if err != nil {
		return err
	}
	defer removeDB(tmpl)
	rawTmpl := b.store.locate("cli-raw-template")
	if _, _, err := b.fill(rawSystem{}, "cli-raw-template", n); err != nil {
		return err
	}
	defer removeDB(rawTmpl)
	empty := b.path("cli-empty.db")
	removeDB(empty)
	if err := (daguqSystem{}).create(context.Background(), empty); err != nil {
		return err
	}
	defer removeDB(empty)

	ways := []string{wayRaw, wayIn, wayExec}
	for _, c := range b.c.cliConc {
		ways = append(ways, wayConc(c))
	}
	var startCLI []float64
	var rss int64
	db := b.path("cli.db")
	for run := range b.c.runs {
		d, _, _, err := runCLI(bin, empty, cliArgs(100, 1), 0)
		if err != nil {
			return err
		}
		startCLI = append(startCLI, d.Seconds())
		for _, batch := range b.c.cliBatches {
			for _, way := range rotate(ways, run) {
				src := tmpl
				if way == wayRaw {
					src = rawTmpl
				}
				if err := copyFile(db, src); err != nil {
					return err
				}
				var msgRate, cpuUs float64
				switch way {
				case wayRaw, wayIn, wayExec:
					spec := workerSpec{Role: "consume", System: daguqSystem{}.name(), DB: db, Batch: batch}
					switch way {
					case wayRaw:
						spec.System = rawSystem{}.name()
					case wayExec:
						spec.Role = "consume-exec"
					}
					rs, err := runWorkers([]workerSpec{spec}, stopAt(int64(n), 0), b.log)
					if err != nil {
						return err
					}
					if rs[0].Acked != n {
						return fmt.Errorf("CLI measurement, %s drain at batch %d acked %d of %d: %s", way, batch, rs[0].Acked, n, rs[0].FirstErr)
					}
					msgRate, cpuUs = rate(rs), float64(rs[0].CPUNs)/1e3/float64(n)
				default:
					conc, _ := strconv.Atoi(strings.TrimPrefix(way, wayCLI))
					d, peak, cpu, err := runCLI(bin, db, cliArgs(batch, conc), n)
					if err != nil {
						return err
					}
					rss = max(rss, peak)
					msgRate, cpuUs = float64(n)/d.Seconds(), float64(cpu.Microseconds())/float64(n)
				}
				m := metricCLI(way, batch)
				b.rep.add(run, cliSys, m, msgRate)
				b.rep.add(run, cliSys, "cpu "+m, cpuUs)
				b.progress("  CLI %-10s %8.0f msg/s  %6.1f CPU µs/msg", m, msgRate, cpuUs)
				removeDB(db)
			}
		}
	}
	b.rep.cli = &cliResult{cliStart: time.Duration(median(startCLI) * float64(time.Second)), cliRSSKB: rss, enqueueRate: enqueueRate}
	return nil
}

// cliArgs is `daguq consume` with a no-op handler at batch and conc.
func cliArgs(batch, conc int) []string {
	return []string{"consume", "--queue", benchQueue, "--batch-size", strconv.Itoa(batch),
		"--concurrency", strconv.Itoa(conc), "--progress-interval", "0", "--", "true"}
}

// cliTemplate fills a daguq database through `daguq enqueue --raw --file`
// and returns it with the enqueue's rate.
func (b *bench) cliTemplate(bin string) (string, float64, error) {
	n := b.c.n
	msgs := b.path("cli-messages.txt")
	f, err := os.Create(msgs)
	if err != nil {
		return "", 0, err
	}
	w := bufio.NewWriter(f)
	for id := range n {
		w.Write(body(id)[:bodySize-1])
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		return "", 0, err
	}
	f.Close()
	defer os.Remove(msgs)

	tmpl := b.path("cli-template.db")
	removeDB(tmpl)
	start := time.Now()
	out, err := exec.Command(bin, "--db", tmpl, "enqueue", "--queue", benchQueue, "--raw", "--file", msgs).Output()
	if err != nil {
		return "", 0, fmt.Errorf("daguq enqueue: %w: %s", err, stderrOf(err))
	}
	enqueueRate := float64(n) / time.Since(start).Seconds()
	var enq struct{ Enqueued int }
	if err := json.Unmarshal(out, &enq); err != nil || enq.Enqueued != n {
		return "", 0, fmt.Errorf("daguq enqueue stored %d of %d (%v)", enq.Enqueued, n, err)
	}
	if err := checkpoint(tmpl); err != nil {
		return "", 0, err
	}
	return tmpl, enqueueRate, nil
}

func rotate(xs []string, k int) []string {
	out := make([]string, len(xs))
	for i := range xs {
		out[i] = xs[(i+k)%len(xs)]
	}
	return out
}

// runCLI runs `daguq consume` to the end, checks that it acked n messages,
// samples its peak RSS (VmHWM) while it runs, and returns the CPU time of
// it and every process it waited for (supervisors, handlers).
func runCLI(bin, db string, args []string, n int) (time.Duration, int64, time.Duration, error) {
	cmd := exec.Command(bin, append([]string{"--db", db}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, 0, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var peak int64
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			d := time.Since(start)
			if err != nil {
				return 0, 0, 0, fmt.Errorf("daguq consume: %w: %s", err, stderr.String())
			}
			var sum struct{ Acked int }
			if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil || sum.Acked != n {
				return 0, 0, 0, fmt.Errorf("daguq consume acked %d of %d (%v): %s", sum.Acked, n, err, stdout.String())
			}
			var cpu time.Duration
			if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
				cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
			}
			return d, peak, cpu, nil
		case <-tick.C:
			if v := procHWM(cmd.Process.Pid); v > peak {
				peak = v
			}
		}
	}
}

func procHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			if f := strings.Fields(v); len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return strings.TrimSpace(string(ee.Stderr))
	}
	return ""
}

// daguqBinary is -daguq, or ../cmd/daguq built into the scratch directory.
func (b *bench) daguqBinary() (string, error) {
	if b.c.daguqBin != "" {
		return b.c.daguqBin, nil
	}
	bin := b.path("daguq")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/daguq")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build ../cmd/daguq: %v: %s", err, strings.TrimSpace(string(out)))
	}
	help, _ := exec.Command(bin, "consume", "--help").CombinedOutput()
	if !bytes.Contains(help, []byte("--concurrency")) {
		return "", errors.New("this daguq has no `consume --concurrency`")
	}
	return bin, nil
}

// consumeExec is the in-process drain that also starts `true` per batch,
// with the batch's bodies on its stdin: the handler's own process cost.
func consumeExec(ctx context.Context, q batchQueue, batch int, stop <-chan struct{}, h *handler) error {
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		c, err := q.claim(ctx, batch)
		if err != nil {
			return err
		}
		if c == nil {
			return nil
		}
		bodies := c.bodies()
		cmd := exec.Command("true")
		cmd.Stdin = bytes.NewReader(bytes.Join(bodies, []byte("\n")))
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("handler: %w", err)
		}
		for _, body := range bodies {
			h.deliver(body)
		}
		if err := q.ack(ctx, c); err != nil {
			return err
		}
		h.acked(len(bodies))
	}
}
