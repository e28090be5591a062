package postgres

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/daguq/daguq/queuestore"
)

// promoteBatch bounds how many due waiting messages one claim moves into the
// ready set.
const promoteBatch = 1000

// errRekey ends a claim's transaction that found the queue's aging interval
// to change: the claim re-keys the ready set in a transaction of its own,
// then runs again.
var errRekey = errors.New("rekey")

// errLimited ends a claim's transaction that found its queue to have an
// in-flight limit after it promoted messages: it runs again, taking the
// queue's settings row before any message row.
var errLimited = errors.New("queue has an in-flight limit")

// Claim leases up to opts.Max ready messages of one queue in claim order:
// by sort key (priority, then how long they have waited ready, with aging
// mixing the two), then by id. It returns nil and no error when nothing is
// ready, the queue is paused, or its in-flight limit is reached. Every
// claimed message's attempt count goes up by one. Concurrent claims, from
// any host, skip the messages another claim is taking.
func (s *Store) Claim(ctx context.Context, opts queuestore.ClaimOptions) (*queuestore.Lease, error) {
	if err := queuestore.ValidateClaim(&opts); err != nil {
		return nil, err
	}
	for rekeyed := false; ; {
		lease, err := s.claim(ctx, &opts, rekeyed)
		if errors.Is(err, errLimited) {
			continue
		}
		if errors.Is(err, errRekey) {
			// Once: should another consumer set another interval meanwhile,
			// this claim goes ahead with that one rather than take turns.
			rekeyed = true
			if err = s.setAging(ctx, opts.Queue, opts.Aging.Milliseconds()); err == nil {
				continue
			}
		}
		if err != nil {
			return nil, s.err(fmt.Errorf("claim from %q: %w", opts.Queue, err))
		}
		if lease != nil && len(lease.Messages) == 0 && !lease.BytesFull {
			lease = nil
		}
		return lease, nil
	}
}

// setAging makes aging (ms) the queue's aging interval and re-keys its ready
// set, holding the queue's claims and enqueues off meanwhile.
func (s *Store) setAging(ctx context.Context, queue string, aging int64) error {
	return s.withRepeatableTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, sqlQueueExclusive, queue); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, sqlSetAging, queue, aging); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, sqlRekey, queue, queuestore.SortStep(aging)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, sqlClearFloor, queue)
		return err
	})
}

func (s *Store) claim(ctx context.Context, opts *queuestore.ClaimOptions, rekeyed bool) (*queuestore.Lease, error) {
	var lease *queuestore.Lease
	var walkedTo *int64 // the promotion walked every due message up to here
	err := s.withBatches(ctx, func(ctx context.Context, t *batchTx) error {
		var err error
		t.queue(sqlClaimStart, opts.Queue)
		lease, walkedTo, err = s.claimTx(ctx, t, opts, rekeyed, &counts{})
		return err
	})
	if err == nil && walkedTo != nil {
		s.advancePromote(opts.Queue, *walkedTo)
	}
	return lease, err
}

// claimTx is a claim inside transaction t, after the queue's advisory lock
// (sqlClaimStart) and what else the caller queued (the ack of AckClaim).
// change holds what the transaction changed in the queue's counts before
// the claim; the claim adds its own and queues them, also when it takes
// nothing. walkedTo, when not nil, is the time up to which the promotion
// moved every due message.
//
// Round trips: the queued statements with the settings read; the
// promotion; the pick with the lease (one statement without a byte limit,
// a group or a lease to add to); the counts with the caller's COMMIT.
func (s *Store) claimTx(ctx context.Context, t *batchTx, opts *queuestore.ClaimOptions, rekeyed bool, change *counts) (lease *queuestore.Lease, walkedTo *int64, err error) {
	minPriority, maxPriority := queuestore.ClaimBand(opts)
	now := s.now()
	var paused bool
	var limit int32
	var aging int64
	var floor *int64
	t.queue(sqlClaimSettings, opts.Queue).QueryRow(func(row pgx.Row) error {
		return row.Scan(&paused, &limit, &aging, &floor)
	})
	if opts.Into != nil {
		// The lease row before any message row (the order of sql.go):
		// a finish of the same lease waits here, not in a cycle.
		t.queue(sqlLockLease, opts.Into.ID)
	}
	// The promotion goes with the settings read unless the queue has an
	// in-flight limit, whose lock comes before any message row's: as the
	// last claim of this process found it, and should a limit have been
	// set since, this transaction runs again.
	var promoted *promotion
	limited := opts.Into == nil && s.limitSeen.On(opts.Queue)
	if !limited {
		promoted = s.queuePromote(t, change, opts.Queue, now)
	}
	if err := t.send(ctx); err != nil {
		return nil, nil, err
	}
	if opts.Into == nil {
		s.limitSeen.Set(opts.Queue, limit > 0)
		if !limited && limit > 0 {
			return nil, nil, errLimited
		}
	}
	if a := opts.Aging.Milliseconds(); a > 0 && a != aging && !rekeyed {
		return nil, nil, errRekey
	}
	full := paused
	if !paused && limited {
		// Claims that could take the queue's last slot take turns here;
		// the count of live leases, the next statement, sees every lease
		// committed before this lock was granted.
		var live int64
		t.queue(sqlLockSettings, opts.Queue).QueryRow(func(row pgx.Row) error { return row.Scan(&paused, &limit) })
		t.queue(sqlLiveLeases, opts.Queue, now).QueryRow(func(row pgx.Row) error { return row.Scan(&live) })
		promoted = s.queuePromote(t, change, opts.Queue, now)
		if err := t.send(ctx); err != nil {
			return nil, nil, err
		}
		full = paused || (limit > 0 && live >= int64(limit))
	}
	if promoted != nil {
		if promoted.moved < promoteBatch {
			to := now
			walkedTo = &to
		}
		if promoted.moved > 0 {
			if err := keepFloor(ctx, t, opts.Queue, promoted.lowest); err != nil {
				return nil, nil, err
			}
			if floor != nil && promoted.lowest < *floor {
				floor = &promoted.lowest
			}
		}
	}
	if full {
		change.queue(t, opts.Queue)
		return nil, walkedTo, nil
	}
	start := int64(noFloor)
	if floor != nil {
		start = *floor
	}
	// The lease counts from now, when its messages are locked: the
	// clock read at the start of the transaction may be older by a
	// stall of this process, and the lease would have begun before
	// the previous lease of a message had ended.
	var taken claimed
	if opts.MaxBytes == 0 && opts.Group == "" && !opts.OneGroup && opts.Into == nil {
		taken, err = s.claimAtOnce(ctx, t, opts, aging, minPriority, maxPriority, start)
	} else {
		taken, err = s.claimInSteps(ctx, t, opts, aging, minPriority, maxPriority, start)
	}
	if err != nil {
		return nil, nil, err
	}
	n := int64(len(taken.msgs))
	change.ReadySet -= n
	change.Waiting += n
	change.WaitingLeased += n
	change.Claimed += n
	change.queue(t, opts.Queue)
	if err := s.raiseFloor(ctx, t, opts.Queue, taken.now); err != nil {
		return nil, nil, err
	}
	if n == 0 {
		if taken.bytesFull {
			lease = &queuestore.Lease{BytesFull: true}
		}
		return lease, walkedTo, nil
	}
	lease = &queuestore.Lease{ID: taken.leaseID, Token: strconv.FormatInt(taken.leaseID, 10), Queue: opts.Queue,
		Consumer: opts.Consumer, ExpiresAt: msTime(taken.expires), Messages: taken.msgs, BytesFull: taken.bytesFull}
	if opts.Into != nil {
		lease.Token, lease.Consumer = opts.Into.Token, opts.Into.Consumer
	}
	return lease, walkedTo, nil
}

// claimed is what a claim took: the messages, in claim order, under the
// lease leaseID until expires. now is when it took them.
type claimed struct {
	leaseID, expires, now int64
	msgs                  []queuestore.Message
	bytesFull             bool
}

// claimAtOnce picks and leases up to opts.Max messages in one statement
// (sqlClaim), from the sort key start up.
func (s *Store) claimAtOnce(ctx context.Context, t *batchTx, opts *queuestore.ClaimOptions, aging, minPriority, maxPriority, start int64) (claimed, error) {
	from, to := queuestore.ClaimKeyRange(minPriority, maxPriority, aging)
	c := claimed{now: s.now()}
	t.queue(sqlClaim, opts.Queue, max(from, start), to, minPriority, maxPriority, opts.Max,
		opts.Consumer, c.now, opts.Lease.Milliseconds(), nullString(opts.ClaimedBy)).Query(func(rows pgx.Rows) error {
		var err error
		c.msgs, err = scanLeased(rows, opts.Queue, 0, &c.leaseID, &c.expires)
		return err
	})
	if err := t.send(ctx); err != nil {
		return c, err
	}
	for i := range c.msgs {
		c.msgs[i].VisibleAt = msTime(c.expires)
	}
	return c, nil
}

// claimInSteps picks (pick), then leases what it picked: into a new lease,
// or into opts.Into.
func (s *Store) claimInSteps(ctx context.Context, t *batchTx, opts *queuestore.ClaimOptions, aging, minPriority, maxPriority, start int64) (claimed, error) {
	picked, bytesFull, err := pick(ctx, t, opts, aging, minPriority, maxPriority, start)
	c := claimed{now: s.now(), bytesFull: bytesFull}
	if err != nil || len(picked) == 0 {
		return c, err
	}
	c.expires = c.now + opts.Lease.Milliseconds()
	if opts.Into != nil {
		c.leaseID = opts.Into.ID
		err := t.QueryRow(ctx, sqlLiveLease, c.leaseID, c.expires, c.now).Scan(&c.expires)
		if errors.Is(err, pgx.ErrNoRows) {
			return c, fmt.Errorf("lease %s: %w (expired before more messages were added)", opts.Into.Token, queuestore.ErrLeaseLost)
		}
		if err != nil {
			return c, err
		}
	} else {
		// After the pick: the fencing token is larger than that of any
		// earlier claim of the picked messages.
		if err := t.QueryRow(ctx, sqlInsertLease, opts.Queue, opts.Consumer, c.now, c.expires).Scan(&c.leaseID); err != nil {
			return c, err
		}
	}
	t.queue(sqlLeaseMessages, c.leaseID, c.expires, picked, nullString(opts.ClaimedBy)).Query(func(rows pgx.Rows) error {
		var err error
		c.msgs, err = scanLeased(rows, opts.Queue, c.expires)
		return err
	})
	if err := t.send(ctx); err != nil {
		return c, err
	}
	inPickOrder(c.msgs, picked)
	return c, nil
}

// promotion is what a promotion of due messages did: how many it moved and
// the smallest sort key it gave them.
type promotion struct {
	moved  int
	lowest int64
}

// queuePromote queues the move of up to promoteBatch waiting messages of
// queue due by now into the ready set, from this process's cursor, and a
// sweep of finished leases when one is due. The leases that ran out are
// counted in change, and the promotion's figures set, once t sends it.
func (s *Store) queuePromote(t *batchTx, change *counts, queue string, now int64) *promotion {
	if s.due(s.nextLeaseSwep, queue, now, 10*time.Second) {
		defer t.queue(sqlSweepLeases, queue, now)
	}
	from := s.promoteFrom(queue, now)
	p := &promotion{}
	t.queue(sqlPromote, queue, now, queuestore.SortStep(0), promoteBatch, from).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var leased bool
			var key int64
			if err := rows.Scan(&leased, &key); err != nil {
				return err
			}
			if p.moved == 0 || key < p.lowest {
				p.lowest = key
			}
			p.moved++
			change.Waiting--
			change.ReadySet++
			if leased {
				change.WaitingLeased--
				change.Settled[queuestore.SettledExpired]++
			}
		}
		return rows.Err()
	})
	return p
}

// pick walks the ready set in claim order, from the sort key start (the
// ready floor) up, and locks what the claim takes:
// up to opts.Max messages, of one group with OneGroup or Group, within
// opts.MaxBytes. bytesFull says the walk stopped at the byte limit.
// Messages the walk locked beyond the byte limit stay locked until the
// transaction ends, and are not leased.
func pick(ctx context.Context, tx querier, opts *queuestore.ClaimOptions, aging, minPriority, maxPriority, start int64) (picked []int64, bytesFull bool, err error) {
	from, to := queuestore.ClaimKeyRange(minPriority, maxPriority, aging)
	from = max(from, start)
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
		var head *string
		err := tx.QueryRow(ctx, sqlPick, opts.Queue, from, to, minPriority, maxPriority, 1).Scan(new(int64), new(int64), &head)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		group, oneGroup = "", true
		if head != nil {
			group = *head
		}
	}
	var rows pgx.Rows
	if oneGroup {
		rows, err = tx.Query(ctx, sqlPickGroup, opts.Queue, from, to, minPriority, maxPriority, opts.Max, nullString(group))
	} else {
		rows, err = tx.Query(ctx, sqlPick, opts.Queue, from, to, minPriority, maxPriority, opts.Max)
	}
	if err != nil {
		return nil, false, err
	}
	defer rows.Close()
	for rows.Next() {
		var id, size int64
		var g *string
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
	rows.Close()
	return picked, bytesFull, rows.Err()
}

// inPickOrder sorts claimed messages into the order they were picked in
// (RETURNING gives no order).
func inPickOrder(msgs []queuestore.Message, picked []int64) {
	at := make(map[int64]int, len(picked))
	for i, id := range picked {
		at[id] = i
	}
	sort.Slice(msgs, func(i, j int) bool { return at[msgs[i].ID] < at[msgs[j].ID] })
}

// scanLeased reads leased rows with their bodies, each after the columns
// lead scans into (the same in every row).
func scanLeased(rows pgx.Rows, queue string, expires int64, lead ...any) ([]queuestore.Message, error) {
	defer rows.Close()
	var out []queuestore.Message
	for rows.Next() {
		var m queuestore.Message
		var group, dedupe *string
		var enqueued int64
		var attempts, maxAttempts int32
		if err := rows.Scan(append(lead, &m.ID, &m.Priority, &attempts, &maxAttempts, &group, &dedupe, &enqueued, &m.Body)...); err != nil {
			return nil, err
		}
		m.Attempt, m.MaxAttempts = int(attempts), int(maxAttempts)
		m.Queue, m.Group, m.DedupeKey = queue, deref(group), deref(dedupe)
		m.EnqueuedAt, m.VisibleAt, m.State = msTime(enqueued), msTime(expires), queuestore.StateInFlight
		out = append(out, m)
	}
	return out, rows.Err()
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// LeaseByToken loads the lease a token names, with the messages it still
// holds, so another process can finish it (the claim, fan out, ack pattern).
func (s *Store) LeaseByToken(ctx context.Context, token string) (*queuestore.Lease, error) {
	id, err := queuestore.ParseLeaseToken(token)
	if err != nil {
		return nil, err
	}
	lease := &queuestore.Lease{ID: id, Token: token}
	var expires int64
	err = s.pool.QueryRow(ctx, sqlLeaseByID, id).Scan(&lease.Queue, &lease.Consumer, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("lease %s: %w (finished, or expired and claimed again)", token, queuestore.ErrLeaseLost)
	}
	if err != nil {
		return nil, s.err(err)
	}
	lease.ExpiresAt = msTime(expires)
	rows, err := s.pool.Query(ctx, sqlLeaseHeld, id)
	if err != nil {
		return nil, s.err(err)
	}
	if lease.Messages, err = scanLeased(rows, lease.Queue, expires); err != nil {
		return nil, s.err(err)
	}
	if len(lease.Messages) == 0 {
		return nil, fmt.Errorf("lease %s: %w (its messages were finished or claimed again)", token, queuestore.ErrLeaseLost)
	}
	return lease, nil
}

// finished reads the rows a finishing statement returns: each id it changed
// and the state it had before.
func finished(rows pgx.Rows, each func(id int64, old int16) error) error {
	defer rows.Close()
	for rows.Next() {
		var id int64
		var old int16
		if err := rows.Scan(&id, &old); err != nil {
			return err
		}
		if err := each(id, old); err != nil {
			return err
		}
	}
	return rows.Err()
}

// finishTx runs a finish of lease in a transaction that first locks the
// lease row, and ends by dropping the lease when it holds nothing more.
func (s *Store) finishTx(ctx context.Context, lease *queuestore.Lease, fn func(context.Context, pgx.Tx) error) error {
	return s.withRepeatableTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, sqlLockLease, lease.ID); err != nil {
			return err
		}
		if err := fn(ctx, tx); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, sqlDropLeaseIfEmpty, lease.ID)
		return err
	})
}

// Ack finishes messages of the lease as done (all of them when ids is
// empty). It acks those the lease still holds; when another claim has taken
// some, it returns a *queuestore.LostError naming them. Two round trips: the
// lease's lock, the ack and the drop of the emptied lease; the counts with
// COMMIT.
func (s *Store) Ack(ctx context.Context, lease *queuestore.Lease, ids ...int64) error {
	ids, err := queuestore.LeaseIDs(lease, ids)
	if err != nil {
		return err
	}
	var done map[int64]bool
	err = s.withBatches(ctx, func(ctx context.Context, t *batchTx) error {
		var change counts
		done = s.queueAck(t, lease, ids, &change)
		if err := t.send(ctx); err != nil {
			return err
		}
		change.queue(t, lease.Queue)
		return nil
	})
	if err == nil {
		s.noteFinished(len(done))
		err = queuestore.LostOf(lease, ids, done)
	}
	if err != nil {
		return s.err(fmt.Errorf("ack lease %s: %w", lease.Token, err))
	}
	return nil
}

// queueAck queues, in t's next batch, the ack of the messages among ids
// that the lease still holds, between the lock of the lease row and the
// drop of the lease when it holds nothing more. The map it returns holds
// the acked messages once t sent the batch; what the ack changed in the
// lease's queue's counts is added to change then, for the caller to write.
func (s *Store) queueAck(t *batchTx, lease *queuestore.Lease, ids []int64, change *counts) map[int64]bool {
	now := s.now()
	done := map[int64]bool{}
	t.queue(sqlLockLease, lease.ID)
	var q *pgx.QueuedQuery
	if s.opts.AckRetention > 0 {
		q = t.queue(sqlAckRetain, lease.ID, ids, now)
	} else {
		q = t.queue(sqlAckDelete, lease.ID, ids)
	}
	q.Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id, enqueued int64
			var state int16
			if err := rows.Scan(&id, &state, &enqueued); err != nil {
				return err
			}
			done[id] = true
			change.AckOne(state == codeReady, now-enqueued)
		}
		if s.opts.AckRetention > 0 {
			change.Acked += int64(len(done))
		}
		return rows.Err()
	})
	if s.opts.AckRetention > 0 && s.due(s.nextAckPurge, lease.Queue, now, time.Minute) {
		t.queue(sqlPurgeAcked, lease.Queue, now-s.opts.AckRetention.Milliseconds()).QueryRow(func(row pgx.Row) error {
			var n int64
			err := row.Scan(&n)
			change.Acked -= n
			return err
		})
	}
	t.queue(sqlDropLeaseIfEmpty, lease.ID)
	return done
}

// AckClaim acks messages of a finished lease (all of them when ackIDs is
// empty), then claims the next batch, in one transaction. With a
// *queuestore.LostError from the ack, the claim still happened and its
// lease comes with the error; any other error means nothing happened. The
// ack rides in the claim's first batch: it adds no round trip.
func (s *Store) AckClaim(ctx context.Context, ack *queuestore.Lease, ackIDs []int64, opts queuestore.ClaimOptions) (*queuestore.Lease, error) {
	if err := queuestore.ValidateAckClaim(ack, &opts); err != nil {
		return nil, err
	}
	ids, err := queuestore.LeaseIDs(ack, ackIDs)
	if err != nil {
		return nil, err
	}
	var lease *queuestore.Lease
	var done map[int64]bool
	var walkedTo *int64
	for rekeyed := false; ; {
		err = s.withBatches(ctx, func(ctx context.Context, t *batchTx) error {
			var acked counts
			var err error
			// The queue's lock before the lease's, as a claim into a lease
			// takes them: a re-key of the queue cannot wait for this ack.
			t.queue(sqlClaimStart, opts.Queue)
			done = s.queueAck(t, ack, ids, &acked)
			lease, walkedTo, err = s.claimTx(ctx, t, &opts, rekeyed, &acked)
			return err
		})
		if errors.Is(err, errLimited) {
			continue
		}
		if errors.Is(err, errRekey) && !rekeyed {
			rekeyed = true
			if err = s.setAging(ctx, opts.Queue, opts.Aging.Milliseconds()); err == nil {
				continue
			}
		}
		break
	}
	if err != nil {
		return nil, s.err(fmt.Errorf("ack lease %s and claim from %q: %w", ack.Token, opts.Queue, err))
	}
	if walkedTo != nil {
		s.advancePromote(opts.Queue, *walkedTo)
	}
	s.noteFinished(len(done))
	if lease != nil && len(lease.Messages) == 0 && !lease.BytesFull {
		lease = nil
	}
	if err := queuestore.LostOf(ack, ids, done); err != nil {
		return lease, s.err(fmt.Errorf("ack lease %s: %w", ack.Token, err))
	}
	return lease, nil
}

// Nack finishes messages of the lease as failed: each is retried after a
// delay, or goes to the dead letter state when it has used all its attempts.
// It nacks those the lease still holds; when another claim has taken some,
// it returns the result with a *queuestore.LostError naming them.
func (s *Store) Nack(ctx context.Context, lease *queuestore.Lease, opts queuestore.NackOptions) (queuestore.NackResult, error) {
	ids, err := queuestore.LeaseIDs(lease, opts.IDs)
	if err != nil {
		return queuestore.NackResult{}, err
	}
	attempts := make(map[int64]int, len(lease.Messages))
	for _, m := range lease.Messages {
		attempts[m.ID] = m.Attempt
	}
	var res queuestore.NackResult
	done := map[int64]bool{}
	err = s.finishTx(ctx, lease, func(ctx context.Context, tx pgx.Tx) error {
		res = queuestore.NackResult{}
		clear(done)
		now := s.now()
		retryAt := make([]int64, len(ids))
		for i, id := range ids {
			delay := opts.Delay
			if delay == 0 {
				delay = s.opts.Backoff(attempts[id])
			}
			retryAt[i] = now + max(delay, 0).Milliseconds()
		}
		rows, err := tx.Query(ctx, sqlNack, lease.ID, ids, nullString(opts.Error), int32(opts.MaxAttempts), now, retryAt)
		if err != nil {
			return err
		}
		newState := map[int64]int16{}
		var change counts
		for rows.Next() {
			var id int64
			var old, state int16
			if err := rows.Scan(&id, &old, &state); err != nil {
				rows.Close()
				return err
			}
			done[id] = true
			newState[id] = state
			change.LeaveLive(old == codeReady, true)
			if state == codeDead {
				change.Dead++
				change.Settled[queuestore.SettledDead]++
			} else {
				change.Waiting++
				change.Settled[queuestore.SettledRetried]++
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range ids { // in the caller's order
			switch st, ok := newState[id]; {
			case !ok:
			case st == codeDead:
				res.Dead = append(res.Dead, id)
			default:
				res.Retried = append(res.Retried, id)
			}
		}
		return change.flush(ctx, tx, lease.Queue)
	})
	if err != nil {
		return queuestore.NackResult{}, s.err(fmt.Errorf("nack lease %s: %w", lease.Token, err))
	}
	if err := queuestore.LostOf(lease, ids, done); err != nil {
		return res, fmt.Errorf("nack lease %s: %w", lease.Token, err)
	}
	return res, nil
}

// Extend pushes the end of the lease to d from now (a heartbeat), for its
// messages among ids (all of them when ids is empty). It keeps those the
// lease still holds, also ones whose lease ran out that no other claim took;
// when another claim has taken some, it returns a *queuestore.LostError
// naming them, so that a takeover of part of a batch is seen at once.
func (s *Store) Extend(ctx context.Context, lease *queuestore.Lease, d time.Duration, ids ...int64) error {
	if lease == nil || d <= 0 {
		return fmt.Errorf("%w: extend needs a lease and a positive duration", queuestore.ErrInvalid)
	}
	ids, err := queuestore.LeaseIDs(lease, ids)
	if err != nil {
		return err
	}
	var expires int64
	var done map[int64]bool
	err = s.withRepeatableTx(ctx, func(ctx context.Context, tx pgx.Tx) error {
		expires = s.now() + d.Milliseconds()
		done = map[int64]bool{}
		if _, err := tx.Exec(ctx, sqlLockLease, lease.ID); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, sqlExtendMessages, lease.ID, expires, ids)
		if err != nil {
			return err
		}
		var change counts
		err = finished(rows, func(id int64, old int16) error {
			done[id] = true
			if old == codeReady { // revived: its lease ran out, nobody took it
				change.ReadySet--
				change.Waiting++
				change.WaitingLeased++
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := change.flush(ctx, tx, lease.Queue); err != nil {
			return err
		}
		if len(done) > 0 {
			_, err = tx.Exec(ctx, sqlExtendLease, lease.ID, expires)
		}
		return err
	})
	if err == nil && len(done) > 0 {
		lease.ExpiresAt = msTime(expires)
	}
	if err == nil {
		err = queuestore.LostOf(lease, ids, done)
	}
	if err != nil {
		return s.err(fmt.Errorf("extend lease %s: %w", lease.Token, err))
	}
	return nil
}

// Release gives messages of the lease back (all of them when ids is empty):
// ready again at once, and the attempt the claim counted is not spent. For
// a consumer that stops before handling them. Like Ack, it releases what the
// lease still holds and names the rest in a *queuestore.LostError.
func (s *Store) Release(ctx context.Context, lease *queuestore.Lease, ids ...int64) error {
	ids, err := queuestore.LeaseIDs(lease, ids)
	if err != nil {
		return err
	}
	var done map[int64]bool
	err = s.finishTx(ctx, lease, func(ctx context.Context, tx pgx.Tx) error {
		done = map[int64]bool{}
		rows, err := tx.Query(ctx, sqlRelease, lease.ID, ids, s.now())
		if err != nil {
			return err
		}
		var change counts
		err = finished(rows, func(id int64, old int16) error {
			done[id] = true
			change.LeaveLive(old == codeReady, true)
			change.Waiting++
			change.Settled[queuestore.SettledReleased]++
			return nil
		})
		if err != nil {
			return err
		}
		return change.flush(ctx, tx, lease.Queue)
	})
	if err == nil {
		err = queuestore.LostOf(lease, ids, done)
	}
	if err != nil {
		return s.err(fmt.Errorf("release lease %s: %w", lease.Token, err))
	}
	return nil
}
