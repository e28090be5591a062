package queuestore

import "errors"

var (
	// ErrLeaseLost reports a finish under a lease that no longer holds the
	// messages: it expired and another claim took them, or it was finished.
	ErrLeaseLost = errors.New("queuestore: lease lost")
	// ErrNotDaguqDatabase reports a file that is some other SQLite database.
	ErrNotDaguqDatabase = errors.New("queuestore: not a daguq database")
	// ErrSchemaTooNew reports a database written by a newer daguq.
	ErrSchemaTooNew = errors.New("queuestore: database schema is newer than this daguq")
	// ErrInvalid reports bad input from a caller: a queue name, a message, an option.
	ErrInvalid = errors.New("queuestore: invalid input")
)
