package cli

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/daguq/daguq/dispatch"
	"github.com/daguq/daguq/executor"
	"github.com/daguq/daguq/internal/storeopen"
	"github.com/daguq/daguq/server"
)

// minTokenLength keeps guessable tokens out: `openssl rand -hex 32` gives 64.
const minTokenLength = 16

type serveFlags struct {
	addr       string
	tokenFile  string
	readOnly   bool
	allowHosts []string
	maxBody    int64
	dispatch   dispatchFlags // --dispatch RULES: run a dispatcher too
}

func (a *app) newServeCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve [--addr HOST:PORT] [--token-file FILE] [--read-only]",
		Short: "Serve an HTTP API, Prometheus metrics and a dashboard of the queues",
		Long: `Run one long-lived process beside Dagu that shows and drives the queues of the
database: a JSON API under /api/v1 (described at /api/v1/openapi.yaml),
Prometheus metrics at /metrics, and a dashboard at / (counts, rates, time to
drain, charts of the last hours and days, messages by state, dead letters
grouped by error, and buttons for redrive, purge, pause, resume and the
in-flight limit, each confirmed and showing the equivalent daguq command).

It listens on 127.0.0.1:8470 unless --addr says otherwise. Any address that is
not loopback needs a token, from --token-file (its first line) or $DAGUQ_TOKEN,
at least 16 characters; without one serve refuses to start. With a token,
every request needs "Authorization: Bearer TOKEN"; the dashboard asks for it
once and keeps a proof of it in an HttpOnly, SameSite=Strict cookie. The token
is never printed.

Changes are POST, PUT and DELETE requests only, refused from other origins;
--read-only removes the buttons and refuses every change with 403. On
loopback only the Host names localhost, 127.0.0.1 and [::1] with the port are
answered (DNS rebinding); --allow-host adds a name, e.g. of a reverse proxy.

A message's page shows the Dagu DAG runs that enqueued it and last claimed
it; with --dagu-url (http or https) they link to their pages in Dagu.
--dispatch RULES runs a dispatcher in the same process (see daguq dispatch):
the dashboard then lists its rules and runs in flight (GET /api/v1/dispatch),
linked to Dagu at --dagu-url, by default the dispatcher's Dagu address.

Every minute it records a sample of every queue in the database for the
charts (kept 8 days). SIGTERM or SIGINT stop it: it finishes the requests in
flight (up to 30s) and exits 0. Setup beside Dagu, a systemd unit and the
Prometheus scrape config: docs/serve.md.`,
		Example: `  daguq serve                                   # http://127.0.0.1:8470/
  daguq serve --read-only --addr 127.0.0.1:9000
  daguq serve --dagu-url http://127.0.0.1:8080 --dispatch /etc/daguq/dispatch.yaml
  openssl rand -hex 32 > /etc/daguq/token && chmod 600 /etc/daguq/token
  daguq serve --addr 0.0.0.0:8470 --token-file /etc/daguq/token
  # the header in a file, so the token is in no command line (ps shows those)
  printf 'Authorization: Bearer %s\n' "$(cat /etc/daguq/token)" > ~/.daguq-auth
  curl -H @$HOME/.daguq-auth http://host:8470/api/v1/queues`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return a.serve(ctx, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.addr, "addr", "127.0.0.1:8470", "listen on this host:port; anything but loopback needs a token")
	fl.StringVar(&f.tokenFile, "token-file", "", "read the token from this file's first line (default: $DAGUQ_TOKEN)")
	fl.BoolVar(&f.readOnly, "read-only", false, "show only: no buttons, and the API refuses changes with 403")
	fl.StringSliceVar(&f.allowHosts, "allow-host", nil, "also answer requests for this Host name (repeat, or comma-separated)")
	fl.Int64Var(&f.maxBody, "max-body", 10<<20, "refuse request bodies larger than this many bytes with 413")
	fl.StringVar(&f.dispatch.rulesFile, "dispatch", "", "also run a dispatcher with the rules of this YAML file (see daguq dispatch, docs/dispatch.md)")
	a.dispatchDaguFlags(cmd, &f.dispatch)
	fl.StringVar(&f.dispatch.state, "dispatch-state", "", "the dispatcher's state file (default: DB.dispatch.json next to the database)")
	return cmd
}

// token reads the token from --token-file or $DAGUQ_TOKEN; "" when neither.
// Errors never quote the token.
func (a *app) token(file string) (string, error) {
	var token, from string
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", usageError("--token-file: %v", err)
		}
		token, _, _ = strings.Cut(string(b), "\n")
		from = "--token-file " + file
		if info, err := os.Stat(file); err == nil && info.Mode().Perm()&0o077 != 0 {
			fmt.Fprintf(a.stderr, "daguq serve: warning: %s is readable by other users (mode %v): chmod 600 it\n", file, info.Mode().Perm())
		}
	} else if token = a.getenv("DAGUQ_TOKEN"); token != "" {
		from = "DAGUQ_TOKEN"
	}
	token = strings.TrimSpace(token)
	if from != "" && len(token) < minTokenLength {
		return "", usageError("the token from %s is too short: at least %d characters (openssl rand -hex 32 makes one)", from, minTokenLength)
	}
	return token, nil
}

func (a *app) serve(ctx context.Context, f serveFlags) error {
	if f.maxBody < 1024 {
		return usageError("--max-body must be at least 1024 bytes, got %d", f.maxBody)
	}
	if _, _, err := net.SplitHostPort(f.addr); err != nil {
		return usageError("--addr %q: want host:port, like 127.0.0.1:8470", f.addr)
	}
	daguURL := ""
	if f.dispatch.daguURL != "" {
		var err error
		if daguURL, err = server.CheckDaguURL(f.dispatch.daguURL); err != nil {
			return usageError("--dagu-url: %v", err)
		}
	}
	token, err := a.token(f.tokenFile)
	if err != nil {
		return err
	}
	loopback := server.IsLoopback(f.addr)
	if !loopback && token == "" {
		return usageError("--addr %s is not loopback: give a token with --token-file FILE or DAGUQ_TOKEN, which every request then needs (or listen on 127.0.0.1)", f.addr)
	}
	st, err := a.openStore()
	if err != nil {
		return err
	}
	defer st.Close()
	path, source := a.dbPath()
	dbFlag := ""
	if source != executor.DBSourceXDG { // a shell may lack the flag or variable that chose it

		dbFlag = "--db " + shellQuote(storeopen.Redact(path))
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return usageError("--addr: %v", err)
	}
	opts := server.Options{
		Token: token, ReadOnly: f.readOnly, AllowedHosts: f.allowHosts, MaxBodyBytes: f.maxBody,
		DB: storeopen.Redact(path), DBFlag: dbFlag, Log: a.stderr, Backend: backendName(path), DaguURL: daguURL,
	}
	var notes []string
	if token != "" {
		notes = append(notes, "token required")
	}
	if f.readOnly {
		notes = append(notes, "read-only")
	}
	note := ""
	if len(notes) > 0 {
		note = "; " + strings.Join(notes, ", ")
	}
	waitDispatch := func() error { return nil }
	if f.dispatch.rulesFile != "" {
		d, dispatchURL, err := a.newDispatcher(st, f.dispatch)
		if err != nil {
			ln.Close()
			return err
		}
		if opts.DaguURL == "" {
			opts.DaguURL, _ = server.CheckDaguURL(dispatchURL) // the dispatcher checked it
		}
		opts.Dispatch = func() server.DispatchStatus { return dispatchStatus(d) }
		dctx, cancel := context.WithCancel(ctx)
		defer cancel()
		wait := runDispatcher(dctx, d)
		waitDispatch = func() error { cancel(); return wait() } // serve ended: so does the dispatcher
	}
	srv := server.New(st, opts)
	fmt.Fprintf(a.stderr, "daguq serve: http://%s/ (database %s%s)\n", ln.Addr(), describeDB(path, source), note)
	serveErr := srv.Serve(ctx, ln)
	if err := waitDispatch(); err != nil && serveErr == nil {
		serveErr = err
	}
	if serveErr != nil {
		return &executor.ExitError{Code: executor.ExitStore, Err: serveErr}
	}
	fmt.Fprintln(a.stderr, "daguq serve: stopped")
	return nil
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:=@%+,-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// backendName is the storage backend the db value picks.
func backendName(db string) string {
	if storeopen.IsPostgres(db) {
		return "postgres"
	}
	return "sqlite"
}

// dispatchStatus is what the dashboard shows of d.
func dispatchStatus(d *dispatch.Dispatcher) server.DispatchStatus {
	var st server.DispatchStatus
	for _, r := range d.Rules() {
		st.Rules = append(st.Rules, server.DispatchRule{Queue: r.Queue, DAG: r.DAG, DAGName: r.DAGName,
			BatchSize: r.BatchSize, Concurrency: r.Concurrency})
	}
	for _, b := range d.InFlight() {
		run := server.DispatchRun{Queue: b.Queue, DAG: b.DAG, DAGName: b.DAGName, RunID: b.RunID, Messages: b.Count, Phase: b.Phase}
		if !b.Since.IsZero() && b.Phase != "filling" {
			since := b.Since
			run.Started = &since
		}
		st.Runs = append(st.Runs, run)
	}
	return st
}
