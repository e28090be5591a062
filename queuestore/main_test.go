package queuestore

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// The multi-process tests and benchmarks run the test binary again as a
// helper process: procRoleEnv names the role and procArgsEnv carries its
// arguments as JSON. TestMain runs the role instead of the tests.
const (
	procRoleEnv = "DAGUQ_QUEUESTORE_HELPER"
	procArgsEnv = "DAGUQ_QUEUESTORE_HELPER_ARGS"
)

// procArgs are the arguments of every helper role; each role reads the
// fields it needs.
type procArgs struct {
	DB       string        `json:"db"`
	Queue    string        `json:"queue"`
	Name     string        `json:"name"`      // producer prefix or consumer name
	Count    int           `json:"count"`     // messages to enqueue
	Batch    int           `json:"batch"`     // enqueue or claim batch size
	Lease    time.Duration `json:"lease"`     // claim lease
	Log      string        `json:"log"`       // per-process record file
	DoneFile string        `json:"done_file"` // exists once every producer has finished
	// AbandonEvery makes every n-th claim use AbandonLease and leave the
	// lease to expire before trying to ack it (0: never).
	AbandonEvery int           `json:"abandon_every"`
	AbandonLease time.Duration `json:"abandon_lease"`
	Schema       string        `json:"schema"` // benchmarks: "store" or "naive"
}

// procRoles maps a role name to the code a helper process runs. A role
// returns an error to exit with status 1 and the error on stderr.
var procRoles = map[string]func(procArgs) error{}

func TestMain(m *testing.M) {
	if role := os.Getenv(procRoleEnv); role != "" {
		os.Exit(runProcRole(role))
	}
	os.Exit(m.Run())
}

func runProcRole(role string) int {
	run, ok := procRoles[role]
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown helper role %q\n", role)
		return 2
	}
	var args procArgs
	if err := json.Unmarshal([]byte(os.Getenv(procArgsEnv)), &args); err != nil {
		fmt.Fprintf(os.Stderr, "helper %s: bad %s: %v\n", role, procArgsEnv, err)
		return 2
	}
	if err := run(args); err != nil {
		fmt.Fprintf(os.Stderr, "helper %s %s: %v\n", role, args.Name, err)
		return 1
	}
	return 0
}

// proc is a running helper process.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  *bufio.Scanner // stdout, line by line
	stderr *lockedBuffer
	output []string // stdout lines that wait collected
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startProc starts the test binary as a helper process in role. The
// process is killed at the end of the test if it is still running.
func startProc(tb testing.TB, role string, args procArgs) *proc {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	encoded, err := json.Marshal(args)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), procRoleEnv+"="+role, procArgsEnv+"="+string(encoded))
	p := &proc{name: role + " " + args.Name, cmd: cmd, stderr: &lockedBuffer{}}
	cmd.Stderr = p.stderr
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	p.lines = bufio.NewScanner(stdout)
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", p.name, err)
	}
	tb.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return p
}

// readLine waits for the next line the process prints on stdout.
func (p *proc) readLine(tb testing.TB) string {
	tb.Helper()
	if !p.lines.Scan() {
		p.cmd.Wait()
		tb.Fatalf("%s: no output line (%v); stderr:\n%s", p.name, p.lines.Err(), p.stderr.String())
	}
	return p.lines.Text()
}

// wait waits for the process to exit and fails the test unless it exited
// with status 0. Output lines not read yet go to p.output.
func (p *proc) wait(tb testing.TB) {
	tb.Helper()
	for p.lines.Scan() {
		p.output = append(p.output, p.lines.Text())
	}
	if err := p.cmd.Wait(); err != nil {
		tb.Fatalf("%s: %v; stderr:\n%s", p.name, err, p.stderr.String())
	}
}

// waitWithin is wait, killing the process and failing the test if it has
// not exited within d.
func (p *proc) waitWithin(tb testing.TB, d time.Duration) {
	tb.Helper()
	timer := time.AfterFunc(d, func() { p.cmd.Process.Kill() })
	defer timer.Stop()
	for p.lines.Scan() {
		p.output = append(p.output, p.lines.Text())
	}
	if err := p.cmd.Wait(); err != nil {
		tb.Fatalf("%s (given %s): %v; stderr:\n%s", p.name, d, err, p.stderr.String())
	}
}

// procOutput is a helper's protocol line on stdout: a verb and its fields.
func procOutput(verb string, fields ...any) {
	parts := make([]string, 0, len(fields)+1)
	parts = append(parts, verb)
	for _, f := range fields {
		parts = append(parts, fmt.Sprint(f))
	}
	fmt.Println(strings.Join(parts, " "))
}
