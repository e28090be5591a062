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
	"time"
)

// cli drains the same queue three ways, each in its own process: the store
// in process (Claim, no-op, Ack), the same running `true` per batch, and
// `daguq consume --batch-size 100 -- true`. The differences, divided by the
// number of batches, are the per-batch costs of the process model.
func (b *bench) cli() error {
	bin, err := b.daguqBinary()
	if err != nil {
		return err
	}
	n, batch := b.c.n, 100
	b.progress("CLI: %d messages through %s consume --batch-size %d -- true", n, filepath.Base(bin), batch)
	msgs := b.path("cli-messages.txt")
	f, err := os.Create(msgs)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for id := range n {
		w.Write(body(id)[:bodySize-1])
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		return err
	}
	f.Close()
	defer os.Remove(msgs)

	tmpl := b.path("cli-template.db")
	removeDB(tmpl)
	start := time.Now()
	out, err := exec.Command(bin, "--db", tmpl, "enqueue", "--queue", benchQueue, "--raw", "--file", msgs).Output()
	if err != nil {
		return fmt.Errorf("daguq enqueue: %w: %s", err, stderrOf(err))
	}
	enqueueRate := float64(n) / time.Since(start).Seconds()
	var enq struct{ Enqueued int }
	if err := json.Unmarshal(out, &enq); err != nil || enq.Enqueued != n {
		return fmt.Errorf("daguq enqueue stored %d of %d (%v)", enq.Enqueued, n, err)
	}
	if err := checkpoint(tmpl); err != nil {
		return err
	}
	defer removeDB(tmpl)

	empty := b.path("cli-empty.db")
	removeDB(empty)
	if err := (daguqSystem{}).create(context.Background(), empty); err != nil {
		return err
	}
	defer removeDB(empty)
	var inProc, inProcSh, viaCLI, startCLI []float64
	var rss int64
	db := b.path("cli.db")
	cmdLine := []string{"consume", "--queue", benchQueue, "--batch-size", strconv.Itoa(batch), "--progress-interval", "0", "--", "true"}
	for run := range b.c.runs {
		d, _, err := runCLI(bin, empty, cmdLine, 0)
		if err != nil {
			return err
		}
		startCLI = append(startCLI, d.Seconds())
		for _, way := range rotate([]string{"in", "sh", "cli"}, run) {
			if err := copyFile(db, tmpl); err != nil {
				return err
			}
			switch way {
			case "in", "sh":
				role := "consume"
				if way == "sh" {
					role = "consume-exec"
				}
				rs, err := runWorkers([]workerSpec{{Role: role, System: daguqSystem{}.name(), DB: db, Batch: batch}}, stopAt(int64(n), 0), b.log)
				if err != nil {
					return err
				}
				if rs[0].Acked != n {
					return fmt.Errorf("in-process drain (%s) acked %d of %d: %s", role, rs[0].Acked, n, rs[0].FirstErr)
				}
				d := span(rs).Seconds()
				if way == "in" {
					inProc = append(inProc, d)
				} else {
					inProcSh = append(inProcSh, d)
				}
			case "cli":
				d, peak, err := runCLI(bin, db, cmdLine, n)
				if err != nil {
					return err
				}
				viaCLI = append(viaCLI, d.Seconds())
				rss = max(rss, peak)
			}
			removeDB(db)
		}
	}
	sec := func(xs []float64) time.Duration { return time.Duration(median(xs) * float64(time.Second)) }
	b.rep.cli = &cliResult{batches: (n + batch - 1) / batch, inProcess: sec(inProc), inProcessSh: sec(inProcSh),
		cli: sec(viaCLI), cliStart: sec(startCLI), cliRSSKB: rss, enqueueRate: enqueueRate,
		command: "daguq consume --queue bench --batch-size 100 -- true"}
	b.progress("  in process %.2fs, with `true` per batch %.2fs, daguq consume %.2fs; daguq enqueue --file %.0f msg/s",
		median(inProc), median(inProcSh), median(viaCLI), enqueueRate)
	return nil
}

func rotate(xs []string, k int) []string {
	out := make([]string, len(xs))
	for i := range xs {
		out[i] = xs[(i+k)%len(xs)]
	}
	return out
}

// runCLI runs `daguq consume` to the end, checks that it acked n messages,
// and samples its peak RSS (VmHWM) while it runs.
func runCLI(bin, db string, args []string, n int) (time.Duration, int64, error) {
	cmd := exec.Command(bin, append([]string{"--db", db}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
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
				return 0, 0, fmt.Errorf("daguq consume: %w: %s", err, stderr.String())
			}
			var sum struct{ Acked int }
			if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil || sum.Acked != n {
				return 0, 0, fmt.Errorf("daguq consume acked %d of %d (%v): %s", sum.Acked, n, err, stdout.String())
			}
			return d, peak, nil
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
	if !bytes.Contains(help, []byte("--batch-size")) {
		return "", errors.New("this daguq has no `consume --batch-size`")
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
