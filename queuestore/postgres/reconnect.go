package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/daguq/daguq/queuestore"
)

// A transaction whose connection broke (the server restarted, failed over,
// or the network dropped) runs again on a new connection, for up to
// Options.ReconnectFor, when it surely did not commit: the connection could
// not be had, or broke before the COMMIT was sent. A connection that broke
// during the COMMIT leaves the outcome unknown; only transactions that may
// run twice (repeatable, below) run again then.

// reconnectPause bounds the pause between tries while the server is away.
const reconnectPause = time.Second

// txKind says whether a transaction may run again after a COMMIT whose
// outcome is unknown.
type txKind int

const (
	// once: running it twice could apply it twice (an enqueue inserts new
	// rows): a broken COMMIT returns queuestore.ErrOutcomeUnknown.
	once txKind = iota
	// repeatable: a second run after a first that committed changes nothing
	// the caller relies on (a claim's orphaned lease runs out; a finish
	// finds its messages gone).
	repeatable
)

// brokenError is a transaction that failed because its connection broke
// or could not be had. duringCommit: the COMMIT was sent, so whether it
// committed is unknown.
type brokenError struct {
	err          error
	duringCommit bool
}

func (e *brokenError) Error() string { return e.err.Error() }
func (e *brokenError) Unwrap() error { return e.err }

// tryTx runs fn in a transaction on a connection of the pool and commits
// it; a failure caused by the connection comes back as a *brokenError.
func (s *Store) tryTx(ctx context.Context, fn func(context.Context, pgx.Tx) error) error {
	return s.onConn(ctx, func(conn *pgx.Conn) (bool, error) {
		tx, err := conn.Begin(ctx)
		if err != nil {
			return false, err
		}
		if err := fn(ctx, tx); err != nil {
			tx.Rollback(context.WithoutCancel(ctx))
			return false, err
		}
		return true, tx.Commit(ctx)
	})
}

// tryBatches is tryTx for a transaction sent in batches (batchTx).
func (s *Store) tryBatches(ctx context.Context, fn func(context.Context, *batchTx) error) error {
	return s.onConn(ctx, func(conn *pgx.Conn) (bool, error) {
		t := &batchTx{conn: conn}
		if err := fn(ctx, t); err != nil {
			t.rollback(context.WithoutCancel(ctx))
			return false, err
		}
		if err := t.commit(ctx); err != nil {
			t.rollback(context.WithoutCancel(ctx))
			return true, err
		}
		return false, nil
	})
}

// onConn runs a transaction on a connection of the pool; a failure caused
// by the connection comes back as a *brokenError. run says whether it
// failed while committing: the COMMIT, perhaps with other statements, was
// sent. errRollback from run is no failure.
func (s *Store) onConn(ctx context.Context, run func(*pgx.Conn) (committing bool, err error)) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		if ctx.Err() == nil && unreachable(err) {
			return &brokenError{err: err}
		}
		return err
	}
	defer conn.Release()
	committing, err := run(conn.Conn())
	switch {
	case err == nil, !committing && errors.Is(err, errRollback):
		return nil
	case ctx.Err() == nil && (conn.Conn().IsClosed() || unreachable(err)):
		return &brokenError{err: err, duringCommit: committing && !pgconn.SafeToRetry(err)}
	}
	return err
}

// reconnecting tracks the tries of one transaction while its connection
// keeps breaking.
type reconnecting struct {
	since time.Time // the first break
	pause time.Duration
}

// wait pauses before the transaction runs again after b, or returns the
// error to give the caller instead.
func (r *reconnecting) wait(ctx context.Context, s *Store, kind txKind, b *brokenError) error {
	if b.duringCommit && kind == once {
		return fmt.Errorf("%w: the connection to %s broke during the commit: %v", queuestore.ErrOutcomeUnknown, s.describe, b.err)
	}
	now := time.Now()
	if r.since.IsZero() {
		r.since, r.pause = now, 50*time.Millisecond
		s.outage.begin(s, b.err)
	}
	if s.opts.ReconnectFor < 0 || now.Sub(r.since) >= s.opts.ReconnectFor {
		return fmt.Errorf("database %s unreachable for %s: %w", s.describe, now.Sub(r.since).Round(100*time.Millisecond), b.err)
	}
	t := time.NewTimer(r.pause/2 + rand.N(r.pause))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return b.err
	case <-t.C:
	}
	r.pause = min(2*r.pause, reconnectPause)
	return nil
}

// outage tells Options.ReconnectNotice when the store's transactions find
// the server unreachable and when they reach it again, once per outage
// whatever the number of transactions waiting.
type outage struct {
	mu    sync.Mutex
	since time.Time // zero: no outage
}

func (o *outage) begin(s *Store, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.since.IsZero() {
		return
	}
	o.since = time.Now()
	if s.opts.ReconnectNotice != nil && s.opts.ReconnectFor >= 0 {
		fmt.Fprintf(s.opts.ReconnectNotice, "daguq: database %s unreachable (%s); trying again for up to %s\n",
			s.describe, s.err(err), s.opts.ReconnectFor)
	}
}

// end is called by a transaction that ran after waiting.
func (o *outage) end(s *Store) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.since.IsZero() {
		return
	}
	if s.opts.ReconnectNotice != nil {
		fmt.Fprintf(s.opts.ReconnectNotice, "daguq: database %s reachable again after %s\n",
			s.describe, time.Since(o.since).Round(100*time.Millisecond))
	}
	o.since = time.Time{}
}

// unreachable reports an error of a connection that could not be made or
// broke, as opposed to one the server gave for a statement or a login it
// refused (a wrong password or database name).
func unreachable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// 08: connection exception; 57P01-57P03: the server shutting
		// down, crashed or starting up; 53300: too many connections.
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03" || pe.Code == "53300"
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
