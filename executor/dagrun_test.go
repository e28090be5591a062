package executor

import (
	"context"
	"testing"

	"github.com/daguq/daguq/queuestore"
)

// The DAG runs that enqueue and claim a message are kept with it (from the
// DAG_NAME and DAG_RUN_ID that Dagu gives every step), for peek and the
// dashboard's link to the run.
func TestMessagesKeepTheirDAGRuns(t *testing.T) {
	t.Parallel()
	te := setup(t)
	inRun := func(dag, run string) func(*Spec) {
		return func(s *Spec) { s.Env = append(s.Env, envDAGName+"="+dag, envDAGRunID+"="+run) }
	}
	r := runExecutor(t, te.exec(KindEnqueue, map[string]any{"queue": "q", "message": `"hi"`}, inRun("producer", "r1")), context.Background())
	if r.err != nil {
		t.Fatal(r.err, r.stderr)
	}
	r = runExecutor(t, te.exec(KindQueue, map[string]any{"queue": "q", "action": "claim"}, inRun("worker", "r2")), context.Background())
	if r.err != nil {
		t.Fatal(r.err, r.stderr)
	}
	msgs, err := te.store().Peek(context.Background(), "q", queuestore.PeekOptions{State: queuestore.StateInFlight})
	if err != nil || len(msgs) != 1 {
		t.Fatal(msgs, err)
	}
	if msgs[0].EnqueuedBy != "producer/r1" || msgs[0].ClaimedBy != "worker/r2" {
		t.Fatalf("enqueued by %q, claimed by %q; want producer/r1 and worker/r2", msgs[0].EnqueuedBy, msgs[0].ClaimedBy)
	}
}
