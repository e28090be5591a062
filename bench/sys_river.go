package main

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
)

// riverSystem is River with its SQLite driver. River is a job queue, not a
// message queue: a message is a job whose args carry the body, the handler
// is a worker whose Work does nothing, and the ack is River's completion.
//
// River has no claim-N call. Batch size N maps to MaxWorkers = N: each fetch
// locks up to the free worker slots (N when idle) in one statement, the jobs
// run in N goroutines, and River's completer writes completions
// asynchronously. FetchCooldown is River's minimum (1 ms; default 100 ms)
// and FetchPollInterval 20 ms (default 1 s), so River is not held back by
// its defaults, which are tuned for PostgreSQL LISTEN/NOTIFY.
type riverSystem struct{}

type riverArgs struct {
	Body string `json:"b"`
}

func (riverArgs) Kind() string { return "bench" }

const (
	riverFetchCooldown     = time.Millisecond
	riverFetchPollInterval = 20 * time.Millisecond
)

func (riverSystem) name() string { return "River (SQLite)" }

func (riverSystem) jobQueue() {}

func (riverSystem) create(ctx context.Context, path string) error {
	db, err := openDB(path)
	if err != nil {
		return err
	}
	defer db.Close()
	m, err := rivermigrate.New(riversqlite.New(db), &rivermigrate.Config{Logger: quietLogger()})
	if err != nil {
		return err
	}
	_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	return err
}

func (riverSystem) open(ctx context.Context, path string) (queue, error) {
	db, err := openDB(path)
	if err != nil {
		return nil, err
	}
	driver := riversqlite.New(db)
	client, err := river.NewClient(driver, &river.Config{Logger: quietLogger()})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &riverQueue[*sql.Tx]{driver: driver, inserter: client, closeDB: db.Close,
		unfinished: func(ctx context.Context) (int64, error) {
			var n int64
			err := db.QueryRowContext(ctx, riverUnfinished).Scan(&n)
			return n, err
		}}, nil
}

// riverUnfinished counts the jobs not completed.
const riverUnfinished = `SELECT count(*) FROM river_job WHERE state <> 'completed'`

// quietLogger passes River's warnings and errors to stderr, which the parent
// keeps in the run's log.
func quietLogger() *slog.Logger {
	var w io.Writer = os.Stderr
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// riverQueue is River on one of its drivers (TTx: the driver's transaction).
type riverQueue[TTx any] struct {
	driver     riverdriver.Driver[TTx]
	inserter   *river.Client[TTx]
	unfinished func(ctx context.Context) (int64, error)
	closeDB    func() error
}

func (q *riverQueue[TTx]) enqueue(ctx context.Context, bodies [][]byte) error {
	if len(bodies) == 1 {
		_, err := q.inserter.Insert(ctx, riverArgs{Body: string(bodies[0])}, nil)
		return err
	}
	params := make([]river.InsertManyParams, len(bodies))
	for i, b := range bodies {
		params[i] = river.InsertManyParams{Args: riverArgs{Body: string(b)}}
	}
	_, err := q.inserter.InsertMany(ctx, params)
	return err
}

func (q *riverQueue[TTx]) consume(ctx context.Context, batch int, untilStop bool, stop <-chan struct{}, h *handler) error {
	workers := river.NewWorkers()
	river.AddWorker(workers, river.WorkFunc(func(ctx context.Context, job *river.Job[riverArgs]) error {
		h.deliver([]byte(job.Args.Body))
		return nil
	}))
	client, err := river.NewClient(q.driver, &river.Config{
		Queues:            map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: batch}},
		Workers:           workers,
		FetchCooldown:     riverFetchCooldown,
		FetchPollInterval: riverFetchPollInterval,
		Logger:            quietLogger(),
	})
	if err != nil {
		return err
	}
	// Completion events come after River has written the completion: they
	// are the ack. A large buffer so none is dropped.
	events, cancel := client.SubscribeConfig(&river.SubscribeConfig{
		ChanSize: 50_000, Kinds: []river.EventKind{river.EventKindJobCompleted}})
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range events {
			h.acked(1)
		}
	}()
	if err := client.Start(ctx); err != nil {
		return err
	}
	// River never reports an empty queue; the parent says when to stop.
	<-stop
	stopCtx, stopCancel := context.WithTimeout(ctx, time.Minute)
	defer stopCancel()
	err = client.Stop(stopCtx)
	cancel()
	<-done
	return err
}

func (q *riverQueue[TTx]) remaining(ctx context.Context) (int64, error) { return q.unfinished(ctx) }

func (q *riverQueue[TTx]) close() error { return q.closeDB() }
