package executor

import (
	"context"

	"github.com/daguq/daguq/queuestore"
)

// idle waits between claims of a watching consumer that found its queue
// empty: for the poll interval, or less when the store hears of new
// messages (queuestore.Waiter: PostgreSQL's LISTEN/NOTIFY), and never past
// Kill or a fatal error.
func (c *consumer) idle(ctx context.Context) {
	w, ok := c.store.(queuestore.Waiter)
	if !ok {
		c.sleep(c.cfg.PollInterval, nil)
		return
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-c.e.stop.Stopped():
		case <-c.halt:
		case <-wctx.Done():
		}
		cancel()
	}()
	w.WaitReady(wctx, c.cfg.Queue, c.cfg.PollInterval)
}
