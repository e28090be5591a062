package soak

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// RunFullDisk runs consumers on a database in small, a directory on its own
// small file system (a tmpfs of a few MB): a ballast file takes all but
// 1 MB, enqueues fill the rest until one fails, and the disk stays full for
// a while (every enqueue must fail with exit 3 and store nothing; consumers
// fail their claims and acks, their leases run out). Then the ballast goes,
// and a consumer with batch size 1 and the final drain must deliver
// everything. The same checker proves the same invariants; an exit status 3
// that says "database or disk is full" is expected while the disk was full,
// and a violation after.
func RunFullDisk(ctx context.Context, cfg Config, small string) (*Result, error) {
	r, err := newRunner(ctx, cfg, filepath.Join(small, "soak.db"))
	if err != nil {
		return nil, err
	}
	r.fullDisk = true
	defer r.killAll()
	began := time.Now()

	if p := r.enqueueBulk("seed", 200, 100); p == nil || p.exit != 0 {
		return nil, errors.New("could not enqueue the first messages")
	}
	var wg sync.WaitGroup
	for i, s := range []slot{consumerSlots[0], consumerSlots[1], consumerSlots[5]} {
		wg.Add(1)
		go func() { defer wg.Done(); r.consumerSlot(s, r.seed+uint64(i)) }()
	}

	// A ballast file takes all but headroom bytes of the space; then
	// enqueues fill the rest until one is refused. Once the file system is
	// full, claims and acks fail too (every write appends to the WAL), so
	// the run frees the ballast's space to recover.
	ballast := filepath.Join(small, "ballast")
	size, err := fillFile(ballast, headroom)
	if err != nil {
		r.end()
		wg.Wait()
		return nil, fmt.Errorf("ballast: %w", err)
	}
	filled := false
	for n := 1; !filled; n++ {
		if time.Since(began) > time.Minute {
			r.end()
			wg.Wait()
			return nil, fmt.Errorf("%s did not fill up in a minute", small)
		}
		p := r.enqueueBulk(fmt.Sprintf("f%d", n), 100, 1000)
		switch {
		case p == nil:
			return nil, errors.New("enqueue did not start")
		case p.exit == 3:
			filled = true
		case p.exit != 0:
			r.fail("%s: exit status %d while filling the disk", p.name, p.exit)
		}
	}
	r.cfg.Logf("soak: %s full after %s (%d bytes of ballast)", small, time.Since(began).Round(time.Millisecond), size)
	fullUntil := time.Now().Add(3 * time.Second)
	for n := 1; time.Now().Before(fullUntil); n++ {
		var p *proc
		if n%2 == 0 {
			p = r.enqueueBulk(fmt.Sprintf("full-b%d", n), 20, 100)
		} else {
			p = r.enqueueOne(fmt.Sprintf("full-s%d", n))
		}
		if p != nil && p.exit == 0 {
			r.cfg.Logf("soak: %s stored its messages on the full disk", p.name)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := os.Remove(ballast); err != nil {
		r.fail("ballast: %v", err)
	}
	r.mu.Lock()
	r.spaceBack, r.freed = time.Now(), size
	r.mu.Unlock()
	r.cfg.Logf("soak: space again after %s", time.Since(began).Round(time.Millisecond))
	time.Sleep(time.Second)
	r.end()
	r.stopConsumers()
	wg.Wait()
	// One consumer takes what is left a message at a time, as a consumer
	// with batch_size 1 does: a claim and an ack per message, the most
	// writes per message. The disk has room now, so it must not fail.
	name := recoverSlot.name + ".1"
	p, err := r.start(name, "drain", recoverSlot.name, recoverSlot.lease, r.consumeArgs(recoverSlot, name), true)
	if err != nil {
		return nil, err
	}
	<-p.done
	return r.finish(ctx, began)
}

// recoverSlot drains a queue a message at a time after the disk had room
// again.
var recoverSlot = slot{name: "recover", lease: 5 * time.Second,
	args:    []string{"--mode", "drain", "--batch-size", "1", "--backoff", "none"},
	handler: []string{"-sleep-max=0"}}

// enqueueBulk enqueues count messages with a pad of pad bytes in one call.
func (r *runner) enqueueBulk(call string, count, pad int) *proc {
	var lines strings.Builder
	for i := range count {
		body, _ := json.Marshal(Body{Call: call, I: i, Pad: strings.Repeat("f", pad)})
		lines.Write(append(body, '\n'))
	}
	file := filepath.Join(r.cfg.Dir, "bodies", call+".jsonl")
	if err := os.WriteFile(file, []byte(lines.String()), 0o600); err != nil {
		r.fail("%v", err)
		return nil
	}
	c := &producerCall{Call: call, N: count}
	r.produce(c, "p-"+call, []string{"enqueue", "--queue", Queue, "--file", file})
	return c.Proc
}

// enqueueOne enqueues one message with a dedupe key.
func (r *runner) enqueueOne(call string) *proc {
	body, _ := json.Marshal(Body{Call: call})
	c := &producerCall{Call: call, N: 1, Dedupe: "key-" + call}
	r.produce(c, "p-"+call, []string{"enqueue", "--queue", Queue, "--message", string(body), "--dedupe-key", c.Dedupe})
	return c.Proc
}

// headroom is the space the ballast leaves for the database to fill.
const headroom = 1 << 20

// fillFile writes zeros to path until the file system has only leave bytes
// free.
func fillFile(path string, leave int64) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(path), &st); err != nil {
		return 0, err
	}
	size := int64(st.Bavail)*int64(st.Bsize) - leave
	if size <= 0 {
		return 0, fmt.Errorf("%s has less than %d bytes free", filepath.Dir(path), leave)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, err
	}
	if _, err := f.Write(make([]byte, size)); err != nil {
		f.Close()
		return 0, err
	}
	return size, f.Close()
}
