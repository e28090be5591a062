package queuestore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

// MaxClaim is the most messages one claim can take.
const MaxClaim = 10000

// ClaimOptions say what a claim takes.
type ClaimOptions struct {
	Queue string
	// Max is how many messages to take at most: 1..MaxClaim.
	Max int
	// Lease is how long the messages stay invisible to other claims unless
	// extended. Default 30s.
	Lease time.Duration
	// MinPriority and MaxPriority, when set, take only that priority band.
	MinPriority, MaxPriority *int64
	// Group takes only messages of this group key ("" with OneGroup unset:
	// any group).
	Group string
	// OneGroup takes only messages of the group of the first message in claim
	// order: the oldest ready group at the highest rank.
	OneGroup bool
	// Consumer names the claimer in stats and leases.
	Consumer string
	// Aging, when set, raises a ready message's rank by one for every Aging
	// interval it has waited, so low priorities still move under a steady
	// stream of high ones (docs/lifecycle.md).
	Aging time.Duration
}

func (o *ClaimOptions) validate() error {
	if err := ValidateQueueName(o.Queue); err != nil {
		return err
	}
	if o.Max < 1 || o.Max > MaxClaim {
		return fmt.Errorf("%w: claim max must be 1..%d, got %d", ErrInvalid, MaxClaim, o.Max)
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
	return nil
}

// Claim leases up to opts.Max ready messages of one queue, highest rank
// first, then in the order they became ready. It returns nil and no error
// when nothing is ready, the queue is paused, or its in-flight limit is
// reached. Every claimed message's attempt count goes up by one.
func (s *Store) Claim(ctx context.Context, opts ClaimOptions) (*Lease, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	minPriority, maxPriority := int64(math.MinInt64), int64(math.MaxInt64)
	if opts.MinPriority != nil {
		minPriority = *opts.MinPriority
	}
	if opts.MaxPriority != nil {
		maxPriority = *opts.MaxPriority
	}
	if !s.wasFull(opts.Queue) {
		ready, err := s.anyReady(ctx, opts, minPriority, maxPriority)
		if err != nil {
			return nil, fmt.Errorf("claim from %q: %w", opts.Queue, err)
		}
		if !ready {
			return nil, nil
		}
	}
	secret := newSecret()
	var lease *Lease
	err := s.withTx(ctx, func(ctx context.Context, tx querier) error {
		lease = nil
		now := s.now()
		var paused bool
		var limit, agedAt, live int64
		err := tx.QueryRowContext(ctx, sqlQueueSettings, opts.Queue, now).Scan(&paused, &limit, &agedAt, &live)
		if err != nil && !errors.Is(err, sql.ErrNoRows) { // no row: default settings
			return err
		}
		if paused || (limit > 0 && live >= limit) {
			return errRollback
		}
		if s.due(s.nextLeaseSwep, opts.Queue, now, 10*time.Second) {
			if _, err := tx.ExecContext(ctx, sqlSweepLeases, opts.Queue, now); err != nil {
				return err
			}
		}
		if aging := opts.Aging.Milliseconds(); aging > 0 && now-agedAt >= aging {
			if _, err := tx.ExecContext(ctx, sqlAge, opts.Queue, now-aging); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, sqlSetAgedAt, opts.Queue, now); err != nil {
				return err
			}
		}
		expires := now + opts.Lease.Milliseconds()
		inserted, err := tx.ExecContext(ctx, sqlInsertLease, secret, opts.Queue, opts.Consumer, now, expires)
		if err != nil {
			return err
		}
		leaseID, err := inserted.LastInsertId()
		if err != nil {
			return err
		}
		var rows *sql.Rows
		switch {
		case opts.OneGroup:
			var head sql.NullString
			err = tx.QueryRowContext(ctx, sqlHeadGroup, opts.Queue, now, minPriority, maxPriority).Scan(&head)
			if errors.Is(err, sql.ErrNoRows) {
				return errRollback
			}
			if err != nil {
				return err
			}
			rows, err = tx.QueryContext(ctx, sqlClaimGroup, leaseID, expires, opts.Queue, now, minPriority, maxPriority, opts.Max, head)
		case opts.Group != "":
			rows, err = tx.QueryContext(ctx, sqlClaimGroup, leaseID, expires, opts.Queue, now, minPriority, maxPriority, opts.Max, opts.Group)
		default:
			rows, err = tx.QueryContext(ctx, sqlClaim, leaseID, expires, opts.Queue, now, minPriority, maxPriority, opts.Max)
		}
		if err != nil {
			return err
		}
		msgs, err := scanLeased(rows, opts.Queue, expires, false)
		if err != nil {
			return err
		}
		if len(msgs) == 0 {
			return errRollback
		}
		lease = &Lease{ID: leaseID, Token: formatToken(leaseID, secret), Queue: opts.Queue,
			Consumer: opts.Consumer, ExpiresAt: msTime(expires), Messages: msgs}
		if len(msgs) <= bodiesInTx {
			return readBodies(ctx, tx, lease)
		}
		return nil
	})
	if err == nil && lease != nil && len(lease.Messages) > bodiesInTx {
		err = s.retryBusy(ctx, func() error { return readBodies(context.WithoutCancel(ctx), s.db, lease) })
	}
	if err != nil {
		return nil, fmt.Errorf("claim from %q: %w", opts.Queue, err)
	}
	if lease != nil && len(lease.Messages) == 0 {
		lease = nil
	}
	s.setFull(opts.Queue, lease != nil && len(lease.Messages) == opts.Max)
	return lease, nil
}

// wasFull and setFull keep whether the last claim from a queue got all it
// asked for. Then more is likely ready, and the next claim skips the
// read-only probe (anyReady) that keeps claims on an empty queue off the
// write lock: at small batches the probe costs a tenth of the claim.
func (s *Store) wasFull(queue string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastFull[queue]
}

func (s *Store) setFull(queue string, full bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if full {
		s.lastFull[queue] = true
	} else {
		delete(s.lastFull, queue)
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
func (s *Store) anyReady(ctx context.Context, opts ClaimOptions, minPriority, maxPriority int64) (bool, error) {
	var ready bool
	var err error
	if opts.Group != "" && !opts.OneGroup {
		err = s.readRow(ctx, sqlAnyReadyGroup, []any{opts.Queue, s.now(), minPriority, maxPriority, opts.Group}, &ready)
	} else {
		err = s.readRow(ctx, sqlAnyReady, []any{opts.Queue, s.now(), minPriority, maxPriority}, &ready)
	}
	return ready, err
}

// scanLeased reads claimed rows, with the body as the last column when
// withBody, and puts them in claim order (RETURNING gives no order).
func scanLeased(rows *sql.Rows, queue string, expires int64, withBody bool) ([]Message, error) {
	defer rows.Close()
	type ranked struct {
		Message
		rank int64
	}
	var out []ranked
	for rows.Next() {
		var r ranked
		var group, dedupe sql.NullString
		var enqueued int64
		dest := []any{&r.ID, &r.Priority, &r.rank, &r.Attempt, &r.MaxAttempts, &group, &dedupe, &enqueued, &r.Body}
		if !withBody {
			dest = dest[:len(dest)-1]
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		r.Queue, r.Group, r.DedupeKey = queue, group.String, dedupe.String
		r.EnqueuedAt, r.VisibleAt, r.State = msTime(enqueued), msTime(expires), StateInFlight
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].rank != out[j].rank {
			return out[i].rank > out[j].rank
		}
		return out[i].ID < out[j].ID
	})
	msgs := make([]Message, len(out))
	for i := range out {
		msgs[i] = out[i].Message
	}
	return msgs, nil
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

func newSecret() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func formatToken(id int64, secret string) string { return fmt.Sprintf("%d.%s", id, secret) }

// LeaseByToken loads the lease a token names, with the messages it still
// holds, so another process can finish it (the claim, fan out, ack pattern).
func (s *Store) LeaseByToken(ctx context.Context, token string) (*Lease, error) {
	idText, secret, ok := strings.Cut(token, ".")
	id, err := strconv.ParseInt(idText, 10, 64)
	if !ok || err != nil || secret == "" {
		return nil, fmt.Errorf("%w: lease token %q: want the token a claim printed, like 42.9f86d081884c7d65", ErrInvalid, token)
	}
	lease := &Lease{ID: id, Token: token}
	var stored string
	var expires int64
	err = s.readRow(ctx, sqlLeaseByID, []any{id}, &stored, &lease.Queue, &lease.Consumer, &expires)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && stored != secret) {
		return nil, fmt.Errorf("lease %s: %w (finished, or expired and claimed again)", token, ErrLeaseLost)
	}
	if err != nil {
		return nil, err
	}
	lease.ExpiresAt = msTime(expires)
	rows, err := s.query(ctx, sqlLeaseMessages, id)
	if err != nil {
		return nil, err
	}
	if lease.Messages, err = scanLeased(rows, lease.Queue, expires, true); err != nil {
		return nil, err
	}
	if len(lease.Messages) == 0 {
		return nil, fmt.Errorf("lease %s: %w (its messages were finished or claimed again)", token, ErrLeaseLost)
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

// Ack finishes messages of the lease as done (all of them when ids is
// empty). If the lease no longer holds every one of them it returns
// ErrLeaseLost and changes nothing.
func (s *Store) Ack(ctx context.Context, lease *Lease, ids ...int64) error {
	ids, list, err := idList(lease, ids)
	if err != nil {
		return err
	}
	err = s.withTx(ctx, func(ctx context.Context, tx querier) error {
		now := s.now()
		var res sql.Result
		if s.opts.AckRetention > 0 {
			res, err = tx.ExecContext(ctx, sqlAckRetain, lease.ID, list, now)
		} else {
			res, err = tx.ExecContext(ctx, sqlAckDelete, lease.ID, list)
		}
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != int64(len(ids)) {
			return ErrLeaseLost
		}
		if s.opts.AckRetention > 0 {
			if s.due(s.nextAckPurge, lease.Queue, now, time.Minute) {
				cutoff := now - s.opts.AckRetention.Milliseconds()
				if _, err := tx.ExecContext(ctx, sqlPurgeAckedBodies, lease.Queue, cutoff); err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, sqlPurgeAcked, lease.Queue, cutoff); err != nil {
					return err
				}
			}
		} else if _, err := tx.ExecContext(ctx, sqlAckBodies, list); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, sqlDropLeaseIfEmpty, lease.ID)
		return err
	})
	if err != nil {
		return fmt.Errorf("ack lease %s: %w", lease.Token, err)
	}
	return nil
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
	// MaxAttempts, when positive, replaces each message's own limit.
	MaxAttempts int
}

// NackResult counts where nacked messages went.
type NackResult struct {
	Retried []int64
	Dead    []int64
}

// Nack finishes messages of the lease as failed: each is retried after a
// delay, or goes to the dead letter state when it has used all its attempts.
// If the lease no longer holds every one of them it returns ErrLeaseLost and
// changes nothing.
func (s *Store) Nack(ctx context.Context, lease *Lease, opts NackOptions) (NackResult, error) {
	ids, _, err := idList(lease, opts.IDs)
	if err != nil {
		return NackResult{}, err
	}
	attempts := make(map[int64]int, len(lease.Messages))
	for _, m := range lease.Messages {
		attempts[m.ID] = m.Attempt
	}
	var res NackResult
	err = s.withTx(ctx, func(ctx context.Context, tx querier) error {
		res = NackResult{}
		now := s.now()
		for _, id := range ids {
			delay := opts.Delay
			if delay == 0 {
				delay = s.opts.Backoff(attempts[id])
			}
			retryAt := now + max(delay, 0).Milliseconds()
			var state int
			err := tx.QueryRowContext(ctx, sqlNack, id, lease.ID, nullString(opts.Error), opts.MaxAttempts, now, retryAt).Scan(&state)
			if errors.Is(err, sql.ErrNoRows) {
				return ErrLeaseLost
			}
			if err != nil {
				return err
			}
			if state == codeDead {
				res.Dead = append(res.Dead, id)
			} else {
				res.Retried = append(res.Retried, id)
			}
		}
		_, err := tx.ExecContext(ctx, sqlDropLeaseIfEmpty, lease.ID)
		return err
	})
	if err != nil {
		return NackResult{}, fmt.Errorf("nack lease %s: %w", lease.Token, err)
	}
	return res, nil
}

// Extend pushes the end of the lease to d from now (a heartbeat).
func (s *Store) Extend(ctx context.Context, lease *Lease, d time.Duration) error {
	if lease == nil || d <= 0 {
		return fmt.Errorf("%w: extend needs a lease and a positive duration", ErrInvalid)
	}
	var expires int64
	err := s.withTx(ctx, func(ctx context.Context, tx querier) error {
		expires = s.now() + d.Milliseconds()
		res, err := tx.ExecContext(ctx, sqlExtendMessages, lease.ID, expires)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrLeaseLost
		}
		_, err = tx.ExecContext(ctx, sqlExtendLease, lease.ID, expires)
		return err
	})
	if err != nil {
		return fmt.Errorf("extend lease %s: %w", lease.Token, err)
	}
	lease.ExpiresAt = msTime(expires)
	return nil
}

// Release gives messages of the lease back (all of them when ids is empty):
// ready again at once, and the attempt the claim counted is not spent. For
// a consumer that stops before handling them.
func (s *Store) Release(ctx context.Context, lease *Lease, ids ...int64) error {
	ids, list, err := idList(lease, ids)
	if err != nil {
		return err
	}
	err = s.withTx(ctx, func(ctx context.Context, tx querier) error {
		res, err := tx.ExecContext(ctx, sqlRelease, lease.ID, list, s.now())
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != int64(len(ids)) {
			return ErrLeaseLost
		}
		_, err = tx.ExecContext(ctx, sqlDropLeaseIfEmpty, lease.ID)
		return err
	})
	if err != nil {
		return fmt.Errorf("release lease %s: %w", lease.Token, err)
	}
	return nil
}
