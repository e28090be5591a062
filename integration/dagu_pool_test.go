//go:build integration

package integration

import (
	"strings"
	"testing"
)

// TestDaguServerPools runs the warehouse examples in a real Dagu server at
// once: the nightly DAG (a 2-slot step among them), the report and the
// fan-out of six child runs share the pool "warehouse-db" of 2 slots. Every
// run succeeds, the jobs never hold more than 2 slots together, and the
// report step's output: is its command's stdout. Skips without DAGU_BIN.
func TestDaguServerPools(t *testing.T) {
	s := startDaguServer(t)
	s.e.daguq(nil, "pool", "set", "warehouse-db", "2")
	dags := []string{"warehouse-nightly", "warehouse-reports", "warehouse-fanout"}
	ids := map[string]string{}
	for _, dag := range dags {
		ids[dag] = s.start(t, dag, nil)
	}
	for _, dag := range dags {
		if r := s.wait(t, dag, ids[dag]); r.Status != statusSucceeded {
			t.Errorf("%s: %v", dag, r)
		}
	}
	most, jobs := poolJobs(t, s.e.trace)
	if most > 2 {
		t.Errorf("the jobs held %d slots at once; the pool has 2", most)
	}
	if len(jobs) != 9 {
		t.Errorf("jobs %v, want 9 (extract, rebuild-indexes, daily-report, six loads)", jobs)
	}
	report := decodeOutput[struct {
		Query string
		Slots int
	}](t, s.output(t, "warehouse-reports", ids["warehouse-reports"], "report"))
	if report.Query != "daily-report" || report.Slots != 1 {
		t.Errorf("report output %+v", report)
	}
	if p := s.e.run(nil, "daguq", "pool", "list", "warehouse-db"); p.Code != 0 || !strings.Contains(p.Stdout, "warehouse-db  2         0     2     0") {
		t.Errorf("pool at the end: %s", p)
	}
}
