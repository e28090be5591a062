package postgres

import (
	"context"
	"sort"

	"github.com/daguq/daguq/queuestore"
)

// counts is what one transaction changes in one queue's counts
// (queuestore.CountChange), recorded with one statement before the
// transaction commits (flush).
type counts struct{ queuestore.CountChange }

// Message states as stored (daguq_messages.state).
const (
	codeReady   = 0 // in the ready set, which claims walk
	codeWaiting = 1 // delayed, retrying or leased until visible_at
	codeDead    = 2
	codeAcked   = 3
)

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
	for _, args := range q.rows() {
		if _, err := tx.Exec(ctx, sqlAddCounts, args...); err != nil {
			return err
		}
	}
	return nil
}

// rows are the arguments of sqlAddCounts for each queue with changes, in
// name order.
func (q queueCounts) rows() [][]any {
	names := make([]string, 0, len(q))
	for name, c := range q {
		if !c.Zero() {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	out := make([][]any, len(names))
	for i, name := range names {
		out[i] = q[name].Args(name)
	}
	return out
}

// flush is queueCounts.flush for a transaction that touches one queue.
func (c *counts) flush(ctx context.Context, tx querier, queue string) error {
	return queueCounts{queue: c}.flush(ctx, tx)
}

// queue is flush in t's next batch.
func (c *counts) queue(t *batchTx, queue string) {
	if !c.Zero() {
		t.queue(sqlAddCounts, c.Args(queue)...)
	}
}
