package proctest

import (
	"fmt"
	"strings"
	"testing"
)

// CheckLeaseHistory finds each broken rule of a message's deliveries, and
// none in a sound history.
func TestCheckLeaseHistory(t *testing.T) {
	t.Parallel()
	lost := LeaseDelivery{LeaseID: 1, ClaimedAt: 0, LeaseEnd: 100, Attempt: 1, Consumer: "a", Result: "lost"}
	acked := LeaseDelivery{LeaseID: 2, ClaimedAt: 150, LeaseEnd: 250, Attempt: 2, Consumer: "b", Result: "acked"}
	for _, tc := range []struct {
		name    string
		ds      []LeaseDelivery
		fencing bool
		want    []string // the problems, in order
	}{
		{"sound, unsorted", []LeaseDelivery{acked, lost}, true, nil},
		{"claimed inside the lease before", []LeaseDelivery{lost, with(acked, func(d *LeaseDelivery) { d.ClaimedAt = 99 })}, false,
			[]string{"message m delivered to b at 99 while the lease of a ran to 100"}},
		{"fencing token fell", []LeaseDelivery{lost, with(acked, func(d *LeaseDelivery) { d.LeaseID = 1 })}, true,
			[]string{"message m: lease 1 after lease 1: fencing tokens must grow"}},
		{"fencing not asked", []LeaseDelivery{lost, with(acked, func(d *LeaseDelivery) { d.LeaseID = 1 })}, false, nil},
		{"attempt skipped", []LeaseDelivery{lost, with(acked, func(d *LeaseDelivery) { d.Attempt = 3 })}, false,
			[]string{"message m: delivery 2 has attempt 3"}},
		{"acked then delivered", []LeaseDelivery{with(lost, func(d *LeaseDelivery) { d.Result = "acked" }), acked}, false,
			[]string{"message m delivered again after a acked it"}},
		{"last ack lost", []LeaseDelivery{lost}, false,
			[]string{"message m: the last delivery's ack found the lease lost"}},
		{"unknown result", []LeaseDelivery{with(acked, func(d *LeaseDelivery) { d.Attempt, d.Result = 1, "nacked" })}, false,
			[]string{`message m: unexpected ack result "nacked"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got []string
			fail := func(format string, args ...any) { got = append(got, fmt.Sprintf(format, args...)) }
			CheckLeaseHistory(fail, "m", append([]LeaseDelivery(nil), tc.ds...), tc.fencing)
			if len(got) != len(tc.want) {
				t.Fatalf("problems %q, want %q", got, tc.want)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tc.want[i]) {
					t.Errorf("problem %q, want %q", got[i], tc.want[i])
				}
			}
		})
	}
	acks, losts := CheckLeaseHistory(func(string, ...any) {}, "m", []LeaseDelivery{acked, lost}, true)
	if acks != 1 || losts != 1 {
		t.Errorf("acked %d, lost %d; want 1 and 1", acks, losts)
	}
}

func with(d LeaseDelivery, change func(*LeaseDelivery)) LeaseDelivery {
	change(&d)
	return d
}
