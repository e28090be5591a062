package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/daguq/daguq/queuestore"
)

// Store is what the executors need of a message store. The SQLite store
// (queuestore.Store) implements it; a PostgreSQL backend would too
// (docs/architecture.md).
type Store interface {
	Enqueue(ctx context.Context, msgs ...queuestore.NewMessage) (queuestore.EnqueueResult, error)
	Claim(ctx context.Context, opts queuestore.ClaimOptions) (*queuestore.Lease, error)
	Ack(ctx context.Context, lease *queuestore.Lease, ids ...int64) error
	Nack(ctx context.Context, lease *queuestore.Lease, opts queuestore.NackOptions) (queuestore.NackResult, error)
	Extend(ctx context.Context, lease *queuestore.Lease, d time.Duration, ids ...int64) error
	Release(ctx context.Context, lease *queuestore.Lease, ids ...int64) error
	LeaseByToken(ctx context.Context, token string) (*queuestore.Lease, error)
	Stats(ctx context.Context, queue string) (queuestore.Stats, error)
	Close() error
}

var _ Store = (*queuestore.Store)(nil)

// StoreOptions tune OpenStore. The zero value means the defaults.
type StoreOptions struct {
	// Backoff gives the retry delay after the attempt-th failed delivery.
	// Nil: the store's default (exponential from 1s up to 1h).
	Backoff func(attempt int) time.Duration
	// LockWaitNotice is told when a write waits for another process's
	// write lock for more than a second (the step's stderr).
	LockWaitNotice io.Writer
}

// ErrBackendUnavailable reports a database URL whose backend this build
// does not have.
var ErrBackendUnavailable = errors.New("executor: database backend not available")

// OpenStore opens the store that db names: postgres:// and postgresql://
// URLs name a PostgreSQL database (not available yet), anything else is the
// path of a SQLite file, created when missing. Every error is a
// *DatabaseError: ExitCode gives ExitStore for it.
func OpenStore(db string, opts StoreOptions) (Store, error) {
	lower := strings.ToLower(db)
	if strings.HasPrefix(lower, "postgres://") || strings.HasPrefix(lower, "postgresql://") {
		return nil, &DatabaseError{DB: redactURL(db), Err: fmt.Errorf("%q: %w: PostgreSQL is not available yet; use a SQLite file path", redactURL(db), ErrBackendUnavailable)}
	}
	if err := checkSQLiteFile(db); err != nil {
		return nil, &DatabaseError{DB: db, Err: err}
	}
	s, err := queuestore.Open(db, queuestore.Options{Backoff: opts.Backoff, LockWaitNotice: opts.LockWaitNotice})
	if err != nil {
		return nil, &DatabaseError{DB: db, Err: err}
	}
	return s, nil
}

// sqliteMagic starts every SQLite database file.
const sqliteMagic = "SQLite format 3\x00"

// checkSQLiteFile refuses a directory, and an existing, non-empty file that
// is not a SQLite database: SQLite would take a file shorter than its header
// for an empty database and overwrite it.
func checkSQLiteFile(path string) error {
	if info, err := os.Stat(path); err == nil && info.IsDir() {
		return fmt.Errorf("%q is a directory, want a file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil // missing (created by Open) or unreadable (Open reports it)
	}
	defer f.Close()
	head := make([]byte, len(sqliteMagic))
	n, _ := io.ReadFull(f, head)
	if n == 0 || string(head[:n]) == sqliteMagic {
		return nil
	}
	return fmt.Errorf("%q: %w: the file is not a SQLite database", path, queuestore.ErrNotDaguqDatabase)
}

// redactURL hides a password in a database URL.
func redactURL(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	userinfo, host, ok := strings.Cut(rest, "@")
	if !ok {
		return s
	}
	if user, _, hasPass := strings.Cut(userinfo, ":"); hasPass {
		return scheme + "://" + user + ":xxxxx@" + host
	}
	return s
}
