package cli_test

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const serveToken = "0123456789abcdef-serve-test-token"

// daguq serve listens on loopback, needs a token anywhere else, never
// prints the token, and stops cleanly on SIGTERM.
func TestServeRefusesToStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tokenFile := filepath.Join(e.dir, "token")
	if err := os.WriteFile(tokenFile, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  string
		says string
	}{
		{"all interfaces without a token", []string{"--addr", "0.0.0.0:0"}, "", "not loopback"},
		{"no host without a token", []string{"--addr", ":0"}, "", "not loopback"},
		{"a short token file", []string{"--addr", "0.0.0.0:0", "--token-file", tokenFile}, "", "too short"},
		{"a short DAGUQ_TOKEN", []string{"--addr", "0.0.0.0:0"}, "tiny", "from DAGUQ_TOKEN is too short"},
		{"a missing token file", []string{"--token-file", filepath.Join(e.dir, "nope")}, "", "--token-file"},
		{"a bad address", []string{"--addr", "8470"}, "", "want host:port"},
		{"a tiny body limit", []string{"--max-body", "10"}, "", "--max-body"},
		{"a javascript: dagu url", []string{"--addr", "127.0.0.1:0", "--dagu-url", "javascript:alert(1)"}, "", "--dagu-url"},
		{"a dagu url with a password", []string{"--addr", "127.0.0.1:0", "--dagu-url", "http://u:hunter2hunter2@dagu:8080"}, "", "must not hold a user or password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.setenv("DAGUQ_TOKEN", tt.env)
			r := e.run(nil, append([]string{"serve"}, tt.args...)...)
			if r.Code != 2 || !strings.Contains(r.Stderr, tt.says) {
				t.Errorf("want exit 2 saying %q, got %s", tt.says, r)
			}
			if strings.Contains(r.Stderr, "short\n") || (tt.env != "" && strings.Contains(r.Stderr, tt.env)) {
				t.Errorf("the token is printed: %s", r.Stderr)
			}
			if _, err := os.Stat(e.db); err == nil {
				t.Errorf("a refused start created the database")
			}
		})
	}
}

func TestServeWithTokenAndSIGTERM(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tokenFile := filepath.Join(e.dir, "token")
	if err := os.WriteFile(tokenFile, []byte(serveToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.ok(strings.NewReader(`{"n":1}`), "enqueue", "--queue", "orders", "--file", "-")
	cmd := e.command(nil, "serve", "--addr", "127.0.0.1:0", "--token-file", tokenFile)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		logs bytes.Buffer
	)
	first := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			logs.WriteString(sc.Text() + "\n")
			mu.Unlock()
			select {
			case first <- sc.Text():
			default:
			}
		}
	}()
	var line string
	select {
	case line = <-first:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("serve said nothing in 30s")
	}
	m := regexp.MustCompile(`http://(127\.0\.0\.1:\d+)/`).FindStringSubmatch(line)
	if m == nil || !strings.Contains(line, "token required") || !strings.Contains(line, e.db) {
		cmd.Process.Kill()
		t.Fatalf("first line: %q", line)
	}
	url := "http://" + m[1]
	get := func(token string) int {
		req, _ := http.NewRequest("GET", url+"/api/v1/queues/orders", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	if code := get(""); code != 401 {
		t.Errorf("without the token: %d", code)
	}
	if code := get("wrong-token-but-long-enough"); code != 401 {
		t.Errorf("with a wrong token: %d", code)
	}
	if code := get(serveToken); code != 200 {
		t.Errorf("with the token: %d", code)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("serve still running 30s after SIGTERM")
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "stopped") {
		t.Errorf("no word of the stop: %s", logs.String())
	}
	if strings.Contains(logs.String()+stdout.String(), serveToken) {
		t.Errorf("the token is printed:\n%s%s", logs.String(), stdout.String())
	}
}
