package stopdeadline

import (
	"context"
	"testing"
	"time"
)

// The store context outlives the cancellation of its parent, and ends at
// grace + Margin after the first Stop with ErrPassed as its cause.
func TestContextEndsAtTheDeadline(t *testing.T) {
	t.Parallel()
	const grace = 100 * time.Millisecond
	d := New(grace)
	parent, cancelParent := context.WithCancel(context.Background())
	ctx, cancel := d.Context(parent)
	defer cancel()
	cancelParent()
	select {
	case <-ctx.Done():
		t.Fatal("the store context ended with its parent, before any Stop")
	case <-time.After(50 * time.Millisecond):
	}
	if !d.Stop() || d.Stop() {
		t.Fatal("Stop reports the first call, and only it")
	}
	<-ctx.Done()
	if !Passed(ctx) {
		t.Errorf("cause %v, want ErrPassed", context.Cause(ctx))
	}
	if b := d.Bound(); b != grace+Margin {
		t.Errorf("Bound %s, want %s", b, grace+Margin)
	}
}

// Hurry brings the deadline to Margin after it when that is sooner; a
// store context cancelled before is not Passed.
func TestHurryBringsTheDeadlineCloser(t *testing.T) {
	t.Parallel()
	d := New(time.Hour)
	ctx, cancel := d.Context(context.Background())
	defer cancel()
	d.Stop()
	time.Sleep(20 * time.Millisecond)
	d.Hurry()
	select {
	case <-ctx.Done():
	case <-time.After(Margin + 10*time.Second):
		t.Fatalf("the store context did not end after Hurry (bound %s)", d.Bound())
	}
	if !Passed(ctx) {
		t.Errorf("cause %v, want ErrPassed", context.Cause(ctx))
	}
	if b := d.Bound(); b < Margin || b >= time.Hour {
		t.Errorf("Bound %s, want Margin after Hurry", b)
	}
	other, cancelOther := d.Context(context.Background())
	cancelOther()
	if Passed(other) {
		t.Error("a store context cancelled by its cancel func counts as ended at the deadline")
	}
}
