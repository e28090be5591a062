package queuestore

import "sort"

// CountChange is what one transaction changes in one queue's kept counts:
// state counts and counters, written once before the transaction commits,
// so that stats and metrics never count rows and every process's work is
// counted where it commits. Both backends keep their counts with it; each
// change is derived from the rows a statement changed, never from a count
// taken before.
type CountChange struct {
	ReadySet, Waiting, WaitingLeased, Dead, Acked int64
	Enqueued, Claimed                             int64
	Settled                                       [5]int64 // indexed by SettledAcked...SettledReleased, in Outcomes order
	Redriven, Purged                              int64
	WaitCount, WaitSumMs                          int64
	Wait                                          [12]int64 // per WaitBuckets bound, not cumulative
}

// Indexes into CountChange.Settled, in Outcomes order.
const (
	SettledAcked = iota
	SettledRetried
	SettledDead
	SettledExpired
	SettledReleased
)

// Zero reports a change that changes nothing.
func (c *CountChange) Zero() bool { return *c == CountChange{} }

// LeaveLive takes one live message out of its state: the ready set, or
// waiting (leased when it had a lease).
func (c *CountChange) LeaveLive(ready, leased bool) {
	if ready {
		c.ReadySet--
		return
	}
	c.Waiting--
	if leased {
		c.WaitingLeased--
	}
}

// AckOne counts the ack of one leased message: it leaves its live state
// (ready when its lease had run out and a claim moved it), is settled as
// acked, and waited waitMs from its enqueue.
func (c *CountChange) AckOne(ready bool, waitMs int64) {
	c.LeaveLive(ready, true)
	c.Settled[SettledAcked]++
	c.AckWait(waitMs)
}

// AckWait counts one ack's enqueue-to-ack wait.
func (c *CountChange) AckWait(waitMs int64) {
	c.WaitCount++
	c.WaitSumMs += max(waitMs, 0)
	if i := WaitBucket(waitMs); i >= 0 {
		c.Wait[i]++
	}
}

// Args lists the queue and every count, in the order of the counts
// tables' columns: the parameters of a backend's statement that adds them.
func (c *CountChange) Args(queue string) []any {
	args := []any{queue, c.ReadySet, c.Waiting, c.WaitingLeased, c.Dead, c.Acked, c.Enqueued, c.Claimed}
	for _, n := range c.Settled {
		args = append(args, n)
	}
	args = append(args, c.Redriven, c.Purged, c.WaitCount, c.WaitSumMs)
	for _, n := range c.Wait {
		args = append(args, n)
	}
	return args
}

// CountChanges collects the changes of one transaction, per queue.
type CountChanges map[string]*CountChange

// Of is queue's change, added when missing.
func (q CountChanges) Of(queue string) *CountChange {
	c := q[queue]
	if c == nil {
		c = &CountChange{}
		q[queue] = c
	}
	return c
}

// Queues are the queues whose change is not zero, by name: the order a
// backend writes them in, a fixed order of row writes in every
// transaction.
func (q CountChanges) Queues() []string {
	names := make([]string, 0, len(q))
	for name, c := range q {
		if !c.Zero() {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}
