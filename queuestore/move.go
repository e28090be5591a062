package queuestore

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Moving queues between databases (`daguq copy`, docs/postgres.md#moving-queues).
//
// Move takes the ready, delayed and dead messages of a queue out of one
// database and stores them in another, in batches. A batch is held in the
// source (its rows locked, in SQLite the write lock) while the destination
// stores it, with a record of where each message came from (the source's
// StoreID and the message's id there) in the same transaction; only then
// does the source delete the batch. A move killed after the destination's
// commit leaves those messages in both databases: run again, it finds
// their origin records, stores them no second time and deletes them from
// the source. The source queue is paused first, so no consumer takes a
// message meanwhile.

// Mover is what a backend implements besides Backend so that Move can move
// queues out of it and into it.
type Mover interface {
	Backend

	// StoreID names the database for good: a random id its schema
	// migration chose, the same whatever path or URL reaches it.
	StoreID(ctx context.Context) (string, error)
	// QueueSettings are queue's settings; found is false when it has none.
	QueueSettings(ctx context.Context, queue string) (set QueueSettings, found bool, err error)
	// AdoptQueueSettings gives queue these settings when the database does
	// not know it yet (no messages, no settings), and reports whether it did.
	AdoptQueueSettings(ctx context.Context, queue string, set QueueSettings) (bool, error)

	// MoveOut runs fn on up to limit messages of queue that can move, with
	// ids above after, in id order, inside one transaction of this database
	// that keeps them as they are (their rows locked; in SQLite the write
	// lock), and deletes the ids fn returns in it: ready, delayed and dead
	// messages, never one a live lease holds (one whose lease ran out counts
	// as ready). It does not call fn when there are none. fn may run again
	// with the same messages when the transaction has to be retried.
	MoveOut(ctx context.Context, queue string, after int64, limit int, fn func([]MovingMessage) (remove []int64, err error)) error
	// PutIn stores messages taken out of the database named source, each
	// with its origin record, in one transaction. A message whose origin is
	// recorded already is not stored again; one whose dedupe key a message
	// here holds is not stored (Clashed).
	PutIn(ctx context.Context, source string, msgs []MovingMessage) (PutResult, error)
	// Origins lists origin records of messages from source in queue with
	// source ids above after, in source id order.
	Origins(ctx context.Context, source, queue string, after int64, limit int) ([]Origin, error)
	// ForgetOrigins drops the origin records of these source ids.
	ForgetOrigins(ctx context.Context, source string, ids []int64) error
	// Present is the state of each of ids still stored in queue.
	Present(ctx context.Context, queue string, ids []int64) (map[int64]State, error)
}

// MovingMessage is a message on its way to another database.
type MovingMessage struct {
	// Message as the source stores it: State is ready, delayed or dead,
	// VisibleAt when it is (or was) ready, Attempt its deliveries so far.
	Message
	FinishedAt time.Time // when a dead message died
}

// QueueSettings are what a queue keeps besides its messages.
type QueueSettings struct {
	Paused        bool          `json:"paused"`
	InFlightLimit int           `json:"in_flight_limit"`
	Aging         time.Duration `json:"aging_ns"`
}

// ValidateQueueSettings checks settings AdoptQueueSettings is to give queue.
func ValidateQueueSettings(queue string, set QueueSettings) error {
	if err := ValidateQueueName(queue); err != nil {
		return err
	}
	if set.Aging < 0 {
		return fmt.Errorf("%w: aging must be >= 0, got %s", ErrInvalid, set.Aging)
	}
	return ValidateLimit(set.InFlightLimit)
}

// PutResult says what PutIn did with each message, by source id.
type PutResult struct {
	Stored  []int64 // stored now
	Present []int64 // stored by an earlier, interrupted move
	Clashed []int64 // not stored: a message here holds its dedupe key
	// Dropped counts stored messages whose enqueued_by or claimed_by this
	// database has no column for.
	Dropped int
}

// Origin records where a message here came from.
type Origin struct {
	Source   string `json:"source"`    // the source's StoreID
	SourceID int64  `json:"source_id"` // its id there
	Queue    string `json:"queue"`
	ID       int64  `json:"id"` // its id here
}

// MoveOptions tune Move. The zero value means the defaults.
type MoveOptions struct {
	// Queues to move; none: every queue the source knows.
	Queues []string
	// BatchSize is how many messages one transaction moves: 1..MaxClaim,
	// default 1000.
	BatchSize int
	// Wait is how long to wait for messages in flight (leased when the move
	// began) to come back or be acked; zero: do not wait, leave them.
	Wait time.Duration
	// PollInterval is how often to look again while waiting. Default 1s.
	PollInterval time.Duration
	// Progress, when set, is told after every batch.
	Progress func(MoveProgress)
}

// MoveProgress is where a move stands after a batch.
type MoveProgress struct {
	Queue string
	Moved int64 // messages of the queue moved so far, resumed ones included
}

// MoveReport says what Move did, per queue.
type MoveReport struct {
	Queues []QueueMove `json:"queues"`
}

// QueueMove is one queue's part of a move.
type QueueMove struct {
	Queue   string `json:"queue"`
	Ready   int64  `json:"ready"`   // moved now, by state in the source
	Delayed int64  `json:"delayed"` //
	Dead    int64  `json:"dead"`    //
	// Resumed counts messages an interrupted move had stored in the
	// destination already: now deleted from the source.
	Resumed int64 `json:"resumed"`
	// Settings: "copied" (the destination did not know the queue), "kept"
	// (it did: its own stay; Differences lists how they differ) or "none"
	// (the source queue had none).
	Settings    string   `json:"settings"`
	Differences []string `json:"settings_differences,omitempty"`
	// DestinationPaused: the queue is paused in the destination (its
	// consumers take nothing until `daguq resume`).
	DestinationPaused bool `json:"destination_paused"`
	// Left in the source: held by consumers (Wait ran out), their dedupe
	// key taken in the destination, or (Left) enqueued into the source
	// during the move's last pass.
	InFlight int64   `json:"in_flight_left"`
	Left     int64   `json:"left"`
	Clashed  []Clash `json:"dedupe_clashes,omitempty"`
	// InBoth are messages stored in the destination by an interrupted move
	// that a consumer took in the source since (its queue was resumed
	// before the move was run again): one may be delivered twice.
	InBoth []Origin `json:"in_both,omitempty"`
	// DroppedRunNames counts messages whose Dagu run names (enqueued_by,
	// claimed_by) the destination cannot keep.
	DroppedRunNames int `json:"dropped_run_names,omitempty"`
}

// Clash is a message left in the source because a message in the
// destination holds its dedupe key.
type Clash struct {
	ID        int64  `json:"id"` // in the source
	DedupeKey string `json:"dedupe_key"`
}

// Moved is how many messages moved, resumed ones included.
func (q QueueMove) Moved() int64 { return q.Ready + q.Delayed + q.Dead + q.Resumed }

// Complete reports whether every message moved: none left in the source,
// none in both databases.
func (r MoveReport) Complete() bool {
	for _, q := range r.Queues {
		if q.InFlight > 0 || q.Left > 0 || len(q.Clashed) > 0 || len(q.InBoth) > 0 {
			return false
		}
	}
	return true
}

const defaultMoveBatch = 1000

func (o *MoveOptions) validate() error {
	if o.BatchSize == 0 {
		o.BatchSize = defaultMoveBatch
	}
	if o.BatchSize < 1 || o.BatchSize > MaxClaim {
		return fmt.Errorf("%w: batch size must be 1..%d, got %d", ErrInvalid, MaxClaim, o.BatchSize)
	}
	if o.Wait < 0 {
		return fmt.Errorf("%w: wait must be >= 0, got %s", ErrInvalid, o.Wait)
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	var queues []string
	for _, q := range o.Queues {
		if err := ValidateQueueName(q); err != nil {
			return err
		}
		if !slices.Contains(queues, q) {
			queues = append(queues, q)
		}
	}
	o.Queues = queues
	return nil
}

// Move moves queues from one database to another (see Mover). It stops at
// the first error; whatever it moved by then stays moved, and running it
// again finishes the work. A cancelled ctx stops it between batches.
func Move(ctx context.Context, from, to Mover, opts MoveOptions) (MoveReport, error) {
	var report MoveReport
	if err := opts.validate(); err != nil {
		return report, err
	}
	source, err := from.StoreID(ctx)
	if err != nil {
		return report, fmt.Errorf("read the identity of %s: %w", from.Describe(), err)
	}
	dest, err := to.StoreID(ctx)
	if err != nil {
		return report, fmt.Errorf("read the identity of %s: %w", to.Describe(), err)
	}
	if source == dest {
		return report, fmt.Errorf("%w: source %s and destination %s are the same database (id %s)", ErrInvalid, from.Describe(), to.Describe(), source)
	}
	known, err := from.Queues(ctx)
	if err != nil {
		return report, err
	}
	queues := opts.Queues
	if len(queues) == 0 {
		queues = known
	}
	for _, q := range queues {
		if !slices.Contains(known, q) {
			return report, fmt.Errorf("%w: queue %q: the source %s has no messages and no settings for it", ErrInvalid, q, from.Describe())
		}
	}
	m := mover{from: from, to: to, source: source, opts: opts}
	for _, q := range queues {
		qm, err := m.queue(ctx, q)
		report.Queues = append(report.Queues, qm)
		if err != nil {
			return report, fmt.Errorf("move queue %q: %w", q, err)
		}
	}
	return report, nil
}

// mover is one Move.
type mover struct {
	from, to Mover
	source   string // from's StoreID
	opts     MoveOptions
}

// queue moves one queue: settings, then the source paused, then passes
// over its messages until none is left in flight or Wait runs out, then a
// look at origin records left by interrupted moves.
func (m *mover) queue(ctx context.Context, queue string) (QueueMove, error) {
	qm := QueueMove{Queue: queue}
	if err := m.settings(ctx, &qm); err != nil {
		return qm, err
	}
	if err := m.from.Pause(ctx, queue); err != nil {
		return qm, err
	}
	deadline := time.Now().Add(m.opts.Wait)
	clashed := map[int64]Clash{}
	inFlight := int64(-1)
	for {
		moved, err := m.pass(ctx, &qm, clashed)
		if err != nil {
			return qm, err
		}
		st, err := m.from.Stats(ctx, queue)
		if err != nil {
			return qm, err
		}
		// Messages can become movable behind a pass (a consumer gave its
		// batch back, an enqueue into the paused queue): another pass takes
		// them, as long as passes find something or leases ended.
		qm.Left = max(st.Ready+st.Delayed+st.Dead-int64(len(clashed)), 0)
		leasesEnded := inFlight > st.InFlight
		qm.InFlight, inFlight = st.InFlight, st.InFlight
		if qm.Left > 0 && (moved > 0 || leasesEnded) {
			continue
		}
		if st.InFlight == 0 || !time.Now().Before(deadline) {
			break
		}
		wait := time.NewTimer(min(m.opts.PollInterval, time.Until(deadline)))
		select {
		case <-ctx.Done():
			wait.Stop()
			return qm, ctx.Err()
		case <-wait.C:
		}
	}
	for _, c := range clashed {
		qm.Clashed = append(qm.Clashed, c)
	}
	slices.SortFunc(qm.Clashed, func(a, b Clash) int { return int(a.ID - b.ID) })
	if err := m.leftOrigins(ctx, &qm); err != nil {
		return qm, err
	}
	st, err := m.to.Stats(ctx, queue)
	if err != nil {
		return qm, err
	}
	qm.DestinationPaused = st.Paused
	return qm, nil
}

// settings copies the queue's settings to a destination that does not
// know the queue, or says how the destination's differ.
func (m *mover) settings(ctx context.Context, qm *QueueMove) error {
	set, found, err := m.from.QueueSettings(ctx, qm.Queue)
	if err != nil {
		return err
	}
	if !found {
		qm.Settings = "none"
		return nil
	}
	adopted, err := m.to.AdoptQueueSettings(ctx, qm.Queue, set)
	if err != nil {
		return err
	}
	if adopted {
		qm.Settings = "copied"
		return nil
	}
	qm.Settings = "kept"
	have, _, err := m.to.QueueSettings(ctx, qm.Queue)
	if err != nil {
		return err
	}
	// Paused is not compared: the move itself pauses the source.
	if have.InFlightLimit != set.InFlightLimit {
		qm.Differences = append(qm.Differences, fmt.Sprintf("in-flight limit: source %d, destination %d", set.InFlightLimit, have.InFlightLimit))
	}
	if have.Aging != set.Aging {
		qm.Differences = append(qm.Differences, fmt.Sprintf("aging: source %s, destination %s", set.Aging, have.Aging))
	}
	return nil
}

// pass moves every message of the queue that can move now, batch by batch
// in id order. A batch runs to its end once begun, even when ctx ends: a
// stop leaves nothing in both databases.
func (m *mover) pass(ctx context.Context, qm *QueueMove, clashed map[int64]Clash) (moved int64, err error) {
	var after int64
	for {
		if err := ctx.Err(); err != nil {
			return moved, err
		}
		var (
			msgs []MovingMessage
			res  PutResult
		)
		err := m.from.MoveOut(context.WithoutCancel(ctx), qm.Queue, after, m.opts.BatchSize,
			func(batch []MovingMessage) ([]int64, error) {
				var err error
				msgs = batch
				if res, err = m.to.PutIn(context.WithoutCancel(ctx), m.source, batch); err != nil {
					return nil, fmt.Errorf("store messages in %s: %w", m.to.Describe(), err)
				}
				return append(slices.Clone(res.Stored), res.Present...), nil
			})
		if err != nil {
			if len(res.Stored)+len(res.Present) > 0 {
				err = fmt.Errorf("%w (the destination has this batch: run the move again to delete it from the source)", err)
			}
			return moved, fmt.Errorf("move messages out of %s: %w", m.from.Describe(), err)
		}
		if len(msgs) == 0 {
			return moved, nil
		}
		done := append(slices.Clone(res.Stored), res.Present...)
		if err := m.to.ForgetOrigins(context.WithoutCancel(ctx), m.source, done); err != nil {
			return moved, fmt.Errorf("drop origin records in %s: %w", m.to.Describe(), err)
		}
		moved += int64(len(done))
		m.count(qm, msgs, res, clashed)
		after = msgs[len(msgs)-1].ID
		if m.opts.Progress != nil {
			m.opts.Progress(MoveProgress{Queue: qm.Queue, Moved: qm.Moved()})
		}
	}
}

// count adds a batch's outcome to the queue's report.
func (m *mover) count(qm *QueueMove, msgs []MovingMessage, res PutResult, clashed map[int64]Clash) {
	stored := make(map[int64]bool, len(res.Stored))
	for _, id := range res.Stored {
		stored[id] = true
	}
	isClash := make(map[int64]bool, len(res.Clashed))
	for _, id := range res.Clashed {
		isClash[id] = true
	}
	for _, msg := range msgs {
		if stored[msg.ID] {
			delete(clashed, msg.ID) // the key was free this time
		}
		switch {
		case isClash[msg.ID]:
			clashed[msg.ID] = Clash{ID: msg.ID, DedupeKey: msg.DedupeKey}
		case !stored[msg.ID]:
		case msg.State == StateDelayed:
			qm.Delayed++
		case msg.State == StateDead:
			qm.Dead++
		default:
			qm.Ready++
		}
	}
	qm.Resumed += int64(len(res.Present))
	qm.DroppedRunNames += res.Dropped
}

// leftOrigins looks at the origin records of the queue that are left: a
// move killed after the source deleted a batch and before the destination
// dropped its records leaves records of messages the source no longer has
// (dropped now); a source queue resumed before the move ran again may have
// a message in flight (or acked) that the destination stores too (InBoth).
func (m *mover) leftOrigins(ctx context.Context, qm *QueueMove) error {
	var after int64
	for {
		origins, err := m.to.Origins(ctx, m.source, qm.Queue, after, m.opts.BatchSize)
		if err != nil || len(origins) == 0 {
			return err
		}
		ids := make([]int64, len(origins))
		for i, o := range origins {
			ids[i] = o.SourceID
		}
		present, err := m.from.Present(ctx, qm.Queue, ids)
		if err != nil {
			return err
		}
		var gone []int64
		for _, o := range origins {
			if _, ok := present[o.SourceID]; ok {
				qm.InBoth = append(qm.InBoth, o)
			} else {
				gone = append(gone, o.SourceID)
			}
		}
		if err := m.to.ForgetOrigins(ctx, m.source, gone); err != nil {
			return err
		}
		after = ids[len(ids)-1]
	}
}

// MovingState is the state a stored message moves in: code is the stored
// state (0 ready set, 1 waiting, 2 dead), leased says it carries a lease.
// A waiting message that is due (delayed until now, or its lease ran out)
// is ready.
func MovingState(code int, visibleAt, now int64, leased bool) State {
	switch {
	case code == codeReady:
		return StateReady
	case code == codeDead:
		return StateDead
	case code == codeAcked:
		return StateAcked
	case visibleAt <= now:
		return StateReady
	case leased:
		return StateInFlight
	}
	return StateDelayed
}
