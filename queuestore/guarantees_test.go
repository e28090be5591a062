package queuestore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Another application's SQLite file is refused before anything is written:
// the file stays byte for byte as it was, and no WAL is made for it.
func TestForeignSQLiteFileIsNeverModified(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "other-app.db")
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=DELETE")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('keep me')`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	before := fileSum(t, path)
	_, err = Open(path, Options{})
	if !errors.Is(err, ErrNotDaguqDatabase) {
		t.Fatalf("open of another application's file: %v, want ErrNotDaguqDatabase", err)
	}
	if after := fileSum(t, path); !bytes.Equal(before, after) {
		t.Fatal("opening another application's file changed its bytes")
	}
	if _, err := os.Stat(path + "-wal"); err == nil {
		t.Fatal("opening another application's file made a WAL for it")
	}
}

func fileSum(tb testing.TB, path string) []byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	s := sha256.Sum256(b)
	return s[:]
}

// Opening a current database only reads: it answers at once while another
// process holds the write lock, and so do reads. A write that waits says so
// after about a second, naming the database.
func TestOpenAndReadsDoNotWaitForTheWriteLock(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "daguq.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Enqueue(context.Background(), msg("q", "m")); err != nil {
		t.Fatal(err)
	}
	s.Close()

	holder := holdWriteLock(t, path)
	start := time.Now()
	var notice lockedBuffer
	s2, err := Open(path, Options{BusyTimeout: 5 * time.Second, LockWaitNotice: &notice})
	if err != nil {
		t.Fatalf("open while another process writes: %v", err)
	}
	defer s2.Close()
	st, err := s2.Stats(context.Background(), "q")
	if err != nil || st.Ready != 1 {
		t.Fatalf("stats while another process writes: %+v, %v", st, err)
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Fatalf("open and stats waited %s for the write lock", waited)
	}

	released := make(chan struct{})
	go func() {
		time.Sleep(1500 * time.Millisecond)
		holder.Rollback()
		close(released)
	}()
	if _, err := s2.Enqueue(context.Background(), msg("q", "m2")); err != nil {
		t.Fatalf("enqueue after the lock was released: %v", err)
	}
	<-released
	if got := notice.String(); !strings.Contains(got, "waiting") || !strings.Contains(got, path) {
		t.Fatalf("lock wait notice %q, want one naming %s", got, path)
	}
}

// holdWriteLock takes the write lock of the database on a connection of its
// own, as another process would, until the returned transaction ends.
func holdWriteLock(tb testing.TB, path string) *sql.Tx {
	tb.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_txlock=immediate")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	tx, err := db.Begin()
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := tx.Exec(`UPDATE queues SET paused = paused`); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { tx.Rollback() })
	return tx
}

// A version 1 file is migrated in place: its messages keep their ids,
// states, priorities and bodies, and ids are not reused.
func TestMigrationFromVersion1(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "v1.db")
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL")
	if err != nil {
		t.Fatal(err)
	}
	v1, err := migrationFiles.ReadFile("migrations/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	_, err = db.Exec(string(v1)+`;
PRAGMA application_id = 1684501873; PRAGMA user_version = 1;
INSERT INTO messages (id, queue, state, priority, rank, visible_at, attempts, max_attempts, enqueued_at)
VALUES (1, 'q', 0, 0, 0, ?1, 0, 5, ?1),            -- ready, low
       (2, 'q', 0, 7, 7, ?1, 0, 5, ?1),            -- ready, high
       (3, 'q', 0, 9, 9, ?1 + 3600000, 0, 5, ?1),  -- delayed
       (4, 'q', 2, 0, 0, ?1, 5, 5, ?1),            -- dead
       (9, 'q', 0, 0, 0, ?1, 0, 5, ?1);
INSERT INTO bodies (id, body) VALUES (1, CAST('low' AS BLOB)), (2, CAST('high' AS BLOB)), (3, CAST('later' AS BLOB)), (4, CAST('dead' AS BLOB)), (9, CAST('low2' AS BLOB));
INSERT INTO sqlite_sequence (name, seq) VALUES ('messages', 20) ON CONFLICT DO NOTHING;
UPDATE sqlite_sequence SET seq = 20 WHERE name = 'messages';`, now)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	st, err := s.Stats(ctx, "q")
	if err != nil || st.Ready != 3 || st.Delayed != 1 || st.Dead != 1 {
		t.Fatalf("stats after migration %+v, %v; want 3 ready, 1 delayed, 1 dead", st, err)
	}
	l, err := s.Claim(ctx, ClaimOptions{Queue: "q", Max: 10})
	if err != nil {
		t.Fatal(err)
	}
	if got := bodies(l); strings.Join(got, ",") != "high,low,low2" {
		t.Fatalf("claim after migration took %q, want high,low,low2", got)
	}
	res, err := s.Enqueue(ctx, msg("q", "new"))
	if err != nil || res.IDs[0] != 21 {
		t.Fatalf("first id after migration %v, %v; want 21 (ids are never reused)", res.IDs, err)
	}
}

// An ack of a finished batch waits for another process's write lock for as
// long as its lease lasts, not only Options.BusyTimeout: the handler's work
// is not given up because the lock was busy. Other writes give up with
// ErrBusy.
func TestAckWaitsForTheLockWhileTheLeaseLives(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "daguq.db")
	s, err := Open(path, Options{BusyTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if _, err := s.Enqueue(ctx, msg("q", "m")); err != nil {
		t.Fatal(err)
	}
	lease, err := s.Claim(ctx, ClaimOptions{Queue: "q", Max: 1, Lease: 10 * time.Second})
	if err != nil || lease == nil {
		t.Fatal(lease, err)
	}
	holder := holdWriteLock(t, path)
	if _, err := s.Enqueue(ctx, msg("q", "m2")); !errors.Is(err, ErrBusy) {
		t.Fatalf("enqueue under a busy lock: %v, want ErrBusy", err)
	}
	go func() {
		time.Sleep(time.Second)
		holder.Rollback()
	}()
	if err := s.Ack(ctx, lease); err != nil {
		t.Fatalf("ack after the lock was busy for longer than the busy timeout: %v", err)
	}
}

// A drained file gives its space back: new files are incremental, and
// reclaiming runs in steps while the file stays in use; an older file is
// switched over by one Vacuum.
func TestDrainedFileShrinks(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	body := bytes.Repeat([]byte("x"), 4000)
	var msgs []NewMessage
	for range 2000 {
		msgs = append(msgs, NewMessage{Queue: "q", Body: body})
	}
	b.enqueue(t, msgs...)
	if _, err := b.store.DB().Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	full, err := b.store.Space(b.ctx)
	if err != nil || !full.Incremental {
		t.Fatalf("a new file: %+v, %v; want auto_vacuum incremental", full, err)
	}
	for {
		l := b.claim(t, ClaimOptions{Queue: "q", Max: 500})
		if l == nil {
			break
		}
		if err := b.store.Ack(b.ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	for {
		n, err := b.store.Reclaim(b.ctx, reclaimStep)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	if _, err := b.store.DB().Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	drained, err := b.store.Space(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if drained.FileBytes > full.FileBytes/10 {
		t.Fatalf("after a drain and reclaim the file has %d bytes, it had %d full", drained.FileBytes, full.FileBytes)
	}

	// A file without incremental auto_vacuum is switched by Vacuum.
	if _, err := b.store.DB().Exec(`PRAGMA auto_vacuum = NONE; VACUUM`); err != nil {
		t.Fatal(err)
	}
	b.enqueue(t, msgs...)
	if _, err := b.store.Purge(b.ctx, "q"); err != nil {
		t.Fatal(err)
	}
	if n, err := b.store.Reclaim(b.ctx, reclaimStep); n != 0 || err != nil {
		t.Fatalf("reclaim on a file without auto_vacuum: %d, %v; want nothing", n, err)
	}
	if _, err := b.store.DB().Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	before, after, err := b.store.Vacuum(b.ctx)
	if err != nil || !after.Incremental || after.FileBytes >= before.FileBytes/10 {
		t.Fatalf("vacuum: %+v -> %+v, %v", before, after, err)
	}
}
