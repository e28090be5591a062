package executor

import (
	"context"
	"errors"
	"time"
)

// The stop deadline. Dagu stops a step with SIGTERM and expects it to end
// soon; it cancels nothing else. The store calls a stopping step still makes
// (the acks of finished batches, the releases of unfinished ones, the
// heartbeat's extends) would otherwise wait for an unreachable server or a
// busy write lock as long as the store lets them (a minute for PostgreSQL).
// They run instead on a context that ends stopMargin after the handlers'
// grace, counted from the first Kill, or stopMargin after a Kill(SIGKILL),
// whichever comes first: with the default grace of 3 s, 4.5 s after the
// stop, under Dagu's default max_clean_up_time_sec (5 s). What is not
// finished by then stays leased and is delivered again after its lease.

// stopMargin is the time store calls get after the handlers' grace.
const stopMargin = 1500 * time.Millisecond

// errStopDeadline is the cause of the store context's end at the stop
// deadline.
var errStopDeadline = errors.New("stop deadline passed")

// storeContext is the context of the step's store calls: it ignores the
// cancellation of ctx (a cancelled context stops the step like Kill, and
// the step's leases are still given back after it) and ends at the stop
// deadline. cancel releases its resources.
func (e *queueExecutor) storeContext(ctx context.Context) (context.Context, context.CancelFunc) {
	sctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	go func() {
		select {
		case <-e.stopped:
		case <-sctx.Done():
			return
		}
		hurried := e.hurried
		for {
			deadline := time.NewTimer(time.Until(e.stopDeadline()))
			select {
			case <-deadline.C:
				cancel(errStopDeadline)
				return
			case <-hurried: // Kill(SIGKILL): the deadline may have moved closer
				hurried = nil
				deadline.Stop()
			case <-sctx.Done():
				deadline.Stop()
				return
			}
		}
	}()
	return sctx, func() { cancel(context.Canceled) }
}

// stopDeadline is when the store calls of a stopping step end. Kill has
// been called.
func (e *queueExecutor) stopDeadline() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	d := e.stopAt.Add(e.cfg.Grace + stopMargin)
	if !e.killAt.IsZero() {
		d = minTime(d, e.killAt.Add(stopMargin))
	}
	return d
}

// stopBound is how long after the first Kill the store calls could run.
func (e *queueExecutor) stopBound() time.Duration {
	d := e.stopDeadline()
	e.mu.Lock()
	defer e.mu.Unlock()
	return d.Sub(e.stopAt)
}

// pastStopDeadline reports whether ctx, a store context, ended at the stop
// deadline: a store call that failed then was given up, not refused.
func pastStopDeadline(ctx context.Context) bool {
	return errors.Is(context.Cause(ctx), errStopDeadline)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
