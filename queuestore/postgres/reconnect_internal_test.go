package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/daguq/daguq/queuestore"
)

// Which errors mean the server could not be reached, and so may pass.
func TestUnreachable(t *testing.T) {
	t.Parallel()
	refused, err := pgconn.Connect(context.Background(), "postgres://u@127.0.0.1:1/db?connect_timeout=5")
	if err == nil {
		refused.Close(context.Background())
		t.Fatal("connected to port 1")
	}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", err, true},
		{"server shutting down", &pgconn.PgError{Code: "57P01"}, true},
		{"server starting up", fmt.Errorf("begin: %w", &pgconn.PgError{Code: "57P03"}), true},
		{"connection exception", &pgconn.PgError{Code: "08006"}, true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"connection dropped", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{"network error", &net.OpError{Op: "read", Err: errors.New("reset")}, true},
		{"wrong password", &pgconn.PgError{Code: "28P01"}, false},
		{"no such database", &pgconn.PgError{Code: "3D000"}, false},
		{"deadlock", &pgconn.PgError{Code: "40P01"}, false},
		{"cancelled", context.Canceled, false},
		{"lease lost", queuestore.ErrLeaseLost, false},
	} {
		if got := unreachable(tc.err); got != tc.want {
			t.Errorf("%s: unreachable(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

// A commit whose connection broke is run again only for a transaction
// that may run twice; an enqueue says its outcome is unknown. Past
// ReconnectFor every break fails, naming the database.
func TestReconnectingWait(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := &Store{describe: "postgres://u:xxxxx@db.example:5432/q", opts: Options{ReconnectFor: time.Minute}}
	commit := &brokenError{err: io.ErrUnexpectedEOF, duringCommit: true}
	var r reconnecting
	if err := r.wait(ctx, s, once, commit); !errors.Is(err, queuestore.ErrOutcomeUnknown) || (err == nil || !strings.Contains(err.Error(), "db.example:5432")) {
		t.Errorf("a broken commit of a transaction run once: %v, want ErrOutcomeUnknown naming the host", err)
	}
	if err := r.wait(ctx, s, repeatable, commit); err != nil {
		t.Errorf("a broken commit of a repeatable transaction: %v, want another try", err)
	}
	if err := r.wait(ctx, s, once, &brokenError{err: io.ErrUnexpectedEOF}); err != nil {
		t.Errorf("a connection broken before the commit: %v, want another try", err)
	}
	s.opts.ReconnectFor = -1
	if err := (&reconnecting{}).wait(ctx, s, repeatable, &brokenError{err: io.ErrUnexpectedEOF}); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("with ReconnectFor negative: %v, want a failure at once", err)
	}
}
