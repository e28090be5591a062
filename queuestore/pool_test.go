package queuestore

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Many requests of mixed weights from goroutines with a store each (a
// connection each, as processes have): the slots in use never exceed the
// capacity, and every request is served.
func TestPoolCapacityUnderContention(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "pool.db")
	open := func() *Store {
		s, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	if err := open().SetPool(context.Background(), "db", 3); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	inUse, most := 0, 0
	var wg sync.WaitGroup
	for i := range 8 {
		s := open()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 5 {
				slots := 1 + (i+j)%3
				g, err := s.Acquire(context.Background(), AcquireOptions{Pool: "db", Slots: slots, Priority: int64(j % 2), Poll: 2 * time.Millisecond})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				inUse += slots
				most = max(most, inUse)
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
				mu.Lock()
				inUse -= slots
				mu.Unlock()
				if err := s.ReleaseGrant(context.Background(), g); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if most > 3 {
		t.Errorf("%d slots in use at once, capacity 3", most)
	}
	if most < 2 {
		t.Errorf("at most %d slot(s) in use at once: the pool never ran requests side by side", most)
	}
	t.Logf("at most %d of 3 slots in use at once", most)
}

func TestPollInterval(t *testing.T) {
	t.Parallel()
	const poll = 200 * time.Millisecond
	for _, tc := range []struct {
		name  string
		ahead int
		want  time.Duration
	}{
		{"head", 0, poll},
		{"next", 1, poll},
		{"third", 2, 2 * poll},
		{"far back", 4, 4 * poll},
		{"capped", 49, 5 * poll},
	} {
		if got := pollInterval(poll, tc.ahead); got != tc.want {
			t.Errorf("%s: %d ahead: %s, want %s", tc.name, tc.ahead, got, tc.want)
		}
	}
}
