package queuestore

import "context"

// counts is what one transaction changes in one queue's row of
// queue_counts (CountChange), added with one statement when the
// transaction ends (flush).
type counts = CountChange

// queueCounts collects the changes of one transaction, per queue.
type queueCounts = CountChanges

// outcomeColumns are the settled counters' columns, in Outcomes order.
var outcomeColumns = [...]string{"settled_acked", "settled_retried", "settled_dead", "settled_expired", "settled_released"}

// flush adds the collected changes to queue_counts, one statement per queue,
// in name order (a fixed order of row writes in every transaction).
func (q queueCounts) flush(ctx context.Context, tx querier) error {
	for _, name := range q.Queues() {
		if _, err := tx.ExecContext(ctx, sqlAddCounts, q[name].Args(name)...); err != nil {
			return err
		}
	}
	return nil
}

// flushReturning is flush for one queue that also reads the queue's counts
// row id and its claim counter after the change (newLeaseID).
func (c *counts) flushReturning(ctx context.Context, tx querier, queue string, row, claimed *int64) error {
	args := c.Args(queue)
	return tx.QueryRowContext(ctx, sqlAddCounts+` RETURNING rowid, claimed`, args...).Scan(row, claimed)
}

// flushOne is flush for a transaction that touches one queue.
func (c *counts) flush(ctx context.Context, tx querier, queue string) error {
	return queueCounts{queue: c}.flush(ctx, tx)
}
