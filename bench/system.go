package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"time"

	_ "github.com/mattn/go-sqlite3"
)

// A system is one queue under test, driven in process by a worker.
type system interface {
	name() string
	// create makes a fresh database file with the system's schema.
	create(ctx context.Context, path string) error
	open(ctx context.Context, path string) (queue, error)
}

// queue is one process's handle on a system's database.
type queue interface {
	// enqueue stores bodies in one call: one body is a single enqueue, many
	// a bulk one.
	enqueue(ctx context.Context, bodies [][]byte) error
	// consume claims, hands to h and acks batches of up to batch messages
	// until the queue is empty (or, with untilStop, until stop closes).
	consume(ctx context.Context, batch int, untilStop bool, stop <-chan struct{}, h *handler) error
	// remaining counts messages not yet acked.
	remaining(ctx context.Context) (int64, error)
	close() error
}

// batchQueue is a queue with an explicit claim and ack, which the scale
// measurement times one call at a time.
type batchQueue interface {
	queue
	claim(ctx context.Context, max int) (claimed, error)
	ack(ctx context.Context, c claimed) error
	// ackOne acks the i-th message of a claim alone.
	ackOne(ctx context.Context, c claimed, i int) error
}

// claimAheadLoop feeds a batch-1 handler from claims of ahead messages:
// each message is handled and then acked on its own, so every ack is still
// durable before the next message is handled; only the claims are shared.
func claimAheadLoop(ctx context.Context, q batchQueue, ahead int, stop <-chan struct{}, h *handler) error {
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		c, err := q.claim(ctx, ahead)
		if err != nil {
			return err
		}
		if c == nil {
			return nil
		}
		for i, b := range c.bodies() {
			h.deliver(b)
			if err := q.ackOne(ctx, c, i); err != nil {
				return err
			}
			h.acked(1)
		}
	}
}

// claimed is what one claim took.
type claimed interface{ bodies() [][]byte }

var systems = []system{daguqSystem{}, goqiteSystem{}, riverSystem{}, rawSystem{}}

func systemByName(name string) (system, error) {
	for _, s := range append(systems, pgSystems...) {
		if s.name() == name {
			return s, nil
		}
	}
	return nil, fmt.Errorf("unknown system %q", name)
}

// jobQueue marks a system that never reports an empty queue and has no
// explicit claim (River): the bench stops its consumers when every message
// was acked.
type jobQueue interface{ jobQueue() }

func isJobQueue(s system) bool {
	_, ok := s.(jobQueue)
	return ok
}

// leaseTime is long enough that no lease expires during a run: every
// doubled delivery counted is a real one.
const leaseTime = 10 * time.Minute

// benchDSN gives the peers the connection settings daguq's store uses: WAL,
// immediate write transactions, synchronous=NORMAL, a per-connection cache
// of prepared statements. daguq waits for another process's write lock in
// Go with short pauses; the peers have no such loop and get SQLite's own
// busy_timeout of 30 s instead.
func benchDSN(path string) string {
	p := url.Values{}
	p.Set("_journal_mode", "WAL")
	p.Set("_busy_timeout", "30000")
	p.Set("_stmt_cache_size", "64")
	p.Set("_txlock", "immediate")
	p.Set("_synchronous", "NORMAL")
	p.Set("_foreign_keys", "1")
	return "file:" + path + "?" + p.Encode()
}

// openDB opens path with one connection for the whole process.
func openDB(path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite3", benchDSN(path))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// checkpoint folds the WAL into the database file and empties it, so the file
// can be copied alone and its size measured.
func checkpoint(path string) error {
	db, err := openDB(path)
	if err != nil {
		return err
	}
	defer db.Close()
	_, err = db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	return err
}

// fileSize is the database plus its WAL.
func fileSize(path string) int64 {
	var n int64
	for _, p := range []string{path, path + "-wal"} {
		if st, err := os.Stat(p); err == nil {
			n += st.Size()
		}
	}
	return n
}

// lookAgain is a consumer loop's answer to an empty queue: with untilStop,
// look again after a moment (until stop closes); without, stop.
func lookAgain(untilStop bool, stop <-chan struct{}) bool {
	if !untilStop {
		return false
	}
	select {
	case <-stop:
		return false
	case <-time.After(2 * time.Millisecond):
		return true
	}
}

// consumeLoop is the claim, handle, ack loop shared by the systems with an
// explicit claim. Errors are counted, not fatal, so a run reports them.
func consumeLoop(ctx context.Context, q batchQueue, batch int, untilStop bool, stop <-chan struct{}, h *handler) error {
	for {
		select {
		case <-stop:
			return nil
		default:
		}
		c, err := q.claim(ctx, batch)
		if err != nil {
			h.fail(err)
			if h.errorCount() > 1000 {
				return fmt.Errorf("claim keeps failing: %w", err)
			}
			continue
		}
		if c == nil {
			if lookAgain(untilStop, stop) {
				continue
			}
			return nil
		}
		bodies := c.bodies()
		for _, b := range bodies {
			h.deliver(b)
		}
		for {
			err := q.ack(ctx, c)
			if err == nil {
				break
			}
			h.fail(err)
			if h.errorCount() > 1000 {
				return fmt.Errorf("ack keeps failing: %w", err)
			}
		}
		h.acked(len(bodies))
	}
}
