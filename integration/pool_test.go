package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/daguq/daguq/internal/proctest"
)

// poolSteps are the with: maps of the pool steps of a DAG file, in order.
func poolSteps(tb testing.TB, name string) []map[string]any {
	tb.Helper()
	text, err := os.ReadFile(filepath.Join(repoRoot, "dags", name))
	if err != nil {
		tb.Fatal(err)
	}
	var dag dagFile
	if err := yaml.Unmarshal(text, &dag); err != nil {
		tb.Fatal(err)
	}
	var out []map[string]any
	for _, s := range dag.Steps {
		if s.Type == "pool" {
			out = append(out, s.With)
		}
	}
	if len(out) == 0 {
		tb.Fatalf("%s has no pool step", name)
	}
	return out
}

// poolJobs reads warehouse-query.sh's trace: the most slots in use at once
// and the jobs that ran, as "what table slots".
func poolJobs(tb testing.TB, path string) (most int, jobs []string) {
	tb.Helper()
	type event struct {
		at    int64
		delta int
	}
	var events []event
	for _, f := range traceLines(tb, path) {
		if len(f) != 5 {
			continue
		}
		at, err := strconv.ParseInt(f[1], 10, 64)
		slots, err2 := strconv.Atoi(f[2])
		if err != nil || err2 != nil {
			tb.Fatalf("trace line %v", f)
		}
		if f[0] == "start" {
			events = append(events, event{at, slots})
			jobs = append(jobs, f[3]+" "+f[4]+" "+f[2])
		} else {
			events = append(events, event{at, -slots})
		}
	}
	sort.Slice(events, func(i, j int) bool {
		if events[i].at != events[j].at {
			return events[i].at < events[j].at
		}
		return events[i].delta < events[j].delta
	})
	n := 0
	for _, ev := range events {
		n += ev.delta
		most = max(most, n)
	}
	sort.Strings(jobs)
	return most, jobs
}

// The pool steps of the warehouse examples, run as Dagu's step type runs
// them ("daguq pool run --with JSON" in the DAG's folder, Dagu's variables
// in the environment), all at once: the nightly jobs (the index rebuild
// weighs 2 slots), the report and the six loads of the fan-out never hold
// more than the 2 slots of "warehouse-db" together, and every job runs.
func TestWarehouseExamplesSharePool(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.setenv("QUERY_SECONDS", "0.2")
	e.daguq(nil, "pool", "set", "warehouse-db", "2")
	run := func(with map[string]any, vars ...string) result {
		b, err := json.Marshal(with)
		if err != nil {
			t.Error(err)
			return result{}
		}
		cmd := e.command("daguq", "pool", "run", "--with", string(b))
		cmd.Dir = filepath.Join(repoRoot, "dags")
		cmd.Env = append(append([]string(nil), e.vars...), vars...)
		return proctest.Run(t, cmd, 2*time.Minute)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var report string
	check := func(what string, r result) {
		if r.Code != 0 {
			t.Errorf("%s: %s", what, r)
		}
	}
	nightly := poolSteps(t, "warehouse-nightly.yaml")
	reports := poolSteps(t, "warehouse-reports.yaml")
	item := poolSteps(t, "warehouse-fanout-item.yaml")[0]
	wg.Add(1)
	go func() { // the nightly DAG: its steps one after the other
		defer wg.Done()
		for _, with := range nightly {
			check("nightly", run(with, "DAG_NAME=warehouse-nightly", "DAG_RUN_ID=n1"))
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := run(reports[0], "DAG_NAME=warehouse-reports", "DAG_RUN_ID=r1")
		check("report", r)
		mu.Lock()
		report = r.Stdout
		mu.Unlock()
	}()
	for _, table := range []string{"orders", "customers", "invoices", "products", "stock", "returns"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			check("load "+table, run(item, "DAG_NAME=warehouse-fanout-item", "TABLE="+table))
		}()
	}
	wg.Wait()

	most, jobs := poolJobs(t, e.trace)
	if most > 2 {
		t.Errorf("the jobs held %d slots at once; the pool has 2", most)
	}
	want := []string{"daily-report - 1", "extract - 1", "load customers 1", "load invoices 1", "load orders 1",
		"load products 1", "load returns 1", "load stock 1", "rebuild-indexes - 2"}
	if strings.Join(jobs, ",") != strings.Join(want, ",") {
		t.Errorf("jobs %v, want %v", jobs, want)
	}
	var out struct {
		Query string
		Slots int
	}
	if err := json.Unmarshal([]byte(report), &out); err != nil || out.Query != "daily-report" || out.Slots != 1 {
		t.Errorf("the report step's stdout (its output:) %q: %v", report, err)
	}
}
