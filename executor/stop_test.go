package executor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/daguq/daguq/internal/proctest"
	"github.com/daguq/daguq/internal/stopdeadline"
	"github.com/daguq/daguq/queuestore"
)

// A step stopped while another process holds SQLite's write lock returns
// by the stop deadline, instead of waiting for the lock (30 s, or as long
// as the lease lasts for a finish): what it could not ack or release stays
// leased, with its attempt spent, and stderr says so once.
//   - finished: the handlers end after the lock was taken; their acks wait
//     for it, then SIGTERM: the deadline is grace + 1.5 s.
//   - killed: the handlers ignore SIGTERM and grace is an hour; a
//     Kill(SIGKILL) ends them, and the deadline is 1.5 s after it.
func TestStopWhileWriteLockHeld(t *testing.T) {
	t.Parallel()
	const total, batch = 30, 10
	for _, tc := range []struct {
		name    string
		handler string
		grace   time.Duration
		stop    func(Executor)
		bound   time.Duration // after the last Kill
	}{
		{name: "finished", handler: "sleep 1\n", grace: 300 * time.Millisecond,
			stop:  func(e Executor) { e.Kill(syscall.SIGTERM) },
			bound: 300*time.Millisecond + stopdeadline.Margin},
		{name: "killed", handler: "trap '' TERM\nsleep 30\n", grace: time.Hour,
			stop: func(e Executor) {
				e.Kill(syscall.SIGTERM)
				time.Sleep(200 * time.Millisecond)
				e.Kill(syscall.SIGKILL)
			},
			bound: stopdeadline.Margin},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			te := setup(t)
			te.enqueueN("q", total)
			marks := filepath.Join(te.dir, "marks")
			os.Mkdir(marks, 0o755)
			te.script("h.sh", "touch \"marks/started.$DAGUQ_BATCH_ID\"\n"+tc.handler)
			e := te.exec(KindQueue, map[string]any{"queue": "q", "run": "./h.sh", "batch_size": batch,
				"concurrency": 2, "lease": "1m", "grace": tc.grace.String()}, nil)
			done := make(chan result, 1)
			go func() { done <- runExecutor(t, e, context.Background()) }()
			waitMarks(t, marks, "started.", 2)
			started := time.Now()
			for te.stats("q").InFlight != 3*batch { // a third batch leased ahead
				if time.Since(started) > 10*time.Second {
					t.Fatalf("never 3 batches in flight: %+v", te.stats("q"))
				}
				time.Sleep(10 * time.Millisecond)
			}
			unlock := proctest.HoldWriteLock(t, te.store().DB())
			time.Sleep(time.Until(started.Add(1500 * time.Millisecond))) // "finished": the handlers ended
			tc.stop(e)
			stopped := time.Now()
			var r result
			select {
			case r = <-done:
			case <-time.After(tc.bound + 10*time.Second):
				t.Fatalf("Run still runs %s after the stop, with the write lock held (stop deadline %s)", time.Since(stopped).Round(time.Millisecond), tc.bound)
			}
			took := time.Since(stopped)
			t.Logf("Run returned %s after the stop (deadline %s); stderr:\n%s", took.Round(time.Millisecond), tc.bound, r.stderr)
			if took > tc.bound+1500*time.Millisecond {
				t.Errorf("Run returned %s after the stop, want about %s", took.Round(time.Millisecond), tc.bound)
			}
			wantExit(t, r.err, ExitStopped)
			s := consumeSummary(t, r)
			if !s.Stopped || s.Unfinished != 3*batch || s.Acked+s.Released+s.Retried+s.Dead != 0 {
				t.Errorf("summary %+v: want the %d messages claimed unfinished", s, 3*batch)
			}
			if n := strings.Count(r.stderr, "could not be acked, nacked or released"); n != 1 || !strings.Contains(r.stderr, "queue q: 30 messages") {
				t.Errorf("stderr says %d times that messages could not be finished, want once, naming queue q and 30 messages", n)
			}
			unlock()
			// Left to their lease: in flight, their attempt spent.
			if st := te.stats("q"); st.InFlight != 3*batch || st.Ready != total-3*batch {
				t.Errorf("after the stop: %+v, want %d in flight", st, 3*batch)
			}
			for _, m := range te.peek("q", queuestore.StateInFlight) {
				if m.Attempt != 1 {
					t.Errorf("message %d has attempt %d, want 1 (not given back)", m.ID, m.Attempt)
				}
			}
		})
	}
}
