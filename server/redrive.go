package server

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/daguq/daguq/queuestore"
)

// redrive is POST /queues/{queue}/dead/redrive: all dead letters (or those
// of the body's ids) back to ready at once, or, with ?rate=N, N per second
// in the background (202), so that a consumer is not flooded with the
// whole backlog of a failure that is now fixed.
func (s *Server) redrive(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query().Get("rate")
	if v == "" {
		s.deadAction(w, r, "redriven", s.store.Redrive)
		return
	}
	rate, err := strconv.Atoi(v)
	if err != nil || rate < 1 || rate > queuestore.MaxClaim {
		s.fail(w, r, badRequest("rate", "rate must be 1..%d dead letters per second, got %q", queuestore.MaxClaim, v))
		return
	}
	q, ids, err := deadRequest(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	scheduled := int64(len(ids))
	if scheduled == 0 {
		st, err := s.store.Stats(r.Context(), q)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		scheduled = st.Dead
	}
	if scheduled > 0 {
		s.jobs.Go(func() { s.redriveAtRate(s.bg, q, ids, scheduled, rate) })
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"queue": q, "scheduled": scheduled, "rate": rate,
		"seconds": (scheduled + int64(rate) - 1) / int64(rate)})
}

// redriveAtRate redrives up to rate dead letters of queue a second: the
// ids given, or else the dead letters there are, at most total of them (so
// that letters that die again meanwhile are not redriven in a loop). It
// stops early when ctx ends (the server stops) or at an error, which goes
// to the log.
func (s *Server) redriveAtRate(ctx context.Context, queue string, ids []int64, total int64, rate int) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var done int64
	for done < total {
		var chunk []int64
		if len(ids) > 0 {
			chunk = ids[done:min(done+int64(rate), total)]
		} else {
			msgs, err := s.store.Peek(ctx, queue, queuestore.PeekOptions{State: queuestore.StateDead, Limit: int(min(int64(rate), total-done))})
			if err != nil {
				s.logf("redrive %q at %d/s: %v (%d of %d redriven)", queue, rate, err, done, total)
				return
			}
			if len(msgs) == 0 {
				break
			}
			for _, m := range msgs {
				chunk = append(chunk, m.ID)
			}
		}
		if _, err := s.store.Redrive(ctx, queue, chunk...); err != nil {
			s.logf("redrive %q at %d/s: %v (%d of %d redriven)", queue, rate, err, done, total)
			return
		}
		done += int64(len(chunk))
		if done >= total {
			break
		}
		select {
		case <-ctx.Done():
			s.logf("redrive %q at %d/s: stopped with the server (%d of %d redriven)", queue, rate, done, total)
			return
		case <-tick.C:
		}
	}
}
