package queuestore_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/daguq/daguq/queuestore"
	"github.com/daguq/daguq/queuestore/storetest"
)

// Many requests of mixed weights from goroutines with a store each (a
// connection each, as processes have): the slots in use never exceed the
// capacity, and every request is served.
func TestPoolCapacityUnderContention(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "pool.db")
	var stores []queuestore.PoolBackend
	for range 8 {
		s, err := queuestore.Open(path, queuestore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	if err := stores[0].SetPool(context.Background(), "db", 3); err != nil {
		t.Fatal(err)
	}
	storetest.PoolCapacityHolds(t, stores, "db", 3)
}
