package dispatch

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/daguq/daguq/dispatch/daguapitest"
	"github.com/daguq/daguq/queuestore"
)

// BenchmarkEnqueueToStart measures the time from an enqueue to the start
// request of its run reaching the stand-in Dagu, with the default poll
// interval (250ms): the dispatcher's share of the latency, without Dagu's own
// start time, with a free run slot (concurrency 64). Reports p50 and p99 in ms.
//
//	go test ./dispatch -run '^$' -bench EnqueueToStart -benchtime 60x
func BenchmarkEnqueueToStart(b *testing.B) {
	bb := setup(b)
	started := make(chan time.Time, 1)
	bb.dagu.OnRun(func(run *daguapitest.Run) {
		started <- time.Now()
		go bb.dagu.Set(run.ID, daguapitest.StatusSucceeded)
	})
	d, err := New(Options{Store: bb.store, Dagu: bb.client(), Rules: []Rule{{Queue: "q", DAG: "dag", BatchSize: 1, Concurrency: 64}},
		StatePath: bb.state, Stderr: bb.log})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	defer func() { cancel(); <-done }()
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Enqueue at a random point of the poll cycle.
		time.Sleep(time.Duration(i*37%250) * time.Millisecond)
		t0 := time.Now()
		if _, err := bb.store.Enqueue(ctx, queuestore.NewMessage{Queue: "q", Body: []byte(`{}`)}); err != nil {
			b.Fatal(err)
		}
		select {
		case t1 := <-started:
			lat = append(lat, t1.Sub(t0))
		case <-time.After(10 * time.Second):
			b.Fatal("no run started")
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
