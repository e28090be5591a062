package postgres_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/daguq/daguq/internal/pgtest"
	"github.com/daguq/daguq/queuestore"
	"github.com/daguq/daguq/queuestore/postgres"
)

// A store outlives a server restart: a claim and an enqueue made while the
// server is down wait for it and succeed once it is back, on new
// connections. With the server down longer than ReconnectFor, a call fails
// naming the host and not the password.
func TestStoreWaitsForRestartedServer(t *testing.T) {
	t.Parallel()
	srv := pgtest.NewServer(t)
	dbURL := srv.NewDatabase(t)
	ctx := context.Background()
	s, err := postgres.Open(dbURL, postgres.Options{MaxConns: 2, ReconnectFor: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Enqueue(ctx, queuestore.NewMessage{Queue: "q", Body: []byte("1")}); err != nil {
		t.Fatal(err)
	}

	srv.Stop(t)
	type result struct {
		lease *queuestore.Lease
		err   error
	}
	claimed := make(chan result, 1)
	enqueued := make(chan error, 1)
	go func() {
		lease, err := s.Claim(ctx, queuestore.ClaimOptions{Queue: "q", Max: 10, Lease: time.Minute})
		claimed <- result{lease, err}
	}()
	go func() {
		_, err := s.Enqueue(ctx, queuestore.NewMessage{Queue: "q", Body: []byte("2")})
		enqueued <- err
	}()
	time.Sleep(time.Second)
	select {
	case r := <-claimed:
		t.Fatalf("a claim returned while the server was down: %+v", r)
	case err := <-enqueued:
		t.Fatalf("an enqueue returned while the server was down: %v", err)
	default:
	}
	srv.Start(t)
	c := <-claimed
	if err := <-enqueued; err != nil || c.err != nil || c.lease == nil {
		t.Fatalf("after the restart: claim %+v, enqueue %v", c, err)
	}
	// The claim took the first message, and the second too if the enqueue
	// committed first.
	if st, err := s.Stats(ctx, "q"); err != nil || st.InFlight != int64(len(c.lease.Messages)) || st.Ready+st.InFlight != 2 {
		t.Fatalf("stats %+v (%v) with %d claimed, want the enqueue made while the server was down stored once", st, err, len(c.lease.Messages))
	}

	impatient, err := postgres.Open(dbURL, postgres.Options{MaxConns: 2, ReconnectFor: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer impatient.Close()
	srv.Stop(t)
	defer srv.Start(t) // the database is dropped at cleanup
	start := time.Now()
	_, err = impatient.Claim(ctx, queuestore.ClaimOptions{Queue: "q", Max: 1, Lease: time.Minute})
	u, _ := url.Parse(dbURL)
	if err == nil || time.Since(start) > 10*time.Second || !strings.Contains(err.Error(), u.Host) || strings.Contains(err.Error(), pgtest.Password) {
		t.Fatalf("claim with the server down past ReconnectFor, after %s: %v; want an error naming %s without the password", time.Since(start), err, u.Host)
	}
	t.Logf("after %s: %v", time.Since(start).Round(time.Millisecond), err)
}
