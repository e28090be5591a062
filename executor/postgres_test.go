package executor

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/daguq/daguq/internal/pgtest"
	"github.com/daguq/daguq/queuestore"
	"github.com/daguq/daguq/queuestore/postgres"
)

// A postgres:// URL in with: db runs the steps on PostgreSQL: enqueue,
// consume in batches with retries and dead letters, and claim, fan out,
// ack by token. The password never shows.
func TestStepsOnPostgres(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	te := setup(t)
	te.db = url
	s, err := postgres.Open(url, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()

	r := te.run(KindEnqueue, map[string]any{"queue": "jobs", "message": map[string]any{"n": 1}, "priority": 3})
	wantExit(t, r.err, 0)
	var msgs []queuestore.NewMessage
	for i := range 40 {
		msgs = append(msgs, queuestore.NewMessage{Queue: "jobs", Body: []byte(`{"n":` + itoa(i+2) + `}`)})
	}
	msgs = append(msgs, queuestore.NewMessage{Queue: "jobs", Body: []byte(`{"poison":true}`)})
	if _, err := s.Enqueue(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	te.script("h.sh", copyHandler+`grep -q poison "$DAGUQ_BATCH_FILE" && exit 1; exit 0`+"\n")
	r = te.run(KindQueue, map[string]any{"queue": "jobs", "batch_size": 1, "concurrency": 4, "run": "./h.sh",
		"max_attempts": 2, "backoff": "none"})
	wantExit(t, r.err, 0)
	sum := consumeSummary(t, r)
	if sum.Acked != 41 || sum.Dead != 1 || sum.Retried != 1 {
		t.Fatalf("summary %+v, want 41 acked, the poison retried once then dead", sum)
	}
	st, err := s.Stats(ctx, "jobs")
	if err != nil || st.Dead != 1 || st.Ready+st.InFlight+st.Delayed != 0 {
		t.Fatalf("stats %+v %v", st, err)
	}

	// Claim, then ack by token from another step.
	if _, err := s.Enqueue(ctx, queuestore.NewMessage{Queue: "fan", Body: []byte(`{"a":1}`)}); err != nil {
		t.Fatal(err)
	}
	r = te.run(KindQueue, map[string]any{"queue": "fan", "action": "claim", "batch_size": 5})
	wantExit(t, r.err, 0)
	var c ClaimOutput
	if err := json.Unmarshal([]byte(r.stdout), &c); err != nil || c.Token == "" || c.Count != 1 {
		t.Fatalf("claim output %s (%v)", r.stdout, err)
	}
	r = te.run(KindQueue, map[string]any{"queue": "fan", "action": "ack", "token": c.Token})
	wantExit(t, r.err, 0)
	if st, _ := s.Stats(ctx, "fan"); st.Ready+st.InFlight != 0 {
		t.Fatalf("after the ack by token: %+v", st)
	}
	if strings.Contains(r.stdout+r.stderr, pgtest.Password) {
		t.Fatal("a step printed the database password")
	}

	// A pool step holds its slots in the same database.
	if err := s.SetPool(ctx, "db", 2); err != nil {
		t.Fatal(err)
	}
	r = te.run(KindPool, map[string]any{"pool": "db", "slots": 2, "run": `echo "$DAGUQ_POOL $DAGUQ_POOL_SLOTS"`})
	wantExit(t, r.err, 0)
	if r.stdout != "db 2\n" {
		t.Errorf("pool step stdout %q", r.stdout)
	}
	if p, err := s.Pool(ctx, "db"); err != nil || p.Used != 0 {
		t.Errorf("pool after the step: %+v %v", p, err)
	}
}

// An unreachable server fails the step with the database error status,
// naming the URL without its password.
func TestPostgresUnreachable(t *testing.T) {
	t.Parallel()
	te := setup(t)
	r := te.run(KindEnqueue, map[string]any{"queue": "q", "message": 1, "db": "postgresql://u:s3cret@127.0.0.1:1/db?connect_timeout=5"})
	wantExit(t, r.err, ExitStore)
	if msg := r.err.Error(); strings.Contains(msg+r.stderr, "s3cret") || !strings.Contains(msg, "postgresql://u:xxxxx@127.0.0.1:1/db") {
		t.Fatalf("error %q, want the URL without its password", msg)
	}
}
