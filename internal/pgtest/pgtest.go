// Package pgtest gives tests a real PostgreSQL server: a throwaway cluster
// started once per test binary (initdb in a temporary directory, the server
// on a free loopback port, fsync off), a new database per test, and
// everything stopped and removed when the tests end.
//
// A package that uses it runs its tests through Main:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
// Without PostgreSQL installed the tests that ask for a database skip, with
// one line saying how to enable them; with CI set in the environment they
// fail instead. DAGUQ_TEST_POSTGRES_URL names a server to use instead of a
// throwaway cluster (its user must be allowed to create databases).
package pgtest

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// EnvURL names an existing server to test against instead of a throwaway
// cluster.
const EnvURL = "DAGUQ_TEST_POSTGRES_URL"

// Password is the test cluster's superuser password (user daguq): the
// server asks for it on TCP connections, so tests exercise passwords in
// URLs.
const Password = "pgtest-Secr3t"

// HowToEnable is said when a test skips for want of PostgreSQL.
const HowToEnable = "PostgreSQL tests skipped: no initdb on PATH or in /usr/lib/postgresql/*/bin (apt-get install postgresql, or set " + EnvURL + ")"

var (
	mu      sync.Mutex
	started *cluster
	failed  error // why the cluster could not start; asked once
	tried   bool
	dbSeq   atomic.Int64
)

// Main runs the tests of m and stops the cluster, if one was started.
func Main(m *testing.M) int {
	code := m.Run()
	Stop()
	return code
}

// Parallel lets n parallel tests run at once instead of one per CPU,
// unless -test.parallel was given: tests on a server mostly wait for it.
// A TestMain calls it before Main.
func Parallel(n int) {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given {
		flag.Set("test.parallel", strconv.Itoa(max(n, runtime.GOMAXPROCS(0))))
	}
}

// Stop stops the cluster and removes its directory. Main calls it.
func Stop() {
	mu.Lock()
	defer mu.Unlock()
	if started != nil {
		started.stop()
		started = nil
	}
}

// Available reports whether a server can be had, starting the cluster if
// needed; the error says why not.
func Available() error {
	_, err := get()
	return err
}

// NewDatabase creates an empty database for the test, dropped when the test
// ends, and returns its URL (with the password). It skips the test without
// PostgreSQL, or fails it when CI is set.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	c, err := get()
	if err != nil {
		unavailable(tb, err)
	}
	return c.newDatabase(tb)
}

// Server is a cluster of one test's own, which the test may stop and start
// again: a server restart under the code it tests.
type Server struct{ c *cluster }

// NewServer starts a cluster for the test, stopped and removed when the
// test ends. It skips the test without PostgreSQL, or fails it when CI is
// set. It costs an initdb.
func NewServer(tb testing.TB) *Server {
	tb.Helper()
	c, err := startCluster(nil)
	if err != nil {
		unavailable(tb, err)
	}
	tb.Cleanup(c.stop)
	return &Server{c: c}
}

// NewDatabase creates an empty database on the server, dropped when the
// test ends, and returns its URL (with the password).
func (s *Server) NewDatabase(tb testing.TB) string {
	tb.Helper()
	return s.c.newDatabase(tb)
}

// Stop shuts the server down as pg_ctl stop -m fast does (SIGINT to the
// postmaster): sessions are ended, transactions in progress rolled back,
// and new connections refused until Start.
func (s *Server) Stop(tb testing.TB) {
	tb.Helper()
	c := s.c
	if c.cmd == nil {
		tb.Fatal("pgtest: Stop of a server that is not running")
	}
	c.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-c.done:
	case <-time.After(time.Minute):
		tb.Fatalf("pgtest: the server did not stop within a minute: %s", tail(filepath.Join(c.dir, "server.log")))
	}
	c.cmd, c.done = nil, nil
}

// Start starts a stopped server again, on the same port.
func (s *Server) Start(tb testing.TB) {
	tb.Helper()
	c := s.c
	if c.cmd != nil {
		tb.Fatal("pgtest: Start of a server that is running")
	}
	if err := c.startServer(c.postgres, c.data, c.port, c.cred, c.settings); err != nil {
		tb.Fatalf("pgtest: start the server again: %v", err)
	}
}

// unavailable skips the test for want of PostgreSQL, or fails it (under CI,
// or when the server would not start).
func unavailable(tb testing.TB, err error) {
	tb.Helper()
	if errors.Is(err, errNotInstalled) {
		if os.Getenv("CI") != "" {
			tb.Fatalf("%v; CI is set, so PostgreSQL tests must run", err)
		}
		tb.Skip(HowToEnable)
	}
	tb.Fatalf("PostgreSQL test server: %v", err)
}

func (c *cluster) newDatabase(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("daguq_t%d_%d", os.Getpid(), dbSeq.Add(1))
	if err := c.createDatabase(name, ""); err != nil {
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() { c.dropDatabase(name) })
	u := *c.base
	u.Path = "/" + name
	return u.String()
}

var errNotInstalled = errors.New("PostgreSQL is not installed")

func get() (*cluster, error) {
	mu.Lock()
	defer mu.Unlock()
	if started != nil || tried {
		return started, failed
	}
	tried = true
	if env := os.Getenv(EnvURL); env != "" {
		u, err := url.Parse(env)
		if err != nil {
			failed = fmt.Errorf("%s: not a URL", EnvURL)
			return nil, failed
		}
		started = &cluster{base: u}
		return started, nil
	}
	started, failed = startCluster(nil)
	return started, failed
}

// cluster is a running server.
type cluster struct {
	base *url.URL // the superuser's URL, without a database
	dir  string   // removed at stop; empty for an outside server
	cmd  *exec.Cmd
	done chan struct{} // closed when the server process exited

	// How the server was started, to start it again (Server.Start).
	postgres, data string
	port           int
	cred           *syscall.Credential
	settings       []string

	bouncerOnce sync.Once
	bouncer     *bouncer // PgBouncer in front of it (pgbouncer.go), started at first use
	bouncerErr  error

	adminMu   sync.Mutex
	adminPool *pgxpool.Pool // to the maintenance database, opened at first use
}

// adminConns is how many databases are created or dropped at once: the
// server does a few at once in about the time of one.
const adminConns = 4

// admin runs fn on a connection to the maintenance database.
func (c *cluster) admin(fn func(context.Context, *pgx.Conn) error) error {
	c.adminMu.Lock()
	if c.adminPool == nil {
		u := *c.base
		u.Path = "/postgres"
		cfg, err := pgxpool.ParseConfig(u.String())
		if err != nil {
			c.adminMu.Unlock()
			return err
		}
		cfg.MaxConns = adminConns
		if c.adminPool, err = pgxpool.NewWithConfig(context.Background(), cfg); err != nil {
			c.adminMu.Unlock()
			return err
		}
	}
	pool := c.adminPool
	c.adminMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	return fn(ctx, conn.Conn())
}

// findBinaries finds initdb and postgres: on PATH, else the newest
// /usr/lib/postgresql/N/bin (Debian's packages keep them off PATH).
func findBinaries() (initdb, postgres string, err error) {
	candidates := []string{}
	if p, err := exec.LookPath("initdb"); err == nil {
		candidates = append(candidates, p)
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(found, func(i, j int) bool { return version(found[i]) > version(found[j]) })
	candidates = append(candidates, found...)
	for _, c := range candidates {
		real, err := filepath.EvalSymlinks(c)
		if err != nil {
			continue
		}
		pg := filepath.Join(filepath.Dir(real), "postgres")
		if _, err := os.Stat(pg); err == nil {
			return real, pg, nil
		}
	}
	return "", "", errNotInstalled
}

func version(initdb string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return n
}

// runAs is the user the server runs as: initdb and postgres refuse root.
// It prefers the postgres user of the Debian package, else nobody.
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
	}
	return nil, errors.New("running as root, and neither a postgres nor a nobody user exists to run the server as")
}

// startCluster runs initdb and starts a server; settings (name=value) are
// given to it after the test defaults, and win over them.
func startCluster(settings []string) (*cluster, error) {
	initdb, postgres, err := findBinaries()
	if err != nil {
		return nil, err
	}
	cred, err := runAs()
	if err != nil {
		return nil, err
	}
	base := clusterBase(cred)
	removeStaleDirs(base)
	dir, err := os.MkdirTemp(base, "daguq-pgtest-")
	if err != nil {
		return nil, err
	}
	c := &cluster{dir: dir}
	ok := false
	defer func() {
		if !ok {
			c.stop()
		}
	}()
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
	}
	pwfile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwfile, []byte(Password+"\n"), 0o600); err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(pwfile, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	cmd := exec.Command(initdb, "-D", data, "-U", "daguq", "--pwfile", pwfile, "-E", "UTF8", "--no-locale",
		"--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "--no-instructions")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		if lastErr = c.startServer(postgres, data, port, cred, settings); lastErr == nil {
			ok = true
			return c, nil
		}
	}
	return nil, lastErr
}

// freePort is a loopback port nobody listened on a moment ago; another
// process may take it meanwhile, so the caller tries again when the server
// cannot bind it.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (c *cluster) startServer(postgres, data string, port int, cred *syscall.Credential, settings []string) error {
	logPath := filepath.Join(c.dir, "server.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	args := []string{"-D", data, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + c.dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "shared_buffers=32MB", "-c", "max_connections=200",
		"-c", "max_locks_per_transaction=128"}
	for _, s := range settings {
		args = append(args, "-c", s)
	}
	cmd := exec.Command(postgres, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// The server dies with the test binary, even when that is killed: an
	// immediate shutdown (SIGQUIT) when this process goes away.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	c.cmd, c.done = cmd, done
	c.postgres, c.data, c.port, c.cred, c.settings = postgres, data, port, cred, settings
	c.base = &url.URL{Scheme: "postgres", User: url.UserPassword("daguq", Password), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}

	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		u := *c.base
		u.Path = "/postgres"
		conn, err := pgx.Connect(ctx, u.String())
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		select {
		case <-done:
			c.cmd, c.done = nil, nil
			return fmt.Errorf("postgres exited at start: %s", tail(logPath))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not accept connections within a minute: %v; log: %s", err, tail(logPath))
		}
	}
}

func (c *cluster) stop() {
	if c.bouncer != nil {
		c.bouncer.stop()
	}
	c.adminMu.Lock()
	if c.adminPool != nil {
		c.adminPool.Close()
		c.adminPool = nil
	}
	c.adminMu.Unlock()
	if c.cmd != nil {
		c.cmd.Process.Signal(syscall.SIGQUIT) // immediate shutdown: the data is thrown away
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
			<-c.done
		}
	}
	if c.dir != "" {
		os.RemoveAll(c.dir)
	}
}

// tail is the end of the server's log, for errors.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-10):], "\n")
}

// clusterBase is where cluster directories go: the temporary directory, or
// /tmp when the server runs as another user and $TMPDIR may be closed to it.
func clusterBase(cred *syscall.Credential) string {
	if cred != nil {
		if info, err := os.Stat("/tmp"); err == nil && info.IsDir() && info.Mode().Perm()&0o001 != 0 {
			return "/tmp"
		}
	}
	return os.TempDir()
}

// removeStaleDirs removes clusters of test binaries that were killed (their
// server died with them, the directory stayed): directories older than ten
// minutes whose server process is gone.
func removeStaleDirs(base string) {
	dirs, _ := filepath.Glob(filepath.Join(base, "daguq-pgtest-*"))
	for _, d := range dirs {
		info, err := os.Stat(d)
		if err != nil || time.Since(info.ModTime()) < 10*time.Minute {
			continue
		}
		if pid := postmasterPID(filepath.Join(d, "data", "postmaster.pid")); pid > 0 && syscall.Kill(pid, 0) == nil {
			continue
		}
		os.RemoveAll(d)
	}
}

func postmasterPID(path string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(sc.Text()))
	return pid
}
