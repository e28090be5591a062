package queuestore

import (
	"fmt"
	"strconv"
	"strings"
)

// The rules every backend applies the same way, exported for backends in
// other packages (queuestore/postgres): input checks with the same error
// texts, the sort key, lease tokens, and the LostError of a finish.

// NoAgingStep is the sort key's step per priority level on a queue without
// aging, in milliseconds (2^42: longer than any wait).
const NoAgingStep = noAgingStep

// SortStep is the sort key's step per priority level for a queue's aging
// interval in milliseconds (0: none).
func SortStep(agingMs int64) int64 { return sortStep(agingMs) }

// ValidateMessage checks message i of an enqueue.
func ValidateMessage(i int, m NewMessage) error { return m.validate(i, false) }

// ValidateClaim checks a claim's options and fills in their defaults (the
// lease length).
func ValidateClaim(opts *ClaimOptions) error { return opts.validate() }

// ClaimBand is the claim's priority band, clamped to the priority bounds.
func ClaimBand(opts *ClaimOptions) (lo, hi int64) { return opts.band() }

// ClaimKeyRange is the sort key range [from, to) that holds the priority band
// [lo, hi] on a queue with this aging interval (ms): the whole band without
// aging, everything with it (the band then filters on priority).
func ClaimKeyRange(lo, hi, agingMs int64) (from, to int64) { return keyRange(lo, hi, agingMs) }

// ParseLeaseToken is the lease id a token names: the id a claim printed
// (tokens of schema 1 read "id.secret"; the id alone names the lease).
func ParseLeaseToken(token string) (int64, error) {
	idText, _, _ := strings.Cut(token, ".")
	id, err := strconv.ParseInt(idText, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%w: lease token %q: want the token a claim printed, like 3221225473", ErrInvalid, token)
	}
	return id, nil
}

// LeaseIDs checks the ids a finish names against the lease: each must be
// one of its messages, named once. No ids means every message of the lease.
func LeaseIDs(lease *Lease, ids []int64) ([]int64, error) {
	ids, _, err := idList(lease, ids)
	return ids, err
}

// LostOf is the *LostError naming the ids a finish did not do, or nil.
func LostOf(lease *Lease, ids []int64, done map[int64]bool) error { return lostOf(lease, ids, done) }

// ValidatePeek checks Peek's options and fills in the default limit.
func ValidatePeek(queue string, opts *PeekOptions) error {
	if err := ValidateQueueName(queue); err != nil {
		return err
	}
	if opts.Limit == 0 {
		opts.Limit = 10
	}
	if opts.Limit < 1 || opts.Limit > MaxClaim {
		return fmt.Errorf("%w: peek limit must be 1..%d, got %d", ErrInvalid, MaxClaim, opts.Limit)
	}
	switch opts.State {
	case "", StateReady, StateDelayed, StateInFlight, StateDead, StateAcked:
		return nil
	}
	return fmt.Errorf("%w: peek state %q: want ready, delayed, in_flight, dead or acked", ErrInvalid, opts.State)
}

// ValidateLimit checks an in-flight limit for SetLimit.
func ValidateLimit(limit int) error {
	if limit < 0 || limit > 1_000_000 {
		return fmt.Errorf("%w: limit must be 0..1000000 (0: no limit), got %d", ErrInvalid, limit)
	}
	return nil
}

// WaitBucket is the index in WaitBuckets of an enqueue-to-ack wait of waitMs
// milliseconds, or -1 when it is longer than the last bound.
func WaitBucket(waitMs int64) int {
	secs := float64(waitMs) / 1000
	for i, bound := range WaitBuckets {
		if secs <= bound {
			return i
		}
	}
	return -1
}
