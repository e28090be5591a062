package soak

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"time"

	_ "github.com/mattn/go-sqlite3" // the driver daguq itself uses
)

// The audit log. Instrument adds a table and triggers to a daguq database
// (after "daguq migrate"), so that every insert, claim, extend, nack,
// release and delete of a message writes one row in the same transaction as
// the change itself. The log is what the checker reads to know which lease
// held a message when, and which lease finished it: with acked rows deleted
// at once (no ack retention on the command line), the database alone keeps
// no history. The triggers change nothing daguq reads; statements' change
// counts (sqlite3_changes) do not include rows that triggers write.
const (
	auditTable = `
CREATE TABLE IF NOT EXISTS soak_log (
    seq          INTEGER PRIMARY KEY,
    at           INTEGER NOT NULL, -- ms, the clock at the statement
    ev           TEXT    NOT NULL, -- enqueue, claim, extend, finish, delete
    msg          INTEGER NOT NULL,
    lease        INTEGER,          -- the lease that claimed, extended or finished
    prev_lease   INTEGER,          -- claim: the lease the message had before
    prev_visible INTEGER,          -- claim: its visible_at before (an older lease's end, or when it was due)
    visible      INTEGER,          -- visible_at after the change
    state        INTEGER,          -- state after (delete: before)
    attempts     INTEGER,          -- attempts after (delete: before)
    prev_attempts INTEGER,
    max_attempts INTEGER,
    dedupe       TEXT,
    err          TEXT
) STRICT`

	auditNow = `CAST(unixepoch('subsec') * 1000 AS INTEGER)`

	auditEnqueue = `
CREATE TRIGGER IF NOT EXISTS soak_enqueue AFTER INSERT ON messages BEGIN
    INSERT INTO soak_log (at, ev, msg, visible, state, attempts, max_attempts, dedupe)
    VALUES (` + auditNow + `, 'enqueue', NEW.id, NEW.visible_at, NEW.state, NEW.attempts, NEW.max_attempts, NEW.dedupe_key);
END`
	auditClaim = `
CREATE TRIGGER IF NOT EXISTS soak_claim AFTER UPDATE OF lease_id ON messages
WHEN NEW.lease_id IS NOT NULL AND NEW.lease_id IS NOT OLD.lease_id BEGIN
    INSERT INTO soak_log (at, ev, msg, lease, prev_lease, prev_visible, visible, state, attempts, prev_attempts)
    VALUES (` + auditNow + `, 'claim', NEW.id, NEW.lease_id, OLD.lease_id, OLD.visible_at,
            NEW.visible_at, OLD.state, NEW.attempts, OLD.attempts);
END`
	auditExtend = `
CREATE TRIGGER IF NOT EXISTS soak_extend AFTER UPDATE OF visible_at ON messages
WHEN NEW.lease_id IS NOT NULL AND NEW.lease_id IS OLD.lease_id AND NEW.visible_at IS NOT OLD.visible_at BEGIN
    INSERT INTO soak_log (at, ev, msg, lease, prev_visible, visible, state, attempts)
    VALUES (` + auditNow + `, 'extend', NEW.id, NEW.lease_id, OLD.visible_at, NEW.visible_at, NEW.state, NEW.attempts);
END`
	auditFinish = `
CREATE TRIGGER IF NOT EXISTS soak_finish AFTER UPDATE OF lease_id ON messages
WHEN OLD.lease_id IS NOT NULL AND NEW.lease_id IS NULL BEGIN
    INSERT INTO soak_log (at, ev, msg, lease, visible, state, attempts, prev_attempts, max_attempts, err)
    VALUES (` + auditNow + `, 'finish', NEW.id, OLD.lease_id, NEW.visible_at, NEW.state, NEW.attempts, OLD.attempts,
            NEW.max_attempts, NEW.last_error);
END`
	auditDelete = `
CREATE TRIGGER IF NOT EXISTS soak_delete AFTER DELETE ON messages BEGIN
    INSERT INTO soak_log (at, ev, msg, lease, visible, state, attempts, max_attempts, dedupe, err)
    VALUES (` + auditNow + `, 'delete', OLD.id, OLD.lease_id, OLD.visible_at, OLD.state, OLD.attempts, OLD.max_attempts,
            OLD.dedupe_key, OLD.last_error);
END`

	auditRead = `
SELECT seq, at, ev, msg, lease, prev_lease, prev_visible, visible, state, attempts, prev_attempts,
       max_attempts, dedupe, err
FROM soak_log ORDER BY seq`
)

// Event is one row of the audit log.
type Event struct {
	Seq          int64
	At           int64 // ms
	Ev           string
	Msg          int64
	Lease        int64 // 0: none
	PrevLease    int64
	PrevVisible  int64
	Visible      int64
	State        int64
	Attempts     int64
	PrevAttempts int64
	MaxAttempts  int64
	Dedupe       string
	Err          string
}

// Kinds of finish events, told apart by what the statement changed.
const (
	finishRetry   = "retry"   // nack with attempts left: delayed
	finishDead    = "dead"    // nack with no attempt left
	finishRelease = "release" // given back unhandled: attempt returned
	finishAcked   = "acked"   // ack with an ack retention (state 3)
)

// finishKind classifies a finish event.
func (e Event) finishKind() string {
	switch {
	case e.State == 2:
		return finishDead
	case e.State == 3:
		return finishAcked
	case e.Attempts < e.PrevAttempts:
		return finishRelease
	}
	return finishRetry
}

// openDB opens a daguq file for the soak's own statements: immediate
// transactions (so a held write lock is a real one) and a long busy wait.
func openDB(path string, busy time.Duration) (*sql.DB, error) {
	params := url.Values{}
	params.Set("_busy_timeout", fmt.Sprint(busy.Milliseconds()))
	params.Set("_txlock", "immediate")
	escaped := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	db, err := sql.Open("sqlite3", "file:"+escaped+"?"+params.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// Instrument adds the audit log to the daguq database at path, which must
// exist and be migrated ("daguq migrate").
func Instrument(path string) error {
	db, err := openDB(path, 30*time.Second)
	if err != nil {
		return err
	}
	defer db.Close()
	tx, err := db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, stmt := range []string{auditTable, auditEnqueue, auditClaim, auditExtend, auditFinish, auditDelete} {
		if _, err := tx.Exec(stmt); err != nil {
			return fmt.Errorf("instrument %s: %w", path, err)
		}
	}
	return tx.Commit()
}

// ReadLog reads the whole audit log in the order it was written.
func ReadLog(ctx context.Context, db *sql.DB) ([]Event, error) {
	rows, err := db.QueryContext(ctx, auditRead)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var lease, prevLease, prevVisible, visible, state, attempts, prevAttempts, maxAttempts sql.NullInt64
		var dedupe, errText sql.NullString
		if err := rows.Scan(&e.Seq, &e.At, &e.Ev, &e.Msg, &lease, &prevLease, &prevVisible, &visible,
			&state, &attempts, &prevAttempts, &maxAttempts, &dedupe, &errText); err != nil {
			return nil, err
		}
		e.Lease, e.PrevLease, e.PrevVisible = lease.Int64, prevLease.Int64, prevVisible.Int64
		e.Visible, e.State, e.Attempts, e.PrevAttempts = visible.Int64, state.Int64, attempts.Int64, prevAttempts.Int64
		e.MaxAttempts, e.Dedupe, e.Err = maxAttempts.Int64, dedupe.String, errText.String
		out = append(out, e)
	}
	return out, rows.Err()
}
