package server

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/daguq/daguq/queuestore"
)

func TestCheckDaguURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, want string
	}{
		{"http", "http://127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"https with a path and a slash", "https://dagu.example.com/dagu/", "https://dagu.example.com/dagu"},
		{"javascript", "javascript:alert(1)", ""},
		{"no scheme", "dagu.example.com", ""},
		{"ftp", "ftp://dagu.example.com", ""},
		{"user info", "http://admin:secret@dagu:8080", ""},
		{"query", "http://dagu:8080/?x=1", ""},
		{"fragment", "http://dagu:8080/#x", ""},
		{"no host", "http:///path", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := CheckDaguURL(tc.in)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("CheckDaguURL(%q) = %q, want an error", tc.in, got)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("the error quotes a password: %v", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("CheckDaguURL(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

// A message shows the DAG runs that enqueued and claimed it, linked to
// their pages in Dagu when the server knows Dagu's URL; only the escaped
// dag and run id come from the message.
func TestMessageDAGRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name, daguURL, wantEnq, wantClaim string
	}{
		{"without --dagu-url", "", "", ""},
		{"with --dagu-url", "http://dagu:8080/ui", "http://dagu:8080/ui/dag-runs/producer/r%3F1%23x", "http://dagu:8080/ui/dag-runs/worker/r2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, Options{DaguURL: tc.daguURL})
			res, err := ts.store.Enqueue(ctx, queuestore.NewMessage{Queue: "q", Body: []byte(`{}`), EnqueuedBy: "producer/r?1#x"})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ts.store.Claim(ctx, queuestore.ClaimOptions{Queue: "q", Max: 1, Consumer: "t", ClaimedBy: "worker/r2"}); err != nil {
				t.Fatal(err)
			}
			// A claimed message is listed with the waiting ones; its lease
			// ends after the default lease, so look it up by state.
			m := ts.must(200, "GET", fmt.Sprintf("/api/v1/queues/q/messages/%d", res.IDs[0]), "").json(t)
			if m["enqueued_by"] != "producer/r?1#x" || m["claimed_by"] != "worker/r2" {
				t.Fatalf("enqueued_by, claimed_by: %v", m)
			}
			got := func(k string) string { s, _ := m[k].(string); return s }
			if got("enqueued_by_url") != tc.wantEnq || got("claimed_by_url") != tc.wantClaim {
				t.Errorf("links: %q, %q; want %q, %q", got("enqueued_by_url"), got("claimed_by_url"), tc.wantEnq, tc.wantClaim)
			}
			inf := ts.must(200, "GET", "/api/v1/info", "").json(t)
			if d, _ := inf["dagu_url"].(string); d != tc.daguURL || inf["dispatch"] != false {
				t.Errorf("info: %v", inf)
			}
		})
	}
}

func TestDispatchRoute(t *testing.T) {
	t.Parallel()
	t.Run("no dispatcher", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t, Options{})
		got := string(ts.must(200, "GET", "/api/v1/dispatch", "").body)
		if got != `{"running":false,"rules":[],"runs":[]}`+"\n" {
			t.Errorf("GET /api/v1/dispatch: %s", got)
		}
	})
	t.Run("a dispatcher", func(t *testing.T) {
		t.Parallel()
		started := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		ts := newTestServer(t, Options{DaguURL: "https://dagu.example.com", Dispatch: func() DispatchStatus {
			return DispatchStatus{
				Rules: []DispatchRule{{Queue: "orders", DAG: "process", DAGName: "process-orders", BatchSize: 50, Concurrency: 4}},
				Runs: []DispatchRun{
					{Queue: "orders", DAG: "process", DAGName: "process-orders", RunID: "daguq-ab/12", Messages: 50, Phase: "running", Started: &started},
					{Queue: "orders", DAG: "process", DAGName: "process-orders", RunID: "daguq-ab-13", Messages: 3, Phase: "filling"},
				},
			}
		}})
		d := ts.must(200, "GET", "/api/v1/dispatch", "").json(t)
		if d["running"] != true || d["dagu_url"] != "https://dagu.example.com" {
			t.Fatalf("dispatch: %v", d)
		}
		rules := d["rules"].([]any)
		if r := rules[0].(map[string]any); len(rules) != 1 || r["queue"] != "orders" || r["dag"] != "process" || r["concurrency"] != 4.0 || r["batch_size"] != 50.0 {
			t.Errorf("rules: %v", rules)
		}
		runs := d["runs"].([]any)
		if len(runs) != 2 {
			t.Fatalf("runs: %v", runs)
		}
		r0, r1 := runs[0].(map[string]any), runs[1].(map[string]any)
		if r0["url"] != "https://dagu.example.com/dag-runs/process-orders/daguq-ab%2F12" || r0["messages"] != 50.0 || r0["started"] != "2026-01-02T03:04:05Z" {
			t.Errorf("first run: %v", r0)
		}
		if _, ok := r1["started"]; ok || r1["phase"] != "filling" {
			t.Errorf("a filling batch has no start: %v", r1)
		}
		if ts.must(200, "GET", "/api/v1/info", "").json(t)["dispatch"] != true {
			t.Errorf("info does not say a dispatcher runs")
		}
	})
}

// A redrive at a rate answers 202 at once and moves rate dead letters a
// second in the background.
func TestRedriveAtRate(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, Options{})
	for i := range 5 {
		deadLetter(t, ts.store, "q", fmt.Sprintf(`{"n":%d}`, i), "boom")
	}
	for _, bad := range []string{"0", "-1", "x", "10001"} {
		r := ts.must(400, "POST", "/api/v1/queues/q/dead/redrive?rate="+bad, "")
		if r.json(t)["field"] != "rate" {
			t.Errorf("rate=%s: %s", bad, r.body)
		}
	}
	start := time.Now()
	a := ts.must(202, "POST", "/api/v1/queues/q/dead/redrive?rate=2", "").json(t)
	if a["scheduled"] != 5.0 || a["rate"] != 2.0 || a["seconds"] != 3.0 {
		t.Fatalf("answer: %v", a)
	}
	ctx := context.Background()
	var seen []int64 // ready counts as they change
	for time.Since(start) < 10*time.Second {
		st, err := ts.store.Stats(ctx, "q")
		if err != nil {
			t.Fatal(err)
		}
		if len(seen) == 0 || seen[len(seen)-1] != st.Ready {
			seen = append(seen, st.Ready)
		}
		if st.Ready == 5 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(start)
	if seen[len(seen)-1] != 5 {
		t.Fatalf("ready counts seen: %v, want to reach 5", seen)
	}
	for _, n := range seen {
		if n != 0 && n != 2 && n != 4 && n != 5 {
			t.Errorf("ready counts seen: %v, want steps of 2", seen)
		}
	}
	if elapsed < 1900*time.Millisecond {
		t.Errorf("5 at 2 a second took %s, want about 2s", elapsed)
	}

	// Chosen ids, at a rate.
	ids := []int64{deadLetter(t, ts.store, "q", `{}`, "boom"), deadLetter(t, ts.store, "q", `{}`, "boom")}
	a = ts.must(202, "POST", "/api/v1/queues/q/dead/redrive?rate=10", fmt.Sprintf(`{"ids":[%d,%d]}`, ids[0], ids[1])).json(t)
	if a["scheduled"] != 2.0 {
		t.Fatalf("answer: %v", a)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if st, _ := ts.store.Stats(ctx, "q"); st.Dead == 0 {
			return
		}
	}
	t.Fatal("the chosen dead letters were not redriven")
}
