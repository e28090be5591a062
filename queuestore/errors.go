package queuestore

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

var (
	// ErrLeaseLost reports a finish under a lease that no longer holds the
	// messages: it expired and another claim took them, or it was finished.
	ErrLeaseLost = errors.New("queuestore: lease lost")
	// ErrNotDaguqDatabase reports a file that is some other SQLite database.
	ErrNotDaguqDatabase = errors.New("queuestore: not a daguq database")
	// ErrSchemaTooNew reports a database written by a newer daguq.
	ErrSchemaTooNew = errors.New("queuestore: database schema is newer than this daguq")
	// ErrBusy reports a write that gave up waiting for another process's
	// write lock (Options.BusyTimeout).
	ErrBusy = errors.New("queuestore: database is busy")
	// ErrOutcomeUnknown reports a write whose connection to the database
	// broke while it committed: it was applied whole or not at all, and
	// which is not known.
	ErrOutcomeUnknown = errors.New("queuestore: outcome of the commit unknown")
	// ErrInvalid reports bad input from a caller: a queue name, a message, an option.
	ErrInvalid = errors.New("queuestore: invalid input")
)

// LostError names the messages of a lease that another claim took over
// after the lease expired: a finish or extend acted on the rest and left
// these alone. It matches ErrLeaseLost with errors.Is.
type LostError struct {
	Lease string  // the lease's token
	IDs   []int64 // the messages it no longer holds
}

func (e *LostError) Error() string {
	ids := make([]string, 0, min(len(e.IDs), 10))
	for _, id := range e.IDs[:min(len(e.IDs), 10)] {
		ids = append(ids, strconv.FormatInt(id, 10))
	}
	more := ""
	if len(e.IDs) > 10 {
		more = fmt.Sprintf(" and %d more", len(e.IDs)-10)
	}
	return fmt.Sprintf("%v: %d messages taken over by another claim (ids %s%s)", ErrLeaseLost, len(e.IDs), strings.Join(ids, ", "), more)
}

// Is makes errors.Is(err, ErrLeaseLost) true.
func (e *LostError) Is(target error) bool { return target == ErrLeaseLost }
