// Package storeopen is the one place that picks a store backend from a db
// value (with: db, --db, DAGUQ_DB): a postgres:// or postgresql:// URL opens
// the PostgreSQL store (queuestore/postgres), any other URL is refused, and
// everything else is the path of a SQLite file (queuestore). The executors
// and the CLI open stores through it.
package storeopen

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/daguq/daguq/queuestore"
	"github.com/daguq/daguq/queuestore/postgres"
)

// ErrBackendUnavailable reports a database URL whose backend this build
// does not have.
var ErrBackendUnavailable = errors.New("database backend not available")

// Options tune Open. The zero value means the defaults.
type Options struct {
	// Backoff gives the retry delay after the attempt-th failed delivery.
	// Nil: the store's default (exponential from 1s up to 1h).
	Backoff func(attempt int) time.Duration
	// LockWaitNotice is told when a write waits for another process's
	// write lock for more than a second (SQLite), or when the server cannot
	// be reached and the store waits for it (PostgreSQL).
	LockWaitNotice io.Writer
}

// IsPostgres reports whether db is a PostgreSQL URL.
func IsPostgres(db string) bool {
	lower := strings.ToLower(db)
	return strings.HasPrefix(lower, "postgres://") || strings.HasPrefix(lower, "postgresql://")
}

// IsURL reports whether db is a URL (scheme://...) rather than a file path.
func IsURL(db string) bool {
	scheme, _, ok := strings.Cut(db, "://")
	if !ok || scheme == "" {
		return false
	}
	for _, r := range scheme {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// Redact is db as messages may show it: a URL without its password.
func Redact(db string) string {
	if IsURL(db) {
		return postgres.Redact(db)
	}
	return db
}

// SchemaVersion is the newest schema this build knows for the backend db
// names.
func SchemaVersion(db string) int {
	if IsPostgres(db) {
		return postgres.SchemaVersion()
	}
	return queuestore.SchemaVersion()
}

// Open opens the store db names, creating (a SQLite file and its
// directory) and migrating it when needed. No error it returns carries a
// password.
func Open(db string, opts Options) (queuestore.Backend, error) {
	switch {
	case IsPostgres(db):
		return postgres.Open(db, postgres.Options{Backoff: opts.Backoff, ReconnectNotice: opts.LockWaitNotice})
	case IsURL(db):
		scheme, _, _ := strings.Cut(db, "://")
		return nil, fmt.Errorf("%q: %w: a %s:// URL; give a postgres:// URL or a SQLite file path", Redact(db), ErrBackendUnavailable, scheme)
	}
	if err := checkSQLiteFile(db); err != nil {
		return nil, err
	}
	return queuestore.Open(db, queuestore.Options{Backoff: opts.Backoff, LockWaitNotice: opts.LockWaitNotice})
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
