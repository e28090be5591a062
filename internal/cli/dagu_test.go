package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// daguBin finds a real Dagu: $DAGU_BIN, else dagu on PATH; the test skips
// without one.
func daguBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("DAGU_BIN"); p != "" {
		return p
	}
	if p, err := exec.LookPath("dagu"); err == nil {
		return p
	}
	t.Skip("no Dagu: set DAGU_BIN to a dagu binary (v2.6 or later) to run this test")
	return ""
}

// The step types printed by dagu-config, installed as Dagu's base config:
// Dagu checks with: against the input schema at load time, and a DAG with an
// enqueue step and a queue step runs both through this daguq.
func TestDaguConfigRunsInDagu(t *testing.T) {
	t.Parallel()
	dagu := daguBin(t)
	e := newEnv(t)
	home := filepath.Join(e.dir, "dagu")
	os.MkdirAll(filepath.Join(home, "dags"), 0o700)
	e.setenv("DAGUQ_DB", "") // Dagu does not pass it to steps; DAGU_HOME it does
	e.setenv("DAGU_HOME", home)
	e.setenv("DAGU_AUTH_MODE", "none")
	config := e.ok(nil, "dagu-config", "--bin", daguqBin)
	if err := os.WriteFile(filepath.Join(home, "base.yaml"), []byte(config.Stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	handled := filepath.Join(e.dir, "handled.jsonl")
	dag := `type: graph
steps:
  - id: fill
    type: enqueue
    with:
      queue: orders
      messages: [{"n": 1}, {"n": 2}, {"n": 3}]
      priority: 5
  - id: process
    type: queue
    depends: [fill]
    with:
      queue: orders
      batch_size: 2
      concurrency: 2
      run: [sh, -c, "cat >> ` + handled + `"]
    output: SUMMARY
`
	os.WriteFile(filepath.Join(home, "dags", "orders.yaml"), []byte(dag), 0o600)
	bad := strings.Replace(dag, "batch_size: 2", "batch_size: 0", 1)
	os.WriteFile(filepath.Join(home, "dags", "bad.yaml"), []byte(bad), 0o600)

	runDagu := func(args ...string) (string, error) {
		cmd := exec.Command(dagu, args...)
		cmd.Env, cmd.Dir = e.vars, e.dir
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := runDagu("validate", "bad.yaml"); err == nil || !strings.Contains(out, "batch_size") {
		t.Errorf("dagu validate accepted batch_size 0 or did not name it (%v):\n%s", err, out)
	}
	if out, err := runDagu("start", "orders.yaml"); err != nil {
		t.Fatalf("dagu start: %v\n%s", err, out)
	}
	b, err := os.ReadFile(handled)
	if err != nil || strings.Count(string(b), `"queue":"orders"`) != 3 {
		t.Errorf("the handler got %q (%v), want 3 messages", b, err)
	}
	r := e.ok(nil, "stats", "--json")
	if !strings.Contains(r.Stdout, filepath.Join(home, "daguq", "daguq.db")) || !strings.Contains(r.Stdout, `"DAGU_HOME"`) {
		t.Errorf("stats does not name the file under DAGU_HOME:\n%s", r.Stdout)
	}
}
