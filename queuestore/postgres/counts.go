package postgres

import (
	"context"
	"sort"

	"github.com/daguq/daguq/queuestore"
)

// counts is what one transaction changes in one queue's counts: state
// counts and counters, added with one statement before the transaction
// commits, so that stats and metrics never count rows and every process's
// work is counted where it commits. Every change is derived from the rows
// a statement changed (RETURNING), never from a count taken before.
type counts struct {
	readySet, waiting, waitingLeased, dead, acked int64
	enqueued, claimed                             int64
	settled                                       [5]int64 // in queuestore.Outcomes order
	redriven, purged                              int64
	waitCount, waitSumMs                          int64
	wait                                          [12]int64 // per queuestore.WaitBuckets bound, not cumulative
}

// Indexes into counts.settled, in queuestore.Outcomes order.
const (
	settledAcked = iota
	settledRetried
	settledDead
	settledExpired
	settledReleased
)

// Message states as stored (daguq_messages.state).
const (
	codeReady   = 0 // in the ready set, which claims walk
	codeWaiting = 1 // delayed, retrying or leased until visible_at
	codeDead    = 2
	codeAcked   = 3
)

func (c *counts) zero() bool { return *c == counts{} }

// leaveLive takes one live message out of its state: 0 the ready set, 1
// waiting (leased when it had a lease).
func (c *counts) leaveLive(state int16, leased bool) {
	if state == codeReady {
		c.readySet--
		return
	}
	c.waiting--
	if leased {
		c.waitingLeased--
	}
}

// ackWait counts one ack's enqueue-to-ack wait.
func (c *counts) ackWait(waitMs int64) {
	c.waitCount++
	c.waitSumMs += max(waitMs, 0)
	if i := queuestore.WaitBucket(waitMs); i >= 0 {
		c.wait[i]++
	}
}

// queueCounts collects the changes of one transaction, per queue.
type queueCounts map[string]*counts

func (q queueCounts) of(queue string) *counts {
	c := q[queue]
	if c == nil {
		c = &counts{}
		q[queue] = c
	}
	return c
}

// flush records the collected changes in daguq_count_deltas, one row per
// queue, in name order (a fixed order of row locks in every transaction).
func (q queueCounts) flush(ctx context.Context, tx querier) error {
	names := make([]string, 0, len(q))
	for name, c := range q {
		if !c.zero() {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		c := q[name]
		args := []any{name, c.readySet, c.waiting, c.waitingLeased, c.dead, c.acked, c.enqueued, c.claimed}
		for _, n := range c.settled {
			args = append(args, n)
		}
		args = append(args, c.redriven, c.purged, c.waitCount, c.waitSumMs)
		for _, n := range c.wait {
			args = append(args, n)
		}
		if _, err := tx.Exec(ctx, sqlAddCounts, args...); err != nil {
			return err
		}
	}
	return nil
}

// flush is queueCounts.flush for a transaction that touches one queue.
func (c *counts) flush(ctx context.Context, tx querier, queue string) error {
	return queueCounts{queue: c}.flush(ctx, tx)
}
