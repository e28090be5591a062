package queuestore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MaxClaim is the most messages one claim can take.
const MaxClaim = 10000

// ClaimOptions say what a claim takes.
type ClaimOptions struct {
	Queue string
	// Max is how many messages to take at most: 1..MaxClaim.
	Max int
	// MaxBytes, when positive, caps the total body bytes of what the lease
	// holds (Into's messages included): the claim stops before the first
	// message that would not fit and sets Lease.BytesFull. A claim for an
	// empty lease takes one message even when it alone is larger.
	MaxBytes int64
	// Lease is how long the messages stay invisible to other claims unless
	// extended. Default 30s.
	Lease time.Duration
	// MinPriority and MaxPriority, when set, take only that priority band.
	MinPriority, MaxPriority *int64
	// Group takes only messages of this group key ("" with OneGroup unset:
	// any group).
	Group string
	// OneGroup takes only messages of the group of the first message in claim
	// order (with Into: the group of Into's messages).
	OneGroup bool
	// Consumer names the claimer in stats and leases.
	Consumer string
	// ClaimedBy names the Dagu DAG run that claims ("dag/run-id"), kept
	// with each message for peek and the dashboard.
	ClaimedBy string
	// Aging, when set, becomes the queue's aging interval: a ready message
	// ranks one priority level higher for every interval it has waited
	// (docs/lifecycle.md). Zero keeps the queue's setting.
	Aging time.Duration
	// Into, when set, adds the messages to this live lease of the caller
	// instead of taking a new one: a batch that lingers for more messages
	// stays one lease, and so takes one slot of the queue's in-flight limit.
	// The returned Lease has Into's id and token and only the new messages.
	Into *Lease
}

// Priority bounds: the claim order packs a priority and a time into one
// integer key (migrations/0002_ready_set.sql).
const (
	MinPriority = -1_000_000
	MaxPriority = 1_000_000
)

// noAgingStep is the sort key's step per priority level when a queue has no
// aging: 2^42 ms, longer than any wait, so priority decides first.
const noAgingStep = int64(1) << 42

// promoteBatch bounds how many due waiting messages one claim moves into the
// ready set.
const promoteBatch = 1000

func (o *ClaimOptions) validate() error {
	if err := ValidateQueueName(o.Queue); err != nil {
		return err
	}
	if o.Max < 1 || o.Max > MaxClaim {
		return fmt.Errorf("%w: claim max must be 1..%d, got %d", ErrInvalid, MaxClaim, o.Max)
	}
	if o.MaxBytes < 0 {
		return fmt.Errorf("%w: claim max_bytes must be 0 (no limit) or more, got %d", ErrInvalid, o.MaxBytes)
	}
	if o.Lease == 0 {
		o.Lease = 30 * time.Second
	}
	if o.Lease < time.Millisecond {
		return fmt.Errorf("%w: lease must be at least 1ms, got %s", ErrInvalid, o.Lease)
	}
	if o.MinPriority != nil && o.MaxPriority != nil && *o.MinPriority > *o.MaxPriority {
		return fmt.Errorf("%w: min_priority %d is above max_priority %d", ErrInvalid, *o.MinPriority, *o.MaxPriority)
	}
	if o.Aging < 0 {
		return fmt.Errorf("%w: aging must be >= 0, got %s", ErrInvalid, o.Aging)
	}
	if o.Into != nil && o.Into.Queue != o.Queue {
		return fmt.Errorf("%w: claim into lease %s of queue %q from queue %q", ErrInvalid, o.Into.Token, o.Into.Queue, o.Queue)
	}
	if o.Into != nil && len(o.Into.Messages) == 0 {
		return fmt.Errorf("%w: claim into lease %s: it holds none of the caller's messages (want the lease a claim returned)", ErrInvalid, o.Into.Token)
	}
	return nil
}

// band is a claim's priority band, clamped to the priority bounds.
func (o *ClaimOptions) band() (lo, hi int64) {
	lo, hi = MinPriority, MaxPriority
	if o.MinPriority != nil {
		lo = max(lo, min(*o.MinPriority, MaxPriority+1))
	}
	if o.MaxPriority != nil {
		hi = min(hi, max(*o.MaxPriority, MinPriority-1))
	}
	return lo, hi
}

// keyRange is the sort key range that holds the band [lo, hi] on a queue
// without aging (keys of priority p lie in [-p*step, -(p-1)*step)); with
// aging, keys of different priorities mix and the band filters instead.
func keyRange(lo, hi, aging int64) (from, to int64) {
	if aging > 0 || lo > hi {
		return math.MinInt64, math.MaxInt64
	}
	return -hi * noAgingStep, -(lo - 1) * noAgingStep
}

// claimSettings is a queue's row as a claim reads it.
type claimSettings struct {
	paused       bool
	limit, aging int64
	live         int64 // live leases, counted only when limit > 0
	due          bool  // a waiting message is due for the ready set
}

// Claim leases up to opts.Max ready messages of one queue in claim order:
// by sort key (priority, then how long they have waited ready, with aging
// mixing the two), then by id. It returns nil and no error when nothing is
// ready, the queue is paused, or its in-flight limit is reached. Every
// claimed message's attempt count goes up by one.
func (s *Store) Claim(ctx context.Context, opts ClaimOptions) (*Lease, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	minPriority, maxPriority := opts.band()
	if !s.lastFull.On(opts.Queue) {
		ready, err := s.anyReady(ctx, opts, minPriority, maxPriority)
		if err != nil {
			return nil, fmt.Errorf("claim from %q: %w", opts.Queue, err)
		}
		if !ready {
			return nil, nil
		}
	}
	var lease *Lease
	err := s.withTx(ctx, func(ctx context.Context, tx querier) error {
		var err error
		lease, err = s.claimTx(ctx, tx, &opts, minPriority, maxPriority, &counts{})
		return err
	})
	return s.claimDone(ctx, &opts, lease, err)
}

// claimDone reads the bodies a claim of more than bodiesInTx messages left
// for after its commit, and notes whether the claim got all it asked for.
func (s *Store) claimDone(ctx context.Context, opts *ClaimOptions, lease *Lease, err error) (*Lease, error) {
	if err == nil && lease != nil && len(lease.Messages) > bodiesInTx {
		err = s.retryBusy(ctx, func() error { return readBodies(context.WithoutCancel(ctx), s.db, lease) })
	}
	if err != nil {
		return nil, fmt.Errorf("claim from %q: %w", opts.Queue, err)
	}
	if lease != nil && len(lease.Messages) == 0 && !lease.BytesFull {
		lease = nil
	}
	s.lastFull.Set(opts.Queue, lease != nil && len(lease.Messages) == opts.Max)
	return lease, nil
}

// claimTx is a claim inside write transaction tx. change holds what the
// transaction changed in the queue's counts before the claim (an ack of
// AckClaim); the claim adds its own and writes them, also when it takes
// nothing.
func (s *Store) claimTx(ctx context.Context, tx querier, opts *ClaimOptions, minPriority, maxPriority int64, change *counts) (*Lease, error) {
	now := s.now()
	var set claimSettings
	err := tx.QueryRowContext(ctx, sqlQueueSettings, opts.Queue, now).Scan(&set.paused, &set.limit, &set.aging, &set.live)
	if err != nil && !errors.Is(err, sql.ErrNoRows) { // no row: default settings
		return nil, err
	}
	if err := tx.QueryRowContext(ctx, sqlAnyDue, opts.Queue, now).Scan(&set.due); err != nil {
		return nil, err
	}
	if set.paused || (opts.Into == nil && set.limit > 0 && set.live >= set.limit) {
		return nil, change.flush(ctx, tx, opts.Queue)
	}
	if aging := opts.Aging.Milliseconds(); aging > 0 && aging != set.aging {
		if _, err := tx.ExecContext(ctx, sqlRekey, opts.Queue, aging); err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, sqlSetAging, opts.Queue, aging); err != nil {
			return nil, err
		}
		set.aging = aging
	}
	if set.due {
		if err := s.promote(ctx, tx, change, opts.Queue, now, set.aging); err != nil {
			return nil, err
		}
	}
	if s.due(s.nextLeaseSwep, opts.Queue, now, 10*time.Second) {
		if _, err := tx.ExecContext(ctx, sqlSweepLeases, opts.Queue, now); err != nil {
			return nil, err
		}
	}
	picked, bytesFull, err := s.pickCandidates(ctx, tx, opts, set.aging, minPriority, maxPriority)
	if err != nil {
		return nil, err
	}
	if len(picked) == 0 {
		var lease *Lease
		if bytesFull {
			lease = &Lease{BytesFull: true}
		}
		// Commit what the promotion (or the ack before) changed, if anything.
		return lease, change.flush(ctx, tx, opts.Queue)
	}
	expires := now + opts.Lease.Milliseconds()
	n := int64(len(picked)) // all ready: the claim holds the write lock
	change.ReadySet -= n
	change.Waiting += n
	change.WaitingLeased += n
	change.Claimed += n
	var leaseID int64
	rowless := false
	if opts.Into != nil {
		leaseID = opts.Into.ID
		var live bool
		if err := tx.QueryRowContext(ctx, sqlLeaseLive, leaseID, now, jsonIDs(opts.Into.IDs())).Scan(&live); err != nil {
			return nil, err
		}
		if !live {
			return nil, fmt.Errorf("lease %s: %w (expired before more messages were added)", opts.Into.Token, ErrLeaseLost)
		}
		if _, err := tx.ExecContext(ctx, sqlStretchLease, leaseID, expires); err != nil {
			return nil, err
		}
		if err := change.flush(ctx, tx, opts.Queue); err != nil {
			return nil, err
		}
		rowless = opts.Into.rowless
	} else {
		// The fencing token comes from the queue's claim counter, in the
		// counts row the claim writes anyway: no row per lease, except
		// for a queue with an in-flight limit, which counts them.
		var row, claimed int64
		if err := change.flushReturning(ctx, tx, opts.Queue, &row, &claimed); err != nil {
			return nil, err
		}
		leaseID = newLeaseID(claimed, row)
		rowless = set.limit == 0
		if !rowless {
			if _, err := tx.ExecContext(ctx, sqlInsertLease, leaseID, opts.Queue, opts.Consumer, now, expires); err != nil {
				return nil, err
			}
		}
	}
	rows, err := tx.QueryContext(ctx, sqlLeaseMessages, leaseID, expires, jsonIDs(picked), nullString(opts.ClaimedBy))
	if err != nil {
		return nil, err
	}
	msgs, err := scanLeased(rows, opts.Queue, expires, false)
	if err != nil {
		return nil, err
	}
	inPickOrder(msgs, picked)
	lease := &Lease{ID: leaseID, Token: strconv.FormatInt(leaseID, 10), Queue: opts.Queue,
		Consumer: opts.Consumer, ExpiresAt: msTime(expires), Messages: msgs, BytesFull: bytesFull, rowless: rowless}
	if opts.Into != nil {
		lease.Token, lease.Consumer = opts.Into.Token, opts.Into.Consumer
	}
	if len(msgs) <= bodiesInTx {
		return lease, readBodies(ctx, tx, lease)
	}
	return lease, nil
}

// promote moves up to promoteBatch due waiting messages of queue into the
// ready set, counting the leases that ran out.
func (s *Store) promote(ctx context.Context, tx querier, change *counts, queue string, now, aging int64) error {
	rows, err := tx.QueryContext(ctx, sqlPromote, queue, now, sortStep(aging), promoteBatch)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var leased bool
		if err := rows.Scan(&leased); err != nil {
			return err
		}
		change.Waiting--
		change.ReadySet++
		if leased {
			change.WaitingLeased--
			change.Settled[SettledExpired]++
		}
	}
	return rows.Err()
}

// sortStep is the sort key's step per priority level for a queue's aging.
func sortStep(aging int64) int64 {
	if aging > 0 {
		return aging
	}
	return noAgingStep
}

// pickCandidates walks the ready set in claim order and picks what the
// claim takes: up to opts.Max messages, of one group with OneGroup, within
// opts.MaxBytes. bytesFull says the walk stopped at the byte limit.
func (s *Store) pickCandidates(ctx context.Context, tx querier, opts *ClaimOptions, aging, minPriority, maxPriority int64) (picked []int64, bytesFull bool, err error) {
	from, to := keyRange(minPriority, maxPriority, aging)
	var held int64 // bytes the lease holds already
	group, oneGroup := opts.Group, opts.Group != "" && !opts.OneGroup
	if opts.Into != nil {
		for _, m := range opts.Into.Messages {
			held += int64(len(m.Body))
		}
		if opts.OneGroup && len(opts.Into.Messages) > 0 {
			group, oneGroup = opts.Into.Messages[0].Group, true
		}
	}
	if opts.OneGroup && !oneGroup {
		var head sql.NullString
		err := tx.QueryRowContext(ctx, sqlCandidates, opts.Queue, from, to, minPriority, maxPriority, 1).Scan(new(int64), new(int64), &head)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		group, oneGroup = head.String, true
	}
	var rows *sql.Rows
	if oneGroup {
		rows, err = tx.QueryContext(ctx, sqlCandidatesGroup, opts.Queue, from, to, minPriority, maxPriority, opts.Max, nullString(group))
	} else {
		rows, err = tx.QueryContext(ctx, sqlCandidates, opts.Queue, from, to, minPriority, maxPriority, opts.Max)
	}
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, size int64
		var g sql.NullString
		if err := rows.Scan(&id, &size, &g); err != nil {
			return nil, false, err
		}
		if opts.MaxBytes > 0 && held+size > opts.MaxBytes && (held > 0 || len(picked) > 0 || opts.Into != nil) {
			bytesFull = true
			break
		}
		held += size
		picked = append(picked, id)
	}
	return picked, bytesFull, rows.Err()
}

// inPickOrder sorts claimed messages into the order they were picked in
// (RETURNING gives no order).
func inPickOrder(msgs []Message, picked []int64) {
	at := make(map[int64]int, len(picked))
	for i, id := range picked {
		at[id] = i
	}
	sort.Slice(msgs, func(i, j int) bool { return at[msgs[i].ID] < at[msgs[j].ID] })
}

// QueueFlags is a flag per queue that a store keeps in memory, safe for
// concurrent use. The zero value has every flag off.
type QueueFlags struct {
	mu  sync.Mutex
	set map[string]bool
}

// On says whether queue's flag is on.
func (f *QueueFlags) On(queue string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.set[queue]
}

// Set turns queue's flag on or off.
func (f *QueueFlags) Set(queue string, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case on && f.set == nil:
		f.set = map[string]bool{queue: true}
	case on:
		f.set[queue] = true
	default:
		delete(f.set, queue)
	}
}

// A claim of more than bodiesInTx messages reads their bodies after it has
// committed, so the write lock is not held while bodies are copied out
// (with several consumer processes, the lock is the bottleneck); a smaller
// one reads them inside, saving a read transaction.
const bodiesInTx = 16

// readBodies fills in the bodies of freshly claimed messages. Read after the
// commit, a body can only have gone if its message did (a purge, or a lease
// so short that another claim took it over and acked it): such messages
// leave the lease, which can end up empty.
func readBodies(ctx context.Context, q querier, lease *Lease) error {
	_, list, err := idList(lease, nil)
	if err != nil {
		return err
	}
	rows, err := q.QueryContext(ctx, sqlClaimedBodies, list)
	if err != nil {
		return err
	}
	defer rows.Close()
	at := make(map[int64]int, len(lease.Messages))
	for i, m := range lease.Messages {
		at[m.ID] = i
	}
	// The bodies are copied into one buffer for the batch: one allocation
	// instead of one per message.
	var buf []byte
	found := make([]bool, len(lease.Messages))
	for rows.Next() {
		var id int64
		var body sql.RawBytes
		if err := rows.Scan(&id, &body); err != nil {
			return err
		}
		if buf == nil {
			buf = make([]byte, 0, len(body)*len(lease.Messages))
		}
		start := len(buf)
		buf = append(buf, body...)
		i := at[id]
		lease.Messages[i].Body = buf[start:len(buf):len(buf)]
		found[i] = true
	}
	if err := rows.Err(); err != nil {
		return err
	}
	kept := lease.Messages[:0]
	for i, m := range lease.Messages {
		if found[i] {
			kept = append(kept, m)
		}
	}
	lease.Messages = kept
	return nil
}

// anyReady tells whether a claim with these options could find a message,
// with a read that takes no lock: an idle consumer polling an empty queue
// does not queue up for the write lock that producers and busy consumers
// need. Whether the queue is paused or at its limit is left to the claim.
// The key range is left open: the read does not know the queue's aging.
func (s *Store) anyReady(ctx context.Context, opts ClaimOptions, minPriority, maxPriority int64) (bool, error) {
	var ready bool
	err := s.readRow(ctx, sqlAnyReady, []any{opts.Queue, s.now(), int64(math.MinInt64), int64(math.MaxInt64), minPriority, maxPriority}, &ready)
	return ready, err
}

// scanLeased reads leased rows of queue, claimed until expires. Held rows
// (sqlLeaseHeld's) carry the body, the queue and the lease end as their last
// columns instead.
func scanLeased(rows *sql.Rows, queue string, expires int64, held bool) ([]Message, error) {
	defer rows.Close()
	var out []Message
	for rows.Next() {
		var m Message
		var group, dedupe sql.NullString
		var enqueued, size int64
		m.Queue = queue
		dest := []any{&m.ID, &m.Priority, &m.Attempt, &m.MaxAttempts, &group, &dedupe, &enqueued, &size}
		if held {
			dest = append(dest, &m.Body, &m.Queue, &expires)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		m.Group, m.DedupeKey = group.String, dedupe.String
		m.EnqueuedAt, m.VisibleAt, m.State = msTime(enqueued), msTime(expires), StateInFlight
		out = append(out, m)
	}
	return out, rows.Err()
}

// due reports whether a periodic chore for queue should run now, and if so
// schedules the next one.
func (s *Store) due(next map[string]time.Time, queue string, nowMs int64, every time.Duration) bool {
	now := msTime(nowMs)
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Before(next[queue]) {
		return false
	}
	next[queue] = now.Add(every)
	return true
}

// newLeaseID makes a lease id, the fencing token, from the queue's claim
// counter after this claim (it grows with every claim), the queue's row in
// queue_counts (so that ids of different queues differ) and 8 random bits
// (so that a mistyped token rarely names a live lease):
//
//	claimed << 24 | row & 0xFFFF << 8 | random
//
// Later claims of a queue get larger ids. 2^39 messages claimed per queue
// fit.
func newLeaseID(claimed, row int64) int64 {
	var b [1]byte
	rand.Read(b[:])
	return claimed<<24 | (row&0xFFFF)<<8 | int64(b[0])
}

// LeaseByToken loads the lease a token names, with the messages it still
// holds, so another process can finish it (the claim, fan out, ack pattern).
func (s *Store) LeaseByToken(ctx context.Context, token string) (*Lease, error) {
	id, err := ParseLeaseToken(token)
	if err != nil {
		return nil, err
	}
	rows, err := s.query(ctx, sqlLeaseHeld, id)
	if err != nil {
		return nil, err
	}
	msgs, err := scanLeased(rows, "", 0, true)
	if err != nil {
		return nil, err
	}
	if len(msgs) == 0 {
		return nil, fmt.Errorf("lease %s: %w (finished, or expired and claimed again)", token, ErrLeaseLost)
	}
	// The lease ends with the last of its messages' lease ends.
	lease := &Lease{ID: id, Token: token, Queue: msgs[0].Queue, Messages: msgs}
	for _, m := range msgs {
		if m.VisibleAt.After(lease.ExpiresAt) {
			lease.ExpiresAt = m.VisibleAt
		}
	}
	for i := range msgs {
		msgs[i].VisibleAt = lease.ExpiresAt
	}
	// A live lease without a row was claimed while its queue had no limit
	// (a row outlives its messages' lease ends): keep it rowless.
	if lease.ExpiresAt.After(msTime(s.now())) {
		var hasRow bool
		if err := s.readRow(ctx, sqlLeaseHasRow, []any{id}, &hasRow); err != nil {
			return nil, err
		}
		lease.rowless = !hasRow
	}
	return lease, nil
}

// idList checks ids against the lease and encodes them for json_each. No ids
// means every message of the lease.
func idList(lease *Lease, ids []int64) ([]int64, string, error) {
	if lease == nil {
		return nil, "", fmt.Errorf("%w: nil lease", ErrInvalid)
	}
	if len(ids) == 0 { // the lease's own ids: nothing to check
		ids = lease.IDs()
		return ids, jsonIDs(ids), nil
	}
	held := make(map[int64]bool, len(lease.Messages))
	for _, m := range lease.Messages {
		held[m.ID] = true
	}
	seen := make(map[int64]bool, len(ids))
	for _, id := range ids {
		if !held[id] {
			return nil, "", fmt.Errorf("%w: message %d is not in lease %s", ErrInvalid, id, lease.Token)
		}
		if seen[id] {
			return nil, "", fmt.Errorf("%w: message %d named twice", ErrInvalid, id)
		}
		seen[id] = true
	}
	return ids, jsonIDs(ids), nil
}

// scanIDs reads a column of ids into a set.
func scanIDs(rows *sql.Rows) (map[int64]bool, error) {
	defer rows.Close()
	done := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		done[id] = true
	}
	return done, rows.Err()
}

// leaseStates reads the state of each message among list that the lease
// holds.
func leaseStates(ctx context.Context, tx querier, leaseID int64, list string) (map[int64]int, error) {
	rows, err := tx.QueryContext(ctx, sqlLeaseStates, leaseID, list)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	states := map[int64]int{}
	for rows.Next() {
		var id int64
		var state int
		if err := rows.Scan(&id, &state); err != nil {
			return nil, err
		}
		states[id] = state
	}
	return states, rows.Err()
}

// lostOf is the *LostError for the ids that were not done, or nil.
func lostOf(lease *Lease, ids []int64, done map[int64]bool) error {
	var lost []int64
	for _, id := range ids {
		if !done[id] {
			lost = append(lost, id)
		}
	}
	if len(lost) == 0 {
		return nil
	}
	return &LostError{Lease: lease.Token, IDs: lost}
}

// finishTx runs a finishing transaction of lease: like withTx, but while the
// lease has not ended it waits for another process's write lock longer
// than Options.BusyTimeout, so that a handler's finished work is not given
// up merely because the lock was busy.
func (s *Store) finishTx(ctx context.Context, lease *Lease, fn func(context.Context, querier) error) error {
	deadline := time.Now().Add(s.opts.BusyTimeout)
	if end := lease.ExpiresAt; end.After(deadline) {
		deadline = end
	}
	return s.retryBusyUntil(ctx, deadline, func() error { return s.tryTx(ctx, fn) })
}

// Ack finishes messages of the lease as done (all of them when ids is
// empty). It acks those the lease still holds; when another claim has taken
// some, it returns a *LostError (errors.Is ErrLeaseLost) naming them.
func (s *Store) Ack(ctx context.Context, lease *Lease, ids ...int64) error {
	ids, list, err := idList(lease, ids)
	if err != nil {
		return err
	}
	var done map[int64]bool
	err = s.finishTx(ctx, lease, func(ctx context.Context, tx querier) error {
		var change counts
		var err error
		if done, err = s.ackTx(ctx, tx, lease, ids, list, &change); err != nil {
			return err
		}
		return change.flush(ctx, tx, lease.Queue)
	})
	if err == nil {
		s.maybeReclaim(ctx)
		err = lostOf(lease, ids, done)
	}
	if err != nil {
		return fmt.Errorf("ack lease %s: %w", lease.Token, err)
	}
	return nil
}

// ackTx acks the messages among ids (list, their JSON) that the lease still
// holds, inside write transaction tx, and returns them. It adds what it
// changed in the lease's queue's counts to change and leaves writing them to
// the caller.
func (s *Store) ackTx(ctx context.Context, tx querier, lease *Lease, ids []int64, list string, change *counts) (map[int64]bool, error) {
	now := s.now()
	done := map[int64]bool{}
	acked := func(rows *sql.Rows, err error) error {
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id, enqueued int64
			var state int
			if err := rows.Scan(&id, &state, &enqueued); err != nil {
				return err
			}
			done[id] = true
			change.AckOne(state == codeReady, now-enqueued)
		}
		return rows.Err()
	}
	if s.opts.AckRetention > 0 {
		// One statement per old state: RETURNING shows only the new one.
		for _, state := range []int{codeReady, codeWaiting} {
			if err := acked(tx.QueryContext(ctx, sqlAckRetain, lease.ID, list, now, state)); err != nil {
				return nil, err
			}
		}
		change.Acked += int64(len(done))
		if s.due(s.nextAckPurge, lease.Queue, now, time.Minute) {
			cutoff := now - s.opts.AckRetention.Milliseconds()
			if _, err := tx.ExecContext(ctx, sqlPurgeAckedBodies, lease.Queue, cutoff); err != nil {
				return nil, err
			}
			res, err := tx.ExecContext(ctx, sqlPurgeAcked, lease.Queue, cutoff)
			if err != nil {
				return nil, err
			}
			n, _ := res.RowsAffected()
			change.Acked -= n
		}
	} else {
		if err := acked(tx.QueryContext(ctx, sqlAckDelete, lease.ID, list)); err != nil {
			return nil, err
		}
		if len(done) > 0 {
			if err := dropBodies(ctx, tx, lease.Queue, setIDs(ids, done)); err != nil {
				return nil, err
			}
		}
	}
	return done, s.dropLeaseIfEmpty(ctx, tx, lease)
}

// bodyTrashMax is how many acked messages' bodies a queue's counts row
// lists at most before they are deleted together.
const bodyTrashMax = 64

// dropBodies deletes the bodies of acked messages ids of queue. Freeing a
// body's page (the freed pages' list, the pointer map, the file header)
// cost an ack of one message about three WAL pages, more than the rest of
// the ack: an ack of fewer than bodyTrashMax messages lists the ids on the
// queue's counts row, which the transaction writes anyway, and the ack that
// fills the list deletes them all at once.
func dropBodies(ctx context.Context, tx querier, queue string, ids []int64) error {
	list := jsonIDs(ids)
	if len(ids) < bodyTrashMax {
		var trash string
		err := tx.QueryRowContext(ctx, sqlTrashBodies, queue, list).Scan(&trash)
		if err == nil && strings.Count(trash, ",")+1 < bodyTrashMax {
			return nil
		}
		if err == nil {
			if _, err := tx.ExecContext(ctx, sqlAckBodies, trash); err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, sqlEmptyBodyTrash, queue)
			return err
		}
		if !errors.Is(err, sql.ErrNoRows) { // no counts row: delete at once
			return err
		}
	}
	_, err := tx.ExecContext(ctx, sqlAckBodies, list)
	return err
}

// dropBodyTrash deletes the bodies on queue's list now, for a queue that
// may see no more acks to fill it.
func dropBodyTrash(ctx context.Context, tx querier, queue string) error {
	for _, stmt := range []string{sqlDeleteBodyTrash, sqlEmptyBodyTrash} {
		if _, err := tx.ExecContext(ctx, stmt, queue); err != nil {
			return err
		}
	}
	return nil
}

// dropLeaseIfEmpty deletes the lease's row, if it has one, once none of its
// messages is in flight.
func (s *Store) dropLeaseIfEmpty(ctx context.Context, tx querier, lease *Lease) error {
	if lease.rowless {
		return nil
	}
	_, err := tx.ExecContext(ctx, sqlDropLeaseIfEmpty, lease.ID, s.now())
	return err
}

// setIDs is the ids in done, in the order of ids.
func setIDs(ids []int64, done map[int64]bool) []int64 {
	if len(done) == len(ids) {
		return ids
	}
	out := make([]int64, 0, len(done))
	for _, id := range ids {
		if done[id] {
			out = append(out, id)
		}
	}
	return out
}

// NackOptions say how a failed delivery is retried.
type NackOptions struct {
	// IDs to nack; empty means every message of the lease.
	IDs []int64
	// Error is kept as the message's last error.
	Error string
	// Delay before the retry: zero uses the store's backoff for the
	// message's attempt count; negative retries at once.
	Delay time.Duration
	// MaxAttempts, when positive, replaces each message's own limit (and is
	// recorded as the limit that applied).
	MaxAttempts int
}

// NackResult counts where nacked messages went.
type NackResult struct {
	Retried []int64
	Dead    []int64
}

// Nack finishes messages of the lease as failed: each is retried after a
// delay, or goes to the dead letter state when it has used all its attempts.
// It nacks those the lease still holds; when another claim has taken some,
// it returns the result with a *LostError naming them.
func (s *Store) Nack(ctx context.Context, lease *Lease, opts NackOptions) (NackResult, error) {
	ids, list, err := idList(lease, opts.IDs)
	if err != nil {
		return NackResult{}, err
	}
	attempts := make(map[int64]int, len(lease.Messages))
	for _, m := range lease.Messages {
		attempts[m.ID] = m.Attempt
	}
	var res NackResult
	done := map[int64]bool{}
	err = s.finishTx(ctx, lease, func(ctx context.Context, tx querier) error {
		res = NackResult{}
		clear(done)
		now := s.now()
		states, err := leaseStates(ctx, tx, lease.ID, list)
		if err != nil {
			return err
		}
		var change counts
		for _, id := range ids {
			old, held := states[id]
			if !held {
				continue
			}
			delay := opts.Delay
			if delay == 0 {
				delay = s.opts.Backoff(attempts[id])
			}
			retryAt := now + max(delay, 0).Milliseconds()
			var state int
			err := tx.QueryRowContext(ctx, sqlNack, id, lease.ID, nullString(opts.Error), opts.MaxAttempts, now, retryAt).Scan(&state)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return err
			}
			done[id] = true
			change.LeaveLive(old == codeReady, true)
			if state == codeDead {
				res.Dead = append(res.Dead, id)
				change.Dead++
				change.Settled[SettledDead]++
			} else {
				res.Retried = append(res.Retried, id)
				change.Waiting++
				change.Settled[SettledRetried]++
			}
		}
		if err := change.flush(ctx, tx, lease.Queue); err != nil {
			return err
		}
		return s.dropLeaseIfEmpty(ctx, tx, lease)
	})
	if err != nil {
		return NackResult{}, fmt.Errorf("nack lease %s: %w", lease.Token, err)
	}
	if err := lostOf(lease, ids, done); err != nil {
		return res, fmt.Errorf("nack lease %s: %w", lease.Token, err)
	}
	return res, nil
}

// Extend pushes the end of the lease to d from now (a heartbeat), for its
// messages among ids (all of them when ids is empty). It keeps those the
// lease still holds; when another claim has taken some, it returns a
// *LostError naming them, so that a takeover of part of a batch is seen at
// once.
func (s *Store) Extend(ctx context.Context, lease *Lease, d time.Duration, ids ...int64) error {
	if lease == nil || d <= 0 {
		return fmt.Errorf("%w: extend needs a lease and a positive duration", ErrInvalid)
	}
	ids, list, err := idList(lease, ids)
	if err != nil {
		return err
	}
	var expires int64
	var done map[int64]bool
	err = s.withTx(ctx, func(ctx context.Context, tx querier) error {
		expires = s.now() + d.Milliseconds()
		rows, err := tx.QueryContext(ctx, sqlExtendMessages, lease.ID, expires, list, codeWaiting)
		if err != nil {
			return err
		}
		if done, err = scanIDs(rows); err != nil {
			return err
		}
		// Messages whose lease ran out and that a claim moved into the
		// ready set, but no other claim took: the lease gets them back.
		rows, err = tx.QueryContext(ctx, sqlExtendMessages, lease.ID, expires, list, codeReady)
		if err != nil {
			return err
		}
		revived, err := scanIDs(rows)
		if err != nil {
			return err
		}
		if n := int64(len(revived)); n > 0 {
			maps.Copy(done, revived)
			change := counts{ReadySet: -n, Waiting: n, WaitingLeased: n}
			if err := change.flush(ctx, tx, lease.Queue); err != nil {
				return err
			}
		}
		// A lease claimed while its queue had no limit keeps no row even
		// when a limit came since: it takes no slot (docs/lifecycle.md),
		// and its finish, which knows it as rowless, would not drop one.
		if len(done) > 0 && !lease.rowless {
			_, err = tx.ExecContext(ctx, sqlExtendLease, lease.ID, expires, lease.Queue, lease.Consumer, s.now())
		}
		return err
	})
	if err == nil && len(done) > 0 {
		lease.ExpiresAt = msTime(expires)
	}
	if err == nil {
		err = lostOf(lease, ids, done)
	}
	if err != nil {
		return fmt.Errorf("extend lease %s: %w", lease.Token, err)
	}
	return nil
}

// Release gives messages of the lease back (all of them when ids is empty):
// ready again at once, and the attempt the claim counted is not spent. For
// a consumer that stops before handling them. Like Ack, it releases what the
// lease still holds and names the rest in a *LostError.
func (s *Store) Release(ctx context.Context, lease *Lease, ids ...int64) error {
	ids, list, err := idList(lease, ids)
	if err != nil {
		return err
	}
	var done map[int64]bool
	err = s.finishTx(ctx, lease, func(ctx context.Context, tx querier) error {
		states, err := leaseStates(ctx, tx, lease.ID, list)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, sqlRelease, lease.ID, list, s.now())
		if err != nil {
			return err
		}
		if done, err = scanIDs(rows); err != nil {
			return err
		}
		var change counts
		for id := range done {
			change.LeaveLive(states[id] == codeReady, true)
			change.Waiting++
			change.Settled[SettledReleased]++
		}
		if err := change.flush(ctx, tx, lease.Queue); err != nil {
			return err
		}
		return s.dropLeaseIfEmpty(ctx, tx, lease)
	})
	if err == nil {
		err = lostOf(lease, ids, done)
	}
	if err != nil {
		return fmt.Errorf("release lease %s: %w", lease.Token, err)
	}
	return nil
}
