package stopdeadline

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Margin is the time store calls get after the grace.
const Margin = 1500 * time.Millisecond

// ErrPassed is the cause of a store context's end at the stop deadline.
var ErrPassed = errors.New("stop deadline passed")

// Deadline is when the store calls of a stopping process end: grace +
// Margin after the first Stop, or Margin after the first Hurry, whichever
// comes first. Its methods may be called from any goroutine.
type Deadline struct {
	grace   time.Duration
	stopped chan struct{} // closed by the first Stop
	hurried chan struct{} // closed by the first Hurry

	mu     sync.Mutex
	stopAt time.Time // when the first Stop came
	killAt time.Time // when the first Hurry came
}

// New returns the deadline of a process that gives its work grace to end
// after a stop.
func New(grace time.Duration) *Deadline {
	return &Deadline{grace: grace, stopped: make(chan struct{}), hurried: make(chan struct{})}
}

// Stop starts the stop. It reports whether this call was the first; later
// calls change nothing.
func (d *Deadline) Stop() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stopLocked()
}

func (d *Deadline) stopLocked() bool {
	select {
	case <-d.stopped:
		return false
	default:
		d.stopAt = time.Now()
		close(d.stopped)
		return true
	}
}

// Hurry is a stop without grace (SIGKILL): it stops, and brings the
// deadline to Margin from now if that is sooner. Later calls change
// nothing.
func (d *Deadline) Hurry() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopLocked()
	if d.killAt.IsZero() {
		d.killAt = time.Now()
		close(d.hurried)
	}
}

// Stopped is closed by the first Stop or Hurry.
func (d *Deadline) Stopped() <-chan struct{} { return d.stopped }

// IsStopped reports whether Stop or Hurry was called.
func (d *Deadline) IsStopped() bool {
	select {
	case <-d.stopped:
		return true
	default:
		return false
	}
}

// Context is the context of store calls: it ignores the cancellation of
// ctx (work is still given back after it) and ends at the deadline, with
// ErrPassed as its cause. cancel releases its resources.
func (d *Deadline) Context(ctx context.Context) (context.Context, context.CancelFunc) {
	sctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	go func() {
		select {
		case <-d.stopped:
		case <-sctx.Done():
			return
		}
		hurried := d.hurried
		for {
			timer := time.NewTimer(time.Until(d.at()))
			select {
			case <-timer.C:
				cancel(ErrPassed)
				return
			case <-hurried: // the deadline may have moved closer
				hurried = nil
				timer.Stop()
			case <-sctx.Done():
				timer.Stop()
				return
			}
		}
	}()
	return sctx, func() { cancel(context.Canceled) }
}

// at is the deadline. Stop has been called.
func (d *Deadline) at() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	at := d.stopAt.Add(d.grace + Margin)
	if !d.killAt.IsZero() && d.killAt.Add(Margin).Before(at) {
		at = d.killAt.Add(Margin)
	}
	return at
}

// Bound is how long after the first Stop the store calls could run. Stop
// has been called.
func (d *Deadline) Bound() time.Duration {
	at := d.at()
	d.mu.Lock()
	defer d.mu.Unlock()
	return at.Sub(d.stopAt)
}

// Passed reports whether ctx, a store context, ended at the deadline: a
// store call that failed then was given up, not refused.
func Passed(ctx context.Context) bool {
	return errors.Is(context.Cause(ctx), ErrPassed)
}
