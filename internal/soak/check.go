package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// What the checker proves, from the audit log (every change of every
// message, written by the change's own transaction), the handlers' records
// (every handler run: its batch, its messages and attempts, start and end in
// wall time, what it failed, the children it left), the processes' exit
// status and stderr, the chaos driver's log, and the file after the drain
// (docs/lifecycle.md lists the same):
//
//  1. Every message ends acked exactly once (one delete, by the lease that
//     held it) or dead (out of attempts, with the error its last handler run
//     gave); none is left ready, delayed or in flight.
//  2. A claim takes a message only once its previous lease ran out or was
//     finished, and only when it is due (delay, backoff): no delivery while an
//     earlier lease on it was valid. Each claim raises its attempt count by
//     one (a release gives it back); a message never comes back to a lease
//     that held it before.
//  3. No stale finish is accepted. The triggers see the lease a row holds, not
//     the one a statement names, so this is proven from the other side: every
//     ack is backed by a run of the holding lease that exited 0, did not fail
//     the message and had ended before the delete; no finish of a lease comes
//     while its handler still runs; every message a consumer reports taken
//     over was claimed from that lease by a later claim.
//  4. Two handler runs of one message overlap in time only after the first
//     one's lease ran out, and its consumer was stopped or killed, or the
//     write lock was held from outside, during that lease's last period.
//     Anything else is counted as doubled.
//  5. Handlers get what was stored: the claim's attempt, stdin equal to
//     $DAGUQ_BATCH_FILE, the body its producer enqueued under that id, the
//     same body every time; a batch is one lease, the one its id starts with.
//  6. An enqueue is all or nothing: the messages of one call were inserted by
//     one transaction (consecutive in the log), as many as it printed; a call
//     that failed stored none; no two live messages share a dedupe key.
//  7. No process printed SQLITE_BUSY ("database is locked") or another
//     database error, a data race or a panic; every exit status is the one its
//     signal explains (0, 4 after SIGTERM, killed after SIGKILL). Nothing was
//     written while the soak held the write lock.
//  8. PRAGMA integrity_check is ok; every message has its body and every body
//     its message.
//  9. No process of the run is left (handlers, their children), and no
//     daguq-* temporary directory.

// Result is what a soak run did and what the checker found.
type Result struct {
	Seed       uint64
	Duration   time.Duration // of the chaos
	Took       time.Duration // chaos, drain and check
	Counts     Counts
	Violations []string
}

// Counts are the figures of one run.
type Counts struct {
	ConsumerProcs, ProducerCalls, DrainProcs int
	Kills, ProducerKills, ProducerTerms      int
	Stops, Pauses, Terms, Locks              int
	LockHeld                                 time.Duration

	Messages, Duplicates  int // stored; skipped by their dedupe key
	Batches, Deliveries   int // handler runs; messages in them
	Claims, Takeovers     int // claims of a message; of those, claims of an expired lease
	Redelivered           int // messages taken over at least once
	Acked, Dead           int
	Retried, Released     int // nacks with attempts left; releases on stop
	Fenced, FencedLeases  int // messages and batches whose finish was refused (taken over)
	HeartbeatsRefused     int // messages a heartbeat found taken over
	LockWaits             int // "waiting for the write lock" notices
	Overlaps              int // handler runs overlapping an earlier run of their message (explained)
	StoppedInLock         int // stops that caught a process holding the write lock
	Lost, Doubled         int
	LeftProcs, LeftTmpDir int

	FullRefused, FullExits int // enqueues refused and consumers ended by a full disk
}

// String prints the counts as the lines docs/lifecycle.md shows.
func (c Counts) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "processes: %d consumers, %d enqueue calls, %d final drains\n", c.ConsumerProcs, c.ProducerCalls, c.DrainProcs)
	if c.Kills+c.Stops+c.Pauses+c.Terms+c.Locks+c.ProducerKills+c.ProducerTerms > 0 {
		fmt.Fprintf(&b, "chaos:     %d kill -9 of consumers, %d SIGSTOP past the lease, %d within it, %d SIGTERM, %d write locks held %s in all\n",
			c.Kills, c.Stops, c.Pauses, c.Terms, c.Locks, c.LockHeld.Round(100*time.Millisecond))
		fmt.Fprintf(&b, "           %d kill -9 and %d SIGTERM of producers\n", c.ProducerKills, c.ProducerTerms)
	}
	fmt.Fprintf(&b, "messages:  %d stored, %d duplicates skipped, %d acked, %d dead\n", c.Messages, c.Duplicates, c.Acked, c.Dead)
	fmt.Fprintf(&b, "delivery:  %d handler runs, %d deliveries, %d claims, %d retried, %d released\n", c.Batches, c.Deliveries, c.Claims, c.Retried, c.Released)
	fmt.Fprintf(&b, "leases:    %d takeovers of expired leases (%d messages redelivered), %d overlapping runs explained, %d stale finishes fenced (%d batches), %d taken over seen by heartbeats\n",
		c.Takeovers, c.Redelivered, c.Overlaps, c.Fenced, c.FencedLeases, c.HeartbeatsRefused)
	fmt.Fprintf(&b, "lock:      %d notices of a write waiting for the lock, none failed; %d stops caught a process holding it\n", c.LockWaits, c.StoppedInLock)
	if c.FullRefused+c.FullExits > 0 {
		fmt.Fprintf(&b, "full disk: %d enqueues refused with exit 3, %d consumers ended with exit 3\n", c.FullRefused, c.FullExits)
	}
	fmt.Fprintf(&b, "verdict:   %d lost, %d doubled, %d processes left, %d temporary directories left", c.Lost, c.Doubled, c.LeftProcs, c.LeftTmpDir)
	return b.String()
}

// findings collects violations by kind, with a few examples of each.
type findings struct {
	order   []string
	count   map[string]int
	example map[string][]string
}

func (f *findings) add(kind, format string, args ...any) {
	if f.count == nil {
		f.count, f.example = map[string]int{}, map[string][]string{}
	}
	if f.count[kind] == 0 {
		f.order = append(f.order, kind)
	}
	f.count[kind]++
	if len(f.example[kind]) < 8 {
		f.example[kind] = append(f.example[kind], fmt.Sprintf(format, args...))
	}
}

func (f *findings) list() []string {
	var out []string
	for _, k := range f.order {
		out = append(out, fmt.Sprintf("%s (%d): %s", k, f.count[k], strings.Join(f.example[k], "; ")))
	}
	return out
}

// run is one handler run as its records show it.
type run struct {
	proc     *proc
	batch    string
	lease    int64 // the lease its batch id names: the first message's
	pid      int
	start    int64
	end      int64 // 0: no end record (killed, timed out)
	exit     int
	failed   map[int64]bool
	child    int
	ids      []int64
	attempts []int
	calls    []string
}

// interval is a stretch of time in ms.
type interval struct{ from, until int64 }

// quietest is the longest stretch within [from, until] in which the log has
// no event.
func quietest(log []Event, from, until int64) interval {
	i := sort.Search(len(log), func(i int) bool { return log[i].At >= from })
	best, last := interval{}, from
	for ; i < len(log) && log[i].At <= until; i++ {
		if log[i].At-last > best.until-best.from {
			best = interval{last, log[i].At}
		}
		last = log[i].At
	}
	if until-last > best.until-best.from {
		best = interval{last, until}
	}
	return best
}

// takeover is a message a claim took from an older lease.
type takeover struct{ lease, msg int64 }

// msgRun is one message's part of a handler run.
type msgRun struct {
	*run
	index   int
	attempt int
	call    string
	lease   int64 // the batch's lease; 0: it never claimed the message
}

func (m msgRun) ok(id int64) bool { return m.end != 0 && m.exit == 0 && !m.failed[id] }

var (
	// A finish that found messages taken over, and the ids the store named
	// (its error may join several, over several lines).
	lostLine = regexp.MustCompile(`batch of queue \S+: (\d+) of its \d+ messages were taken over by another claim after lease (\d+) ran out`)
	lostIDs  = regexp.MustCompile(`\(ids ([0-9, ]+)`)
	// A heartbeat that found messages taken over.
	extendLost = regexp.MustCompile(`lease (\d+) of queue \S+: (\d+) messages were taken over by another claim`)
	lockWait   = regexp.MustCompile(`waiting \S+ for the write lock`)
	badOutput  = regexp.MustCompile(`(?i)database is locked|database is busy|SQLITE_BUSY|database table is locked|disk I/O error|malformed|WARNING: DATA RACE|panic:|fatal error:`)
)

// check reads everything the run left and proves the invariants.
func (r *runner) check(ctx context.Context) (*Result, error) {
	r.mu.Lock()
	procs := append([]*proc(nil), r.procs...)
	chaos := append([]chaosEvent(nil), r.chaos...)
	calls := append([]*producerCall(nil), r.calls...)
	errs := append([]string(nil), r.errs...)
	r.mu.Unlock()

	var f findings
	var c Counts
	// Keep the chaos driver's log next to the records, for a look afterwards.
	if lines, err := json.Marshal(chaos); err == nil {
		os.WriteFile(filepath.Join(r.cfg.Dir, "chaos.json"), lines, 0o600)
	}
	for _, e := range errs {
		f.add("harness", "%s", e)
	}
	for _, p := range procs {
		switch p.kind {
		case "consumer":
			c.ConsumerProcs++
		case "producer":
			c.ProducerCalls++
		case "drain":
			c.DrainProcs++
		}
	}
	chaosOf := map[string][]chaosEvent{}
	var locks []chaosEvent
	for _, e := range chaos {
		switch e.Action {
		case "kill":
			c.Kills++
		case "kill-producer":
			c.ProducerKills++
		case "stop":
			c.Stops++
		case "pause":
			c.Pauses++
		case "term":
			c.Terms++
		case "term-producer":
			c.ProducerTerms++
		case "lock":
			c.Locks++
			c.LockHeld += e.Until.Sub(e.At)
			locks = append(locks, e)
		}
		if e.Proc != "" {
			chaosOf[e.Proc] = append(chaosOf[e.Proc], e)
		}
	}

	// The database.
	db, err := openDB(r.db, 60*time.Second)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var integrity string
	if err := db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&integrity); err != nil {
		return nil, err
	}
	if integrity != "ok" {
		f.add("integrity_check", "%s", integrity)
	}
	// Bodies of acked messages may wait on their queue's list
	// (queue_counts.body_trash) to be deleted together; a listed id must
	// have no message.
	var noBody, orphanBodies, listedLive int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM messages WHERE id NOT IN (SELECT id FROM bodies)`).Scan(&noBody); err != nil {
		return nil, err
	}
	if err := db.QueryRowContext(ctx, `
SELECT count(*) FROM bodies WHERE id NOT IN (SELECT id FROM messages)
    AND id NOT IN (SELECT t.value FROM queue_counts c, json_each(c.body_trash) t)`).Scan(&orphanBodies); err != nil {
		return nil, err
	}
	if err := db.QueryRowContext(ctx, `
SELECT count(*) FROM queue_counts c, json_each(c.body_trash) t WHERE t.value IN (SELECT id FROM messages)`).Scan(&listedLive); err != nil {
		return nil, err
	}
	if noBody > 0 || orphanBodies > 0 || listedLive > 0 {
		f.add("half-written rows", "%d messages without a body, %d bodies without a message, %d messages listed for deletion",
			noBody, orphanBodies, listedLive)
	}
	type finalRow struct {
		state, attempts, maxAttempts int64
		lastError                    string
	}
	final := map[int64]finalRow{}
	rows, err := db.QueryContext(ctx, `SELECT id, state, attempts, max_attempts, coalesce(last_error, '') FROM messages WHERE queue = ?`, Queue)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id int64
		var fr finalRow
		if err := rows.Scan(&id, &fr.state, &fr.attempts, &fr.maxAttempts, &fr.lastError); err != nil {
			rows.Close()
			return nil, err
		}
		final[id] = fr
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	log, err := ReadLog(ctx, db)
	if err != nil {
		return nil, err
	}

	// The harness's own write lock was real: nothing was written under it.
	for _, l := range locks {
		from, until := l.At.UnixMilli(), l.Until.UnixMilli()
		for _, e := range log {
			if e.At > from+5 && e.At < until-5 {
				f.add("harness", "a %s was written at %d while the soak held the write lock (%d..%d)", e.Ev, e.At, from, until)
				break
			}
		}
	}
	// A process stopped in the middle of a write transaction holds the write
	// lock until it continues: nobody writes meanwhile, heartbeats included.
	// A stop of at least 500 ms without a single write from its first 100 ms
	// to its end (producers alone write every 100 ms or so) counts as the
	// write lock held for that time.
	var blocked []interval
	for _, e := range chaos {
		if e.Action != "stop" && e.Action != "pause" {
			continue
		}
		from, until := e.At.UnixMilli(), e.Until.UnixMilli()
		if gap := quietest(log, from, until); until-from >= 500 && gap.from <= from+100 && gap.until >= until {
			blocked = append(blocked, interval{from, until})
			c.StoppedInLock++
		}
	}
	for _, l := range locks {
		blocked = append(blocked, interval{l.At.UnixMilli(), l.Until.UnixMilli()})
	}

	// Handler records.
	runsOf := map[int64][]msgRun{}
	var childPIDs []int
	for _, p := range procs {
		if p.kind == "producer" {
			continue
		}
		path := filepath.Join(r.cfg.Dir, "records", p.name+".jsonl")
		recs, err := readRecords(path)
		if err != nil && !os.IsNotExist(err) {
			f.add("records", "%v", err)
		}
		runs := map[string]*run{}
		var order []*run
		for _, rec := range recs {
			key := rec.Batch + "/" + strconv.Itoa(rec.PID)
			switch rec.Ev {
			case "start":
				// Its parent is the consumer, or a supervisor the consumer
				// started for it.
				// A consumer killed with SIGKILL while this handler was
				// starting: its supervisor was orphaned and removed the batch
				// files before the handler read them. The tree ends with it
				// (the leftover checks), so the start itself proves nothing.
				killedAtStart := p.signal == syscall.SIGKILL && (rec.PPID != p.pid && rec.PPPID != p.pid)
				if rec.PPID != p.pid && rec.PPPID != p.pid && !killedAtStart {
					f.add("records", "%s: handler %d of batch %s has parent %d (and %d above), not its consumer %d", p.name, rec.PID, rec.Batch, rec.PPID, rec.PPPID, p.pid)
				}
				if rec.Problem != "" && !killedAtStart {
					f.add("handler input", "%s batch %s: %s", p.name, rec.Batch, rec.Problem)
				}
				ru := &run{proc: p, batch: rec.Batch, lease: rec.Lease, pid: rec.PID, start: rec.T,
					ids: rec.IDs, attempts: rec.Attempts, calls: rec.Calls, failed: map[int64]bool{}}
				runs[key] = ru
				order = append(order, ru)
			case "end":
				ru := runs[key]
				if ru == nil {
					f.add("records", "%s: end of batch %s without a start", p.name, rec.Batch)
					continue
				}
				ru.end, ru.exit, ru.child = rec.T, rec.Exit, rec.Child
				for _, id := range rec.Failed {
					ru.failed[id] = true
				}
				if rec.Child != 0 {
					childPIDs = append(childPIDs, rec.Child)
				}
			}
		}
		for _, ru := range order {
			c.Batches++
			for i, id := range ru.ids {
				c.Deliveries++
				mr := msgRun{run: ru, index: i}
				if i < len(ru.attempts) {
					mr.attempt = ru.attempts[i]
				}
				if i < len(ru.calls) {
					mr.call = ru.calls[i]
				}
				runsOf[id] = append(runsOf[id], mr)
			}
		}
	}

	// 1-3: replay the audit log message by message.
	type claimInfo struct {
		ev       Event
		visible  int64 // the lease's last end on this message
		finished int64 // when this lease finished the message (0: never; it was taken over or ran out)
	}
	type msgState struct {
		enqueue  *Event
		holder   int64
		attempts int64
		terminal string // acked, dead
		ackLease int64
		ackAt    int64
		deadBy   int64 // the lease whose nack made it dead
		finishes []Event
		claims   map[int64]*claimInfo
		lastErr  string
	}
	states := map[int64]*msgState{}
	var msgOrder []int64
	takenOver := map[int64]bool{}    // leases some claim took a message from
	takenFrom := map[takeover]bool{} // and which messages
	active := map[string]int64{}     // dedupe key -> live message
	for i := range log {
		e := log[i]
		st := states[e.Msg]
		if st == nil {
			st = &msgState{claims: map[int64]*claimInfo{}}
			states[e.Msg] = st
			msgOrder = append(msgOrder, e.Msg)
		}
		if e.Ev != "enqueue" && st.enqueue == nil {
			f.add("audit", "message %d: %s before its enqueue", e.Msg, e.Ev)
		}
		if st.terminal != "" && e.Ev != "delete" {
			f.add("audit", "message %d: %s after it went %s", e.Msg, e.Ev, st.terminal)
		}
		switch e.Ev {
		case "enqueue":
			if st.enqueue != nil {
				f.add("audit", "message %d enqueued twice", e.Msg)
			}
			st.enqueue = &log[i]
			c.Messages++
			if e.Dedupe != "" {
				if other, ok := active[e.Dedupe]; ok {
					f.add("dedupe", "message %d stored with key %q while message %d holds it", e.Msg, e.Dedupe, other)
				}
				active[e.Dedupe] = e.Msg
			}
		case "claim":
			c.Claims++
			if e.PrevLease != st.holder {
				f.add("claim", "message %d: claim by lease %d found lease %d, the log says %d holds it", e.Msg, e.Lease, e.PrevLease, st.holder)
			}
			// e.At is the clock at the claim's statement, a little after
			// the store's "now" that decided the message was due.
			if e.PrevVisible > e.At {
				if e.PrevLease != 0 {
					f.add("claim while leased", "message %d: lease %d claimed it at %d while lease %d held it until %d", e.Msg, e.Lease, e.At, e.PrevLease, e.PrevVisible)
				} else {
					f.add("claim before due", "message %d: lease %d claimed it at %d, due at %d", e.Msg, e.Lease, e.At, e.PrevVisible)
				}
			}
			// Lease ids are fencing tokens: a later claim of a queue gets a
			// larger one, but a claim may add to the lease of a batch that
			// lingers, so they need not grow per message. A message must
			// never come back to a lease that held it before.
			if st.claims[e.Lease] != nil {
				f.add("claim", "message %d claimed again by lease %d, which held it before", e.Msg, e.Lease)
			}
			if e.Attempts != st.attempts+1 {
				f.add("claim", "message %d: lease %d made attempt %d after %d", e.Msg, e.Lease, e.Attempts, st.attempts)
			}
			if e.PrevLease != 0 {
				c.Takeovers++
				takenOver[e.PrevLease] = true
				takenFrom[takeover{e.PrevLease, e.Msg}] = true
			}
			st.holder, st.attempts = e.Lease, e.Attempts
			st.claims[e.Lease] = &claimInfo{ev: e, visible: e.Visible}
		case "extend":
			if ci := st.claims[e.Lease]; e.Lease == st.holder && ci != nil {
				ci.visible = e.Visible
			} else {
				f.add("audit", "message %d: extend of lease %d while lease %d held it", e.Msg, e.Lease, st.holder)
			}
		case "finish":
			if e.Lease != st.holder || st.holder == 0 {
				f.add("audit", "message %d: lease %d finished it (%s) while lease %d held it", e.Msg, e.Lease, e.finishKind(), st.holder)
			}
			st.finishes = append(st.finishes, e)
			if ci := st.claims[e.Lease]; ci != nil {
				ci.finished = e.At
			}
			st.holder = 0
			st.attempts = e.Attempts
			st.lastErr = e.Err
			switch e.finishKind() {
			case finishRetry:
				c.Retried++
			case finishRelease:
				c.Released++
			case finishDead:
				st.terminal, st.deadBy = "dead", e.Lease
				if e.Attempts < e.MaxAttempts || e.Err == "" {
					f.add("dead", "message %d went dead after %d of %d attempts with error %q", e.Msg, e.Attempts, e.MaxAttempts, e.Err)
				}
			case finishAcked:
				st.terminal, st.ackLease, st.ackAt = "acked", e.Lease, e.At
			}
		case "delete":
			switch {
			case st.terminal != "":
				f.add("audit", "message %d deleted after it went %s", e.Msg, st.terminal)
			case e.Lease == 0 || e.Lease != st.holder:
				f.add("audit", "message %d deleted with lease %d while lease %d held it", e.Msg, e.Lease, st.holder)
			}
			st.finishes = append(st.finishes, e)
			if ci := st.claims[e.Lease]; ci != nil {
				ci.finished = e.At
			}
			st.terminal, st.ackLease, st.ackAt, st.holder = "acked", e.Lease, e.At, 0
			if e.Dedupe != "" && active[e.Dedupe] == e.Msg {
				delete(active, e.Dedupe)
			}
		}
	}

	for id, mrs := range runsOf {
		st := states[id]
		for k := range mrs {
			mr := &mrs[k]
			if st == nil {
				continue
			}
			// A batch is one lease: its id names it.
			mr.lease = mr.run.lease
			ci := st.claims[mr.lease]
			switch {
			case ci == nil:
				f.add("phantom delivery", "message %d handled by %s in batch %s, but lease %d never claimed it", id, mr.proc.name, mr.batch, mr.lease)
				mr.lease = 0
			case ci.ev.Attempts != int64(mr.attempt):
				f.add("attempt", "message %d: the handler (%s, batch %s) saw attempt %d, lease %d claimed attempt %d", id, mr.proc.name, mr.batch, mr.attempt, mr.lease, ci.ev.Attempts)
			case ci.ev.At > mr.start:
				f.add("phantom delivery", "message %d handled by %s in batch %s at %d, before lease %d claimed it at %d", id, mr.proc.name, mr.batch, mr.start, mr.lease, ci.ev.At)
			}
			// The triggers log the lease a row holds, not the one a finish
			// names: a stale finish accepted while this run's lease held the
			// message shows as a finish of this lease before its run ended.
			for _, e := range st.finishes {
				if e.Lease == mr.lease && mr.end != 0 && e.At < mr.end {
					f.add("finished while its handler ran", "message %d: %s of lease %d at %d, its run by %s ended at %d",
						id, e.Ev, e.Lease, e.At, mr.proc.name, mr.end)
				}
			}
		}
	}

	for _, id := range msgOrder {
		st := states[id]
		fr, inFile := final[id]
		switch st.terminal {
		case "acked":
			c.Acked++
			if inFile {
				f.add("acked", "message %d acked but still in the file (state %d)", id, fr.state)
			}
			// 4: the ack is backed by a successful run of its lease that
			// had ended by then. (The log names the lease that held the
			// message when it was deleted: a stale ack accepted while a newer
			// lease held it shows as an ack of the newer lease before its
			// handler was done, or the newer lease reported lost below.)
			backed := false
			for _, mr := range runsOf[id] {
				if mr.lease == st.ackLease && mr.ok(id) && mr.end <= st.ackAt {
					backed = true
				}
			}
			if !backed {
				f.add("ack without a successful handler", "message %d acked by lease %d at %d; runs: %s", id, st.ackLease, st.ackAt, describeRuns(runsOf[id], id))
			}
		case "dead":
			c.Dead++
			if !inFile || fr.state != 2 || fr.lastError == "" {
				f.add("dead", "message %d went dead but the file has state %d, error %q", id, fr.state, fr.lastError)
			}
			// Its reason is what its last handler run said.
			if why := deadReason(runsOf[id], id, st.deadBy, fr.lastError); why != "" {
				f.add("dead reason", "message %d: %s", id, why)
			}
		default:
			c.Lost++
			f.add("lost", "message %d neither acked nor dead (file state %d, in file %v)", id, fr.state, inFile)
		}
		if len(st.claims) > 1 {
			for _, ci := range st.claims {
				if ci.ev.PrevLease != 0 {
					c.Redelivered++
					break
				}
			}
		}
	}
	for id := range final {
		if states[id] == nil {
			f.add("audit", "message %d in the file has no enqueue in the log", id)
		}
	}

	// 5 and 6: the handler runs against the log.
	expiryExplained := func(p *proc, lease time.Duration, until int64) bool {
		from := until - lease.Milliseconds()
		for _, e := range chaosOf[p.name] {
			switch e.Action {
			case "stop", "pause":
				if e.At.UnixMilli() < until && e.Until.UnixMilli() > from {
					return true
				}
			case "kill":
				if e.At.UnixMilli() < until {
					return true
				}
			}
		}
		for _, b := range blocked {
			if b.from < until && b.until > from {
				return true
			}
		}
		return false
	}
	doubled := map[int64]bool{}
	for id, mrs := range runsOf {
		st := states[id]
		if st == nil {
			f.add("phantom delivery", "message %d handled but never enqueued", id)
			continue
		}
		calls := map[string]bool{}
		for _, mr := range mrs {
			calls[mr.call] = true
		}
		if len(calls) > 1 {
			f.add("body", "message %d handed over with different bodies: %v", id, keys(calls))
		}
		// In claim order (the log's), not by lease id.
		claimSeq := func(mr msgRun) int64 {
			if ci := st.claims[mr.lease]; ci != nil {
				return ci.ev.Seq
			}
			return 0
		}
		sort.Slice(mrs, func(i, j int) bool { return claimSeq(mrs[i]) < claimSeq(mrs[j]) })
		for i := range mrs {
			for j := i + 1; j < len(mrs); j++ {
				a, b := mrs[i], mrs[j]
				if a.lease == b.lease || a.end == 0 || b.start >= a.end {
					continue
				}
				// b started while a still ran: a's lease must have run out,
				// for a reason the chaos explains.
				ca, cb := st.claims[a.lease], st.claims[b.lease]
				if ca == nil || cb == nil {
					continue
				}
				explained := expiryExplained(a.proc, a.proc.lease, ca.visible)
				switch {
				case ca.finished != 0 && ca.finished <= cb.ev.At:
					f.add("doubled", "message %d: run of lease %d (%s, %d..%d) overlaps run of lease %d (%s, from %d) although lease %d finished first at %d",
						id, a.lease, a.proc.name, a.start, a.end, b.lease, b.proc.name, b.start, a.lease, ca.finished)
					doubled[id] = true
				case ca.visible > cb.ev.At || !explained:
					f.add("doubled", "message %d: run of lease %d (%s, %d..%d, lease until %d) overlaps run of lease %d (%s, claimed %d, from %d); no stop, kill or lock explains the expiry",
						id, a.lease, a.proc.name, a.start, a.end, ca.visible, b.lease, b.proc.name, cb.ev.At, b.start)
					doubled[id] = true
				default:
					c.Overlaps++
				}
			}
		}
	}
	c.Doubled = len(doubled)

	// 7: producers.
	callOf := map[int64]string{} // message -> call, from producers' output and handler records
	for id, mrs := range runsOf {
		if len(mrs) > 0 {
			callOf[id], _, _ = strings.Cut(mrs[0].call, "/")
		}
	}
	idsOfCall := map[string][]int64{}
	for id, call := range callOf {
		idsOfCall[call] = append(idsOfCall[call], id)
	}
	seqOf := map[int64]int64{}
	for _, id := range msgOrder {
		if st := states[id]; st.enqueue != nil {
			seqOf[id] = st.enqueue.Seq
		}
	}
	for _, call := range calls {
		c.Duplicates += summaryDuplicates(call.Summary)
		p := call.Proc
		killed := p != nil && p.signal != 0 // by a signal it was sent, or "exit status" says
		switch {
		case call.Summary == nil && r.fullDisk && p.exit == 3:
			c.FullRefused++
			if n := len(idsOfCall[call.Call]); n > 0 {
				f.add("half-written enqueue", "%s failed with exit 3, yet %d of its messages were stored", p.name, n)
			}
		case call.Summary == nil:
			if !killed {
				f.add("enqueue", "%s printed no summary (exit %d)", p.name, p.exit)
			}
		default:
			s := call.Summary
			if s.Enqueued+s.Duplicates != call.N {
				f.add("enqueue", "%s: %d enqueued + %d duplicates of %d messages", p.name, s.Enqueued, s.Duplicates, call.N)
			}
			if !s.Truncated && len(s.IDs) != s.Enqueued {
				f.add("enqueue", "%s: %d ids for %d enqueued", p.name, len(s.IDs), s.Enqueued)
			}
			for _, id := range s.IDs {
				if states[id] == nil || states[id].enqueue == nil {
					f.add("enqueue", "%s printed id %d, which was never stored", p.name, id)
				} else if got, ok := callOf[id]; ok && got != call.Call {
					f.add("body", "message %d was enqueued by %s but handed over with the body of %s", id, call.Call, got)
				}
			}
			if len(idsOfCall[call.Call]) != s.Enqueued && c.Lost == 0 { // lost ones were never handed over
				f.add("enqueue", "%s printed %d enqueued, handlers saw %d messages of it", call.Call, s.Enqueued, len(idsOfCall[call.Call]))
			}
		}
		ids := idsOfCall[call.Call]
		sort.Slice(ids, func(i, j int) bool { return seqOf[ids[i]] < seqOf[ids[j]] })
		for i := 1; i < len(ids); i++ {
			if seqOf[ids[i]] != seqOf[ids[i-1]]+1 {
				f.add("enqueue not atomic", "%s: messages %d and %d were not stored by one transaction", call.Call, ids[i-1], ids[i])
				break
			}
		}
	}
	for _, id := range msgOrder {
		if _, ok := callOf[id]; !ok && states[id].terminal != "" {
			f.add("enqueue", "message %d belongs to no producer call", id)
		}
	}

	// 3: every lease reported lost was taken over; 8: output and exits.
	for _, p := range procs {
		out, err := os.ReadFile(p.stderr)
		if err != nil {
			f.add("harness", "%v", err)
			continue
		}
		for _, at := range lostLine.FindAllSubmatchIndex(out, -1) {
			n, _ := strconv.Atoi(string(out[at[2]:at[3]]))
			lease, _ := strconv.ParseInt(string(out[at[4]:at[5]]), 10, 64)
			c.FencedLeases++
			c.Fenced += n
			if !takenOver[lease] {
				f.add("lease lost without a takeover", "%s: lease %d reported lost, but no claim took a message from it", p.name, lease)
			}
			rest := out[at[1]:]
			if next := bytes.Index(rest, []byte("\ndaguq")); next >= 0 {
				rest = rest[:next]
			}
			for _, ids := range lostIDs.FindAllSubmatch(rest, -1) {
				for _, text := range strings.Split(string(ids[1]), ",") {
					id, err := strconv.ParseInt(strings.TrimSpace(text), 10, 64)
					if err == nil && !takenFrom[takeover{lease, id}] {
						f.add("lease lost without a takeover", "%s: lease %d reported message %d taken over, but no claim took it from that lease", p.name, lease, id)
					}
				}
			}
		}
		for _, m := range extendLost.FindAllSubmatch(out, -1) {
			lease, _ := strconv.ParseInt(string(m[1]), 10, 64)
			n, _ := strconv.Atoi(string(m[2]))
			c.HeartbeatsRefused += n
			if !takenOver[lease] {
				f.add("lease lost without a takeover", "%s: a heartbeat of lease %d found messages taken over, but no claim took a message from it", p.name, lease)
			}
		}
		c.LockWaits += len(lockWait.FindAll(out, -1))
		for _, line := range bytes.Split(out, []byte("\n")) {
			if badOutput.Match(line) {
				f.add("error output", "%s: %s", p.name, bytes.TrimSpace(line))
			}
		}
		full := r.fullDisk && p.exit == 3 && bytes.Contains(out, []byte("database or disk is full"))
		if full && !p.start.Before(r.spaceBack) {
			// Started after the ballast was removed: the disk had room.
			if f.count["disk full after space was freed"] == 0 {
				f.add("disk full after space was freed", "after the run: %s", spaceText(r.db))
			}
			f.add("disk full after space was freed", "%s started %s after %s were freed, and failed: %s",
				p.name, p.start.Sub(r.spaceBack).Round(time.Millisecond), sizeText(r.freed), tail(out, 160))
		} else if full && p.kind == "consumer" {
			c.FullExits++
		}
		if why := unexpectedExit(p); why != "" && !full {
			f.add("exit status", "%s (pid %d): %s; stderr: %s", p.name, p.pid, why, tail(out, 300))
		}
	}

	// 10: what is left.
	left := leftProcesses(r.token)
	for _, pid := range childPIDs {
		if !left[pid] && alive(pid) && hasEnv(pid, RunEnv+"="+r.token) {
			left[pid] = true
		}
	}
	c.LeftProcs = len(left)
	for pid := range left {
		f.add("process left", "pid %d: %s", pid, cmdline(pid))
		syscall.Kill(pid, syscall.SIGKILL)
	}
	dirs, _ := filepath.Glob(filepath.Join(r.cfg.Dir, "tmp", "daguq-*"))
	c.LeftTmpDir = len(dirs)
	for _, d := range dirs {
		entries, _ := os.ReadDir(d)
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		f.add("temporary directory left", "%s: %s", d, strings.Join(names, " "))
	}

	return &Result{Counts: c, Violations: f.list()}, nil
}

// deadReason checks a dead message's last error against the handler run
// that failed it last: "" when it matches.
func deadReason(mrs []msgRun, id, lease int64, lastError string) string {
	for _, mr := range mrs {
		if mr.lease != lease {
			continue
		}
		switch {
		case mr.end != 0 && mr.exit == 0 && mr.failed[id]:
			if want := fmt.Sprintf("soak: planned failure of attempt %d", mr.attempt); lastError != want {
				return fmt.Sprintf("its handler failed it in the result file, the error is %q", lastError)
			}
		case mr.end != 0 && mr.exit == 0:
			return fmt.Sprintf("its last handler run (lease %d, %s) succeeded, yet it went dead with %q", lease, mr.proc.name, lastError)
		case mr.end != 0:
			if !strings.Contains(lastError, fmt.Sprintf("exit status %d", mr.exit)) {
				return fmt.Sprintf("its handler exited %d, the error is %q", mr.exit, lastError)
			}
		default: // killed: batch_timeout, or a signal
			if !strings.Contains(lastError, "batch_timeout") && !strings.Contains(lastError, "killed by a signal") {
				return fmt.Sprintf("its handler was killed, the error is %q", lastError)
			}
		}
		return ""
	}
	return fmt.Sprintf("went dead by lease %d with %q, which ran no handler on it", lease, lastError)
}

// spaceText tells the free space next to a database and its WAL's size.
func spaceText(db string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(db), &st); err != nil {
		return err.Error()
	}
	wal, _ := os.Stat(db + "-wal")
	var walSize int64
	if wal != nil {
		walSize = wal.Size()
	}
	return fmt.Sprintf("%s free, the WAL is %s", sizeText(int64(st.Bavail)*int64(st.Bsize)), sizeText(walSize))
}

func sizeText(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/(1<<20)) }

func summaryDuplicates(s *enqueueSummary) int {
	if s == nil {
		return 0
	}
	return s.Duplicates
}

// unexpectedExit says what is wrong with how p ended, or "".
func unexpectedExit(p *proc) string {
	sent := map[syscall.Signal]bool{}
	for _, s := range p.sent {
		sent[s] = true
	}
	switch {
	case p.signal == syscall.SIGKILL && sent[syscall.SIGKILL]:
		return ""
	case p.signal == syscall.SIGTERM && sent[syscall.SIGTERM]:
		// SIGTERM before daguq set up its handling, as it starts: it dies
		// of the signal, before it has claimed or stored anything.
		return ""
	case p.signal != 0:
		return "killed by " + p.signal.String() + ", which the soak did not send"
	case p.exit == 4 && sent[syscall.SIGTERM] && p.kind == "consumer":
		return ""
	case p.exit == 0 && p.kind != "consumer":
		return ""
	case p.exit == 0 && p.kind == "consumer" && p.slot == "c3-drain":
		return ""
	case p.exit == 0 && sent[syscall.SIGTERM]:
		return "" // SIGTERM after its last batch
	}
	return fmt.Sprintf("exit status %d", p.exit)
}

func describeRuns(mrs []msgRun, id int64) string {
	var parts []string
	for _, mr := range mrs {
		parts = append(parts, fmt.Sprintf("lease %d by %s %d..%d exit %d failed %v", mr.lease, mr.proc.name, mr.start, mr.end, mr.exit, mr.failed[id]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func tail(b []byte, n int) string {
	b = bytes.TrimSpace(b)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.ReplaceAll(string(b), "\n", " | ")
}

// leftProcesses finds live processes whose environment carries the run's
// mark: the soak's own processes all ended, so any is a leftover.
func leftProcesses(token string) map[int]bool {
	left := map[int]bool{}
	entries, _ := os.ReadDir("/proc")
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if hasEnv(pid, RunEnv+"="+token) && alive(pid) {
			left[pid] = true
		}
	}
	return left
}

func hasEnv(pid int, kv string) bool {
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return false
	}
	for _, v := range bytes.Split(env, []byte{0}) {
		if string(v) == kv {
			return true
		}
	}
	return false
}

// alive is true for a process that exists and is not a zombie.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
}
