package cli_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/daguq/daguq/dispatch/daguapitest"
)

const dispatchKey = "dagu_cli_test_api_key_0123456789"

func waitFor(tb testing.TB, what string, log *syncBuffer, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s; daguq dispatch said:\n%s", what, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A dispatcher killed with SIGKILL while its runs are active, and started
// again, looks its runs up by their recorded ids and starts none twice; each
// run reads its batch with `daguq consume --action get` (what a `type:
// queue` step with `action: get` runs), and every message is acked once the
// runs succeed.
func TestDispatchKill9AndRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dagu := daguapitest.New(t, dispatchKey)
	keyFile := filepath.Join(e.dir, "dagu-key")
	if err := os.WriteFile(keyFile, []byte(dispatchKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.ok(strings.NewReader(jsonLines(30)), "enqueue", "--queue", "jobs", "--file", "-")

	var mu sync.Mutex
	got := map[string]int{} // run id -> messages its get printed
	dagu.OnRun(func(run *daguapitest.Run) {
		go func() {
			file := filepath.Join(e.dir, run.ID+".jsonl")
			r := e.run(nil, "consume", "--queue", run.Param("DAGUQ_QUEUE"), "--action", "get", "--token", run.Param("DAGUQ_TOKEN"), "--file", file)
			if r.Code != 0 {
				t.Errorf("get for run %s: %s", run.ID, r)
				return
			}
			var out struct {
				Count int `json:"count"`
			}
			json.Unmarshal([]byte(r.Stdout), &out)
			data, _ := os.ReadFile(file)
			if n := bytes.Count(data, []byte("\n")); n != out.Count {
				t.Errorf("run %s: file has %d lines, stdout says %d", run.ID, n, out.Count)
			}
			mu.Lock()
			got[run.ID] = out.Count
			mu.Unlock()
		}()
	})
	args := []string{"dispatch", "--queue", "jobs", "--dag", "jobs-batch", "--batch-size", "10", "--concurrency", "3",
		"--lease", "2s", "--poll", "20ms", "--watch", "50ms", "--dagu-url", dagu.URL, "--dagu-token-file", keyFile}
	start := func() (*exec.Cmd, *syncBuffer) {
		cmd := e.command(nil, args...)
		log := &syncBuffer{}
		cmd.Stderr = log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd, log
	}
	cmd, log := start()
	waitFor(t, "3 runs", log, func() bool { runs, _ := dagu.Snapshot(); return len(runs) == 3 })
	waitFor(t, "3 gets", log, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 3 })
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	gets := dagu.Gets.Load()
	cmd, log = start()
	waitFor(t, "the runs looked up", log, func() bool { return dagu.Gets.Load() >= gets+3 })
	time.Sleep(2500 * time.Millisecond) // past the lease: the restarted dispatcher keeps it
	if st := e.stats("jobs"); st.InFlight != 30 || st.Leases != 3 {
		t.Fatalf("after the restart: %+v\n%s", st, log.String())
	}
	dagu.SetAll(daguapitest.StatusSucceeded)
	waitFor(t, "all acked", log, func() bool { st := e.stats("jobs"); return st.Ready+st.Delayed+st.InFlight == 0 })
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("dispatch after SIGTERM: %v\n%s", err, log.String())
	}
	runs, posts := dagu.Snapshot()
	if len(runs) != 3 {
		t.Errorf("%d runs for 3 batches", len(runs))
	}
	for id, n := range posts {
		if n != 1 {
			t.Errorf("run %s started %d times", id, n)
		}
	}
	for id, n := range got {
		if n != 10 {
			t.Errorf("run %s read %d messages", id, n)
		}
	}
	out := log.String()
	if !strings.Contains(out, "resumed") || !strings.Contains(out, "stopped: 0 runs started, 3 succeeded") || strings.Contains(out, dispatchKey) {
		t.Errorf("stderr of the restarted dispatcher:\n%s", out)
	}
	// A retry of a finished run: its batch is gone.
	for _, run := range runs {
		r := e.run(nil, "consume", "--queue", "jobs", "--action", "get", "--token", run.Param("DAGUQ_TOKEN"))
		if r.Code != 3 || !strings.Contains(r.Stderr, "lease lost") {
			t.Errorf("get after the batch was acked: %s", r)
		}
		break
	}
}

func TestDispatchRefusesBadFlags(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	basic := filepath.Join(e.dir, "basic")
	os.WriteFile(basic, []byte("no-colon-here\n"), 0o600)
	rules := filepath.Join(e.dir, "rules.yaml")
	os.WriteFile(rules, []byte("rules: [{queue: q, dag: d, batch_size: 0, concurrency: 9999}]\n"), 0o600)
	for _, tt := range []struct {
		name string
		args []string
		says string
	}{
		{"no rule", nil, "give --queue and --dag"},
		{"rules and flags", []string{"--rules", rules, "--queue", "q", "--dag", "d"}, "not both"},
		{"a bad batch size", []string{"--queue", "q", "--dag", "d", "--batch-size", "0"}, "batch_size must be 1..10000, got 0"},
		{"a bad rule in the file", []string{"--rules", rules}, "concurrency must be 1..1024"},
		{"credentials in the url", []string{"--queue", "q", "--dag", "d", "--dagu-url", "http://admin:hunter2@127.0.0.1:8080"}, "must not hold a user"},
		{"a bad basic auth file", []string{"--queue", "q", "--dag", "d", "--dagu-basic-auth-file", basic}, "user:password"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := e.run(nil, append([]string{"dispatch"}, tt.args...)...)
			if r.Code != 2 || !strings.Contains(r.Stderr, tt.says) || strings.Contains(r.Stderr, "hunter2") || strings.Contains(r.Stderr, "no-colon") {
				t.Errorf("want exit 2 saying %q, got %s", tt.says, r)
			}
		})
	}
}

// daguq serve --dispatch RULES runs the dispatcher beside the API; the
// credentials come from the environment.
func TestServeRunsTheDispatcher(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	dagu := daguapitest.New(t, dispatchKey)
	dagu.OnRun(func(run *daguapitest.Run) { go dagu.Set(run.ID, daguapitest.StatusSucceeded) })
	rules := filepath.Join(e.dir, "rules.yaml")
	os.WriteFile(rules, []byte("dagu:\n  url: "+dagu.URL+"\nrules:\n  - {queue: a, dag: dag-a, batch_size: 4}\n  - {queue: b, dag: dag-b, batch_size: 4, concurrency: 2}\n"), 0o600)
	e.ok(strings.NewReader(jsonLines(8)), "enqueue", "--queue", "a", "--file", "-")
	e.ok(strings.NewReader(jsonLines(8)), "enqueue", "--queue", "b", "--file", "-")
	e.setenv("DAGUQ_DAGU_TOKEN", dispatchKey)
	cmd := e.command(nil, "serve", "--addr", "127.0.0.1:0", "--dispatch", rules)
	log := &syncBuffer{}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitFor(t, "both queues drained", log, func() bool {
		a, b := e.stats("a"), e.stats("b")
		return a.Ready+a.InFlight+a.Delayed+b.Ready+b.InFlight+b.Delayed == 0
	})
	// The dashboard's API shows the rules, linked to the dispatcher's Dagu.
	addr := regexp.MustCompile(`daguq serve: http://([^/]+)/`).FindStringSubmatch(log.String())
	if addr == nil {
		t.Fatalf("no address in:\n%s", log.String())
	}
	res, err := http.Get("http://" + addr[1] + "/api/v1/dispatch")
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Running bool   `json:"running"`
		DaguURL string `json:"dagu_url"`
		Rules   []struct {
			Queue, DAG  string
			Concurrency int
		} `json:"rules"`
	}
	err = json.NewDecoder(res.Body).Decode(&got)
	res.Body.Close()
	if err != nil || !got.Running || got.DaguURL != strings.TrimSuffix(dagu.URL, "/") || len(got.Rules) != 2 || got.Rules[1].Queue != "b" || got.Rules[1].DAG != "dag-b" || got.Rules[1].Concurrency != 2 {
		t.Errorf("GET /api/v1/dispatch: %+v %v", got, err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("serve after SIGTERM: %v\n%s", err, log.String())
	}
	if runs, _ := dagu.Snapshot(); len(runs) != 4 {
		t.Errorf("%d runs, want 4", len(runs))
	}
	if out := log.String(); !strings.Contains(out, `queue "b" -> dag "dag-b"`) || !strings.Contains(out, "(API key)") || strings.Contains(out, dispatchKey) {
		t.Errorf("serve said:\n%s", out)
	}
}
