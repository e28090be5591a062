package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/daguq/daguq/queuestore"
)

// loadDuration is how long the load test runs: 3s in make test,
// DAGUQ_LOAD_SECONDS for a longer run (docs/serve.md quotes one).
func loadDuration(tb testing.TB) time.Duration {
	v := os.Getenv("DAGUQ_LOAD_SECONDS")
	if v == "" {
		return 3 * time.Second
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		tb.Fatalf("DAGUQ_LOAD_SECONDS=%q: want a whole number of seconds", v)
	}
	return time.Duration(n) * time.Second
}

// 200 producers post messages at once for a while, over loopback: every
// message of every 2xx answer is in the database exactly once, with the id
// the answer gave, and nothing else is.
func TestLoadConcurrentProducers(t *testing.T) {
	t.Parallel()
	const producers = 200
	ts := newTestServer(t, Options{})
	ts.client.Transport = &http.Transport{MaxIdleConnsPerHost: producers, MaxConnsPerHost: producers}
	duration := loadDuration(t)

	type sent struct {
		id  int64
		tag string
	}
	var (
		mu        sync.Mutex
		accepted  []sent
		latencies []time.Duration
		refused   = map[int]int{} // status -> count
		failures  []error
	)
	stopAt := time.Now().Add(duration)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for n := 0; time.Now().Before(stopAt); n++ {
				size := 1 + (p+n)%5
				tags := make([]string, size)
				var body bytes.Buffer
				body.WriteByte('[')
				for i := range tags {
					tags[i] = fmt.Sprintf("p%d-n%d-i%d", p, n, i)
					if i > 0 {
						body.WriteByte(',')
					}
					fmt.Fprintf(&body, `{"body":{"tag":%q},"priority":%d}`, tags[i], i)
				}
				body.WriteByte(']')
				start := time.Now()
				res, err := ts.client.Post(ts.url+"/api/v1/queues/load/messages", "application/json", &body)
				took := time.Since(start)
				if err != nil {
					mu.Lock()
					failures = append(failures, err)
					mu.Unlock()
					continue
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				mu.Lock()
				latencies = append(latencies, took)
				if res.StatusCode/100 == 2 {
					var ans enqueueAnswer
					if err := json.Unmarshal(b, &ans); err != nil || len(ans.IDs) != size {
						failures = append(failures, fmt.Errorf("answer %s: %v", b, err))
					}
					for i, id := range ans.IDs {
						accepted = append(accepted, sent{id, tags[i]})
					}
				} else {
					refused[res.StatusCode]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d requests failed, the first: %v", len(failures), failures[0])
	}
	if len(refused) > 0 {
		t.Errorf("answers other than 2xx: %v", refused)
	}
	if len(accepted) == 0 {
		t.Fatal("nothing was accepted")
	}

	// Read everything back by claiming it all.
	ctx := context.Background()
	stored := map[string][]int64{}
	total := 0
	for {
		lease, err := ts.store.Claim(ctx, queuestore.ClaimOptions{Queue: "load", Max: queuestore.MaxClaim, Lease: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if lease == nil || len(lease.Messages) == 0 {
			break
		}
		for _, m := range lease.Messages {
			var b struct{ Tag string }
			if err := json.Unmarshal(m.Body, &b); err != nil {
				t.Fatalf("message %d: %s", m.ID, m.Body)
			}
			stored[b.Tag] = append(stored[b.Tag], m.ID)
			total++
		}
	}
	for _, s := range accepted {
		ids := stored[s.tag]
		switch {
		case len(ids) == 0:
			t.Errorf("%s was accepted as id %d but is not in the database", s.tag, s.id)
		case len(ids) > 1:
			t.Errorf("%s is in the database %d times: ids %v", s.tag, len(ids), ids)
		case ids[0] != s.id:
			t.Errorf("%s is id %d, the answer said %d", s.tag, ids[0], s.id)
		}
	}
	if total != len(accepted) {
		t.Errorf("the database holds %d messages, %d were accepted", total, len(accepted))
	}
	slices.Sort(latencies)
	pct := func(p float64) time.Duration {
		return latencies[int(float64(len(latencies)-1)*p)].Round(100 * time.Microsecond)
	}
	t.Logf("%d producers, %s: %d requests, %d messages (%.0f messages/s), latency p50 %s, p99 %s, max %s",
		producers, duration, len(latencies), len(accepted), float64(len(accepted))/duration.Seconds(), pct(0.50), pct(0.99), latencies[len(latencies)-1])
}
