package cli_test

import (
	"strings"
	"testing"

	"github.com/daguq/daguq/dispatch"
	"github.com/daguq/daguq/dispatch/daguapitest"
)

// A dispatcher stopped while another process holds SQLite's write lock
// exits by its stop deadline (4.5 s) instead of waiting for the lock
// (30 s) to release the batch it was filling: the batch stays leased, and
// stderr says so once, naming the queue and the count.
func TestDispatchStopWhileWriteLockHeld(t *testing.T) {
	t.Parallel()
	const bound = dispatch.StopBound
	e := newEnv(t)
	dagu := daguapitest.New(t, dispatchKey)
	e.setenv("DAGUQ_DAGU_TOKEN", dispatchKey)
	e.ok(strings.NewReader(jsonLines(3)), "enqueue", "--queue", "jobs", "--file", "-")
	// A batch of 10 lingers for more messages: claimed, no run asked for.
	d := e.start("dispatch", "--queue", "jobs", "--dag", "jobs-batch", "--batch-size", "10", "--max-wait", "1h",
		"--poll", "20ms", "--dagu-url", dagu.URL)
	waitFor(t, "the batch claimed", &d.stderr, func() bool { return e.stats("jobs").InFlight == 3 })
	unlock := e.holdWriteLock()
	code, stderr := d.terminate(t, bound)
	if code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	notice := `queue "jobs": 3 messages could not be released within 4.5s of the stop`
	if n := strings.Count(stderr, "could not be released"); n != 1 || !strings.Contains(stderr, notice) || !strings.Contains(stderr, "0 released, 3 left to their lease") {
		t.Errorf("stderr says %d times that messages could not be released, want once: %q, and the count in the summary", n, notice)
	}
	if strings.Contains(stderr, dispatchKey) {
		t.Error("stderr shows the Dagu key")
	}
	unlock()
	if st := e.stats("jobs"); st.InFlight != 3 || st.Ready != 0 {
		t.Errorf("after the stop: %+v, want the 3 messages left to their lease", st)
	}
}
