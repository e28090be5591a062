package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/daguq/daguq/queuestore"
)

// Store is what the server needs of a message store. *queuestore.Store
// implements it.
type Store interface {
	Queues(ctx context.Context) ([]string, error)
	Stats(ctx context.Context, queue string) (queuestore.Stats, error)
	Metrics(ctx context.Context) ([]queuestore.QueueMetrics, error)
	Peek(ctx context.Context, queue string, opts queuestore.PeekOptions) ([]queuestore.Message, error)
	Enqueue(ctx context.Context, msgs ...queuestore.NewMessage) (queuestore.EnqueueResult, error)
	Redrive(ctx context.Context, queue string, ids ...int64) (int64, error)
	PurgeDead(ctx context.Context, queue string, ids ...int64) (int64, error)
	Purge(ctx context.Context, queue string) (int64, error)
	Pause(ctx context.Context, queue string) error
	Resume(ctx context.Context, queue string) error
	SetLimit(ctx context.Context, queue string, limit int) error
	RecordHistory(ctx context.Context) error
	History(ctx context.Context, queue string, since time.Time) ([]queuestore.HistorySample, error)
}

var _ Store = (*queuestore.Store)(nil)

// Options tune a Server. The zero value means the defaults.
type Options struct {
	// Token, when set, is required of every request but the login page: as
	// "Authorization: Bearer TOKEN", or as the session cookie the login
	// page sets. It is never written anywhere.
	Token string
	// ReadOnly removes the dashboard's buttons and refuses every change
	// through the API with 403.
	ReadOnly bool
	// AllowedHosts are Host header values accepted besides the loopback
	// names (a name behind a reverse proxy: "queues.example.com"). When the
	// server listens on loopback only localhost, 127.0.0.1 and [::1] with
	// the port are accepted otherwise; on other addresses, any host is
	// accepted unless AllowedHosts is set.
	AllowedHosts []string
	// MaxBodyBytes caps a request body: a larger one is refused with 413.
	// Default 10 MiB.
	MaxBodyBytes int64
	// HistoryEvery is how often the server records a history sample of
	// every queue (Store.RecordHistory) for the charts. Default one minute;
	// negative: never (tests).
	HistoryEvery time.Duration
	// RefreshEvery is how often the dashboard reloads what it shows.
	// Default 5s.
	RefreshEvery time.Duration
	// DB names the database in the page and /api/v1/info.
	DB string
	// DBFlag is what a daguq command needs to reach the same database,
	// shown in the page's equivalent commands: "--db '/srv/q.db'", or ""
	// when the default rule finds it.
	DBFlag string
	// Backend names the storage backend for daguq_build_info and
	// /api/v1/info: "sqlite" (the default) or "postgres".
	Backend string
	// Version is the daguq version for daguq_build_info and /api/v1/info.
	// Default: the module version of the binary.
	Version string
	// Log receives the server's own errors (a failed history sample, a
	// database error behind a 500). Default: nowhere.
	Log io.Writer
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// DaguURL is Dagu's address (http or https, checked with CheckDaguURL):
	// the DAG runs that enqueued or claimed a message, and the dispatcher's
	// runs, link to their pages in Dagu. "": no links.
	DaguURL string
	// Dispatch, when set, reports the dispatcher running beside the server,
	// for GET /api/v1/dispatch and the dashboard.
	Dispatch func() DispatchStatus
	// ShutdownTimeout bounds how long a stop waits for requests in flight.
	// Default 30s.
	ShutdownTimeout time.Duration
}

// Server timeouts against slow clients.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
)

func (o Options) withDefaults() Options {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 10 << 20
	}
	if o.HistoryEvery == 0 {
		o.HistoryEvery = time.Minute
	}
	if o.RefreshEvery <= 0 {
		o.RefreshEvery = 5 * time.Second
	}
	if o.Backend == "" {
		o.Backend = "sqlite"
	}
	if o.Version == "" {
		o.Version = moduleVersion()
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 30 * time.Second
	}
	return o
}

// moduleVersion is the version the binary was built at, "(devel)" for a
// build from a work tree.
func moduleVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// Server serves the API, the metrics and the dashboard of one store.
type Server struct {
	store       Store
	opts        Options
	routes      []route
	mux         *http.ServeMux
	registry    *prometheus.Registry
	requests    *prometheus.CounterVec
	promHandler http.Handler
	cop         *http.CrossOriginProtection

	tokenSum [sha256.Size]byte // sha256 of the token, compared in constant time
	session  string            // the session cookie's value: an HMAC of the token

	// Background work (a redrive at a rate) runs under bg, cancelled when
	// Serve stops, which waits for jobs.
	bg     context.Context
	stopBg context.CancelFunc
	jobs   sync.WaitGroup

	logMu sync.Mutex
}

// New builds a server on store. It panics on a nil store (a programmer
// error).
func New(store Store, opts Options) *Server {
	if store == nil {
		panic("server: nil store")
	}
	s := &Server{store: store, opts: opts.withDefaults(), mux: http.NewServeMux(), cop: http.NewCrossOriginProtection()}
	s.bg, s.stopBg = context.WithCancel(context.Background())
	if s.opts.Token != "" {
		s.tokenSum = sha256.Sum256([]byte(s.opts.Token))
		mac := hmac.New(sha256.New, []byte(s.opts.Token))
		mac.Write([]byte("daguq serve session v1"))
		s.session = hex.EncodeToString(mac.Sum(nil))
	}
	s.cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusForbidden, "cross-origin request refused: changes are accepted from this server's own pages only")
	}))
	s.routes = s.routeTable()
	for _, rt := range s.routes {
		s.mux.Handle(rt.pattern(), rt.handler)
	}
	s.mux.HandleFunc("/", s.notFound)
	s.registry, s.requests = s.newRegistry()
	s.promHandler = s.metricsHandler()
	return s
}

// Serve serves on ln until ctx is cancelled, then stops taking connections
// and waits up to Options.ShutdownTimeout for the requests in flight. It
// records a history sample at once and every Options.HistoryEvery. It
// returns nil after a clean stop.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := s.httpServer(ctx, ln.Addr())
	historyCtx, stopHistory := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if s.opts.HistoryEvery > 0 {
		wg.Go(func() { s.recordHistory(historyCtx) })
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	var err error
	select {
	case err = <-served:
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ShutdownTimeout)
		err = srv.Shutdown(sctx)
		cancel()
		if err != nil {
			err = fmt.Errorf("stop: requests still running after %s: %w", s.opts.ShutdownTimeout, err)
			srv.Close()
		}
		<-served
	}
	stopHistory()
	s.stopBg()
	wg.Wait()
	s.jobs.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// httpServer is the net/http server for a listener on addr, with timeouts
// against slow clients. Requests keep running when ctx ends: a stop lets
// them finish.
func (s *Server) httpServer(ctx context.Context, addr net.Addr) *http.Server {
	return &http.Server{
		Handler:           s.handler(addr),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
}

// recordHistory samples every queue now and then every HistoryEvery.
func (s *Server) recordHistory(ctx context.Context) {
	t := time.NewTicker(s.opts.HistoryEvery)
	defer t.Stop()
	for {
		if err := s.store.RecordHistory(ctx); err != nil && ctx.Err() == nil {
			s.logf("history sample: %v", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) logf(format string, args ...any) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	fmt.Fprintf(s.opts.Log, "daguq serve: "+format+"\n", args...)
}

// IsLoopback reports whether a listen address's host is loopback only
// (localhost, 127.0.0.0/8, ::1). An empty host means every interface.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
