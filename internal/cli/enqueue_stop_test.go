package cli_test

import (
	"strings"
	"testing"

	"github.com/daguq/daguq/internal/stopdeadline"
)

// A `daguq enqueue` stopped while the database does not take its
// transaction (another process holds SQLite's write lock, which it would
// wait 30 s for) ends by the stop deadline with exit status 4, saying that
// nothing was enqueued; once the lock is free the queue holds nothing of
// it, and the same enqueue run again stores its messages once.
func TestEnqueueStoppedWhileWriteLockHeld(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.ok(nil, "enqueue", "--queue", "jobs", "--message", `{"n":0}`) // creates the database
	unlock := e.holdWriteLock()
	enq := e.start("enqueue", "--queue", "jobs", "--messages", `[{"n":1},{"n":2}]`)
	waitFor(t, "the enqueue to wait for the write lock", &enq.stderr, func() bool {
		return strings.Contains(enq.stderr.String(), "waiting 1s for the write lock")
	})
	code, stderr := enq.terminate(t, stopdeadline.Margin)
	if code != 4 {
		t.Errorf("exit %d, want 4 (stopped)", code)
	}
	if !strings.Contains(stderr, `enqueue to "jobs" stopped`) || !strings.Contains(stderr, "nothing was enqueued") {
		t.Errorf("stderr does not say that the stopped enqueue stored nothing: %q", stderr)
	}
	unlock()
	if st := e.stats("jobs"); st.Ready != 1 {
		t.Errorf("%d ready after the stopped enqueue, want the 1 from before", st.Ready)
	}
	e.ok(nil, "enqueue", "--queue", "jobs", "--messages", `[{"n":1},{"n":2}]`)
	if st := e.stats("jobs"); st.Ready != 3 {
		t.Errorf("%d ready after the enqueue ran again, want 3", st.Ready)
	}
}
