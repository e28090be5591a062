package postgres_test

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/daguq/daguq/queuestore"
	"github.com/daguq/daguq/queuestore/postgres"
)

// BenchmarkMove moves 20,000 messages of 200 bytes per run, in batches of
// 1,000, between each pair of backends: msgs/s, the time a batch holds the
// source (on SQLite, other writers of the file wait that long), and the
// CPU time of this process (SQLite's work included, the PostgreSQL
// server's not) per message.
func BenchmarkMove(b *testing.B) {
	const total, batch = 20000, 1000
	openPG := func(b *testing.B) queuestore.Mover { return open(b, postgres.Options{}) }
	openSQLite := func(b *testing.B) queuestore.Mover {
		s, err := queuestore.Open(filepath.Join(b.TempDir(), "daguq.db"), queuestore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}
	body := make([]byte, 200)
	for _, pair := range []struct {
		name     string
		from, to func(*testing.B) queuestore.Mover
	}{
		{"SQLiteToPostgres", openSQLite, openPG},
		{"PostgresToSQLite", openPG, openSQLite},
		{"SQLiteToSQLite", openSQLite, openSQLite},
		{"PostgresToPostgres", openPG, openPG},
	} {
		b.Run(pair.name, func(b *testing.B) {
			ctx := context.Background()
			var moving, cpu time.Duration
			for b.Loop() {
				b.StopTimer()
				from, to := pair.from(b), pair.to(b)
				msgs := make([]queuestore.NewMessage, total)
				for i := range msgs {
					msgs[i] = queuestore.NewMessage{Queue: "q", Body: body, Priority: int64(i % 3)}
				}
				if _, err := from.Enqueue(ctx, msgs...); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start, startCPU := time.Now(), processCPU(b)
				report, err := queuestore.Move(ctx, from, to, queuestore.MoveOptions{BatchSize: batch})
				moving += time.Since(start)
				cpu += processCPU(b) - startCPU
				if err != nil || report.Queues[0].Ready != total {
					b.Fatalf("move: %+v %v", report, err)
				}
			}
			runs := float64(b.N)
			b.ReportMetric(total*runs/moving.Seconds(), "msgs/s")
			b.ReportMetric(float64(moving.Milliseconds())/runs/(total/batch), "ms/batch")
			b.ReportMetric(float64(cpu.Microseconds())/(total*runs), "cpu-µs/msg")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// processCPU is the user and system CPU time this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
