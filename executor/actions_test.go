package executor

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestClaimAckNack(t *testing.T) {
	t.Parallel()
	te := setup(t)
	te.enqueueN("q", 5)
	r := te.run(KindQueue, map[string]any{"queue": "q", "action": "claim", "batch_size": 3, "lease": "10m"})
	wantExit(t, r.err, 0)
	var c ClaimOutput
	if err := json.Unmarshal([]byte(r.stdout), &c); err != nil {
		t.Fatal(err)
	}
	if c.Token == "" || c.Count != 3 || len(c.Messages) != 3 || c.ExpiresAt == nil || string(c.Messages[0].Body) != `{"n":0}` {
		t.Fatalf("claim output %s", r.stdout)
	}
	if st := te.stats("q"); st.InFlight != 3 || st.Ready != 2 {
		t.Fatalf("after claim %+v", st)
	}

	// A Dagu call site passes ids as text after ${VAR} expansion.
	r = te.run(KindQueue, map[string]any{"queue": "q", "action": "ack", "token": c.Token, "ids": itoa(int(c.Messages[0].ID))})
	wantExit(t, r.err, 0)
	var f FinishOutput
	json.Unmarshal([]byte(r.stdout), &f)
	if f.Acked != 1 {
		t.Fatalf("ack output %s", r.stdout)
	}
	r = te.run(KindQueue, map[string]any{"queue": "q", "action": "nack", "token": c.Token, "error": "resize failed", "backoff": "none"})
	wantExit(t, r.err, 0)
	json.Unmarshal([]byte(r.stdout), &f)
	if f.Retried != 2 {
		t.Fatalf("nack output %s", r.stdout)
	}
	if st := te.stats("q"); st.Ready != 4 || st.InFlight != 0 {
		t.Fatalf("after nack %+v", st)
	}

	// The lease is finished: its token is spent.
	r = te.run(KindQueue, map[string]any{"queue": "q", "action": "ack", "token": c.Token})
	wantExit(t, r.err, ExitStore)
	if !strings.Contains(r.err.Error(), "lease lost") {
		t.Fatalf("spent token: %v", r.err)
	}
	r = te.run(KindQueue, map[string]any{"queue": "q", "action": "ack", "token": "garbage"})
	wantExit(t, r.err, ExitUsage)
}

func TestClaimEmptyAndWrongQueue(t *testing.T) {
	t.Parallel()
	te := setup(t)
	r := te.run(KindQueue, map[string]any{"queue": "q", "action": "claim"})
	wantExit(t, r.err, 0)
	var c ClaimOutput
	json.Unmarshal([]byte(r.stdout), &c)
	if c.Token != "" || c.Count != 0 || c.Messages == nil || c.SkippedReason != "empty" {
		t.Fatalf("empty claim %s", r.stdout)
	}
	te.enqueueN("q", 1)
	r = te.run(KindQueue, map[string]any{"queue": "q", "action": "claim"})
	json.Unmarshal([]byte(r.stdout), &c)
	r = te.run(KindQueue, map[string]any{"queue": "other", "action": "ack", "token": c.Token})
	wantExit(t, r.err, ExitUsage)
	if !strings.Contains(r.err.Error(), `belongs to queue "q"`) {
		t.Fatalf("wrong queue: %v", r.err)
	}
}

func TestGetByToken(t *testing.T) {
	t.Parallel()
	te := setup(t)
	te.enqueueN("q", 4)
	r := te.run(KindQueue, map[string]any{"queue": "q", "action": "claim", "batch_size": 3, "lease": "10m"})
	wantExit(t, r.err, 0)
	var c ClaimOutput
	if err := json.Unmarshal([]byte(r.stdout), &c); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "batch.jsonl")
	r = te.run(KindQueue, map[string]any{"queue": "q", "action": "get", "token": c.Token, "file": file})
	wantExit(t, r.err, 0)
	var g ClaimOutput
	if err := json.Unmarshal([]byte(r.stdout), &g); err != nil {
		t.Fatal(err)
	}
	if g.Token != c.Token || g.Count != 3 || len(g.Messages) != 3 || string(g.Messages[2].Body) != `{"n":2}` {
		t.Fatalf("get output %s", r.stdout)
	}
	if n := countLines(t, file); n != 3 {
		t.Fatalf("batch file has %d lines, want 3", n)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("batch file mode: %v %v", fi, err)
	}
	// get changes nothing: the batch is still in flight.
	if st := te.stats("q"); st.InFlight != 3 {
		t.Fatalf("after get %+v", st)
	}
	// Part acked by the DAG: get shows what the lease still holds.
	r = te.run(KindQueue, map[string]any{"queue": "q", "action": "ack", "token": c.Token, "ids": itoa(int(c.Messages[0].ID))})
	wantExit(t, r.err, 0)
	r = te.run(KindQueue, map[string]any{"queue": "q", "action": "get", "token": c.Token})
	wantExit(t, r.err, 0)
	json.Unmarshal([]byte(r.stdout), &g)
	if g.Count != 2 {
		t.Fatalf("get after a partial ack %s", r.stdout)
	}
	// A finished batch: a retried run of its DAG must not process it again.
	r = te.run(KindQueue, map[string]any{"queue": "q", "action": "ack", "token": c.Token})
	wantExit(t, r.err, 0)
	r = te.run(KindQueue, map[string]any{"queue": "q", "action": "get", "token": c.Token})
	wantExit(t, r.err, ExitStore)
	if !strings.Contains(r.err.Error(), "lease lost") {
		t.Fatalf("get of a finished batch: %v", r.err)
	}
	for _, cfg := range []map[string]any{
		{"queue": "q", "action": "get"},
		{"queue": "q", "action": "claim", "file": file},
		{"queue": "q", "action": "get", "token": c.Token, "ids": "1"},
	} {
		if _, err := New(KindQueue, te.spec(cfg)); err == nil {
			t.Errorf("config %v: want an error", cfg)
		}
	}
}
