package server

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/daguq/daguq/queuestore"
)

// apiError is an answer other than 2xx, with the field or parameter it is
// about when there is one.
type apiError struct {
	code  int
	field string
	msg   string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(field, format string, args ...any) error {
	return &apiError{code: http.StatusBadRequest, field: field, msg: fmt.Sprintf(format, args...)}
}

// errorBody is every error answer: {"error": "...", "field": "..."}.
type errorBody struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"the answer could not be encoded"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{Error: msg})
}

// fail answers err: an apiError as it says, the store's invalid input as
// 400, a busy database as 503, a too large body as 413, anything else as
// 500 (and in the log).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		writeJSON(w, ae.code, errorBody{Error: ae.msg, Field: ae.field})
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes: send fewer messages per request", tooBig.Limit))
	case errors.Is(err, queuestore.ErrInvalid):
		writeError(w, http.StatusBadRequest, strings.ReplaceAll(err.Error(), "queuestore: invalid input: ", ""))
	case errors.Is(err, queuestore.ErrBusy):
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "database busy: another process held the write lock too long; try again")
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		writeError(w, http.StatusServiceUnavailable, "request cancelled")
	default:
		s.logf("%s %s: %v", r.Method, r.URL.Path, err)
		writeError(w, http.StatusInternalServerError, "database error: "+err.Error())
	}
}

// queueParam is the {queue} of the path, checked.
func queueParam(r *http.Request) (string, error) {
	q := r.PathValue("queue")
	if err := queuestore.ValidateQueueName(q); err != nil {
		return "", badRequest("queue", "%s", strings.ReplaceAll(err.Error(), "queuestore: invalid input: ", ""))
	}
	return q, nil
}

// info is GET /api/v1/info: what the page needs to know about the server.
type info struct {
	Version   string `json:"version"`
	Backend   string `json:"backend"`
	DB        string `json:"db"`
	DBFlag    string `json:"db_flag"`
	ReadOnly  bool   `json:"read_only"`
	Auth      bool   `json:"auth"`
	RefreshMS int64  `json:"refresh_ms"`
	DaguURL   string `json:"dagu_url,omitempty"`
	Dispatch  bool   `json:"dispatch"` // a dispatcher runs beside the server
}

func (s *Server) getInfo(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, info{
		Version: s.opts.Version, Backend: s.opts.Backend, DB: s.opts.DB, DBFlag: s.opts.DBFlag,
		ReadOnly: s.opts.ReadOnly, Auth: s.opts.Token != "", RefreshMS: s.opts.RefreshEvery.Milliseconds(),
		DaguURL: s.opts.DaguURL, Dispatch: s.opts.Dispatch != nil,
	})
}

// queueView is a queue as the API shows it.
type queueView struct {
	Queue                 string  `json:"queue"`
	Ready                 int64   `json:"ready"`
	Delayed               int64   `json:"delayed"`
	InFlight              int64   `json:"in_flight"`
	Dead                  int64   `json:"dead"`
	Acked                 int64   `json:"acked"`
	OldestReadyAgeSeconds float64 `json:"oldest_ready_age_seconds"`
	Leases                int64   `json:"leases"`
	InFlightLimit         int64   `json:"in_flight_limit"`
	Paused                bool    `json:"paused"`
	EnqueuedTotal         int64   `json:"enqueued_total"`
	AckedTotal            int64   `json:"acked_total"`
	DeadTotal             int64   `json:"dead_total"`
	// Rates over the last rateWindow, from the history samples; null until
	// the server has a sample old enough.
	InPerSecond  *float64 `json:"in_per_second"`
	OutPerSecond *float64 `json:"out_per_second"`
	// DrainSeconds is the time to empty the queue (ready, delayed and in
	// flight) at the current rates: null when it is not shrinking.
	DrainSeconds *float64 `json:"drain_seconds"`
}

// rateWindow is how far back the rates look; a sample at least
// minRateSpan old is needed.
const (
	rateWindow  = 5 * time.Minute
	minRateSpan = 50 * time.Second
)

func (s *Server) viewOf(ctx context.Context, m queuestore.QueueMetrics) (queueView, error) {
	v := queueView{
		Queue: m.Queue, Ready: m.Ready, Delayed: m.Delayed, InFlight: m.InFlight, Dead: m.Dead, Acked: m.Acked,
		OldestReadyAgeSeconds: m.OldestReadyAge.Seconds(), Leases: m.Leases, InFlightLimit: m.InFlightLimit,
		Paused: m.Paused, EnqueuedTotal: m.Enqueued, AckedTotal: m.Settled[queuestore.OutcomeAcked],
		DeadTotal: m.Settled[queuestore.OutcomeDead],
	}
	now := s.opts.Now()
	hist, err := s.store.History(ctx, m.Queue, now.Add(-rateWindow))
	if err != nil {
		return queueView{}, err
	}
	if len(hist) > 0 {
		first := hist[0]
		if span := now.Sub(first.At); span >= minRateSpan {
			in := max(0, float64(v.EnqueuedTotal-first.Enqueued)/span.Seconds())
			out := max(0, float64(v.AckedTotal-first.Acked)/span.Seconds())
			v.InPerSecond, v.OutPerSecond = &in, &out
			backlog := float64(v.Ready + v.Delayed + v.InFlight)
			switch {
			case backlog == 0:
				zero := 0.0
				v.DrainSeconds = &zero
			case out > in:
				d := backlog / (out - in)
				v.DrainSeconds = &d
			}
		}
	}
	return v, nil
}

func (s *Server) listQueues(w http.ResponseWriter, r *http.Request) {
	metrics, err := s.store.Metrics(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	views := make([]queueView, 0, len(metrics))
	for _, m := range metrics {
		v, err := s.viewOf(r.Context(), m)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		views = append(views, v)
	}
	writeJSON(w, http.StatusOK, struct {
		Queues []queueView `json:"queues"`
	}{views})
}

// queueView reads one queue's view; found is false for a queue that has
// neither messages nor settings.
func (s *Server) queueView(ctx context.Context, queue string) (v queueView, found bool, err error) {
	metrics, err := s.store.Metrics(ctx)
	if err != nil {
		return queueView{}, false, err
	}
	for _, m := range metrics {
		if m.Queue == queue {
			v, err := s.viewOf(ctx, m)
			return v, err == nil, err
		}
	}
	return queueView{Queue: queue}, false, nil
}

func (s *Server) getQueue(w http.ResponseWriter, r *http.Request) {
	q, err := queueParam(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v, found, err := s.queueView(r.Context(), q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if !found {
		writeJSON(w, http.StatusNotFound, errorBody{Error: fmt.Sprintf("queue %q not found: it has no messages and no settings", q), Field: "queue"})
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// sampleView is one history sample.
type sampleView struct {
	At                    time.Time `json:"at"`
	Ready                 int64     `json:"ready"`
	Delayed               int64     `json:"delayed"`
	InFlight              int64     `json:"in_flight"`
	Dead                  int64     `json:"dead"`
	Enqueued              int64     `json:"enqueued_total"`
	Acked                 int64     `json:"acked_total"`
	OldestReadyAgeSeconds float64   `json:"oldest_ready_age_seconds"`
}

// maxSamples caps the samples of one history answer: longer spans keep
// every k-th sample (and the last).
const maxSamples = 1000

func (s *Server) getHistory(w http.ResponseWriter, r *http.Request) {
	q, err := queueParam(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	since := 6 * time.Hour
	if v := r.URL.Query().Get("since"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > queuestore.HistoryRetention {
			s.fail(w, r, badRequest("since", "since must be a duration up to %s like 6h or 30m, got %q", queuestore.HistoryRetention, v))
			return
		}
		since = d
	}
	hist, err := s.store.History(r.Context(), q, s.opts.Now().Add(-since))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	step := (len(hist) + maxSamples - 1) / maxSamples
	out := make([]sampleView, 0, min(len(hist), maxSamples+1))
	for i, h := range hist {
		if step > 1 && i%step != 0 && i != len(hist)-1 {
			continue
		}
		out = append(out, sampleView{At: h.At, Ready: h.Ready, Delayed: h.Delayed, InFlight: h.InFlight, Dead: h.Dead,
			Enqueued: h.Enqueued, Acked: h.Acked, OldestReadyAgeSeconds: h.OldestReadyAge.Seconds()})
	}
	writeJSON(w, http.StatusOK, struct {
		Queue        string       `json:"queue"`
		SinceSeconds float64      `json:"since_seconds"`
		Samples      []sampleView `json:"samples"`
	}{q, since.Seconds(), out})
}

// messageView is a message as the API shows it; Body only when asked.
type messageView struct {
	ID          int64      `json:"id"`
	Queue       string     `json:"queue"`
	State       string     `json:"state"`
	Priority    int64      `json:"priority"`
	Attempts    int        `json:"attempts"`
	MaxAttempts int        `json:"max_attempts"`
	Group       string     `json:"group,omitempty"`
	DedupeKey   string     `json:"dedupe_key,omitempty"`
	EnqueuedAt  time.Time  `json:"enqueued_at"`
	VisibleAt   *time.Time `json:"visible_at,omitempty"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
	// The Dagu DAG runs ("dag/run-id") that enqueued the message and last
	// claimed it, and their pages in Dagu when the server knows Dagu's URL.
	EnqueuedBy    string          `json:"enqueued_by,omitempty"`
	ClaimedBy     string          `json:"claimed_by,omitempty"`
	EnqueuedByURL string          `json:"enqueued_by_url,omitempty"`
	ClaimedByURL  string          `json:"claimed_by_url,omitempty"`
	Size          int             `json:"size"`
	Body          json.RawMessage `json:"body,omitempty"`
}

// The states a list can ask for, and where Peek finds them. Peek lists
// delayed and in-flight messages together (those waiting for a time: a
// delay, a retry, a lease end), so both show as "waiting".
var listStates = map[string]queuestore.State{
	"ready": queuestore.StateReady, "delayed": queuestore.StateDelayed, "in_flight": queuestore.StateInFlight,
	"dead": queuestore.StateDead, "acked": queuestore.StateAcked,
}

const stateWaiting = "waiting"

func (s *Server) viewMessage(m queuestore.Message, withBody bool) messageView {
	v := messageView{ID: m.ID, Queue: m.Queue, Priority: m.Priority, Attempts: m.Attempt, MaxAttempts: m.MaxAttempts,
		Group: m.Group, DedupeKey: m.DedupeKey, EnqueuedAt: m.EnqueuedAt, LastError: m.LastError, Size: len(m.Body),
		EnqueuedBy: m.EnqueuedBy, ClaimedBy: m.ClaimedBy, EnqueuedByURL: s.dagRunURL(m.EnqueuedBy), ClaimedByURL: s.dagRunURL(m.ClaimedBy)}
	at := m.VisibleAt
	switch m.State {
	case queuestore.StateDead, queuestore.StateAcked:
		v.State, v.FinishedAt = string(m.State), &at // Peek gives the finish time there
	case queuestore.StateDelayed, queuestore.StateInFlight:
		v.State, v.VisibleAt = stateWaiting, &at
	default:
		v.State, v.VisibleAt = string(m.State), &at
	}
	if withBody {
		if json.Valid(m.Body) {
			v.Body = m.Body
		} else {
			v.Body, _ = json.Marshal(string(m.Body))
		}
	}
	return v
}

// messageFilter is what a list keeps: a priority, a group, a piece of the
// last error (any case).
type messageFilter struct {
	priority *int64
	group    *string
	errText  string
}

func (f messageFilter) empty() bool { return f.priority == nil && f.group == nil && f.errText == "" }

func (f messageFilter) keep(m queuestore.Message) bool {
	return (f.priority == nil || m.Priority == *f.priority) &&
		(f.group == nil || m.Group == *f.group) &&
		(f.errText == "" || strings.Contains(strings.ToLower(m.LastError), f.errText))
}

// maxList caps a list answer.
const maxList = 1000

func (s *Server) listMessages(w http.ResponseWriter, r *http.Request) {
	q, err := queueParam(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p := r.URL.Query()
	stateName := cmp.Or(p.Get("state"), "ready")
	state, ok := listStates[stateName]
	if !ok {
		s.fail(w, r, badRequest("state", "state must be ready, delayed, in_flight, dead or acked, got %q", stateName))
		return
	}
	limit := 100
	if v := p.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxList {
			s.fail(w, r, badRequest("limit", "limit must be 1..%d, got %q", maxList, v))
			return
		}
		limit = n
	}
	var f messageFilter
	if v := p.Get("priority"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			s.fail(w, r, badRequest("priority", "priority must be an integer, got %q", v))
			return
		}
		f.priority = &n
	}
	if p.Has("group") {
		g := p.Get("group")
		f.group = &g
	}
	f.errText = strings.ToLower(p.Get("error"))
	scan := limit + 1
	if !f.empty() {
		scan = queuestore.MaxClaim
	}
	msgs, err := s.store.Peek(r.Context(), q, queuestore.PeekOptions{State: state, Limit: scan})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := make([]messageView, 0, min(len(msgs), limit))
	truncated := false
	for _, m := range msgs {
		if !f.keep(m) {
			continue
		}
		if len(out) == limit {
			truncated = true
			break
		}
		out = append(out, s.viewMessage(m, false))
	}
	if len(msgs) == queuestore.MaxClaim {
		truncated = true // the filter saw only the first MaxClaim
	}
	writeJSON(w, http.StatusOK, struct {
		Queue     string        `json:"queue"`
		State     string        `json:"state"`
		Messages  []messageView `json:"messages"`
		Truncated bool          `json:"truncated"`
	}{q, stateName, out, truncated})
}

func (s *Server) getMessage(w http.ResponseWriter, r *http.Request) {
	q, err := queueParam(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		s.fail(w, r, badRequest("id", "message id must be a positive integer, got %q", r.PathValue("id")))
		return
	}
	withBody := false
	if v := r.URL.Query().Get("body"); v != "" {
		if withBody, err = strconv.ParseBool(v); err != nil {
			s.fail(w, r, badRequest("body", "body must be true or false, got %q", v))
			return
		}
	}
	// The store has no look-up by id: search each state's first MaxClaim.
	for _, state := range []queuestore.State{queuestore.StateReady, queuestore.StateDelayed, queuestore.StateDead, queuestore.StateAcked} {
		msgs, err := s.store.Peek(r.Context(), q, queuestore.PeekOptions{State: state, Limit: queuestore.MaxClaim})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		for _, m := range msgs {
			if m.ID == id {
				writeJSON(w, http.StatusOK, s.viewMessage(m, withBody))
				return
			}
		}
	}
	writeJSON(w, http.StatusNotFound, errorBody{Error: fmt.Sprintf("message %d not found in queue %q (acked and deleted, purged, or in another queue)", id, q), Field: "id"})
}

// deadGroup is the dead letters of one error text.
type deadGroup struct {
	Error  string    `json:"error"`
	Count  int       `json:"count"`
	IDs    []int64   `json:"ids"`
	LastAt time.Time `json:"last_at"`
}

func (s *Server) deadGroups(w http.ResponseWriter, r *http.Request) {
	q, err := queueParam(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	msgs, err := s.store.Peek(r.Context(), q, queuestore.PeekOptions{State: queuestore.StateDead, Limit: queuestore.MaxClaim})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	byError := map[string]*deadGroup{}
	groups := []*deadGroup{}
	for _, m := range msgs { // newest first
		g := byError[m.LastError]
		if g == nil {
			g = &deadGroup{Error: m.LastError, LastAt: m.VisibleAt}
			byError[m.LastError] = g
			groups = append(groups, g)
		}
		g.Count++
		g.IDs = append(g.IDs, m.ID)
	}
	slices.SortStableFunc(groups, func(a, b *deadGroup) int { return cmp.Compare(b.Count, a.Count) })
	writeJSON(w, http.StatusOK, struct {
		Queue     string       `json:"queue"`
		Groups    []*deadGroup `json:"groups"`
		Scanned   int          `json:"scanned"`
		Truncated bool         `json:"truncated"`
	}{q, groups, len(msgs), len(msgs) == queuestore.MaxClaim})
}

// idsRequest is the optional body of redrive and dead purge: the ids to
// act on, all dead letters of the queue when absent or empty.
type idsRequest struct {
	IDs []int64 `json:"ids"`
}

// decodeJSON reads one JSON object of type T from the body; an empty body
// is the zero T when optional.
func decodeJSON(r *http.Request, dst any, optional bool) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		if optional {
			return nil
		}
		return badRequest("", "the request needs a JSON body")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return badRequest(typeErr.Field, "%s must be a %s, got %s", typeErr.Field, typeErr.Type, typeErr.Value)
		}
		return badRequest("", "the body is not the JSON object expected: %v", err)
	}
	if dec.More() {
		return badRequest("", "the body holds more than one JSON value")
	}
	return nil
}

// deadRequest reads a dead-letter request: the queue of the path and the
// ids of the body (none: all dead letters).
func deadRequest(r *http.Request) (queue string, ids []int64, err error) {
	q, err := queueParam(r)
	if err != nil {
		return "", nil, err
	}
	var req idsRequest
	if err := decodeJSON(r, &req, true); err != nil {
		return "", nil, err
	}
	for _, id := range req.IDs {
		if id < 1 {
			return "", nil, badRequest("ids", "ids must be positive message ids, got %d", id)
		}
	}
	return q, req.IDs, nil
}

func (s *Server) purgeDead(w http.ResponseWriter, r *http.Request) {
	s.deadAction(w, r, "purged", s.store.PurgeDead)
}

func (s *Server) deadAction(w http.ResponseWriter, r *http.Request, key string, act func(context.Context, string, ...int64) (int64, error)) {
	q, ids, err := deadRequest(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	n, err := act(r.Context(), q, ids...)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"queue": q, key: n})
}

func (s *Server) purge(w http.ResponseWriter, r *http.Request) {
	q, err := queueParam(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	n, err := s.store.Purge(r.Context(), q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"queue": q, "purged": n})
}

func (s *Server) pause(w http.ResponseWriter, r *http.Request) {
	s.setting(w, r, func(ctx context.Context, q string) error { return s.store.Pause(ctx, q) })
}

func (s *Server) resume(w http.ResponseWriter, r *http.Request) {
	s.setting(w, r, func(ctx context.Context, q string) error { return s.store.Resume(ctx, q) })
}

func (s *Server) setLimit(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Limit *int `json:"limit"`
	}
	if err := decodeJSON(r, &req, false); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Limit == nil {
		s.fail(w, r, badRequest("limit", `limit is required: {"limit": N}, 0 for no limit`))
		return
	}
	if *req.Limit < 0 || *req.Limit > 1_000_000 {
		s.fail(w, r, badRequest("limit", "limit must be 0..1000000 (0: no limit), got %d", *req.Limit))
		return
	}
	s.setting(w, r, func(ctx context.Context, q string) error { return s.store.SetLimit(ctx, q, *req.Limit) })
}

// setting changes a queue setting and answers the queue as it is now.
func (s *Server) setting(w http.ResponseWriter, r *http.Request, change func(context.Context, string) error) {
	q, err := queueParam(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := change(r.Context(), q); err != nil {
		s.fail(w, r, err)
		return
	}
	v, _, err := s.queueView(r.Context(), q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}
