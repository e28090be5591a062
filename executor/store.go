package executor

import (
	"context"
	"io"
	"time"

	"github.com/daguq/daguq/internal/storeopen"
	"github.com/daguq/daguq/queuestore"
	"github.com/daguq/daguq/queuestore/postgres"
)

// Store is what the executors need of a message store: a subset of
// queuestore.Backend, which the SQLite store (queuestore.Store) and the
// PostgreSQL store (queuestore/postgres) implement (docs/architecture.md).
type Store interface {
	Enqueue(ctx context.Context, msgs ...queuestore.NewMessage) (queuestore.EnqueueResult, error)
	Claim(ctx context.Context, opts queuestore.ClaimOptions) (*queuestore.Lease, error)
	Ack(ctx context.Context, lease *queuestore.Lease, ids ...int64) error
	AckClaim(ctx context.Context, ack *queuestore.Lease, ackIDs []int64, opts queuestore.ClaimOptions) (*queuestore.Lease, error)
	Nack(ctx context.Context, lease *queuestore.Lease, opts queuestore.NackOptions) (queuestore.NackResult, error)
	Extend(ctx context.Context, lease *queuestore.Lease, d time.Duration, ids ...int64) error
	Release(ctx context.Context, lease *queuestore.Lease, ids ...int64) error
	LeaseByToken(ctx context.Context, token string) (*queuestore.Lease, error)
	Stats(ctx context.Context, queue string) (queuestore.Stats, error)
	Close() error
}

var (
	_ Store = (*queuestore.Store)(nil)
	_ Store = (*postgres.Store)(nil)
)

// StoreOptions tune OpenStore. The zero value means the defaults.
type StoreOptions struct {
	// Backoff gives the retry delay after the attempt-th failed delivery.
	// Nil: the store's default (exponential from 1s up to 1h).
	Backoff func(attempt int) time.Duration
	// LockWaitNotice is told when a write waits for another process's
	// write lock for more than a second (SQLite), or when the server cannot
	// be reached and the store waits for it (PostgreSQL): the step's stderr.
	LockWaitNotice io.Writer
}

// ErrBackendUnavailable reports a database URL whose backend this build
// does not have.
var ErrBackendUnavailable = storeopen.ErrBackendUnavailable

// OpenStore opens the store that db names: postgres:// and postgresql://
// URLs name a PostgreSQL database, another URL is refused, and anything
// else is the path of a SQLite file, created when missing. Every error is
// a *DatabaseError: ExitCode gives ExitStore for it. No error carries a
// password.
func OpenStore(db string, opts StoreOptions) (Store, error) {
	s, err := OpenBackend(db, opts)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// OpenBackend is OpenStore with the whole store contract, for the CLI's
// admin commands. internal/storeopen picks the backend.
func OpenBackend(db string, opts StoreOptions) (queuestore.Backend, error) {
	s, err := storeopen.Open(db, storeopen.Options{Backoff: opts.Backoff, LockWaitNotice: opts.LockWaitNotice})
	if err != nil {
		return nil, &DatabaseError{DB: storeopen.Redact(db), Err: err}
	}
	return s, nil
}

// dagRun names the Dagu DAG run a step belongs to, "dag/run-id", from the
// variables Dagu sets in every step's environment; "" outside Dagu.
func dagRun(getenv func(string) string) string {
	name, run := getenv(envDAGName), getenv(envDAGRunID)
	if name == "" || run == "" {
		return ""
	}
	return name + "/" + run
}
