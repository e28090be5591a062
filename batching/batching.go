package batching

import (
	"errors"
	"fmt"
	"time"
)

// Limits and defaults of a Policy.
const (
	DefaultMaxSize = 1         // MaxSize used when it is zero: no batching
	MaxSizeLimit   = 100_000   // largest allowed MaxSize
	MaxWaitLimit   = time.Hour // largest allowed MaxWait
)

// Policy decides when a batch is complete and which messages it holds.
// The zero value is valid: one message per batch, ready at once.
type Policy struct {
	// MaxSize is the number of messages that completes a batch.
	// Zero means DefaultMaxSize.
	MaxSize int
	// MaxBytes is the payload total that completes a batch. Zero means no
	// byte limit.
	MaxBytes int64
	// MaxWait is how long a batch lingers after its oldest message became
	// ready. Zero means a non-empty batch is ready at once.
	MaxWait time.Duration
	// GroupByKey keeps messages with different keys in different batches.
	GroupByKey bool
}

// Validate reports every field outside its allowed range, naming the field
// as it is spelled in configuration.
func (p Policy) Validate() error {
	var errs []error
	if p.MaxSize < 0 || p.MaxSize > MaxSizeLimit {
		errs = append(errs, fmt.Errorf("batching: max_size must be 1..%d, got %d", MaxSizeLimit, p.MaxSize))
	}
	if p.MaxBytes < 0 {
		errs = append(errs, fmt.Errorf("batching: max_bytes must be 0 (no limit) or more, got %d", p.MaxBytes))
	}
	if p.MaxWait < 0 || p.MaxWait > MaxWaitLimit {
		errs = append(errs, fmt.Errorf("batching: max_wait must be 0s..%s, got %s", MaxWaitLimit, p.MaxWait))
	}
	return errors.Join(errs...)
}

// maxSize is the one place that fills the MaxSize default.
func (p Policy) maxSize() int {
	if p.MaxSize <= 0 {
		return DefaultMaxSize
	}
	return p.MaxSize
}

// Reason says why a batch is ready.
type Reason string

// Reasons, checked in this order when several hold at once.
const (
	NotReady    Reason = ""      // the batch is empty or still lingering
	ReasonSize  Reason = "size"  // MaxSize messages reached
	ReasonBytes Reason = "bytes" // MaxBytes reached
	ReasonWait  Reason = "wait"  // the oldest message waited MaxWait
)

// Decision is the verdict on one batch at one instant.
type Decision struct {
	// Reason is why the batch is ready, or NotReady.
	Reason Reason
	// Wait is how long until the batch becomes ready by MaxWait if nothing
	// is added. It is zero when the batch is ready or empty.
	Wait time.Duration
}

// Ready reports whether the batch should be handed to the handler now.
func (d Decision) Ready() bool { return d.Reason != NotReady }

// Decide judges at now a batch of count messages totalling bytes, whose
// oldest message became ready at oldest. An empty batch is never ready.
// An oldest after now counts as now.
func (p Policy) Decide(count int, bytes int64, oldest, now time.Time) Decision {
	switch {
	case count <= 0:
		return Decision{}
	case count >= p.maxSize():
		return Decision{Reason: ReasonSize}
	case p.MaxBytes > 0 && bytes >= p.MaxBytes:
		return Decision{Reason: ReasonBytes}
	}
	waited := max(now.Sub(oldest), 0)
	if waited >= p.MaxWait {
		return Decision{Reason: ReasonWait}
	}
	return Decision{Wait: p.MaxWait - waited}
}

// Item describes one message to the policy.
type Item struct {
	Key     string    // group key; used only with GroupByKey
	Size    int64     // payload bytes; a negative size counts as zero
	ReadyAt time.Time // when the message became ready for delivery
}

func (it Item) size() int64 { return max(it.Size, 0) }

// Take returns how many items, from the front of items in claim order, form
// the next batch: at most MaxSize, at most MaxBytes in total, and one key
// only with GroupByKey. It takes at least one item when items is not empty,
// even one larger than MaxBytes, so that an oversize message cannot block
// the queue.
func (p Policy) Take(items []Item) int {
	if len(items) == 0 {
		return 0
	}
	limit := min(len(items), p.maxSize())
	bytes := items[0].size()
	n := 1
	for ; n < limit; n++ {
		it := items[n]
		if p.GroupByKey && it.Key != items[0].Key {
			break
		}
		bytes += it.size()
		if p.MaxBytes > 0 && bytes > p.MaxBytes {
			break
		}
	}
	return n
}

// Accumulator holds claimed messages until a batch of them is ready.
// With GroupByKey it keeps one pending batch per key. It is not safe for
// concurrent use.
type Accumulator[T any] struct {
	policy   Policy
	describe func(T) Item
	entries  []entry[T] // claim order
	bytes    int64
}

type entry[T any] struct {
	value T
	item  Item
}

// NewAccumulator returns an empty Accumulator that applies p and learns
// each message's key, size and ready time from describe. It returns the
// error of p.Validate, and panics if describe is nil.
func NewAccumulator[T any](p Policy, describe func(T) Item) (*Accumulator[T], error) {
	if describe == nil {
		panic("batching: NewAccumulator with nil describe")
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &Accumulator[T]{policy: p, describe: describe}, nil
}

// Add appends messages in claim order.
func (a *Accumulator[T]) Add(values ...T) {
	for _, v := range values {
		it := a.describe(v)
		if !a.policy.GroupByKey {
			it.Key = ""
		}
		a.entries = append(a.entries, entry[T]{value: v, item: it})
		a.bytes += it.size()
	}
}

// Len returns the number of messages held.
func (a *Accumulator[T]) Len() int { return len(a.entries) }

// Bytes returns the payload total of the messages held.
func (a *Accumulator[T]) Bytes() int64 { return a.bytes }

// Oldest returns the earliest ReadyAt of the messages held, or the zero
// time when empty.
func (a *Accumulator[T]) Oldest() time.Time {
	var oldest time.Time
	for i, e := range a.entries {
		if i == 0 || e.item.ReadyAt.Before(oldest) {
			oldest = e.item.ReadyAt
		}
	}
	return oldest
}

// Ready judges the held messages at now. When some group is ready it
// returns that group's decision; otherwise it returns NotReady with the
// shortest Wait among the groups.
func (a *Accumulator[T]) Ready(now time.Time) Decision {
	_, d := a.next(now)
	return d
}

// Take removes and returns the next ready batch at now, in claim order, or
// nil when none is ready. Among ready groups it takes the one with the
// oldest message, then the smallest key.
func (a *Accumulator[T]) Take(now time.Time) []T {
	key, d := a.next(now)
	if !d.Ready() {
		return nil
	}
	var items []Item
	for _, e := range a.entries {
		if e.item.Key == key {
			items = append(items, e.item)
		}
	}
	n := a.policy.Take(items)
	batch := make([]T, 0, n)
	kept := a.entries[:0]
	for _, e := range a.entries {
		if len(batch) < n && e.item.Key == key {
			batch = append(batch, e.value)
			a.bytes -= e.item.size()
			continue
		}
		kept = append(kept, e)
	}
	clear(a.entries[len(kept):])
	a.entries = kept
	return batch
}

// Drain removes and returns every held message in claim order, whether
// ready or not, so that the caller can release their leases.
func (a *Accumulator[T]) Drain() []T {
	out := make([]T, len(a.entries))
	for i, e := range a.entries {
		out[i] = e.value
	}
	a.entries, a.bytes = nil, 0
	return out
}

// group sums the held messages of one key.
type group struct {
	key    string
	count  int
	bytes  int64
	oldest time.Time
}

// next picks the group to take at now and returns its key and decision.
func (a *Accumulator[T]) next(now time.Time) (string, Decision) {
	var groups []group
	index := make(map[string]int)
	for _, e := range a.entries {
		i, ok := index[e.item.Key]
		if !ok {
			i = len(groups)
			index[e.item.Key] = i
			groups = append(groups, group{key: e.item.Key, oldest: e.item.ReadyAt})
		}
		g := &groups[i]
		g.count++
		g.bytes += e.item.size()
		if e.item.ReadyAt.Before(g.oldest) {
			g.oldest = e.item.ReadyAt
		}
	}

	var best *group
	var bestDecision, pending Decision
	for i := range groups {
		g := &groups[i]
		d := a.policy.Decide(g.count, g.bytes, g.oldest, now)
		if !d.Ready() {
			if pending.Wait == 0 || d.Wait < pending.Wait {
				pending = d
			}
			continue
		}
		if best == nil || g.oldest.Before(best.oldest) ||
			(g.oldest.Equal(best.oldest) && g.key < best.key) {
			best, bestDecision = g, d
		}
	}
	if best == nil {
		return "", pending
	}
	return best.key, bestDecision
}
