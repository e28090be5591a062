package proctest

import (
	"sort"
	"testing"
)

// LeaseDelivery is one claim of a message as a multi-process store test
// recorded it: times are the store's milliseconds.
type LeaseDelivery struct {
	ID        int64 // the message
	LeaseID   int64
	ClaimedAt int64 // the claim's "now"
	LeaseEnd  int64 // the time the lease ran to
	Attempt   int
	Consumer  string
	Result    string // acked, or lost: the ack found the lease taken over (ErrLeaseLost)
}

// CheckLeaseHistory checks the deliveries of one message, msg in the
// problems it reports with fail: attempts 1, 2, ... in turn, none claimed
// before the lease of the one before ran out, lease ids (fencing tokens)
// growing when fencing is set, and the last one alone acked: the acks
// before it found their lease lost. It sorts ds by attempt and returns how
// many deliveries were acked and how many lost.
func CheckLeaseHistory(fail func(format string, args ...any), msg string, ds []LeaseDelivery, fencing bool) (acked, lost int) {
	sort.Slice(ds, func(i, j int) bool { return ds[i].Attempt < ds[j].Attempt })
	for i, d := range ds {
		if d.Attempt != i+1 {
			fail("message %s: delivery %d has attempt %d: %+v", msg, i+1, d.Attempt, ds)
		}
		if i > 0 {
			prev := ds[i-1]
			if d.ClaimedAt < prev.LeaseEnd {
				fail("message %s delivered to %s at %d while the lease of %s ran to %d", msg, d.Consumer, d.ClaimedAt, prev.Consumer, prev.LeaseEnd)
			}
			if fencing && d.LeaseID <= prev.LeaseID {
				fail("message %s: lease %d after lease %d: fencing tokens must grow", msg, d.LeaseID, prev.LeaseID)
			}
		}
		switch d.Result {
		case "acked":
			acked++
			if i != len(ds)-1 {
				fail("message %s delivered again after %s acked it: %+v", msg, d.Consumer, ds)
			}
		case "lost":
			lost++
			if i == len(ds)-1 {
				fail("message %s: the last delivery's ack found the lease lost: %+v", msg, ds)
			}
		default:
			fail("message %s: unexpected ack result %q", msg, d.Result)
		}
	}
	return acked, lost
}

// Problems is a fail function for checks that find many problems: each is
// reported as tb.Errorf does, and the test stops after max of them.
func Problems(tb testing.TB, max int) func(format string, args ...any) {
	n := 0
	return func(format string, args ...any) {
		tb.Helper()
		if n++; n > max {
			tb.Fatalf("more than %d problems; stopping", max)
		}
		tb.Errorf(format, args...)
	}
}
