package postgres_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/daguq/daguq/internal/pgtest"
	"github.com/daguq/daguq/queuestore"
	"github.com/daguq/daguq/queuestore/postgres"
)

// An enqueue through one store wakes a WaitReady of another at once, for
// its queue only; a delayed message wakes nobody.
func TestWaitReadyWokenByEnqueue(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	consumer, producer := openURL(t, url), openURL(t, url)
	ctx := context.Background()
	// The first wait starts the listener; wait until it listens (its
	// connection wakes every waiter when it starts).
	consumer.WaitReady(ctx, "q", 10*time.Millisecond)
	for deadline := time.Now().Add(30 * time.Second); ; {
		var n int
		if err := producer.ConnPool().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE query = 'LISTEN daguq' AND datname = current_database()`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the store did not LISTEN within 30s of its first wait")
		}
		time.Sleep(20 * time.Millisecond)
	}

	wait := func(queue string, max time.Duration, enqueue queuestore.NewMessage) time.Duration {
		t.Helper()
		done := make(chan time.Duration, 1)
		go func() {
			start := time.Now()
			consumer.WaitReady(ctx, queue, max)
			done <- time.Since(start)
		}()
		time.Sleep(60 * time.Millisecond) // past the debounce window of the last enqueue
		if _, err := producer.Enqueue(ctx, enqueue); err != nil {
			t.Fatal(err)
		}
		return <-done
	}
	if d := wait("q", 20*time.Second, queuestore.NewMessage{Queue: "q", Body: []byte("a")}); d > 10*time.Second {
		t.Fatalf("WaitReady returned after %v: the enqueue did not wake it", d)
	}
	// A wake still pending from the first notification (one may arrive
	// twice: at once and at the end of its debounce window) ends a wait
	// early but harmlessly (the consumer claims once more): take it first.
	consumer.WaitReady(ctx, "q", 100*time.Millisecond)
	if d := wait("q", time.Second, queuestore.NewMessage{Queue: "other", Body: []byte("b")}); d < time.Second {
		t.Fatalf("an enqueue to another queue woke the wait after %v", d)
	}
	if d := wait("q", time.Second, queuestore.NewMessage{Queue: "q", Body: []byte("c"), NotBefore: time.Now().Add(time.Hour)}); d < time.Second {
		t.Fatalf("a delayed message woke the wait after %v", d)
	}
	// A cancelled context ends the wait.
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	consumer.WaitReady(cctx, "q", 20*time.Second)
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("WaitReady outlived its context: %v", d)
	}
}

// NOTIFY is debounced per queue: a burst of enqueues sends about one
// notification per window (50 ms), not one per message, and the last
// enqueue of a burst is always followed by one.
func TestNotifyDebounced(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	s := openURL(t, url)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "LISTEN daguq"); err != nil {
		t.Fatal(err)
	}
	var got atomic.Int64
	listened := make(chan struct{})
	lctx, stop := context.WithCancel(ctx)
	go func() {
		defer close(listened)
		for {
			n, err := conn.WaitForNotification(lctx)
			if err != nil {
				return
			}
			if n.Payload == "burst" {
				got.Add(1)
			}
		}
	}()
	start := time.Now()
	const sent = 200
	for i := range sent {
		if _, err := s.Enqueue(ctx, queuestore.NewMessage{Queue: "burst", Body: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	time.Sleep(300 * time.Millisecond) // the trailing notification
	stop()
	<-listened
	windows := int64(elapsed/(50*time.Millisecond)) + 1
	if n := got.Load(); n < 1 || n > 2*windows+1 {
		t.Fatalf("%d notifications for %d enqueues in %v, want 1..%d", n, sent, elapsed, 2*windows+1)
	}
	t.Logf("%d notifications for %d enqueues in %v", got.Load(), sent, elapsed.Round(time.Millisecond))
}

// daguq_listen=off in the URL keeps the store off LISTEN (PgBouncer in
// transaction mode): WaitReady waits its whole time, and the setting does
// not reach the server. Another value is refused.
func TestListenOff(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	s := openURL(t, url+"?daguq_listen=off")
	ctx := context.Background()
	start := time.Now()
	done := make(chan struct{})
	go func() { s.WaitReady(ctx, "q", 500*time.Millisecond); close(done) }()
	time.Sleep(100 * time.Millisecond)
	if _, err := openURL(t, url).Enqueue(ctx, queuestore.NewMessage{Queue: "q", Body: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	<-done
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Fatalf("WaitReady returned after %v with daguq_listen=off", d)
	}
	var listening int
	if err := s.ConnPool().QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'LISTEN%' AND datname = current_database()`).Scan(&listening); err != nil || listening != 0 {
		t.Fatalf("%d sessions LISTEN (%v), want none", listening, err)
	}
	_, err := postgres.Open(url+"?daguq_listen=maybe", postgres.Options{})
	if !errors.Is(err, queuestore.ErrInvalid) || !strings.Contains(err.Error(), "daguq_listen") {
		t.Fatalf("daguq_listen=maybe: %v, want ErrInvalid naming the setting", err)
	}
}

func openURL(tb testing.TB, url string) *postgres.Store {
	tb.Helper()
	s, err := postgres.Open(url, postgres.Options{MaxConns: 2})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}
