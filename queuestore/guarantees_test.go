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

// Aging counts the time a message has waited ready, not claims: a consumer
// that claims once after ten intervals sees a priority-0 message that waited
// ten intervals ahead of a fresh priority-2 one.
func TestAgingCountsTimeWaitedNotClaims(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	// The first claim sets the queue's aging; nothing is ready yet.
	if l := b.claim(t, ClaimOptions{Queue: "q", Aging: time.Minute}); l != nil {
		t.Fatal("claim from an empty queue")
	}
	b.enqueue(t, NewMessage{Queue: "q", Body: []byte("waited"), Priority: 0})
	b.clock.Advance(10 * time.Minute)
	b.enqueue(t, NewMessage{Queue: "q", Body: []byte("fresh"), Priority: 2})
	l := b.claim(t, ClaimOptions{Queue: "q", Max: 1, Aging: time.Minute})
	if got := bodies(l); len(got) != 1 || got[0] != "waited" {
		t.Fatalf("first claim after ten aging intervals took %q, want the message that waited", got)
	}
	// Without aging, priority alone decides.
	c := setup(t, Options{})
	c.enqueue(t, NewMessage{Queue: "q", Body: []byte("waited"), Priority: 0})
	c.clock.Advance(10 * time.Minute)
	c.enqueue(t, NewMessage{Queue: "q", Body: []byte("fresh"), Priority: 2})
	if got := bodies(c.claim(t, ClaimOptions{Queue: "q", Max: 1})); got[0] != "fresh" {
		t.Fatalf("without aging the claim took %q, want the higher priority", got)
	}
}

// A retry, a release and a delay all count their wait from the time the
// message became ready again, and a changed aging interval re-ranks the
// messages already waiting.
func TestAgingIntervalChangeReranksReadyMessages(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	b.enqueue(t, NewMessage{Queue: "q", Body: []byte("low"), Priority: 0})
	b.clock.Advance(5 * time.Minute)
	b.enqueue(t, NewMessage{Queue: "q", Body: []byte("high"), Priority: 3})
	// An interval of 1m: low waited 5 intervals, more than 3 levels.
	if got := bodies(b.claim(t, ClaimOptions{Queue: "q", Max: 1, Aging: time.Minute, Lease: time.Hour})); got[0] != "low" {
		t.Fatalf("aging 1m took %q, want low", got)
	}
	b.enqueue(t, NewMessage{Queue: "q", Body: []byte("low2"), Priority: 0})
	b.clock.Advance(time.Minute)
	// An interval of 1h: a minute is nothing against 3 levels.
	if got := bodies(b.claim(t, ClaimOptions{Queue: "q", Max: 1, Aging: time.Hour})); got[0] != "high" {
		t.Fatalf("aging 1h took %q, want high", got)
	}
}

// Delayed and leased messages stay out of the ready set: a claim of a ready
// low-priority message finds it behind any number of delayed high-priority
// ones, and due messages join the ready set in order.
func TestDelayedMessagesStayOutOfTheReadySet(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	var later []NewMessage
	for range 50 {
		later = append(later, NewMessage{Queue: "q", Body: []byte("later"), Priority: 5, NotBefore: b.clock.Now().Add(time.Hour)})
	}
	b.enqueue(t, later...)
	b.enqueue(t, NewMessage{Queue: "q", Body: []byte("now"), Priority: 0})
	var ready int
	if err := b.store.DB().QueryRow(`SELECT count(*) FROM messages WHERE state = 0`).Scan(&ready); err != nil {
		t.Fatal(err)
	}
	if ready != 1 {
		t.Fatalf("%d messages in the ready set, want only the one that is due", ready)
	}
	if got := bodies(b.claim(t, ClaimOptions{Queue: "q", Max: 10, Lease: 2 * time.Hour})); len(got) != 1 || got[0] != "now" {
		t.Fatalf("claim took %q, want [now]", got)
	}
	if st := b.stats(t, "q"); st.Delayed != 50 || st.InFlight != 1 {
		t.Fatalf("stats %+v, want 50 delayed and 1 in flight", st)
	}
	b.clock.Advance(time.Hour)
	if st := b.stats(t, "q"); st.Ready != 50 {
		t.Fatalf("stats after the delay %+v, want 50 ready", st)
	}
	if got := b.claim(t, ClaimOptions{Queue: "q", Max: 100}); len(got.Messages) != 50 {
		t.Fatalf("claim after the delay took %d, want 50", len(got.Messages))
	}
}

// A claim with MaxBytes takes what fits, says so, and takes one message
// alone even when it is larger.
func TestClaimCutsByBytes(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	for _, body := range []string{"aaaa", "bbbb", "cccc", strings.Repeat("x", 20), "dddd"} {
		b.enqueue(t, msg("q", body))
	}
	l := b.claim(t, ClaimOptions{Queue: "q", Max: 10, MaxBytes: 10})
	if got := bodies(l); len(got) != 2 || !l.BytesFull {
		t.Fatalf("claim of 10 bytes took %q (full %v), want 2 messages and BytesFull", got, l.BytesFull)
	}
	more := b.claim(t, ClaimOptions{Queue: "q", Max: 10, MaxBytes: 10, Into: l})
	if more == nil || len(more.Messages) != 0 || !more.BytesFull {
		t.Fatalf("claim into a lease with 2 bytes of room: %+v, want nothing and BytesFull", more)
	}
	l2 := b.claim(t, ClaimOptions{Queue: "q", Max: 10, MaxBytes: 10})
	if got := bodies(l2); len(got) != 1 || got[0] != "cccc" {
		t.Fatalf("next claim took %q, want [cccc] (the big one does not fit after it)", got)
	}
	big := b.claim(t, ClaimOptions{Queue: "q", Max: 10, MaxBytes: 10})
	if got := bodies(big); len(got) != 1 || len(got[0]) != 20 {
		t.Fatalf("claim took %q, want the 20-byte message alone", got)
	}
}

// A batch that grows by claims into its lease holds one slot of the
// in-flight limit, however many claims filled it.
func TestClaimIntoALeaseTakesNoNewSlot(t *testing.T) {
	t.Parallel()
	b := setup(t, Options{})
	if err := b.store.SetLimit(b.ctx, "q", 1); err != nil {
		t.Fatal(err)
	}
	b.enqueue(t, msg("q", "a"))
	l := b.claim(t, ClaimOptions{Queue: "q", Max: 5})
	b.enqueue(t, msg("q", "b"), msg("q", "c"))
	if other := b.claim(t, ClaimOptions{Queue: "q", Max: 5}); other != nil {
		t.Fatalf("a second lease under limit 1: %+v", other)
	}
	more := b.claim(t, ClaimOptions{Queue: "q", Max: 4, Into: l})
	if more == nil || len(more.Messages) != 2 || more.ID != l.ID || more.Token != l.Token {
		t.Fatalf("claim into the lease: %+v, want 2 more messages under the same lease", more)
	}
	if st := b.stats(t, "q"); st.Leases != 1 || st.InFlight != 3 {
		t.Fatalf("stats %+v, want 3 in flight under 1 lease", st)
	}
	l.Messages = append(l.Messages, more.Messages...)
	if err := b.store.Ack(b.ctx, l); err != nil {
		t.Fatal(err)
	}
	if st := b.stats(t, "q"); st.Leases != 0 {
		t.Fatalf("stats %+v, want the slot free after the ack", st)
	}
	// A lease that ran out and was finished cannot be added to.
	b.enqueue(t, msg("q", "d"))
	if _, err := b.store.Claim(b.ctx, ClaimOptions{Queue: "q", Max: 1, Into: l}); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("claim into a finished lease: %v, want ErrLeaseLost", err)
	}
}

// When another claim takes some, not all, of a lease's messages after it
// expired, extend sees it at once, and ack and nack finish what the lease
// still holds and name what it does not.
func TestPartLostLeaseIsNoticedAndTheRestFinished(t *testing.T) {
	t.Parallel()
	for _, finish := range []string{"ack", "nack", "release"} {
		t.Run(finish, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Options{})
			ids := b.enqueue(t, msg("q", "a"), msg("q", "b"), msg("q", "c"))
			first := b.claim(t, ClaimOptions{Queue: "q", Lease: 10 * time.Second})
			b.clock.Advance(11 * time.Second)
			taken := b.claim(t, ClaimOptions{Queue: "q", Max: 1})
			if taken == nil || taken.Messages[0].ID != ids[0] {
				t.Fatalf("takeover claim %+v, want message %d", taken, ids[0])
			}
			var lost *LostError
			err := b.store.Extend(b.ctx, first, time.Minute)
			if !errors.As(err, &lost) || !errors.Is(err, ErrLeaseLost) || len(lost.IDs) != 1 || lost.IDs[0] != ids[0] {
				t.Fatalf("extend after a part takeover: %v, want a LostError naming %d", err, ids[0])
			}
			switch finish {
			case "ack":
				err = b.store.Ack(b.ctx, first)
			case "nack":
				var res NackResult
				res, err = b.store.Nack(b.ctx, first, NackOptions{Error: "boom"})
				if len(res.Retried) != 2 {
					t.Errorf("nack result %+v, want the 2 held messages retried", res)
				}
			case "release":
				err = b.store.Release(b.ctx, first)
			}
			if !errors.As(err, &lost) || len(lost.IDs) != 1 || lost.IDs[0] != ids[0] {
				t.Fatalf("%s: %v, want a LostError naming only %d", finish, err, ids[0])
			}
			st := b.stats(t, "q")
			if st.InFlight != 1 {
				t.Fatalf("%s: stats %+v, want only the taken message in flight", finish, st)
			}
			if err := b.store.Ack(b.ctx, taken); err != nil {
				t.Fatalf("the new holder's ack: %v", err)
			}
		})
	}
}

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
