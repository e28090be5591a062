package cli_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/daguq/daguq/internal/pgtest"
	"github.com/daguq/daguq/internal/proctest"
	"github.com/daguq/daguq/internal/stopdeadline"
)

// A consumer stopped with SIGTERM while the PostgreSQL server is down exits
// by the stop deadline (grace + 1.5 s) instead of waiting up to a minute for
// the server: the acks of the batches its handlers finished during the
// outage and the release of the batch it stopped are given up, stderr says
// so once, naming the queue and the count and not the password, and those
// messages stay leased. Once the server is back and their leases ran out, a
// second consumer gets them as their next attempt: every message handled,
// twice only those the stopped consumer's handlers had handled.
func TestPostgresStopWhileServerDown(t *testing.T) {
	t.Parallel()
	const total, batch = 50, 10
	const lease, grace = 3 * time.Second, 500 * time.Millisecond
	const bound = grace + stopdeadline.Margin
	srv := pgtest.NewServer(t)
	e := newEnv(t)
	e.setenv("DAGUQ_DB", srv.NewDatabase(t))
	e.ok(strings.NewReader(jsonLines(total)), "enqueue", "--queue", "jobs", "--file", "-")
	out := filepath.Join(e.dir, "out")
	consume := func(name, pause string) []string {
		args := []string{"consume", "--queue", "jobs", "--batch-size", fmt.Sprint(batch), "--concurrency", "2",
			"--lease", lease.String(), "--grace", grace.String(), "--progress-interval", "0s", "--consumer", name, "--"}
		return append(args, proctest.RecordingHandler(t, out, name, pause)...)
	}

	// Two handlers run for a second each; a third batch is leased ahead.
	c := e.start(consume("stopped", "1")...)
	proctest.WaitHandled(t, 2*batch, 30*time.Second, out)
	started := time.Now() // the two handlers started before
	if s := e.stats("jobs"); s.InFlight != 3*batch {
		t.Fatalf("before the stop: %+v, want 3 batches in flight\nstderr: %s", s, c.stderr.String())
	}
	srv.Stop(t)
	down := time.Now()
	// The handlers end while the server is down: their acks wait for it,
	// and the third batch for a handler's slot.
	time.Sleep(time.Until(started.Add(1500 * time.Millisecond)))

	c.cmd.Process.Signal(syscall.SIGTERM)
	term := time.Now()
	select {
	case <-c.done:
	case <-time.After(bound + 10*time.Second):
		c.cmd.Process.Kill()
		<-c.done
		t.Fatalf("daguq consume still ran %s after SIGTERM with the server down (stop deadline %s)\nstderr: %s",
			time.Since(term).Round(time.Millisecond), bound, c.stderr.String())
	}
	took := time.Since(term)
	stderr := c.stderr.String()
	t.Logf("exited %s after SIGTERM (stop deadline %s); stderr:\n%s", took.Round(time.Millisecond), bound, stderr)
	// The deadline, and the time to print the summary and exit.
	if took > bound+2*time.Second {
		t.Errorf("exited %s after SIGTERM, want about %s", took.Round(time.Millisecond), bound)
	}
	if code := c.cmd.ProcessState.ExitCode(); code != 4 {
		t.Errorf("exit %d, want 4 (stopped)", code)
	}
	var sum struct {
		Stopped                               bool
		Messages, Acked, Released, Unfinished int
	}
	if err := json.Unmarshal([]byte(c.stdout.String()), &sum); err != nil {
		t.Fatalf("stdout is not the summary: %v\n%s", err, c.stdout.String())
	}
	if !sum.Stopped || sum.Acked != 0 || sum.Unfinished < 2*batch || sum.Unfinished+sum.Released != sum.Messages {
		t.Errorf("summary %+v: want stopped, nothing acked, the finished batches unfinished", sum)
	}
	notice := fmt.Sprintf("queue jobs: %d messages could not be acked, nacked or released", sum.Unfinished)
	if n := strings.Count(stderr, "could not be acked"); n != 1 || !strings.Contains(stderr, notice) {
		t.Errorf("stderr says %d times that messages could not be finished, want once: %q", n, notice)
	}
	if strings.Contains(stderr+c.stdout.String(), pgtest.Password) {
		t.Errorf("the output shows the password")
	}

	// Back up: once their leases ran out, the messages left to them are
	// delivered again, as the next attempt (a release would have given the
	// attempt back).
	srv.Start(t)
	time.Sleep(time.Until(down.Add(lease + 500*time.Millisecond)))
	e.ok(nil, consume("after", "0")...)
	byN := proctest.ReadDeliveries(t, out)
	again, nextAttempt := 0, 0
	for n := range total {
		ds := byN[n]
		switch {
		case len(ds) == 0:
			t.Errorf("message %d was never handled", n)
			continue
		case len(ds) > 2:
			t.Errorf("message %d handled %d times: %+v", n, len(ds), ds)
			continue
		case len(ds) == 2:
			again++
			if ds[0].Attempt > ds[1].Attempt {
				ds[0], ds[1] = ds[1], ds[0]
			}
			if ds[0].Consumer != "stopped" || ds[1].Attempt != ds[0].Attempt+1 {
				t.Errorf("message %d handled twice, not as a redelivery after the stop: %+v", n, ds)
			}
		}
		if last := ds[len(ds)-1]; last.Consumer == "after" && last.Attempt == 2 {
			nextAttempt++
		}
	}
	if again != 2*batch || nextAttempt != sum.Unfinished {
		t.Errorf("%d messages handled again (want the %d handled before the stop), %d delivered again as the next attempt (want the %d left to their lease)",
			again, 2*batch, nextAttempt, sum.Unfinished)
	}
	if s := e.stats("jobs"); s.Ready+s.InFlight+s.Delayed+s.Dead != 0 {
		t.Errorf("left in the queue: %+v", s)
	}
}
