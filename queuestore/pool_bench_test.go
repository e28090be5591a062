package queuestore

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// BenchmarkPoolWaiters measures what requests waiting on a full pool cost
// a queue consumer of the same database file: one consumer process claims
// and acks batches of 100, with no waiter, then with 50. Each waiter has a
// store of its own (its own connection, as 50 processes would) and waits
// as a pool step does: a read every Poll (200ms), a write to refresh its
// registration. The registration here is 3s (a refresh every second), five
// times the default rate of writes. docs/pools.md has the figures.
func BenchmarkPoolWaiters(b *testing.B) {
	benchSetup()
	for _, waiters := range []int{0, 50} {
		b.Run(fmt.Sprintf("batch=100/waiters=%d", waiters), func(b *testing.B) {
			benchPoolWaiters(b, waiters)
		})
	}
}

func benchPoolWaiters(b *testing.B, waiters int) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const batch = 100
	path := filepath.Join(b.TempDir(), "bench.db")
	s, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	msgs := make([]NewMessage, 0, 1000)
	for sent := 0; sent < b.N; sent += len(msgs) {
		msgs = msgs[:0]
		for range min(1000, b.N-sent) {
			msgs = append(msgs, NewMessage{Queue: benchQueue, Body: benchBody, Priority: threePriorities()})
		}
		if _, err := s.Enqueue(ctx, msgs...); err != nil {
			b.Fatal(err)
		}
	}
	// The pool is full for the whole run: every waiter keeps waiting.
	if err := s.SetPool(ctx, "bench", 2); err != nil {
		b.Fatal(err)
	}
	if _, err := s.Acquire(ctx, AcquireOptions{Pool: "bench", Slots: 2, Lease: time.Hour}); err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	inLine := make(chan struct{}, waiters)
	failed := make(chan error, waiters)
	for i := range waiters {
		w, err := Open(path, Options{})
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.Close()
			_, err := w.Acquire(ctx, AcquireOptions{Pool: "bench", Slots: 1 + i%2, Priority: int64(i % 3),
				Registration: 3 * time.Second, Holder: Holder{Step: fmt.Sprintf("w%d", i)},
				OnWait: func() { inLine <- struct{}{} }})
			if ctx.Err() == nil {
				failed <- fmt.Errorf("waiter %d: %v", i, err)
			}
		}()
	}
	for range waiters {
		select {
		case <-inLine:
		case err := <-failed:
			b.Fatal(err)
		}
	}

	consumer := startProc(b, "bench-consume", procArgs{DB: path, Queue: benchQueue, Name: "c", Batch: batch, Lease: time.Minute, Schema: "store"})
	if line := consumer.readLine(b); line != "ready" {
		b.Fatalf("want ready, got %q", line)
	}
	b.ResetTimer()
	waitersCPU := processCPU()
	if _, err := consumer.stdin.Write([]byte("go\n")); err != nil {
		b.Fatal(err)
	}
	line := consumer.readLine(b)
	b.StopTimer()
	waitersCPU = processCPU() - waitersCPU
	var n int
	var us, written int64
	if _, err := fmt.Sscanf(line, "done %d %d %d", &n, &us, &written); err != nil {
		b.Fatalf("want done N µs bytes, got %q: %v", line, err)
	}
	consumer.wait(b)
	if n != b.N {
		b.Fatalf("the consumer took %d messages, want %d", n, b.N)
	}
	p, err := s.Pool(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	if len(p.Waiters) != waiters {
		b.Fatalf("%d waiters in line at the end, want %d", len(p.Waiters), waiters)
	}
	reportRate(b, consumer.cmd.ProcessState.UserTime()+consumer.cmd.ProcessState.SystemTime())
	b.ReportMetric(float64(us)/1000, "max-ms")
	// What the waiters cost in CPU meanwhile (this process does nothing
	// else), in per cent of one core.
	b.ReportMetric(100*waitersCPU.Seconds()/b.Elapsed().Seconds(), "waiters-cpu-%")
}
