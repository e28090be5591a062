package batching_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/daguq/daguq/batching"
)

// t0 is the fixed instant every test counts from.
var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func TestPolicyValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		policy  batching.Policy
		wantErr []string // substrings; nil means valid
	}{
		{name: "zero value", policy: batching.Policy{}},
		{name: "upper limits", policy: batching.Policy{MaxSize: batching.MaxSizeLimit, MaxBytes: 1 << 40, MaxWait: batching.MaxWaitLimit}},
		{name: "negative size", policy: batching.Policy{MaxSize: -1},
			wantErr: []string{"batching: max_size must be 1..100000, got -1"}},
		{name: "size over limit", policy: batching.Policy{MaxSize: batching.MaxSizeLimit + 1},
			wantErr: []string{"batching: max_size must be 1..100000, got 100001"}},
		{name: "negative bytes", policy: batching.Policy{MaxBytes: -5},
			wantErr: []string{"batching: max_bytes must be 0 (no limit) or more, got -5"}},
		{name: "negative wait", policy: batching.Policy{MaxWait: -time.Second},
			wantErr: []string{"batching: max_wait must be 0s..1h0m0s, got -1s"}},
		{name: "wait over limit", policy: batching.Policy{MaxWait: 2 * time.Hour},
			wantErr: []string{"batching: max_wait must be 0s..1h0m0s, got 2h0m0s"}},
		{name: "every field reported", policy: batching.Policy{MaxSize: -1, MaxBytes: -1, MaxWait: -1},
			wantErr: []string{"max_size", "max_bytes", "max_wait"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.policy.Validate()
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want error containing %q", tt.wantErr)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Validate() = %q, want it to contain %q", err, want)
				}
			}
		})
	}
}

func TestPolicyDecide(t *testing.T) {
	t.Parallel()
	batch := batching.Policy{MaxSize: 10, MaxBytes: 1000, MaxWait: 5 * time.Second}
	tests := []struct {
		name   string
		policy batching.Policy
		count  int
		bytes  int64
		oldest time.Time
		now    time.Time
		want   batching.Decision
	}{
		{name: "empty never ready", policy: batch, count: 0, oldest: t0, now: at(time.Hour),
			want: batching.Decision{}},
		{name: "empty never ready without wait", policy: batching.Policy{}, count: 0, oldest: t0, now: t0,
			want: batching.Decision{}},
		{name: "exactly max size", policy: batch, count: 10, bytes: 10, oldest: t0, now: t0,
			want: batching.Decision{Reason: batching.ReasonSize}},
		{name: "above max size", policy: batch, count: 11, bytes: 10, oldest: t0, now: t0,
			want: batching.Decision{Reason: batching.ReasonSize}},
		{name: "one below max size lingers", policy: batch, count: 9, bytes: 10, oldest: t0, now: at(time.Second),
			want: batching.Decision{Wait: 4 * time.Second}},
		{name: "bytes reached before count", policy: batch, count: 2, bytes: 1000, oldest: t0, now: t0,
			want: batching.Decision{Reason: batching.ReasonBytes}},
		{name: "bytes over limit", policy: batch, count: 1, bytes: 5000, oldest: t0, now: t0,
			want: batching.Decision{Reason: batching.ReasonBytes}},
		{name: "bytes one short lingers", policy: batch, count: 2, bytes: 999, oldest: t0, now: t0,
			want: batching.Decision{Wait: 5 * time.Second}},
		{name: "size wins over bytes", policy: batch, count: 10, bytes: 1000, oldest: t0, now: at(time.Hour),
			want: batching.Decision{Reason: batching.ReasonSize}},
		{name: "bytes wins over wait", policy: batch, count: 1, bytes: 1000, oldest: t0, now: at(time.Hour),
			want: batching.Decision{Reason: batching.ReasonBytes}},
		{name: "zero max bytes is no limit", policy: batching.Policy{MaxSize: 10, MaxWait: time.Second}, count: 1, bytes: 1 << 50, oldest: t0, now: t0,
			want: batching.Decision{Wait: time.Second}},
		{name: "zero max wait ready when non-empty", policy: batching.Policy{MaxSize: 10}, count: 1, oldest: t0, now: t0,
			want: batching.Decision{Reason: batching.ReasonWait}},
		{name: "wait elapsed exactly", policy: batch, count: 1, oldest: t0, now: at(5 * time.Second),
			want: batching.Decision{Reason: batching.ReasonWait}},
		{name: "wait counted from the oldest", policy: batch, count: 3, oldest: at(-3 * time.Second), now: t0,
			want: batching.Decision{Wait: 2 * time.Second}},
		{name: "oldest in the future counts as now", policy: batch, count: 1, oldest: at(time.Minute), now: t0,
			want: batching.Decision{Wait: 5 * time.Second}},
		{name: "zero policy is one message at once", policy: batching.Policy{}, count: 1, oldest: t0, now: t0,
			want: batching.Decision{Reason: batching.ReasonSize}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.policy.Decide(tt.count, tt.bytes, tt.oldest, tt.now)
			if got != tt.want {
				t.Fatalf("Decide(%d, %d, %v, %v) = %+v, want %+v", tt.count, tt.bytes, tt.oldest, tt.now, got, tt.want)
			}
			if got.Ready() != (tt.want.Reason != batching.NotReady) {
				t.Fatalf("Ready() = %v for reason %q", got.Ready(), got.Reason)
			}
		})
	}
}

// sized returns items of the given sizes under one key.
func sized(sizes ...int64) []batching.Item {
	items := make([]batching.Item, len(sizes))
	for i, s := range sizes {
		items[i] = batching.Item{Size: s, ReadyAt: t0}
	}
	return items
}

// keyed returns one-byte items with the given keys.
func keyed(keys ...string) []batching.Item {
	items := make([]batching.Item, len(keys))
	for i, k := range keys {
		items[i] = batching.Item{Key: k, Size: 1, ReadyAt: t0}
	}
	return items
}

func TestPolicyTake(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		policy batching.Policy
		items  []batching.Item
		want   int
	}{
		{name: "empty", policy: batching.Policy{MaxSize: 3}, items: nil, want: 0},
		{name: "fewer than max size", policy: batching.Policy{MaxSize: 3}, items: sized(1, 1), want: 2},
		{name: "exactly max size", policy: batching.Policy{MaxSize: 3}, items: sized(1, 1, 1), want: 3},
		{name: "capped at max size", policy: batching.Policy{MaxSize: 3}, items: sized(1, 1, 1, 1, 1), want: 3},
		{name: "zero max size takes one", policy: batching.Policy{}, items: sized(1, 1), want: 1},
		{name: "bytes cut before count", policy: batching.Policy{MaxSize: 10, MaxBytes: 100}, items: sized(40, 40, 40, 40), want: 2},
		{name: "bytes fit exactly", policy: batching.Policy{MaxSize: 10, MaxBytes: 100}, items: sized(50, 50, 1), want: 2},
		{name: "single oversize item", policy: batching.Policy{MaxSize: 10, MaxBytes: 100}, items: sized(500, 1), want: 1},
		{name: "oversize item after a fitting one", policy: batching.Policy{MaxSize: 10, MaxBytes: 100}, items: sized(10, 500, 1), want: 1},
		{name: "zero max bytes is no limit", policy: batching.Policy{MaxSize: 10}, items: sized(1<<40, 1<<40), want: 2},
		{name: "negative size counts as zero", policy: batching.Policy{MaxSize: 10, MaxBytes: 100}, items: sized(60, -1000, 60), want: 2},
		{name: "grouping stops at another key", policy: batching.Policy{MaxSize: 10, GroupByKey: true}, items: keyed("a", "a", "b", "a"), want: 2},
		{name: "grouping with single key", policy: batching.Policy{MaxSize: 10, GroupByKey: true}, items: keyed("a", "a", "a"), want: 3},
		{name: "no grouping mixes keys", policy: batching.Policy{MaxSize: 10}, items: keyed("a", "b", "c"), want: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.policy.Take(tt.items); got != tt.want {
				t.Fatalf("Take(%d items) = %d, want %d", len(tt.items), got, tt.want)
			}
		})
	}
}

// msg is the payload type of the Accumulator tests.
type msg struct {
	id    int
	key   string
	size  int64
	ready time.Time
}

func describe(m msg) batching.Item {
	return batching.Item{Key: m.key, Size: m.size, ReadyAt: m.ready}
}

func ids(ms []msg) []int {
	out := make([]int, len(ms))
	for i, m := range ms {
		out[i] = m.id
	}
	return out
}

func setup(tb testing.TB, p batching.Policy) *batching.Accumulator[msg] {
	tb.Helper()
	acc, err := batching.NewAccumulator(p, describe)
	if err != nil {
		tb.Fatalf("NewAccumulator(%+v) = %v", p, err)
	}
	return acc
}

// step is one Take at an instant and the batch expected from it.
type step struct {
	now    time.Time
	want   []int // ids of the batch; nil means none ready
	reason batching.Reason
	wait   time.Duration // Ready(now).Wait before the Take
}

func TestAccumulator(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		policy batching.Policy
		add    []msg
		steps  []step
	}{
		{
			name:   "empty never ready",
			policy: batching.Policy{MaxSize: 3},
			steps:  []step{{now: at(time.Hour)}},
		},
		{
			name:   "exactly max size",
			policy: batching.Policy{MaxSize: 3, MaxWait: time.Minute},
			add:    []msg{{id: 1, ready: t0}, {id: 2, ready: t0}, {id: 3, ready: t0}, {id: 4, ready: t0}},
			steps: []step{
				{now: t0, want: []int{1, 2, 3}, reason: batching.ReasonSize},
				{now: at(time.Second), wait: 59 * time.Second},
				{now: at(time.Minute), want: []int{4}, reason: batching.ReasonWait},
				{now: at(time.Hour)},
			},
		},
		{
			name:   "bytes reached before count, remainder keeps its age",
			policy: batching.Policy{MaxSize: 10, MaxBytes: 100, MaxWait: 10 * time.Second},
			add:    []msg{{id: 1, size: 60, ready: t0}, {id: 2, size: 60, ready: at(time.Second)}},
			steps: []step{
				{now: at(2 * time.Second), want: []int{1}, reason: batching.ReasonBytes},
				{now: at(2 * time.Second), wait: 9 * time.Second},
				{now: at(11 * time.Second), want: []int{2}, reason: batching.ReasonWait},
			},
		},
		{
			name:   "single oversize item",
			policy: batching.Policy{MaxSize: 10, MaxBytes: 100, MaxWait: time.Minute},
			add:    []msg{{id: 1, size: 1000, ready: t0}, {id: 2, size: 1, ready: t0}},
			steps: []step{
				{now: t0, want: []int{1}, reason: batching.ReasonBytes},
				{now: t0, wait: time.Minute},
			},
		},
		{
			name:   "zero max wait ready when non-empty",
			policy: batching.Policy{MaxSize: 10},
			add:    []msg{{id: 1, ready: t0}, {id: 2, ready: t0}},
			steps: []step{
				{now: t0, want: []int{1, 2}, reason: batching.ReasonWait},
				{now: t0},
			},
		},
		{
			name:   "wait computed from the oldest, not the first",
			policy: batching.Policy{MaxSize: 10, MaxWait: 10 * time.Second},
			add:    []msg{{id: 1, ready: at(5 * time.Second)}, {id: 2, ready: at(2 * time.Second)}},
			steps: []step{
				{now: at(6 * time.Second), wait: 6 * time.Second},
				{now: at(12 * time.Second), want: []int{1, 2}, reason: batching.ReasonWait},
			},
		},
		{
			name:   "grouping never mixes keys",
			policy: batching.Policy{MaxSize: 10, GroupByKey: true},
			add: []msg{
				{id: 1, key: "a", ready: t0}, {id: 2, key: "b", ready: t0},
				{id: 3, key: "a", ready: t0}, {id: 4, key: "b", ready: t0}, {id: 5, key: "c", ready: t0},
			},
			steps: []step{
				{now: t0, want: []int{1, 3}, reason: batching.ReasonWait},
				{now: t0, want: []int{2, 4}, reason: batching.ReasonWait},
				{now: t0, want: []int{5}, reason: batching.ReasonWait},
				{now: t0},
			},
		},
		{
			name:   "without grouping keys are ignored",
			policy: batching.Policy{MaxSize: 10},
			add:    []msg{{id: 1, key: "a", ready: t0}, {id: 2, key: "b", ready: t0}},
			steps:  []step{{now: t0, want: []int{1, 2}, reason: batching.ReasonWait}},
		},
		{
			name:   "ready groups taken oldest first",
			policy: batching.Policy{MaxSize: 10, MaxWait: time.Second, GroupByKey: true},
			add: []msg{
				{id: 1, key: "a", ready: at(3 * time.Second)}, {id: 2, key: "b", ready: at(1 * time.Second)},
				{id: 3, key: "c", ready: at(2 * time.Second)},
			},
			steps: []step{
				{now: at(time.Minute), want: []int{2}, reason: batching.ReasonWait},
				{now: at(time.Minute), want: []int{3}, reason: batching.ReasonWait},
				{now: at(time.Minute), want: []int{1}, reason: batching.ReasonWait},
			},
		},
		{
			name:   "equal age broken by key",
			policy: batching.Policy{MaxSize: 10, GroupByKey: true},
			add:    []msg{{id: 1, key: "z", ready: t0}, {id: 2, key: "m", ready: t0}, {id: 3, key: "a", ready: t0}},
			steps: []step{
				{now: t0, want: []int{3}, reason: batching.ReasonWait},
				{now: t0, want: []int{2}, reason: batching.ReasonWait},
				{now: t0, want: []int{1}, reason: batching.ReasonWait},
			},
		},
		{
			name:   "a ready group goes before an older lingering one",
			policy: batching.Policy{MaxSize: 2, MaxWait: time.Minute, GroupByKey: true},
			add:    []msg{{id: 1, key: "old", ready: t0}, {id: 2, key: "full", ready: at(time.Second)}, {id: 3, key: "full", ready: at(time.Second)}},
			steps: []step{
				{now: at(2 * time.Second), want: []int{2, 3}, reason: batching.ReasonSize},
				{now: at(2 * time.Second), wait: 58 * time.Second},
			},
		},
		{
			name:   "wait is the shortest among lingering groups",
			policy: batching.Policy{MaxSize: 10, MaxWait: 10 * time.Second, GroupByKey: true},
			add:    []msg{{id: 1, key: "a", ready: at(4 * time.Second)}, {id: 2, key: "b", ready: at(1 * time.Second)}},
			steps:  []step{{now: at(5 * time.Second), wait: 6 * time.Second}},
		},
		{
			name:   "group capped at max size keeps claim order",
			policy: batching.Policy{MaxSize: 2, GroupByKey: true},
			add:    []msg{{id: 1, key: "a", ready: t0}, {id: 2, key: "b", ready: t0}, {id: 3, key: "a", ready: t0}, {id: 4, key: "a", ready: t0}},
			steps: []step{
				{now: t0, want: []int{1, 3}, reason: batching.ReasonSize},
				{now: t0, want: []int{4}, reason: batching.ReasonWait},
				{now: t0, want: []int{2}, reason: batching.ReasonWait},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			acc := setup(t, tt.policy)
			acc.Add(tt.add...)
			for i, s := range tt.steps {
				d := acc.Ready(s.now)
				if d.Ready() != (s.want != nil) || d.Reason != s.reason || d.Wait != s.wait {
					t.Fatalf("step %d: Ready(%v) = %+v, want reason %q wait %v", i, s.now, d, s.reason, s.wait)
				}
				got := acc.Take(s.now)
				if s.want == nil {
					if got != nil {
						t.Fatalf("step %d: Take(%v) = %v, want nil", i, s.now, ids(got))
					}
					continue
				}
				if !slices.Equal(ids(got), s.want) {
					t.Fatalf("step %d: Take(%v) = %v, want %v", i, s.now, ids(got), s.want)
				}
			}
		})
	}
}

func TestAccumulatorCounters(t *testing.T) {
	t.Parallel()
	acc := setup(t, batching.Policy{MaxSize: 2})
	if acc.Len() != 0 || acc.Bytes() != 0 || !acc.Oldest().IsZero() {
		t.Fatalf("empty: Len %d Bytes %d Oldest %v, want 0 0 zero", acc.Len(), acc.Bytes(), acc.Oldest())
	}
	acc.Add(
		msg{id: 1, size: 10, ready: at(2 * time.Second)},
		msg{id: 2, size: 20, ready: at(1 * time.Second)},
		msg{id: 3, size: 30, ready: at(3 * time.Second)},
	)
	if acc.Len() != 3 || acc.Bytes() != 60 || !acc.Oldest().Equal(at(time.Second)) {
		t.Fatalf("after Add: Len %d Bytes %d Oldest %v, want 3 60 %v", acc.Len(), acc.Bytes(), acc.Oldest(), at(time.Second))
	}
	if got := ids(acc.Take(t0)); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("Take = %v, want [1 2]", got)
	}
	if acc.Len() != 1 || acc.Bytes() != 30 || !acc.Oldest().Equal(at(3*time.Second)) {
		t.Fatalf("after Take: Len %d Bytes %d Oldest %v, want 1 30 %v", acc.Len(), acc.Bytes(), acc.Oldest(), at(3*time.Second))
	}
	acc.Add(msg{id: 4, size: 40, ready: t0})
	if got := ids(acc.Drain()); !slices.Equal(got, []int{3, 4}) {
		t.Fatalf("Drain = %v, want [3 4]", got)
	}
	if acc.Len() != 0 || acc.Bytes() != 0 || !acc.Oldest().IsZero() {
		t.Fatalf("after Drain: Len %d Bytes %d Oldest %v, want 0 0 zero", acc.Len(), acc.Bytes(), acc.Oldest())
	}
	if got := acc.Drain(); len(got) != 0 {
		t.Fatalf("Drain of empty = %v, want empty", ids(got))
	}
}

// TestAccumulatorDeterministic checks that the order of batches depends on
// the messages only, never on map iteration.
func TestAccumulatorDeterministic(t *testing.T) {
	t.Parallel()
	keys := []string{"e", "b", "h", "a", "d", "g", "c", "f"}
	var want []int
	for run := range 50 {
		acc := setup(t, batching.Policy{MaxSize: 10, GroupByKey: true})
		for i, k := range keys {
			acc.Add(msg{id: i, key: k, ready: t0})
		}
		var got []int
		for b := acc.Take(t0); b != nil; b = acc.Take(t0) {
			got = append(got, ids(b)...)
		}
		if run == 0 {
			want = got
			if !slices.Equal(want, []int{3, 1, 6, 4, 0, 7, 5, 2}) {
				t.Fatalf("order = %v, want keys in ascending order", want)
			}
			continue
		}
		if !slices.Equal(got, want) {
			t.Fatalf("run %d: order = %v, want %v", run, got, want)
		}
	}
}

func TestNewAccumulator(t *testing.T) {
	t.Parallel()
	t.Run("invalid policy", func(t *testing.T) {
		t.Parallel()
		acc, err := batching.NewAccumulator(batching.Policy{MaxSize: -1}, describe)
		if err == nil || acc != nil {
			t.Fatalf("NewAccumulator = %v, %v, want nil and error", acc, err)
		}
		if !strings.Contains(err.Error(), "max_size") {
			t.Fatalf("error %q does not name max_size", err)
		}
	})
	t.Run("nil describe panics", func(t *testing.T) {
		t.Parallel()
		defer func() {
			if recover() == nil {
				t.Fatal("NewAccumulator with nil describe did not panic")
			}
		}()
		_, _ = batching.NewAccumulator[msg](batching.Policy{}, nil)
	})
}

func ExampleAccumulator() {
	type message struct {
		ID    int
		Body  string
		Ready time.Time
	}
	policy := batching.Policy{MaxSize: 3, MaxWait: 2 * time.Second}
	acc, err := batching.NewAccumulator(policy, func(m message) batching.Item {
		return batching.Item{Size: int64(len(m.Body)), ReadyAt: m.Ready}
	})
	if err != nil {
		panic(err)
	}
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

	acc.Add(message{1, "hello", start}, message{2, "world", start})
	d := acc.Ready(start.Add(500 * time.Millisecond))
	fmt.Printf("2 held: ready=%v wait=%v\n", d.Ready(), d.Wait)

	acc.Add(message{3, "!", start.Add(time.Second)})
	d = acc.Ready(start.Add(time.Second))
	fmt.Printf("3 held: ready=%v reason=%s\n", d.Ready(), d.Reason)
	for _, m := range acc.Take(start.Add(time.Second)) {
		fmt.Println("handle", m.ID, m.Body)
	}

	acc.Add(message{4, "late", start.Add(3 * time.Second)})
	d = acc.Ready(start.Add(5 * time.Second))
	fmt.Printf("1 held after linger: ready=%v reason=%s\n", d.Ready(), d.Reason)
	// Output:
	// 2 held: ready=false wait=1.5s
	// 3 held: ready=true reason=size
	// handle 1 hello
	// handle 2 world
	// handle 3 !
	// 1 held after linger: ready=true reason=wait
}

func ExamplePolicy_Take() {
	policy := batching.Policy{MaxSize: 10, MaxBytes: 100}
	items := []batching.Item{{Size: 40}, {Size: 50}, {Size: 30}}
	fmt.Println(policy.Take(items))
	fmt.Println(policy.Take([]batching.Item{{Size: 500}}))
	// Output:
	// 2
	// 1
}
