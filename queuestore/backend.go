package queuestore

import (
	"context"
	"time"
)

// Backend is the store contract every backend keeps (SQLite here,
// PostgreSQL in queuestore/postgres): the executors, the CLI and the server
// use a store through it, and queuestore/storetest checks a backend against
// it. docs/lifecycle.md is its meaning.
type Backend interface {
	// Producers.
	Enqueue(ctx context.Context, msgs ...NewMessage) (EnqueueResult, error)

	// Consumers: claim under a lease, then finish what the lease holds.
	Claim(ctx context.Context, opts ClaimOptions) (*Lease, error)
	Ack(ctx context.Context, lease *Lease, ids ...int64) error
	Nack(ctx context.Context, lease *Lease, opts NackOptions) (NackResult, error)
	Extend(ctx context.Context, lease *Lease, d time.Duration, ids ...int64) error
	Release(ctx context.Context, lease *Lease, ids ...int64) error
	LeaseByToken(ctx context.Context, token string) (*Lease, error)
	// AckClaim is Ack of a finished lease, then Claim from its queue, in
	// one transaction: with a *LostError from the ack, the claim's lease
	// comes with it.
	AckClaim(ctx context.Context, ack *Lease, ackIDs []int64, opts ClaimOptions) (*Lease, error)

	// Operators.
	Queues(ctx context.Context) ([]string, error)
	Stats(ctx context.Context, queue string) (Stats, error)
	Peek(ctx context.Context, queue string, opts PeekOptions) ([]Message, error)
	Pause(ctx context.Context, queue string) error
	Resume(ctx context.Context, queue string) error
	SetLimit(ctx context.Context, queue string, limit int) error
	Redrive(ctx context.Context, queue string, ids ...int64) (int64, error)
	PurgeDead(ctx context.Context, queue string, ids ...int64) (int64, error)
	Purge(ctx context.Context, queue string) (int64, error)

	// Observers.
	Metrics(ctx context.Context) ([]QueueMetrics, error)
	RecordHistory(ctx context.Context) error
	History(ctx context.Context, queue string, since time.Time) ([]HistorySample, error)

	// Pools: slots shared by steps across DAGs (docs/pools.md).
	PoolBackend

	// Describe names the database for messages: a file path, or a URL
	// without its password.
	Describe() string
	Close() error
}

var _ Backend = (*Store)(nil)

// Waiter is what a backend that hears of new messages implements besides
// Backend (PostgreSQL, through LISTEN/NOTIFY): a watching consumer that
// found its queue empty calls WaitReady instead of sleeping for its poll
// interval. WaitReady returns when a message may have become ready in the
// queue (an enqueue, in this or another process), after max at the latest,
// or when ctx ends. A wakeup is a hint, never a promise: the caller claims
// again and may find nothing. Backends without one (SQLite) are polled.
type Waiter interface {
	WaitReady(ctx context.Context, queue string, max time.Duration)
}

// Describe is the database file.
func (s *Store) Describe() string { return s.path }
