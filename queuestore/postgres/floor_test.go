package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/daguq/daguq/queuestore"
	"github.com/daguq/daguq/queuestore/postgres"
	"github.com/daguq/daguq/queuestore/storetest"
)

// Claims walk the ready set from the queue's floor (floor.go): a claim
// raises it to the head of the ready set, a writer that makes a message
// ready below it lowers it, and a claim does not raise it past a writer
// that has not committed yet. Every message is claimed in claim order.
func TestReadyFloor(t *testing.T) {
	t.Parallel()
	clock := storetest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := open(t, postgres.Options{Now: clock.Now})
	ctx := context.Background()
	floor := func() int64 {
		t.Helper()
		var f *int64
		if err := s.ConnPool().QueryRow(ctx, `SELECT floor FROM daguq_ready_floors WHERE queue = 'q'`).Scan(&f); err != nil {
			t.Fatal(err)
		}
		if f == nil {
			t.Fatal("no ready floor")
		}
		return *f
	}
	keyOf := func(body string) int64 {
		t.Helper()
		var k int64
		err := s.ConnPool().QueryRow(ctx, `SELECT m.sort_key FROM daguq_messages m JOIN daguq_bodies b ON b.id = m.id WHERE b.body = $1`, []byte(body)).Scan(&k)
		if err != nil {
			t.Fatalf("sort key of %s: %v", body, err)
		}
		return k
	}
	enqueue := func(tx interface {
		Enqueue(context.Context, ...queuestore.NewMessage) (queuestore.EnqueueResult, error)
	}, body string, priority int64) {
		t.Helper()
		if _, err := tx.Enqueue(ctx, queuestore.NewMessage{Queue: "q", Body: []byte(body), Priority: priority}); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Millisecond)
	}
	// claim takes one message, a second after the last claim (a claim
	// raises the floor at most every 200 ms of the store's clock), and acks
	// it unless nack says otherwise.
	claim := func(want string) *queuestore.Lease {
		t.Helper()
		clock.Advance(time.Second)
		l, err := s.Claim(ctx, queuestore.ClaimOptions{Queue: "q", Max: 1, Consumer: "c", Lease: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if l != nil {
			got = string(l.Messages[0].Body)
		}
		if got != want {
			t.Fatalf("claimed %q, want %q", got, want)
		}
		return l
	}
	ack := func(l *queuestore.Lease) {
		t.Helper()
		if err := s.Ack(ctx, l); err != nil {
			t.Fatal(err)
		}
	}

	for _, b := range []string{"a", "b", "c"} {
		enqueue(s, b, 0)
	}
	ack(claim("a"))
	if f, want := floor(), keyOf("b"); f != want {
		t.Fatalf("floor %d after claiming a, want b's key %d", f, want)
	}

	// A higher priority lowers the floor, and is claimed first.
	enqueue(s, "urgent", 5)
	if f, want := floor(), keyOf("urgent"); f != want {
		t.Fatalf("floor %d after an enqueue of priority 5, want its key %d", f, want)
	}
	ack(claim("urgent"))

	// A writer of a message above the floor but below the head, not yet
	// committed, keeps claims from raising the floor past it.
	enqueue(s, "high", 5)
	tx, err := s.ConnPool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := s.EnqueueTx(ctx, tx, queuestore.NewMessage{Queue: "q", Body: []byte("middle"), Priority: 3}); err != nil {
		t.Fatal(err)
	}
	ack(claim("high"))
	ack(claim("b")) // "middle" is not committed: b is the head
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	ack(claim("middle"))
	ack(claim("c"))

	// A claim that moves a retried message into the ready set below the
	// floor lowers it: d, of priority 2, is claimed before e again.
	enqueue(s, "d", 2)
	enqueue(s, "e", 0)
	l := claim("d") // the floor goes up to e's key
	if _, err := s.Nack(ctx, l, queuestore.NackOptions{Delay: -1}); err != nil {
		t.Fatal(err)
	}
	ack(claim("d"))
	ack(claim("e"))
	// An empty ready set's floor is the claim's now less a second.
	claim("")
	if f, want := floor(), clock.Now().UnixMilli()-1000; f != want {
		t.Fatalf("floor %d with nothing ready, want %d", f, want)
	}

	// A message moved in from another store (daguq copy), ready since long
	// before the floor, lowers it, and is claimed before a newer one.
	since := clock.Now().Add(-time.Hour)
	moved := queuestore.MovingMessage{Message: queuestore.Message{Queue: "q", Body: []byte("moved"),
		State: queuestore.StateReady, VisibleAt: since, EnqueuedAt: since, MaxAttempts: 3}}
	if _, err := s.PutIn(ctx, "another-store", []queuestore.MovingMessage{moved}); err != nil {
		t.Fatal(err)
	}
	enqueue(s, "f", 0)
	ack(claim("moved"))
	ack(claim("f"))
}
