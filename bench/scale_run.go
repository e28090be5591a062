package main

import (
	"context"
	"fmt"
)

// scaleSystems are measured at every depth: the product, and the floor to
// tell the store's cost from SQLite's.
func (b *bench) scaleSystems() []system {
	var out []system
	for _, s := range b.systems {
		switch s.(type) {
		case daguqSystem, rawSystem:
			out = append(out, s)
		}
	}
	return out
}

// scale fills one database per system to each depth in turn and times
// claims there, in a consumer process whose peak RSS it reports.
func (b *bench) scale() error {
	ctx := context.Background()
	for _, s := range b.scaleSystems() {
		db := b.path("scale.db")
		removeDB(db)
		if err := s.create(ctx, db); err != nil {
			return err
		}
		filled := 0
		for _, depth := range b.c.scaleDepths {
			b.progress("scale: %s, filling to %d messages", s.name(), depth)
			rs, err := runWorkers([]workerSpec{{Role: "produce", System: s.name(), DB: db, Batch: b.c.bulk,
				N: depth - filled, StartID: filled}}, stopAt(0, 0), b.log)
			if err != nil {
				return err
			}
			if rs[0].Acked != depth-filled {
				return fmt.Errorf("%s: fill to %d stopped at %d: %s", s.name(), depth, filled+rs[0].Acked, rs[0].FirstErr)
			}
			fillRate := rate(rs)
			filled = depth
			if err := checkpoint(db); err != nil {
				return err
			}
			size := fileSize(db)
			rs, err = runWorkers([]workerSpec{{Role: "scale", System: s.name(), DB: db, N: b.c.scaleClaims,
				StartID: 1 << 30}}, stopAt(0, 0), b.log)
			if err != nil {
				return err
			}
			r := rs[0]
			if r.Scale == nil {
				return fmt.Errorf("%s at depth %d: %s", s.name(), depth, r.FirstErr)
			}
			row := scaleRow{system: s.name(), depth: depth, fillRate: fillRate, bytes: size,
				rssKB: r.MaxRSSKB, batches: r.Scale.Batches}
			b.rep.scale = append(b.rep.scale, row)
			for _, sb := range r.Scale.Batches {
				b.progress("  depth %9d batch %3d: claim p50 %.3f ms p99 %.3f ms, claim+ack %8.0f msg/s", depth, sb.Batch, sb.ClaimP50, sb.ClaimP99, sb.Rate)
			}
			b.progress("  fill %.0f msg/s, file %.1f MB (%.0f bytes/message), consumer RSS %d MB", fillRate, float64(size)/1e6, float64(size)/float64(depth), r.MaxRSSKB/1024)
		}
		removeDB(db)
	}
	return nil
}
