package queuestore

import (
	"context"
	"fmt"
)

// AckClaim acks messages of a finished lease (all of them when ackIDs is
// empty) and claims the next batch from the lease's queue, in one write
// transaction: a consumer that loops commits once per batch instead of
// twice. The ack comes first,
// so the lease it ends no longer counts against the queue's in-flight limit
// when the claim looks.
//
// The ack is exactly Ack's: it acks what the lease still holds. When
// another claim has taken some of its messages, the claim still happens,
// and AckClaim returns its lease (nil when nothing was ready) together with
// a *LostError (errors.Is ErrLeaseLost) naming the ids not acked. Any other
// error means nothing happened: no ack, no claim, and a nil lease.
func (s *Store) AckClaim(ctx context.Context, ack *Lease, ackIDs []int64, opts ClaimOptions) (*Lease, error) {
	if err := ValidateAckClaim(ack, &opts); err != nil {
		return nil, err
	}
	ids, list, err := idList(ack, ackIDs)
	if err != nil {
		return nil, err
	}
	minPriority, maxPriority := opts.band()
	var lease *Lease
	var done map[int64]bool
	err = s.finishTx(ctx, ack, func(ctx context.Context, tx querier) error {
		lease = nil
		var acked counts
		var err error
		if done, err = s.ackTx(ctx, tx, ack, ids, list, &acked); err != nil {
			return err
		}
		lease, err = s.claimTx(ctx, tx, &opts, minPriority, maxPriority, &acked)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ack lease %s and claim from %q: %w", ack.Token, opts.Queue, err)
	}
	s.maybeReclaim(ctx)
	lease, err = s.claimDone(ctx, &opts, lease, nil)
	if err != nil {
		return nil, err
	}
	if err := lostOf(ack, ids, done); err != nil {
		return lease, fmt.Errorf("ack lease %s: %w", ack.Token, err)
	}
	return lease, nil
}

// ValidateAckClaim checks AckClaim's lease and claim options, and fills in
// the claim's defaults.
func ValidateAckClaim(ack *Lease, opts *ClaimOptions) error {
	if ack == nil {
		return fmt.Errorf("%w: ack and claim needs the lease to ack", ErrInvalid)
	}
	if err := opts.validate(); err != nil {
		return err
	}
	if ack.Queue != opts.Queue {
		return fmt.Errorf("%w: ack lease %s of queue %q and claim from queue %q: want one queue", ErrInvalid, ack.Token, ack.Queue, opts.Queue)
	}
	if opts.Into != nil && opts.Into.ID == ack.ID {
		return fmt.Errorf("%w: claim into lease %s, which the same call acks", ErrInvalid, ack.Token)
	}
	return nil
}
