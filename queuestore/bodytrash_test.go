package queuestore

import (
	"fmt"
	"testing"
	"time"
)

// Acks of fewer than bodyTrashMax messages list the bodies for deletion on
// the queue's counts row; the ack that fills the list deletes them all, a
// larger ack deletes its own at once, and a purge takes the listed ones
// too. Nothing listed is ever claimed or peeked.
func TestBodyTrash(t *testing.T) {
	b := setup(t, Options{})
	var msgs []NewMessage
	for i := range 2*bodyTrashMax + 10 {
		msgs = append(msgs, msg("q", fmt.Sprint(i)))
	}
	b.enqueue(t, append(msgs, msg("other", "x"))...)
	check := func(when string, wantLeft, wantListed int) {
		t.Helper()
		if left, listed := bodiesLeft(t, b.store); left != wantLeft || listed != wantListed {
			t.Fatalf("%s: %d bodies stored, %d listed; want %d and %d", when, left, listed, wantLeft, wantListed)
		}
	}
	total := len(msgs) + 1
	for i := 1; i < bodyTrashMax; i++ {
		if err := b.store.Ack(b.ctx, b.claim(t, ClaimOptions{Queue: "q", Max: 1})); err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("after %d acks of one", i), total, i)
	}
	if err := b.store.Ack(b.ctx, b.claim(t, ClaimOptions{Queue: "q", Max: 1})); err != nil {
		t.Fatal(err)
	}
	total -= bodyTrashMax
	check("after the ack that filled the list", total, 0)

	if err := b.store.Ack(b.ctx, b.claim(t, ClaimOptions{Queue: "q", Max: bodyTrashMax})); err != nil {
		t.Fatal(err)
	}
	total -= bodyTrashMax
	check("after an ack of a full list's worth", total, 0)

	for i := 1; i <= 3; i++ {
		if err := b.store.Ack(b.ctx, b.claim(t, ClaimOptions{Queue: "q", Max: 1})); err != nil {
			t.Fatal(err)
		}
	}
	check("after 3 more acks", total, 3)
	peeked, err := b.store.Peek(b.ctx, "q", PeekOptions{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(peeked) != 7 {
		t.Fatalf("peeked %d ready messages, want the 7 not acked", len(peeked))
	}
	if _, err := b.store.Purge(b.ctx, "q"); err != nil {
		t.Fatal(err)
	}
	check("after the purge", 1, 0)
}

// A queue moved away may see no more acks to fill its list: every page of
// a move deletes the listed bodies, also one that finds nothing to move,
// and Vacuum deletes what acks after the move listed.
func TestBodyTrashGoesWithMoveAndVacuum(t *testing.T) {
	b := setup(t, Options{})
	b.enqueue(t, msg("q", "a"), msg("q", "b"))
	if err := b.store.Ack(b.ctx, b.claim(t, ClaimOptions{Queue: "q", Max: 1})); err != nil {
		t.Fatal(err)
	}
	held := b.claim(t, ClaimOptions{Queue: "q", Max: 1, Lease: time.Hour})
	if left, listed := bodiesLeft(t, b.store); left != 2 || listed != 1 {
		t.Fatalf("before the move: %d bodies stored, %d listed; want 2 and 1", left, listed)
	}
	err := b.store.MoveOut(b.ctx, "q", 0, 10, func(msgs []MovingMessage) ([]int64, error) {
		return nil, fmt.Errorf("moved %d messages of a queue whose only one is in flight", len(msgs))
	})
	if err != nil {
		t.Fatal(err)
	}
	if left, listed := bodiesLeft(t, b.store); left != 1 || listed != 0 {
		t.Fatalf("after a move that found nothing: %d bodies stored, %d listed; want 1 and 0", left, listed)
	}
	if err := b.store.Ack(b.ctx, held); err != nil {
		t.Fatal(err)
	}
	if left, listed := bodiesLeft(t, b.store); left != 1 || listed != 1 {
		t.Fatalf("after an ack landing after the move: %d bodies stored, %d listed; want 1 and 1", left, listed)
	}
	if _, _, err := b.store.Vacuum(b.ctx); err != nil {
		t.Fatal(err)
	}
	if left, listed := bodiesLeft(t, b.store); left != 0 || listed != 0 {
		t.Fatalf("after a vacuum: %d bodies stored, %d listed; want none", left, listed)
	}
}
