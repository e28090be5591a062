package queuestore

import (
	"fmt"
	"time"
)

// State is where a message is in its lifecycle (docs/lifecycle.md).
type State string

// The states a message can be seen in.
const (
	StateReady    State = "ready"     // claimable now
	StateDelayed  State = "delayed"   // claimable from its not-before or retry time
	StateInFlight State = "in_flight" // held by a lease that has not expired
	StateDead     State = "dead"      // out of attempts; waits for redrive or purge
	StateAcked    State = "acked"     // done; kept only with Options.AckRetention
)

// Stored state codes (messages.state).
const (
	codeReady   = 0 // in the ready set, which claims walk
	codeWaiting = 1 // delayed, retrying or leased until visible_at
	codeDead    = 2
	codeAcked   = 3
)

// NewMessage is a message to enqueue.
type NewMessage struct {
	Queue    string
	Body     []byte
	Priority int64 // higher is claimed first
	// NotBefore delays the first delivery; zero means now.
	NotBefore time.Time
	// DedupeKey skips this enqueue while a message with the same queue and
	// key is not yet acked.
	DedupeKey string
	// Group lets a claim take one group's messages only.
	Group string
	// MaxAttempts overrides Options.MaxAttempts; zero means the default.
	MaxAttempts int
	// EnqueuedBy names the Dagu DAG run that enqueues it ("dag/run-id"),
	// shown by peek and the dashboard.
	EnqueuedBy string
}

// validate checks message i; queueChecked skips the queue name, already
// found valid (a bulk enqueue checks each distinct name once).
func (m NewMessage) validate(i int, queueChecked bool) error {
	if !queueChecked {
		if err := ValidateQueueName(m.Queue); err != nil {
			return fmt.Errorf("message %d: %w", i, err)
		}
	}
	if m.Priority < MinPriority || m.Priority > MaxPriority {
		return fmt.Errorf("%w: message %d: priority must be %d..%d, got %d", ErrInvalid, i, MinPriority, MaxPriority, m.Priority)
	}
	if m.MaxAttempts < 0 {
		return fmt.Errorf("%w: message %d: max_attempts must be >= 1 (0 for the default), got %d", ErrInvalid, i, m.MaxAttempts)
	}
	if len(m.DedupeKey) > 1024 || len(m.Group) > 1024 {
		return fmt.Errorf("%w: message %d: dedupe key and group must be at most 1024 bytes", ErrInvalid, i)
	}
	return nil
}

// Message is a stored message as a claim or a peek sees it.
type Message struct {
	ID          int64
	Queue       string
	Body        []byte
	Priority    int64
	Attempt     int // deliveries so far, this one included
	MaxAttempts int
	Group       string
	DedupeKey   string
	EnqueuedAt  time.Time
	VisibleAt   time.Time // ready from, or lease end while in flight
	State       State
	LastError   string
	EnqueuedBy  string // the Dagu DAG run that enqueued it ("dag/run-id"), if any
	ClaimedBy   string // the Dagu DAG run of its last claim, if any
}

// Lease holds claimed messages until it expires or is finished.
type Lease struct {
	ID        int64 // fencing token: later claims get larger ids
	Token     string
	Queue     string
	Consumer  string
	ExpiresAt time.Time
	Messages  []Message
	// BytesFull says the claim stopped at ClaimOptions.MaxBytes: more was
	// ready, but the next message would not have fitted.
	BytesFull bool

	// rowless says the SQLite store kept no row of this lease (its queue
	// had no in-flight limit at the claim), so a finish has none to drop.
	rowless bool
}

// IDs returns the ids of the leased messages in order.
func (l *Lease) IDs() []int64 {
	ids := make([]int64, len(l.Messages))
	for i, m := range l.Messages {
		ids[i] = m.ID
	}
	return ids
}

func msTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
