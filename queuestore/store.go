package queuestore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"
)

// applicationID marks a SQLite file as a daguq database ("dguq").
const applicationID = 0x64677571

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Options tune a Store. The zero value means the defaults.
type Options struct {
	// BusyTimeout bounds how long a write waits for another process's
	// write lock before it fails. Default 30s.
	BusyTimeout time.Duration
	// MaxAttempts is the default number of deliveries before a message goes
	// to the dead letter state, for messages enqueued without their own.
	// Default 5.
	MaxAttempts int
	// AckRetention keeps acked messages for this long (for inspection and for
	// dedupe history); zero deletes them at ack.
	AckRetention time.Duration
	// Backoff gives the retry delay after the attempt-th failed delivery
	// (attempt counts from 1). Default: ExponentialBackoff(time.Second, time.Hour).
	Backoff func(attempt int) time.Duration
	// SynchronousFull makes every commit wait for fsync of the WAL (survives
	// power loss). The default, NORMAL, survives process crashes: a commit is
	// in the WAL before the call returns.
	SynchronousFull bool
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// LockWaitNotice, when set, is told when a write has waited a second for
	// another process's write lock, and every 10 seconds after.
	LockWaitNotice io.Writer
}

func (o Options) withDefaults() Options {
	if o.BusyTimeout <= 0 {
		o.BusyTimeout = 30 * time.Second
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 5
	}
	if o.Backoff == nil {
		o.Backoff = ExponentialBackoff(time.Second, time.Hour)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Store is a daguq message store backed by one SQLite file.
type Store struct {
	*PoolKeeper // pools (pool.go), in this database's tables (pool_sqlite.go)

	db   *sql.DB
	path string
	opts Options

	busyRetries    atomic.Int64 // transactions retried because another process held the write lock
	sqlBusyTimeout string       // PRAGMA busy_timeout = Options.BusyTimeout

	mu            sync.Mutex
	nextLeaseSwep map[string]time.Time // per queue: when to drop finished leases next
	nextAckPurge  map[string]time.Time // per queue: when to purge retained acks next
	nextReclaim   map[string]time.Time // when to look for free pages to give back (key "")
	nextDiskCheck map[string]time.Time // when to look at the free disk space next (key "")
	lowDisk       bool                 // little disk space left: checkpoint often (space.go)

	// lastFull: per queue, the last claim took as many as it asked for.
	// Then more is likely ready, and the next claim skips the read-only
	// probe (anyReady) that keeps claims on an empty queue off the write
	// lock: at small batches the probe costs a tenth of the claim.
	lastFull QueueFlags
}

// Open opens the daguq database at path, creating the file (mode 0600) and
// its directory when missing, and migrates its schema to the newest version.
func Open(path string, opts Options) (*Store, error) {
	if strings.TrimSpace(path) == "" {
		return nil, fmt.Errorf("%w: database path is empty", ErrInvalid)
	}
	if err := prepareFile(path); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	db, err := sql.Open("sqlite3", dsn(path, opts))
	if err != nil {
		return nil, fmt.Errorf("open database %q: %w", path, err)
	}
	// One connection per process: writes in one process queue up in Go
	// instead of contending for the file lock, and PRAGMAs hold for all.
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	s := &Store{db: db, path: path, opts: opts,
		// PRAGMA takes no bound parameters; the value is an integer of ours.
		sqlBusyTimeout: fmt.Sprintf(sqlBusyTimeoutFormat, opts.BusyTimeout.Milliseconds()),
		nextLeaseSwep:  map[string]time.Time{}, nextAckPurge: map[string]time.Time{}, nextReclaim: map[string]time.Time{}, nextDiskCheck: map[string]time.Time{}}
	s.PoolKeeper = NewPoolKeeper(sqlitePoolRows{s})
	if err := s.migrate(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %q: %w", path, err)
	}
	// SQLite checkpoints the WAL inside the commit that takes it past this
	// many pages, with an fsync of each file: fewer, larger checkpoints
	// leave more of the time to claims and acks (docs/performance.md). The
	// WAL file grows to about 16 MB. A connection that database/sql opens
	// again later has SQLite's default, 1000.
	if _, err := db.Exec(sqlAutoCheckpoint); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %q: %w", path, err)
	}
	return s, nil
}

// prepareFile creates the database file with mode 0600 (SQLite gives the WAL
// and shared-memory files the same mode) and reports unusable paths clearly.
func prepareFile(path string) error {
	info, err := os.Stat(path)
	switch {
	case err == nil && info.IsDir():
		return fmt.Errorf("%w: database path %q is a directory, want a file", ErrInvalid, path)
	case err == nil && info.Size() > 0:
		return checkSQLiteHeader(path)
	case err == nil: // empty: SQLite makes it a new database
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("database path %q: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("database path %q: create directory: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("database path %q: %w", path, err)
	}
	return f.Close()
}

// sqliteHeader starts every SQLite database file.
const sqliteHeader = "SQLite format 3\x00"

// checkSQLiteHeader refuses a non-empty file that is not a SQLite database:
// SQLite would take a file shorter than its header for an empty database
// and overwrite it.
func checkSQLiteHeader(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("database path %q: %w", path, err)
	}
	defer f.Close()
	head := make([]byte, len(sqliteHeader))
	if _, err := io.ReadFull(f, head); err != nil || string(head) != sqliteHeader {
		return fmt.Errorf("%w: %q is not a SQLite file", ErrNotDaguqDatabase, path)
	}
	return nil
}

// dsn is the one place that builds the connection string.
func dsn(path string, opts Options) string {
	// No _journal_mode: setting it writes to the file, and Open must not
	// write to a file before it knows the file is daguq's. A new file is
	// switched to WAL by migrate; the mode is kept in the file.
	params := url.Values{}
	params.Set("_busy_timeout", fmt.Sprint(opts.BusyTimeout.Milliseconds()))
	// Immediate write transactions: deferred ones in two processes fail with
	// SQLITE_BUSY at once, bypassing the busy timeout.
	params.Set("_txlock", "immediate")
	params.Set("_foreign_keys", "1")
	// The driver keeps this many prepared statements per connection, so the
	// hot statements are parsed once, not on every call.
	params.Set("_stmt_cache_size", "64")
	if opts.SynchronousFull {
		params.Set("_synchronous", "FULL")
	} else {
		params.Set("_synchronous", "NORMAL")
	}
	escaped := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return "file:" + escaped + "?" + params.Encode()
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

// DB exposes the connection pool for callers that want their own transaction
// around EnqueueTx.
func (s *Store) DB() *sql.DB { return s.db }

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) now() int64 { return s.opts.Now().UnixMilli() }

// SchemaVersion is the newest schema this build knows.
func SchemaVersion() int { return NewestMigration(migrationFiles) }

// schemaInfo is what a file says about whose it is and its schema.
type schemaInfo struct {
	appID, version, objects int
}

func readSchemaInfo(ctx context.Context, q querier) (schemaInfo, error) {
	var info schemaInfo
	if err := q.QueryRowContext(ctx, `PRAGMA application_id`).Scan(&info.appID); err != nil {
		return info, classifyOpenError(err)
	}
	if err := q.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&info.version); err != nil {
		return info, err
	}
	err := q.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema`).Scan(&info.objects)
	return info, err
}

// check says whether the file needs migrating, or refuses it.
func (info schemaInfo) check(latest int) (migrate bool, err error) {
	switch {
	case info.appID == 0 && info.version == 0 && info.objects == 0: // new file
		return true, nil
	case info.appID != applicationID:
		return false, fmt.Errorf("%w (application_id %#x, %d schema objects)", ErrNotDaguqDatabase, info.appID, info.objects)
	case info.version > latest:
		return false, fmt.Errorf("%w: file has version %d, this build knows up to %d: upgrade daguq", ErrSchemaTooNew, info.version, latest)
	}
	return info.version < latest, nil
}

// migrate brings the schema to the newest version. It reads first, without
// any lock that blocks writers, so that opening a current database never
// waits for another process's write transaction, and another application's
// file is refused before anything is written to it. Only a new or older
// file is migrated: in one write transaction that checks again.
func (s *Store) migrate(ctx context.Context) error {
	migrations, err := LoadMigrations(migrationFiles)
	if err != nil {
		return err
	}
	latest := migrations[len(migrations)-1].Version
	var info schemaInfo
	err = s.retryBusy(ctx, func() error {
		var err error
		info, err = readSchemaInfo(ctx, s.db)
		return err
	})
	if err != nil {
		return err
	}
	if need, err := info.check(latest); err != nil || !need {
		return err
	}
	if info.objects == 0 {
		// A new file: free pages can be given back in steps (space.go),
		// which must be chosen before the first table; WAL, so that readers
		// never wait for writers. Neither can change inside a transaction;
		// both are kept in the file.
		if err := s.retryBusy(ctx, func() error {
			_, err := s.db.ExecContext(ctx, `PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL`)
			return err
		}); err != nil {
			return err
		}
	}
	return s.withTx(ctx, func(ctx context.Context, tx querier) error {
		info, err := readSchemaInfo(ctx, tx)
		if err != nil {
			return err
		}
		if need, err := info.check(latest); err != nil || !need {
			return err
		}
		for _, m := range migrations {
			if m.Version <= info.version {
				continue
			}
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return fmt.Errorf("migration %d: %w", m.Version, err)
			}
		}
		// PRAGMA takes no bound parameters; both values are integers of ours.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA application_id = %d`, applicationID)); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, latest))
		return err
	})
}

func classifyOpenError(err error) error {
	var se sqlite3.Error
	if errors.As(err, &se) && (se.Code == sqlite3.ErrNotADB || se.Code == sqlite3.ErrCorrupt) {
		return fmt.Errorf("%w: %v", ErrNotDaguqDatabase, err)
	}
	return err
}

// querier runs statements: the connection of a withTx transaction, or the
// caller's *sql.Tx in EnqueueTx.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Waiting for another process's write lock. SQLite's own busy handler
// sleeps 1, 2, 5 ... up to 100 ms between tries, so a waiter that has been
// unlucky a few times sleeps long while newcomers take the lock: with four
// consumer processes single claims waited up to a second. The store's own
// transactions therefore begin with SQLite's busy timeout at 0 (restored to
// Options.BusyTimeout right after, for reads and for transactions callers
// run on DB()), and retryBusy tries again after jittered pauses from
// busyPauseMin doubling to busyPauseMax, until Options.BusyTimeout.
// Measured with four processes (docs/performance.md): the same throughput
// as SQLite's handler, the longest wait 2.5-4.7 times shorter; shorter
// pauses cost throughput, as waiters wake up and take CPU from the lock
// holder.
const (
	busyPauseMin = time.Millisecond
	busyPauseMax = 10 * time.Millisecond
)

// lockWaitInSQLite leaves waiting for the write lock to SQLite's busy
// handler; the benchmarks set it to measure that handler against retryBusy.
var lockWaitInSQLite = false

// withTx runs fn in an immediate write transaction and commits it, retrying
// the whole transaction while another process holds the write lock. fn may
// run more than once and must reset what it returns.
//
// ctx is checked before every attempt; the statements of a started
// transaction run to its end (they take milliseconds) on a context without
// cancellation: with a cancellable one, database/sql and the driver start a
// goroutine per statement, which costs as much as the statement.
func (s *Store) withTx(ctx context.Context, fn func(context.Context, querier) error) error {
	return s.retryBusy(ctx, func() error { return s.tryTx(ctx, fn) })
}

// retryBusy runs op until it does not fail with SQLITE_BUSY, with short
// jittered pauses, and gives up after Options.BusyTimeout. The store's
// transactions wait here for another process's write lock; reads wait in
// SQLite (rarely: only while another process rebuilds the WAL index).
func (s *Store) retryBusy(ctx context.Context, op func() error) error {
	return s.retryBusyUntil(ctx, time.Now().Add(s.opts.BusyTimeout), op)
}

// Lock waits longer than lockWaitNotice are said on Options.LockWaitNotice,
// then again every lockWaitRepeat.
const (
	lockWaitNotice = time.Second
	lockWaitRepeat = 10 * time.Second
)

// retryBusyUntil is retryBusy with its own deadline.
func (s *Store) retryBusyUntil(ctx context.Context, deadline time.Time, op func() error) error {
	start := time.Now()
	nextNotice := start.Add(lockWaitNotice)
	fullRetried := false
	pause := busyPauseMin
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		err := op()
		if isFull(err) && !fullRetried {
			// The disk is full. The WAL may hold all the space that acks
			// freed, waiting for a checkpoint that only a commit would run:
			// move it into the database file, truncate it, and try again
			// once.
			fullRetried = true
			s.db.ExecContext(context.WithoutCancel(ctx), sqlCheckpointTruncate)
			continue
		}
		if err == nil || !isBusy(err) {
			return classifyOpenError(err)
		}
		now := time.Now()
		if now.After(deadline) {
			return fmt.Errorf("%w: waited %s for another process to release the write lock of %s: %v",
				ErrBusy, now.Sub(start).Round(time.Millisecond), s.path, err)
		}
		if now.After(nextNotice) && s.opts.LockWaitNotice != nil {
			fmt.Fprintf(s.opts.LockWaitNotice, "daguq: waiting %s for the write lock of %s: another process holds it\n",
				now.Sub(start).Round(time.Second), s.path)
			nextNotice = now.Add(lockWaitRepeat)
		}
		s.busyRetries.Add(1)
		wait := time.NewTimer(pause/2 + rand.N(pause))
		select {
		case <-ctx.Done():
			wait.Stop()
			return ctx.Err()
		case <-wait.C:
		}
		pause = min(pause*2, busyPauseMax)
	}
}

// query and readRow are the store's reads outside a transaction. Like the
// statements of a transaction, they run without cancellation (see withTx).
func (s *Store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	var rows *sql.Rows
	err := s.retryBusy(ctx, func() error {
		var err error
		rows, err = s.db.QueryContext(context.WithoutCancel(ctx), query, args...)
		return err
	})
	return rows, err
}

func (s *Store) readRow(ctx context.Context, query string, args []any, dest ...any) error {
	return s.retryBusy(ctx, func() error {
		return s.db.QueryRowContext(context.WithoutCancel(ctx), query, args...).Scan(dest...)
	})
}

func (s *Store) tryTx(ctx context.Context, fn func(context.Context, querier) error) error {
	s.watchDisk(ctx)
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx = context.WithoutCancel(ctx)
	if lockWaitInSQLite {
		if _, err := conn.ExecContext(ctx, sqlBegin); err != nil {
			return err
		}
	} else {
		_, err := conn.ExecContext(ctx, sqlBeginNoWait)
		if _, restoreErr := conn.ExecContext(ctx, s.sqlBusyTimeout); restoreErr != nil && err == nil {
			rollback(ctx, conn)
			return restoreErr
		}
		if err != nil {
			return err
		}
	}
	if err := fn(ctx, conn); err != nil {
		rollback(ctx, conn)
		if errors.Is(err, errRollback) {
			return nil
		}
		return err
	}
	if _, err := conn.ExecContext(ctx, sqlCommit); err != nil {
		rollback(ctx, conn)
		return err
	}
	return nil
}

// rollback ends the transaction on conn. If the connection is still inside
// a transaction afterwards, it is discarded rather than handed out again.
func rollback(ctx context.Context, conn *sql.Conn) {
	conn.ExecContext(ctx, sqlRollback) // fails when SQLite rolled back already
	conn.Raw(func(dc any) error {
		if c, ok := dc.(*sqlite3.SQLiteConn); ok && !c.AutoCommit() {
			return driver.ErrBadConn
		}
		return nil
	})
}

// errRollback ends a transaction without committing and without an error.
var errRollback = errors.New("rollback")

func isFull(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && se.Code == sqlite3.ErrFull
}

func isBusy(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.Code == sqlite3.ErrBusy || se.Code == sqlite3.ErrLocked)
}

// QueueNameRule says in words what ValidateQueueName accepts. A name starts
// with a letter or digit, so that it is never ".", ".." or taken for a flag.
const QueueNameRule = "1..128 letters, digits, '-', '_' or '.', starting with a letter or digit"

var queueNamePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ValidateQueueName reports whether name is a valid queue name.
func ValidateQueueName(name string) error {
	if !queueNamePattern.MatchString(name) {
		return fmt.Errorf("%w: queue name %q: want %s", ErrInvalid, name, QueueNameRule)
	}
	return nil
}

// ExponentialBackoff doubles the delay with every attempt from base up to
// ceiling, with equal jitter: the delay is uniform in [d/2, d).
func ExponentialBackoff(base, ceiling time.Duration) func(attempt int) time.Duration {
	return func(attempt int) time.Duration {
		d := base
		for i := 1; i < attempt && d < ceiling; i++ {
			d *= 2
		}
		d = min(d, ceiling)
		if d <= 1 {
			return d
		}
		return d/2 + rand.N(d/2)
	}
}
