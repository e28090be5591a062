package server

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DispatchStatus is what the dashboard shows of a dispatcher that runs in
// the same process (daguq serve --dispatch): its rules and the runs it
// holds batches for.
type DispatchStatus struct {
	Rules []DispatchRule `json:"rules"`
	Runs  []DispatchRun  `json:"runs"`
}

// DispatchRule is one rule of a dispatcher: which queue feeds which DAG.
type DispatchRule struct {
	Queue       string `json:"queue"`
	DAG         string `json:"dag"`
	DAGName     string `json:"dag_name"` // the DAG's name in Dagu's run history
	BatchSize   int    `json:"batch_size"`
	Concurrency int    `json:"concurrency"`
}

// DispatchRun is one batch in flight and the Dagu run it was handed to.
type DispatchRun struct {
	Queue    string     `json:"queue"`
	DAG      string     `json:"dag"`
	DAGName  string     `json:"dag_name"`
	RunID    string     `json:"run_id"`
	Messages int        `json:"messages"`
	Phase    string     `json:"phase"`
	Started  *time.Time `json:"started,omitempty"`
	URL      string     `json:"url,omitempty"` // the run's page in Dagu, when Options.DaguURL is set
}

// CheckDaguURL checks a Dagu address for the dashboard's links: an
// absolute http or https URL without a query, fragment or user info. It
// returns the URL without a trailing slash.
func CheckDaguURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("dagu url: not a URL; want one like http://127.0.0.1:8080")
	}
	if u.User != nil {
		return "", errors.New("dagu url: must not hold a user or password (links need none)")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("dagu url %q: want http:// or https:// and a host, like http://127.0.0.1:8080, without user info, query or fragment", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// runURL is the page of a Dagu DAG run in Dagu's web UI
// (/dag-runs/{name}/{run id}), "" when there is no Dagu address or no run.
// Only the path-escaped name and run id come from the message or batch.
func (s *Server) runURL(dag, runID string) string {
	if s.opts.DaguURL == "" || dag == "" || runID == "" {
		return ""
	}
	return s.opts.DaguURL + "/dag-runs/" + url.PathEscape(dag) + "/" + url.PathEscape(runID)
}

// dagRunURL is runURL of a "dag/run-id" as messages keep it.
func (s *Server) dagRunURL(dagRun string) string {
	dag, run, ok := strings.Cut(dagRun, "/")
	if !ok {
		return ""
	}
	return s.runURL(dag, run)
}

// getDispatch is GET /api/v1/dispatch: the rules and runs in flight of the
// dispatcher running beside the server.
func (s *Server) getDispatch(w http.ResponseWriter, r *http.Request) {
	type answer struct {
		Running bool           `json:"running"`
		DaguURL string         `json:"dagu_url,omitempty"`
		Rules   []DispatchRule `json:"rules"`
		Runs    []DispatchRun  `json:"runs"`
	}
	a := answer{DaguURL: s.opts.DaguURL, Rules: []DispatchRule{}, Runs: []DispatchRun{}}
	if s.opts.Dispatch != nil {
		st := s.opts.Dispatch()
		a.Running = true
		if st.Rules != nil {
			a.Rules = st.Rules
		}
		for _, run := range st.Runs {
			if run.Started != nil && run.Started.IsZero() {
				run.Started = nil
			}
			run.URL = s.runURL(run.DAGName, run.RunID)
			a.Runs = append(a.Runs, run)
		}
	}
	writeJSON(w, http.StatusOK, a)
}
