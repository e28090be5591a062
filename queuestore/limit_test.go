package queuestore

import (
	"testing"
	"time"
)

// A limit set while a batch is in flight counts only the batches claimed
// after it (docs/lifecycle.md): extending the older batch, through its own
// lease or one loaded by its token, takes no slot, and its finish leaves no
// lease row behind.
func TestLimitSetMidBatchCountsLaterBatches(t *testing.T) {
	for name, reload := range map[string]bool{"own lease": false, "by token": true} {
		t.Run(name, func(t *testing.T) {
			b := setup(t, Options{})
			b.enqueue(t, msg("q", "a"), msg("q", "b"))
			older := b.claim(t, ClaimOptions{Queue: "q", Max: 1, Lease: time.Minute})
			if err := b.store.SetLimit(b.ctx, "q", 1); err != nil {
				t.Fatal(err)
			}
			if reload {
				var err error
				if older, err = b.store.LeaseByToken(b.ctx, older.Token); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.store.Extend(b.ctx, older, 10*time.Minute); err != nil {
				t.Fatal(err)
			}
			newer := b.claim(t, ClaimOptions{Queue: "q", Max: 1})
			if newer == nil {
				t.Fatal("the batch claimed before the limit took its only slot")
			}
			if err := b.store.Ack(b.ctx, older); err != nil {
				t.Fatal(err)
			}
			if err := b.store.Ack(b.ctx, newer); err != nil {
				t.Fatal(err)
			}
			var rows int
			if err := b.store.DB().QueryRow(`SELECT count(*) FROM leases`).Scan(&rows); err != nil || rows != 0 {
				t.Fatalf("%d lease rows left after both batches were acked (%v)", rows, err)
			}
		})
	}
}
