package executor

import (
	"context"
	"io"
	"os"
	"time"
)

// Progress is told how far long work has come, for a progress bar on a
// terminal (daguq's CLI sets one when stderr is a terminal). Dagu never
// sets it: its steps keep the plain progress lines on stderr.
type Progress interface {
	// Start begins the report, or changes its total: total units of unit
	// ("bytes", "messages") are expected; -1 when unknown.
	Start(total int64, unit string)
	// Set reports the units done so far.
	Set(done int64)
	// Finish ends the report.
	Finish()
}

// ProgressSetter is implemented by the executors that report progress:
// enqueue (bytes of its file read) and queue's consume action (messages
// finished). With a Progress set, consume reports to it instead of
// printing progress lines.
type ProgressSetter interface {
	SetProgress(Progress)
}

var (
	_ ProgressSetter = (*enqueueExecutor)(nil)
	_ ProgressSetter = (*queueExecutor)(nil)
)

// SetProgress sets where enqueue reports the bytes of its file read.
func (e *enqueueExecutor) SetProgress(p Progress) { e.progress = p }

// SetProgress sets where consume reports the messages it finished.
func (e *queueExecutor) SetProgress(p Progress) { e.progress = p }

// fileSize is the size of r when it is a regular file, else -1.
func fileSize(r io.Reader) int64 {
	f, ok := r.(*os.File)
	if !ok {
		return -1
	}
	info, err := f.Stat()
	if err != nil || !info.Mode().IsRegular() {
		return -1
	}
	return info.Size()
}

// progressReader reports the bytes read through it.
type progressReader struct {
	r    io.Reader
	p    Progress
	read int64
}

func (pr *progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	pr.read += int64(n)
	pr.p.Set(pr.read)
	return n, err
}

// barEvery is how often consume updates its Progress.
const barEvery = 200 * time.Millisecond

// progressBar reports the messages finished (acked or dead) to the
// executor's Progress until stop: against the queue's ready count at the
// start when draining, open-ended otherwise.
func (c *consumer) progressBar(p Progress, stop <-chan struct{}) {
	total := int64(-1)
	if c.cfg.Mode == ModeDrain {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if st, err := c.store.Stats(ctx, c.cfg.Queue); err == nil && st.Ready+st.InFlight > 0 {
			total = st.Ready + st.InFlight
		}
		cancel()
	}
	p.Start(total, "messages")
	t := time.NewTicker(barEvery)
	defer t.Stop()
	report := func() {
		c.mu.Lock()
		done := int64(c.sum.Acked + c.sum.Dead)
		c.mu.Unlock()
		if total >= 0 && done > total { // more arrived while draining
			total = done
			p.Start(total, "messages")
		}
		p.Set(done)
	}
	for {
		select {
		case <-stop:
			report()
			p.Finish()
			return
		case <-t.C:
			report()
		}
	}
}
