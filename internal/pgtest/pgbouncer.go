package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// HowToEnablePgBouncer is said when a test skips for want of PgBouncer.
const HowToEnablePgBouncer = "PgBouncer tests skipped: no pgbouncer on PATH or in /usr/sbin (apt-get install pgbouncer)"

var errNoPgBouncer = errors.New("PgBouncer is not installed")

// NewPgBouncerDatabase is NewDatabase reached through PgBouncer in
// transaction pooling mode: a pgbouncer started once per test binary in
// front of the test server, on a free loopback port, as the server's user.
// The URL it returns has no settings; a daguq store needs
// default_query_exec_mode=simple_protocol and daguq_listen=off there
// (docs/postgres.md#pgbouncer). It skips the test without pgbouncer, or
// fails it when CI is set.
func NewPgBouncerDatabase(tb testing.TB) string {
	tb.Helper()
	c, err := get()
	if err != nil {
		unavailable(tb, err)
	}
	c.bouncerOnce.Do(func() { c.bouncer, c.bouncerErr = startBouncer(c) })
	if errors.Is(c.bouncerErr, errNoPgBouncer) {
		if os.Getenv("CI") != "" {
			tb.Fatalf("%v; CI is set, so PgBouncer tests must run", c.bouncerErr)
		}
		tb.Skip(HowToEnablePgBouncer)
	}
	if c.bouncerErr != nil {
		tb.Fatalf("PgBouncer: %v", c.bouncerErr)
	}
	u, err := url.Parse(c.newDatabase(tb))
	if err != nil {
		tb.Fatal(err)
	}
	u.Host = c.bouncer.addr
	return u.String()
}

// bouncer is a running pgbouncer.
type bouncer struct {
	addr string // host:port
	dir  string // removed at stop when the bouncer made it
	own  bool
	cmd  *exec.Cmd
	done chan struct{}
}

func findPgBouncer() (string, error) {
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/pgbouncer", "/usr/local/sbin/pgbouncer"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errNoPgBouncer
}

func startBouncer(c *cluster) (*bouncer, error) {
	bin, err := findPgBouncer()
	if err != nil {
		return nil, err
	}
	cred, err := runAs() // pgbouncer refuses to run as root, like postgres
	if err != nil {
		return nil, err
	}
	b := &bouncer{dir: c.dir}
	if b.dir == "" { // an outside server
		if b.dir, err = os.MkdirTemp(clusterBase(cred), "daguq-pgbouncer-"); err != nil {
			return nil, err
		}
		b.own = true
		if cred != nil {
			if err := os.Chown(b.dir, int(cred.Uid), int(cred.Gid)); err != nil {
				b.stop()
				return nil, err
			}
		}
	}
	user := c.base.User.Username()
	password, _ := c.base.User.Password()
	serverHost, serverPort, err := net.SplitHostPort(c.base.Host)
	if err != nil {
		serverHost, serverPort = c.base.Hostname(), "5432"
	}
	files := map[string]string{
		// The bouncer logs in to the server with this password; clients are
		// trusted (loopback only).
		"users.txt": fmt.Sprintf("%q %q\n", user, password),
	}
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		files["pgbouncer.ini"] = fmt.Sprintf(`[databases]
* = host=%s port=%s

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
pool_mode = transaction
max_client_conn = 1000
default_pool_size = 20
; pgbouncer refuses startup settings it does not know; daguq sends this
; one (docs/postgres.md#pgbouncer)
ignore_startup_parameters = idle_in_transaction_session_timeout,extra_float_digits
logfile = %s
`, serverHost, serverPort, port, filepath.Join(b.dir, "users.txt"), filepath.Join(b.dir, "pgbouncer.log"))
		for name, text := range files {
			path := filepath.Join(b.dir, name)
			if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
				return nil, err
			}
			if cred != nil {
				if err := os.Chown(path, int(cred.Uid), int(cred.Gid)); err != nil {
					return nil, err
				}
			}
		}
		b.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if lastErr = b.start(bin, cred, user, password); lastErr == nil {
			return b, nil
		}
	}
	b.stop()
	return nil, lastErr
}

func (b *bouncer) start(bin string, cred *syscall.Credential, user, password string) error {
	cmd := exec.Command(bin, filepath.Join(b.dir, "pgbouncer.ini"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start pgbouncer: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	b.cmd, b.done = cmd, done
	u := url.URL{Scheme: "postgres", User: url.UserPassword(user, password), Host: b.addr, Path: "/postgres",
		RawQuery: "default_query_exec_mode=simple_protocol"}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, err := pgx.Connect(ctx, u.String())
		if err == nil {
			_, err = conn.Exec(ctx, "SELECT 1")
			conn.Close(ctx)
		}
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-done:
			b.cmd, b.done = nil, nil
			return fmt.Errorf("pgbouncer exited at start: %s", tail(filepath.Join(b.dir, "pgbouncer.log")))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pgbouncer did not accept connections within 30s: %v; log: %s", err, tail(filepath.Join(b.dir, "pgbouncer.log")))
		}
	}
}

func (b *bouncer) stop() {
	if b.cmd != nil {
		b.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-b.done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
			<-b.done
		}
		b.cmd = nil
	}
	if b.own {
		os.RemoveAll(b.dir)
	}
}
