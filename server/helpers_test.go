package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/daguq/daguq/queuestore"
)

// testServer is a server on a real loopback listener and a fresh database.
type testServer struct {
	tb     testing.TB
	store  *queuestore.Store
	srv    *Server
	url    string // http://127.0.0.1:PORT
	host   string // 127.0.0.1:PORT
	client *http.Client
	stop   context.CancelFunc
	done   chan error
}

func newTestServer(tb testing.TB, opts Options) *testServer {
	tb.Helper()
	st, err := queuestore.Open(filepath.Join(tb.TempDir(), "q.db"), queuestore.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return startServer(tb, st, opts)
}

func startServer(tb testing.TB, st *queuestore.Store, opts Options) *testServer {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	if opts.HistoryEvery == 0 {
		opts.HistoryEvery = -1
	}
	if opts.DB == "" {
		opts.DB = st.Path()
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{tb: tb, store: st, srv: New(st, opts), host: ln.Addr().String(), stop: cancel, done: make(chan error, 1),
		client: &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	ts.url = "http://" + ts.host
	go func() { ts.done <- ts.srv.Serve(ctx, ln) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-ts.done; err != nil {
			tb.Errorf("Serve: %v", err)
		}
		st.Close()
	})
	return ts
}

// response is one answer, its body read.
type response struct {
	code   int
	header http.Header
	body   []byte
}

func (r response) json(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		tb.Fatalf("answer is not a JSON object: %v\n%s", err, r.body)
	}
	return m
}

// do sends a request; headers are "Name: value" strings. A body that is
// not empty is sent as application/json unless a Content-Type is given.
func (ts *testServer) do(method, path, body string, headers ...string) response {
	ts.tb.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, ts.url+path, rd)
	if err != nil {
		ts.tb.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	res, err := ts.client.Do(req)
	if err != nil {
		ts.tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		ts.tb.Fatal(err)
	}
	return response{code: res.StatusCode, header: res.Header, body: b}
}

// must sends a request and fails unless the status is code.
func (ts *testServer) must(code int, method, path, body string, headers ...string) response {
	ts.tb.Helper()
	r := ts.do(method, path, body, headers...)
	if r.code != code {
		ts.tb.Fatalf("%s %s: status %d, want %d: %s", method, path, r.code, code, r.body)
	}
	return r
}

var doomed atomic.Int64

// deadLetter enqueues a message to queue and makes it dead with errText.
func deadLetter(tb testing.TB, st *queuestore.Store, queue, body, errText string) int64 {
	tb.Helper()
	ctx := context.Background()
	group := fmt.Sprintf("doomed-%d", doomed.Add(1)) // claim this message only
	res, err := st.Enqueue(ctx, queuestore.NewMessage{Queue: queue, Body: []byte(body), Group: group})
	if err != nil {
		tb.Fatal(err)
	}
	lease, err := st.Claim(ctx, queuestore.ClaimOptions{Queue: queue, Max: 1, Group: group, Consumer: "test"})
	if err != nil || lease == nil || len(lease.Messages) != 1 || lease.Messages[0].ID != res.IDs[0] {
		tb.Fatalf("claim the message to kill: %v %+v", err, lease)
	}
	nr, err := st.Nack(ctx, lease, queuestore.NackOptions{Error: errText, MaxAttempts: 1})
	if err != nil || len(nr.Dead) != 1 {
		tb.Fatalf("nack to the dead letters: %v %+v", err, nr)
	}
	return res.IDs[0]
}

// snapshot is every queue's counts: what a refused request must not change.
func snapshot(tb testing.TB, st *queuestore.Store) string {
	tb.Helper()
	ctx := context.Background()
	queues, err := st.Queues(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	var b bytes.Buffer
	for _, q := range queues {
		s, err := st.Stats(ctx, q)
		if err != nil {
			tb.Fatal(err)
		}
		s.OldestReadyAge = 0
		j, _ := json.Marshal(s)
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}
