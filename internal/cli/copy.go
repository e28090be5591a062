package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/daguq/daguq/executor"
	"github.com/daguq/daguq/internal/storeopen"
	"github.com/daguq/daguq/queuestore"
)

// copyFlags are the flags of `daguq copy`.
type copyFlags struct {
	from, to  string
	queues    []string
	batchSize int
	wait      time.Duration
}

// copySummary is what `daguq copy` prints on stdout.
type copySummary struct {
	From     string                 `json:"from"`
	To       string                 `json:"to"`
	Complete bool                   `json:"complete"`
	Queues   []queuestore.QueueMove `json:"queues"`
}

func (a *app) newCopyCmd() *cobra.Command {
	var f copyFlags
	cmd := &cobra.Command{
		Use:   "copy --from DB --to DB [--queue QUEUE]... [flags]",
		Short: "Move queues to another database: SQLite to PostgreSQL, back, or between two of a kind",
		Long: `Move the ready, delayed and dead messages of queues (every queue of --from, or
each --queue) from one database to another: a SQLite file or a postgres:// URL
on either side. A moved message leaves --from once it is safely in --to.
Acked messages stay where they are; --to is created when it is a missing file.

Each message keeps its body, priority, group, dedupe key, attempts and
attempt limit, last error, enqueue time and the time it becomes ready (a
delayed message stays delayed until then); dead messages stay dead with their
error. The Dagu run names peek shows (enqueued_by, claimed_by) move between
SQLite files; PostgreSQL has no place for them yet, and the summary counts the
messages whose names were dropped. A message whose dedupe key a message in
--to holds is left in --from and listed ("dedupe_clashes"): nothing is
dropped silently.

The queue's settings (pause flag, in-flight limit, aging) are copied when --to
does not know the queue yet; otherwise --to's stay and the summary lists how
they differ. Attempt limits and backoff are the consumers' settings: give them
the same flags on the new database.

First the queue is paused in --from, and stays paused afterwards (consumers
there take nothing; "daguq resume" undoes it). Messages a consumer holds under
a live lease are never moved: by default they are left in --from and counted
("in_flight_left"); --wait waits that long per queue for their leases to end
(acked ones are done, retried or released ones move).

Messages move in batches (--batch-size, default 1000): each batch is stored in
--to with a record of its origin in one transaction, then deleted from --from.
A move that is stopped or killed at any point can be run again: it finishes
what was begun, with no message lost or stored twice. Do not resume the queue
in --from before it has. Stop it with SIGINT or SIGTERM: the batch under way
finishes first.

Progress goes to stderr: a bar on a terminal; otherwise a line when a queue
starts moving, at most one a second after, and one when it is done. A JSON summary goes to stdout: {"from", "to",
"complete", "queues": [{"queue", "ready", "delayed", "dead", "resumed",
"settings", "settings_differences", "destination_paused", "in_flight_left",
"left", "dedupe_clashes", "in_both", "dropped_run_names"}]}. Database URLs
appear without their passwords.

Exit status: 0 every message moved; 1 some stayed in --from (in flight, dedupe
clashes, "left": enqueued during the move) or are in both databases ("in_both":
the queue in --from was resumed after an interrupted move and a consumer took
the message since): the summary lists them; 2 bad flags (nothing moved);
3 a database error (run it again to finish); 4 stopped by a signal.`,
		Example: `  daguq copy --from /var/lib/daguq/queues.db --to "postgres://daguq@db.internal/daguq"
  daguq copy --from queues.db --to "$DAGUQ_PG_URL" --queue emails --queue reports --wait 5m
  daguq copy --from "$DAGUQ_PG_URL" --to queues.db --queue emails`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return a.copyQueues(ctx, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.from, "from", "", "database to move the messages out of: a SQLite file or a postgres:// URL (required)")
	fl.StringVar(&f.to, "to", "", "database to move them into: a SQLite file (created when missing) or a postgres:// URL (required)")
	fl.StringArrayVar(&f.queues, "queue", nil, "queue to move; repeat for several (default: every queue of --from)")
	fl.IntVar(&f.batchSize, "batch-size", 1000, "messages moved per transaction, 1..10000")
	fl.DurationVar(&f.wait, "wait", 0, "per queue, wait up to this long for messages in flight to come back or be acked (0: leave them)")
	return cmd
}

func (a *app) copyQueues(ctx context.Context, f copyFlags) error {
	if err := f.check(); err != nil {
		return err
	}
	from, err := openMover(f.from, "--from", false)
	if err != nil {
		return err
	}
	defer from.Close()
	// Queues the source does not know are refused before --to is opened
	// (and created, when it is a missing file).
	if len(f.queues) > 0 {
		known, err := from.Queues(ctx)
		if err != nil {
			return err
		}
		for _, q := range f.queues {
			if !slices.Contains(known, q) {
				return usageError("--queue %q: %s has no messages and no settings for it; \"daguq --db ... stats\" lists its queues", q, from.Describe())
			}
		}
	}
	to, err := openMover(f.to, "--to", true)
	if err != nil {
		return err
	}
	defer to.Close()
	progress := a.copyProgress(ctx, from)
	report, err := queuestore.Move(ctx, from, to, queuestore.MoveOptions{Queues: f.queues, BatchSize: f.batchSize,
		Wait: f.wait, Progress: progress.batch})
	progress.finish()
	summary := copySummary{From: from.Describe(), To: to.Describe(), Complete: err == nil && report.Complete(),
		Queues: report.Queues}
	if summary.Queues == nil {
		summary.Queues = []queuestore.QueueMove{}
	}
	out, jsonErr := json.Marshal(summary)
	if jsonErr != nil {
		return jsonErr
	}
	fmt.Fprintf(a.stdout, "%s\n", out)
	switch {
	case errors.Is(err, queuestore.ErrInvalid):
		return usageError("%v", err)
	case errors.Is(err, context.Canceled):
		return &executor.ExitError{Code: executor.ExitStopped, Err: fmt.Errorf("stopped by a signal; run the same command again to finish: %w", err)}
	case err != nil:
		return &executor.ExitError{Code: executor.ExitStore, Err: err}
	case !summary.Complete:
		return &executor.ExitError{Code: executor.ExitHandlerFailed, Err: errors.New(incompleteText(report))}
	}
	return nil
}

// check refuses flags before any database is opened.
func (f copyFlags) check() error {
	for _, fl := range []struct{ name, value string }{{"--from", f.from}, {"--to", f.to}} {
		if strings.TrimSpace(fl.value) == "" {
			return usageError("%s is required: a SQLite file path or a postgres:// URL", fl.name)
		}
	}
	if f.batchSize < 1 || f.batchSize > queuestore.MaxClaim {
		return usageError("--batch-size must be 1..%d, got %d", queuestore.MaxClaim, f.batchSize)
	}
	if f.wait < 0 {
		return usageError("--wait must be 0 or more, got %s", f.wait)
	}
	for _, q := range f.queues {
		if err := queuestore.ValidateQueueName(q); err != nil {
			return usageError("--queue %q: want %s", q, queuestore.QueueNameRule)
		}
	}
	return nil
}

// openMover opens one side of a move. A source SQLite file must exist: a
// mistyped path must not become an empty database.
func openMover(db, flag string, create bool) (queuestore.Mover, error) {
	if !create && !storeopen.IsURL(db) {
		if _, err := os.Stat(db); errors.Is(err, fs.ErrNotExist) {
			return nil, usageError("%s %q: no such file", flag, db)
		}
	}
	st, err := executor.OpenBackend(db, executor.StoreOptions{})
	if err != nil {
		var de *executor.DatabaseError
		if errors.As(err, &de) {
			de.From = flag
		}
		return nil, err
	}
	m, ok := st.(queuestore.Mover)
	if !ok {
		st.Close()
		return nil, &executor.DatabaseError{DB: storeopen.Redact(db), From: flag, Err: errors.New("this backend cannot move queues")}
	}
	return m, nil
}

// incompleteText says in one line what a move left behind.
func incompleteText(r queuestore.MoveReport) string {
	var parts []string
	for _, q := range r.Queues {
		if q.InFlight > 0 {
			parts = append(parts, fmt.Sprintf("%q: %d in flight left in the source (run again, or with --wait, once their leases end)", q.Queue, q.InFlight))
		}
		if q.Left > 0 {
			parts = append(parts, fmt.Sprintf("%q: %d enqueued into the source during the move (run again)", q.Queue, q.Left))
		}
		if len(q.Clashed) > 0 {
			parts = append(parts, fmt.Sprintf("%q: %d left in the source because their dedupe key is taken in the destination", q.Queue, len(q.Clashed)))
		}
		if len(q.InBoth) > 0 {
			parts = append(parts, fmt.Sprintf("%q: %d in both databases, taken by a consumer in the source after an interrupted move", q.Queue, len(q.InBoth)))
		}
	}
	return "not every message moved: " + strings.Join(parts, "; ") + " (the summary on stdout lists them)"
}

// copyProgress reports a move on stderr.
type copyProgress struct {
	a     *app
	ctx   context.Context
	from  queuestore.Backend
	bar   *barProgress // on a terminal
	queue string
	total int64
	last  time.Time
	moved int64
}

func (a *app) copyProgress(ctx context.Context, from queuestore.Backend) *copyProgress {
	p := &copyProgress{a: a, ctx: ctx, from: from}
	if a.isTerminal(a.stderr) {
		p.bar = newBarProgress(a.stderr, "moving")
	}
	return p
}

// batch is told after every batch of the move.
func (p *copyProgress) batch(mp queuestore.MoveProgress) {
	if mp.Queue != p.queue {
		p.finish()
		p.queue, p.moved = mp.Queue, 0
		p.total = -1
		if st, err := p.from.Stats(p.ctx, mp.Queue); err == nil {
			p.total = mp.Moved + st.Ready + st.Delayed + st.Dead
		}
		if p.bar != nil {
			p.bar.desc = fmt.Sprintf("moving %q", mp.Queue)
			p.bar.Start(p.total, "messages")
		}
	}
	p.moved = mp.Moved
	if p.bar != nil {
		p.bar.Set(mp.Moved)
		return
	}
	if time.Since(p.last) >= time.Second {
		p.last = time.Now()
		fmt.Fprintf(p.a.stderr, "daguq copy: queue %q: %d of %d moved\n", p.queue, p.moved, p.total)
	}
}

// finish ends the report of the current queue.
func (p *copyProgress) finish() {
	if p.queue == "" {
		return
	}
	if p.bar != nil {
		p.bar.Finish()
	} else {
		fmt.Fprintf(p.a.stderr, "daguq copy: queue %q: %d moved\n", p.queue, p.moved)
	}
	p.queue, p.last = "", time.Time{}
}
