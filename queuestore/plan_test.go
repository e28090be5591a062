package queuestore

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The claim must walk messages_ready in its own order: a sort step (a temp
// B-tree) per claim costs time that grows with the queue, and so does a
// walk past delayed or leased rows.
// ANALYZE gives the planner statistics that can change its choice, so the
// plans are checked on a fresh file and again after ANALYZE on a file
// whose statistics argue for other indexes.
func TestClaimPlansUseClaimIndex(t *testing.T) {
	statements := map[string]string{
		"claim":           sqlCandidates,
		"claim one group": sqlCandidatesGroup,
		"any ready":       sqlAnyReady,
		"band head":       sqlBandHead,
		"oldest of head":  sqlOldestOfHead,
	}
	waiting := map[string]string{
		"promote": sqlPromote,
		"due":     sqlAnyDue,
		"stats":   sqlStats,
	}
	b := setupPlanStore(t)
	check := func(when string) {
		t.Helper()
		for name, stmt := range statements {
			plan := explain(t, b, stmt)
			if !strings.Contains(plan, "INDEX messages_ready") {
				t.Errorf("%s, %s: plan does not use messages_ready:\n%s", when, name, plan)
			}
			if strings.Contains(plan, "TEMP B-TREE") {
				t.Errorf("%s, %s: plan sorts in a temp B-tree:\n%s", when, name, plan)
			}
			if strings.Contains(plan, "SCAN messages") {
				t.Errorf("%s, %s: plan scans the messages table:\n%s", when, name, plan)
			}
		}
		for name, stmt := range waiting {
			plan := explain(t, b, stmt)
			if !strings.Contains(plan, "INDEX messages_delayed") || !strings.Contains(plan, "INDEX messages_leased") ||
				strings.Contains(plan, "TEMP B-TREE") || strings.Contains(plan, "SCAN messages") {
				t.Errorf("%s, %s: plan does not walk messages_delayed and messages_leased in order:\n%s", when, name, plan)
			}
		}
	}
	check("fresh file")

	// Statistics that tempt the planner away from messages_claim: one big
	// queue, most of it dead, acked or in flight, a few groups, a few
	// dedupe keys, and many other queues.
	ctx := context.Background()
	var msgs []NewMessage
	for i := range 3000 {
		msgs = append(msgs, NewMessage{Queue: "big", Body: []byte("x"), Priority: int64(i % 3),
			Group: fmt.Sprint("g", i%4), DedupeKey: fmt.Sprint("k", i%500)})
	}
	for i := range 2000 {
		msgs = append(msgs, NewMessage{Queue: fmt.Sprint("small", i%200), Body: []byte("y")})
	}
	if _, err := b.store.Enqueue(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		l := b.claim(t, ClaimOptions{Queue: "big", Max: 100})
		if _, err := b.store.Nack(ctx, l, NackOptions{MaxAttempts: 1, Error: "dead"}); err != nil {
			t.Fatal(err)
		}
	}
	l := b.claim(t, ClaimOptions{Queue: "big", Max: 100})
	if err := b.store.Ack(ctx, l); err != nil {
		t.Fatal(err)
	}
	b.claim(t, ClaimOptions{Queue: "big", Max: 200, Lease: time.Hour})
	if _, err := b.store.DB().Exec(`ANALYZE`); err != nil {
		t.Fatal(err)
	}
	check("after ANALYZE")
}

func setupPlanStore(tb testing.TB) *testBundle {
	tb.Helper()
	return setup(tb, Options{AckRetention: time.Hour})
}

// explain returns the query plan of stmt, one line per step.
func explain(tb testing.TB, b *testBundle, stmt string) string {
	tb.Helper()
	// Placeholders are bound to NULL: without STAT4 the plan does not
	// depend on the values.
	params := 0
	for _, m := range regexp.MustCompile(`\?(\d+)`).FindAllStringSubmatch(stmt, -1) {
		n, _ := strconv.Atoi(m[1])
		params = max(params, n)
	}
	rows, err := b.store.DB().Query("EXPLAIN QUERY PLAN "+stmt, make([]any, params)...)
	if err != nil {
		tb.Fatal(err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			tb.Fatal(err)
		}
		lines = append(lines, detail)
	}
	if err := rows.Err(); err != nil {
		tb.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// No index holds every leased message (each claim and ack would write it):
// finishes find their messages by id, and what looks a lease up without
// ids walks the lease's queue in messages_leased (or messages_lapsed by
// lease id), never the table nor every queue's leased messages.
func TestLeasePlansNeedNoLeaseIndex(t *testing.T) {
	b := setupPlanStore(t)
	byID := map[string]string{
		"ack":            sqlAckDelete,
		"ack retained":   sqlAckRetain,
		"lease states":   sqlLeaseStates,
		"nack":           sqlNack,
		"extend":         sqlExtendMessages,
		"release":        sqlRelease,
		"claim into":     sqlLeaseLive,
		"lease messages": sqlLeaseMessages,
	}
	for name, stmt := range byID {
		if plan := explain(t, b, stmt); !strings.Contains(plan, "SEARCH messages USING INTEGER PRIMARY KEY") {
			t.Errorf("%s: plan does not find messages by id:\n%s", name, plan)
		}
	}
	byLease := map[string]string{
		"lease by token": sqlLeaseHeld,
		"live leases":    sqlQueueRow,
		"drop lease row": sqlDropLeaseIfEmpty,
	}
	for name, stmt := range byLease {
		plan := explain(t, b, stmt)
		if !strings.Contains(plan, "INDEX messages_leased") {
			t.Errorf("%s: plan does not walk messages_leased:\n%s", name, plan)
		}
		if regexp.MustCompile(`SCAN (messages|m)\b`).MatchString(plan) {
			t.Errorf("%s: plan walks every leased message, not the lease's queue:\n%s", name, plan)
		}
	}
	var n int
	if err := b.store.DB().QueryRow(`SELECT count(*) FROM pragma_index_list('messages') WHERE name = 'messages_lease'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("messages_lease still there (%d, %v)", n, err)
	}
}
