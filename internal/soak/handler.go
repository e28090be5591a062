package soak

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Environment of the soak's processes. RoleEnv tells a re-executed soak
// binary which part to play; RunEnv marks every process of one run, so the
// checker finds any that is left (a handler, or a child a handler started).
const (
	RoleEnv    = "DAGUQ_SOAK_ROLE" // "handler" or "child"
	RunEnv     = "DAGUQ_SOAK_RUN"
	RecordsEnv = "DAGUQ_SOAK_RECORDS" // the records file of one consumer process
	SlotEnv    = "DAGUQ_SOAK_SLOT"    // the consumer slot, for the records

	RoleHandler = "handler"
	RoleChild   = "child"
)

// Body is a soak message: which producer call stored it, its index in that
// call, and how many of its first deliveries the handler fails (in the
// result file). A message with Fail >= its max attempts goes dead.
type Body struct {
	Call string `json:"call"`
	I    int    `json:"i"`
	Fail int    `json:"fail"`
	Pad  string `json:"pad,omitempty"`
}

// batchLine is one line of a batch, as daguq hands it over.
type batchLine struct {
	ID      int64 `json:"id"`
	Attempt int   `json:"attempt"`
	Body    Body  `json:"body"`
}

// Record is one line of a consumer's records file, written by its handlers
// with one O_APPEND write each: a "start" when a handler run begins (every
// message of its batch) and an "end" when it has decided (the messages it
// failed through the result file, its exit status, the child it left).
type Record struct {
	Ev    string `json:"ev"` // start, end
	Batch string `json:"batch"`
	Lease int64  `json:"lease"`
	Slot  string `json:"slot"`
	PID   int    `json:"pid"`
	PPID  int    `json:"ppid"`  // the daguq consume process, or a supervisor it started
	PPPID int    `json:"pppid"` // the parent's parent
	T     int64  `json:"t"`     // ms

	// start
	IDs      []int64  `json:"ids,omitempty"`
	Attempts []int    `json:"attempts,omitempty"`
	Calls    []string `json:"calls,omitempty"` // the body's call and index: "call/i"
	Problem  string   `json:"problem,omitempty"`

	// end
	Failed []int64 `json:"failed,omitempty"`
	Exit   int     `json:"exit"`
	Child  int     `json:"child,omitempty"` // pid of a background child left running
}

// HandlerMain is the soak's handler: it reads the batch (stdin, compared
// with $DAGUQ_BATCH_FILE), records it, takes a while, fails the deliveries
// each body asks for, and may start a background child or crash, as its
// arguments say. It returns the exit status.
func HandlerMain(args []string) int {
	fs := flag.NewFlagSet("soak-handler", flag.ContinueOnError)
	sleepMin := fs.Duration("sleep-min", 0, "shortest time a batch takes")
	sleepMax := fs.Duration("sleep-max", 100*time.Millisecond, "longest time a batch takes")
	slowP := fs.Float64("slow", 0, "chance of a slow batch")
	slow := fs.Duration("slow-time", 3*time.Second, "how long a slow batch takes")
	crashP := fs.Float64("crash", 0, "chance of exit 1 (the whole batch nacked)")
	childP := fs.Float64("child", 0, "chance of leaving a background child running")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	start := time.Now()
	rec := Record{Ev: "start", Batch: os.Getenv("DAGUQ_BATCH_ID"), Slot: os.Getenv(SlotEnv),
		PID: os.Getpid(), PPID: os.Getppid(), T: start.UnixMilli()}
	rec.PPPID = parentOf(rec.PPID)
	rec.Lease, _ = strconv.ParseInt(strings.SplitN(rec.Batch, "-", 2)[0], 10, 64)

	stdin, err := io.ReadAll(os.Stdin)
	if err != nil {
		rec.Problem = "read stdin: " + err.Error()
	}
	file, err := os.ReadFile(os.Getenv("DAGUQ_BATCH_FILE"))
	switch {
	case err != nil:
		rec.Problem = "read batch file: " + err.Error()
	case !bytes.Equal(stdin, file):
		rec.Problem = "stdin differs from the batch file"
	}
	var lines []batchLine
	for _, l := range bytes.Split(bytes.TrimSpace(file), []byte("\n")) {
		var b batchLine
		if err := json.Unmarshal(l, &b); err != nil {
			rec.Problem = fmt.Sprintf("batch line %q: %v", l, err)
			continue
		}
		lines = append(lines, b)
		rec.IDs = append(rec.IDs, b.ID)
		rec.Attempts = append(rec.Attempts, b.Attempt)
		rec.Calls = append(rec.Calls, b.Body.Call+"/"+strconv.Itoa(b.Body.I))
	}
	if err := appendRecord(rec); err != nil {
		fmt.Fprintln(os.Stderr, "soak handler:", err)
		return 1
	}

	d := *sleepMin
	if *sleepMax > d {
		d += rand.N(*sleepMax - d + 1)
	}
	if rand.Float64() < *slowP {
		d = *slow
	}
	time.Sleep(d)

	end := Record{Ev: "end", Batch: rec.Batch, Lease: rec.Lease, Slot: rec.Slot, PID: rec.PID, PPID: rec.PPID, PPPID: rec.PPPID}
	var result strings.Builder
	for _, b := range lines {
		if b.Attempt <= b.Body.Fail {
			end.Failed = append(end.Failed, b.ID)
			fmt.Fprintf(&result, "{\"id\":%d,\"error\":\"soak: planned failure of attempt %d\"}\n", b.ID, b.Attempt)
		}
	}
	if err := os.WriteFile(os.Getenv("DAGUQ_RESULT_FILE"), []byte(result.String()), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "soak handler: result file:", err)
		end.Exit = 1
	}
	if rand.Float64() < *childP {
		pid, err := startChild()
		if err != nil {
			fmt.Fprintln(os.Stderr, "soak handler: start child:", err)
		}
		end.Child = pid
	}
	if end.Exit == 0 && rand.Float64() < *crashP {
		end.Exit = 1
		fmt.Println("soak: planned crash of the handler")
	}
	end.T = time.Now().UnixMilli()
	if err := appendRecord(end); err != nil {
		fmt.Fprintln(os.Stderr, "soak handler:", err)
		return 1
	}
	return end.Exit
}

// startChild starts a background child, as `sleep 600 &` in a handler
// script would: same process group, same output, never waited for.
func startChild() (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(exe, "soak-child")
	cmd.Env = append(os.Environ(), RoleEnv+"="+RoleChild)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	return cmd.Process.Pid, nil
}

// ChildMain is a handler's background child: it only waits to be killed.
func ChildMain() int {
	time.Sleep(10 * time.Minute)
	return 0
}

// parentOf is the parent of process pid, from /proc (0: unknown).
func parentOf(pid int) int {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// pid (comm) state ppid ...: comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0
	}
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 2 {
		return 0
	}
	ppid, _ := strconv.Atoi(fields[1])
	return ppid
}

// appendRecord writes one line to the records file with one write.
func appendRecord(r Record) error {
	path := os.Getenv(RecordsEnv)
	if path == "" {
		return errors.New(RecordsEnv + " is not set")
	}
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readRecords reads a records file; a last line cut short (the handler was
// killed in its write) is reported, not fatal.
func readRecords(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return out, fmt.Errorf("%s: line %d: %v", path, len(out)+1, err)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}
