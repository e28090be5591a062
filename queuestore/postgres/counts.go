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
	names := make([]string, 0, len(q))
	for name, c := range q {
		if !c.Zero() {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		if _, err := tx.Exec(ctx, sqlAddCounts, q[name].Args(name)...); err != nil {
			return err
		}
	}
	return nil
}

// flush is queueCounts.flush for a transaction that touches one queue.
func (c *counts) flush(ctx context.Context, tx querier, queue string) error {
	return queueCounts{queue: c}.flush(ctx, tx)
}
