package queuestore

import (
	"context"
	"sort"
)

// counts is what one transaction changes in one queue's row of
// queue_counts: state counts and counters, added with one statement when
// the transaction ends (flushCounts), so that stats and metrics never count
// rows and every process's work is counted where it commits.
type counts struct {
	readySet, waiting, waitingLeased, dead, acked int64
	enqueued, claimed                             int64
	settled                                       [len(outcomeColumns)]int64
	redriven, purged                              int64
	waitCount, waitSumMs                          int64
	wait                                          [12]int64 // per WaitBuckets bound, not cumulative
}

// outcomeColumns are the settled counters' columns, in Outcomes order.
var outcomeColumns = [...]string{"settled_acked", "settled_retried", "settled_dead", "settled_expired", "settled_released"}

const (
	settledAcked = iota
	settledRetried
	settledDead
	settledExpired
	settledReleased
)

func (c *counts) zero() bool { return *c == counts{} }

// args are sqlAddCounts's parameters.
func (c *counts) args(queue string) []any {
	args := []any{queue, c.readySet, c.waiting, c.waitingLeased, c.dead, c.acked, c.enqueued, c.claimed}
	for _, n := range c.settled {
		args = append(args, n)
	}
	args = append(args, c.redriven, c.purged, c.waitCount, c.waitSumMs)
	for _, n := range c.wait {
		args = append(args, n)
	}
	return args
}

// leaveLive takes one live message out of its state: 0 the ready set, 1
// waiting (leased when it had a lease).
func (c *counts) leaveLive(state int, leased bool) {
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
	if i := WaitBucket(waitMs); i >= 0 {
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

// flush adds the collected changes to queue_counts, one statement per queue,
// in name order (a fixed order of row writes in every transaction).
func (q queueCounts) flush(ctx context.Context, tx querier) error {
	names := make([]string, 0, len(q))
	for name, c := range q {
		if !c.zero() {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		if _, err := tx.ExecContext(ctx, sqlAddCounts, q[name].args(name)...); err != nil {
			return err
		}
	}
	return nil
}

// flushReturning is flush for one queue that also reads the queue's counts
// row id and its claim counter after the change (newLeaseID).
func (c *counts) flushReturning(ctx context.Context, tx querier, queue string, row, claimed *int64) error {
	args := c.args(queue)
	return tx.QueryRowContext(ctx, sqlAddCounts+` RETURNING rowid, claimed`, args...).Scan(row, claimed)
}

// flushOne is flush for a transaction that touches one queue.
func (c *counts) flush(ctx context.Context, tx querier, queue string) error {
	return queueCounts{queue: c}.flush(ctx, tx)
}
