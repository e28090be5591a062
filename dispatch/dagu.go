package dispatch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Dagu run status codes (Dagu's api/v1 schema Status).
const (
	StatusNotStarted     = 0
	StatusRunning        = 1
	StatusFailed         = 2
	StatusAborted        = 3
	StatusSucceeded      = 4
	StatusQueued         = 5
	StatusPartialSuccess = 6
	StatusWaiting        = 7
	StatusRejected       = 8
)

// Errors of the Dagu client.
var (
	// ErrRunExists: Dagu answered 409 already_exists for the run id.
	ErrRunExists = errors.New("dispatch: dag-run id already exists")
	// ErrRunNotFound: Dagu answered 404 for the run.
	ErrRunNotFound = errors.New("dispatch: dag-run not found")
	// ErrRefused: Dagu refused a start for good (400, 401, 403, 404: the
	// DAG file is missing or invalid, or the credentials are wrong).
	ErrRefused = errors.New("dispatch: Dagu refused the start")
)

// APIError is an answer of Dagu other than success, 404 or 409.
type APIError struct {
	Status  int    // HTTP status
	Code    string // Dagu's error code, like "internal_error"
	Message string
}

func (e *APIError) Error() string {
	if e.Code == "" && e.Message == "" {
		return fmt.Sprintf("HTTP %d", e.Status)
	}
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// Auth is how the client authenticates to Dagu: nothing, basic, or a
// bearer API key. Its values are never printed.
type Auth struct {
	User, Password string // basic
	Token          string // bearer (an API key like dagu_...)
}

// Client speaks the part of Dagu's REST API (api/v1) a dispatcher needs.
type Client struct {
	base string // like http://127.0.0.1:8080/api/v1
	auth Auth
	http *http.Client
}

// NewClient returns a client for the Dagu server at baseURL (its address,
// like http://127.0.0.1:8080; a path prefix is kept, /api/v1 is added).
// The URL must not hold credentials: give them in auth.
func NewClient(baseURL string, auth Auth, hc *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("dagu url must be like http://127.0.0.1:8080, got %q", redactURL(baseURL))
	}
	if u.User != nil {
		return nil, errors.New("dagu url must not hold a user or password: give them in a file or the environment")
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	base := strings.TrimSuffix(u.String(), "/")
	if !strings.HasSuffix(base, "/api/v1") {
		base += "/api/v1"
	}
	return &Client{base: base, auth: auth, http: hc}, nil
}

// redactURL drops credentials from a URL given by a user, for messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable)"
	}
	u.User = nil
	return u.String()
}

// String names the server for messages (never the credentials).
func (c *Client) String() string { return c.base }

// StartRequest is the body of POST /dags/{fileName}/start (and /enqueue).
type StartRequest struct {
	Params   string   `json:"params,omitempty"`
	DAGRunID string   `json:"dagRunId"`
	Labels   []string `json:"labels,omitempty"`
}

// Run is the part of Dagu's DAGRunSummary and DAGRunDetails a dispatcher reads.
type Run struct {
	DAGRunID       string `json:"dagRunId"`
	Name           string `json:"name"`
	Status         int    `json:"status"`
	StatusLabel    string `json:"statusLabel"`
	AutoRetryCount int    `json:"autoRetryCount"`
	AutoRetryLimit *int   `json:"autoRetryLimit"`
	StartedAt      string `json:"startedAt"`
	FinishedAt     string `json:"finishedAt"`
}

// Active reports whether the run may still change: not started, queued,
// running, waiting for approval, or failed with an automatic retry of
// Dagu's left.
func (r Run) Active() bool {
	switch r.Status {
	case StatusNotStarted, StatusRunning, StatusQueued, StatusWaiting:
		return true
	case StatusFailed:
		return r.AutoRetryLimit != nil && r.AutoRetryCount < *r.AutoRetryLimit
	}
	return false
}

// Succeeded reports a final success: succeeded or partially succeeded
// (steps that failed were allowed to by the DAG's continue_on).
func (r Run) Succeeded() bool {
	return r.Status == StatusSucceeded || r.Status == StatusPartialSuccess
}

// Start starts a run of the DAG file (POST /dags/{fileName}/start, or
// /enqueue when enqueue is set, which respects Dagu's queues). It returns
// ErrRunExists when Dagu already has a run with the id.
func (c *Client) Start(ctx context.Context, fileName string, req StartRequest, enqueue bool) error {
	op := "start"
	if enqueue {
		op = "enqueue"
	}
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	var out struct {
		DAGRunID string `json:"dagRunId"`
	}
	if err := c.do(ctx, http.MethodPost, "/dags/"+url.PathEscape(fileName)+"/"+op, nil, body, &out); err != nil {
		var ae *APIError
		if errors.As(err, &ae) && !errors.Is(err, ErrRunExists) {
			switch ae.Status {
			case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
				err = fmt.Errorf("%w: %w", ErrRefused, ae)
			}
		}
		return fmt.Errorf("%s dag %q run %s: %w", op, fileName, req.DAGRunID, err)
	}
	if out.DAGRunID != "" && out.DAGRunID != req.DAGRunID {
		return fmt.Errorf("%s dag %q: Dagu answered run id %q, want %q", op, fileName, out.DAGRunID, req.DAGRunID)
	}
	return nil
}

// Run looks a run up (GET /dag-runs/{name}/{dagRunId}); ErrRunNotFound when
// Dagu has none.
func (c *Client) Run(ctx context.Context, name, id string) (Run, error) {
	var out struct {
		DAGRunDetails *Run `json:"dagRunDetails"`
	}
	if err := c.do(ctx, http.MethodGet, "/dag-runs/"+url.PathEscape(name)+"/"+url.PathEscape(id), nil, nil, &out); err != nil {
		return Run{}, fmt.Errorf("look up run %s of %q: %w", id, name, err)
	}
	if out.DAGRunDetails == nil {
		return Run{}, fmt.Errorf("look up run %s of %q: answer without dagRunDetails", id, name)
	}
	return *out.DAGRunDetails, nil
}

// ActiveRuns lists the runs of the DAG named name that are not started,
// running, queued or waiting and were started from since on (one call:
// GET /dag-runs?name=..&status=..&fromDate=..; Dagu lists only today's
// runs without fromDate). It follows nextCursor.
func (c *Client) ActiveRuns(ctx context.Context, name string, since time.Time) ([]Run, error) {
	q := url.Values{}
	q.Set("name", name)
	for _, s := range []int{StatusNotStarted, StatusRunning, StatusQueued, StatusWaiting} {
		q.Add("status", strconv.Itoa(s))
	}
	q.Set("fromDate", strconv.FormatInt(since.Unix(), 10))
	var runs []Run
	for page := 0; page < 100; page++ {
		var out struct {
			DAGRuns    []Run  `json:"dagRuns"`
			NextCursor string `json:"nextCursor"`
		}
		if err := c.do(ctx, http.MethodGet, "/dag-runs", q, nil, &out); err != nil {
			return nil, fmt.Errorf("list runs of %q: %w", name, err)
		}
		runs = append(runs, out.DAGRuns...)
		if out.NextCursor == "" {
			break
		}
		q.Set("cursor", out.NextCursor)
	}
	return runs, nil
}

// maxAnswer bounds what the client reads of one answer.
const maxAnswer = 16 << 20

func (c *Client) do(ctx context.Context, method, path string, query url.Values, body []byte, out any) error {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case c.auth.Token != "":
		req.Header.Set("Authorization", "Bearer "+c.auth.Token)
	case c.auth.User != "":
		req.SetBasicAuth(c.auth.User, c.auth.Password)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is in the caller's message already
		}
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode/100 == 2 {
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode answer: %w", err)
		}
		return nil
	}
	var apiErr struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(data, &apiErr)
	e := &APIError{Status: resp.StatusCode, Code: apiErr.Code, Message: apiErr.Message}
	switch resp.StatusCode {
	case http.StatusNotFound:
		return fmt.Errorf("%w: %w", ErrRunNotFound, e)
	case http.StatusConflict:
		if apiErr.Code == "already_exists" || apiErr.Code == "" {
			return fmt.Errorf("%w: %w", ErrRunExists, e)
		}
	}
	return e
}
