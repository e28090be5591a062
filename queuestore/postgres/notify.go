package postgres

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/daguq/daguq/queuestore"
)

// Wakeups (docs/postgres.md#wakeups): an enqueue that makes messages ready
// sends NOTIFY daguq with the queue's name, and a store whose consumer
// waits for a queue LISTENs on one connection of its own. Both are hints on
// top of polling: a lost notification costs a poll interval, never a
// message.

// notifyChannel is the channel daguq notifies on; the payload is the queue.
const notifyChannel = "daguq"

// notifyWindow is the debounce window: a store sends at most one
// notification per queue at the start of a window and one at its end,
// whatever the number of enqueues in it. NOTIFY takes a database-wide lock
// at commit, so one per message would make busy producers take turns.
const notifyWindow = 50 * time.Millisecond

// listenRetry is the pause before the listening connection is opened again
// after it failed.
const listenRetry = time.Second

var _ queuestore.Waiter = (*Store)(nil)

// notifier debounces a store's notifications, per queue.
type notifier struct {
	mu     sync.Mutex
	last   map[string]time.Time // per queue: when a notification was last sent
	queued map[string]bool      // per queue: a trailing notification is scheduled
	closed bool
}

// notifyAfterCommit tells listeners that queues have new ready messages,
// once the transaction that stored them has committed.
func (s *Store) notifyAfterCommit(queues []string) {
	if send := s.debounce(queues); len(send) > 0 {
		s.sendNotify(send)
	}
}

// notifyInTx is notifyAfterCommit inside the caller's transaction
// (EnqueueTx): PostgreSQL delivers the notification when it commits, and
// drops it when it rolls back. A trailing notification may come before
// that commit; the listeners then find the messages at their next poll.
func (s *Store) notifyInTx(ctx context.Context, tx pgx.Tx, queues []string) error {
	if send := s.debounce(queues); len(send) > 0 {
		_, err := tx.Exec(ctx, sqlNotify, notifyChannel, send)
		return err
	}
	return nil
}

// debounce is the queues to notify now: those not notified within the
// window. For the others it schedules one notification at the window's
// end, unless one is scheduled already.
func (s *Store) debounce(queues []string) []string {
	now := time.Now()
	var send []string
	n := &s.notifier
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil
	}
	for _, q := range queues {
		switch since := now.Sub(n.last[q]); {
		case since >= notifyWindow:
			n.last[q] = now
			send = append(send, q)
		case !n.queued[q]:
			n.queued[q] = true
			time.AfterFunc(notifyWindow-since, func() { s.trailingNotify(q) })
		}
	}
	return send
}

// trailingNotify sends the notification the window held back.
func (s *Store) trailingNotify(queue string) {
	n := &s.notifier
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	delete(n.queued, queue)
	n.last[queue] = time.Now()
	n.mu.Unlock()
	s.sendNotify([]string{queue})
}

// sendNotify notifies, outside any transaction: a failure only costs the
// listeners a poll interval, so it is not reported.
func (s *Store) sendNotify(queues []string) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.ConnectTimeout)
	defer cancel()
	s.pool.Exec(ctx, sqlNotify, notifyChannel, queues)
}

// listener holds the one connection a store LISTENs on, opened at the
// first WaitReady and reopened after a failure, and wakes the waiters of a
// queue when a notification names it.
type listener struct {
	mu      sync.Mutex
	started bool
	wake    map[string]chan struct{} // per queue: closed (and replaced) by a notification
	cancel  context.CancelFunc
	done    chan struct{}
}

// WaitReady waits until a notification says queue may have ready messages,
// max passes, or ctx ends. Without LISTEN (daguq_listen=off in the URL,
// for PgBouncer in transaction mode) it waits for max or ctx: polling.
func (s *Store) WaitReady(ctx context.Context, queue string, max time.Duration) {
	var wake <-chan struct{}
	if s.listens {
		wake = s.waitChan(queue)
	}
	t := time.NewTimer(max)
	defer t.Stop()
	select {
	case <-wake:
	case <-t.C:
	case <-ctx.Done():
	}
}

// waitChan is the channel the next notification for queue closes,
// starting the listener when needed; nil after Close.
func (s *Store) waitChan(queue string) <-chan struct{} {
	l := &s.listener
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.wake == nil { // closed
		return nil
	}
	if !l.started {
		l.started = true
		ctx, cancel := context.WithCancel(context.Background())
		l.cancel, l.done = cancel, make(chan struct{})
		go s.runListener(ctx)
	}
	ch := l.wake[queue]
	if ch == nil {
		ch = make(chan struct{})
		l.wake[queue] = ch
	}
	return ch
}

// wakeUp wakes the waiters of queue, or of every queue for "".
func (s *Store) wakeUp(queue string) {
	l := &s.listener
	l.mu.Lock()
	defer l.mu.Unlock()
	for q, ch := range l.wake {
		if queue == "" || q == queue {
			close(ch)
			delete(l.wake, q)
		}
	}
}

// runListener keeps a LISTEN connection open until ctx ends, reconnecting
// after failures; waiters fall back to their poll interval meanwhile.
func (s *Store) runListener(ctx context.Context) {
	defer close(s.listener.done)
	for ctx.Err() == nil {
		err := s.listenOnce(ctx)
		if ctx.Err() != nil || err == nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(listenRetry):
		}
	}
}

func (s *Store) listenOnce(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, s.listenConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel); err != nil {
		return err
	}
	// Notifications sent while no connection listened are lost: wake every
	// waiter to claim once.
	s.wakeUp("")
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if errors.Is(err, context.Canceled) && ctx.Err() != nil {
				return nil
			}
			return err
		}
		s.wakeUp(n.Payload)
	}
}

// closeWakeups stops the listener and the trailing notifications, and
// wakes every waiter.
func (s *Store) closeWakeups() {
	s.notifier.mu.Lock()
	s.notifier.closed = true
	s.notifier.mu.Unlock()
	l := &s.listener
	l.mu.Lock()
	cancel, done := l.cancel, l.done
	for _, ch := range l.wake {
		close(ch)
	}
	l.wake = nil
	l.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}
