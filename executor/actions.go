package executor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/daguq/daguq/queuestore"
)

// ClaimOutput is what `action: claim` prints: one leased batch, for Dagu's
// parallel fan-out. Finish it with `action: ack` or `action: nack` and its
// token before expires_at.
type ClaimOutput struct {
	Token     string           `json:"token"` // "" when nothing was claimed
	Queue     string           `json:"queue"`
	ExpiresAt *time.Time       `json:"expires_at,omitempty"`
	Count     int              `json:"count"`
	Messages  []ClaimedMessage `json:"messages"`
	// SkippedReason is "empty", "paused" or "limit" when nothing was claimed.
	SkippedReason string `json:"skipped_reason,omitempty"`
}

// ClaimedMessage is one message of a claimed batch, as the handler and the
// claim output see it.
type ClaimedMessage struct {
	ID         int64           `json:"id"`
	Queue      string          `json:"queue"`
	Priority   int64           `json:"priority"`
	Attempt    int             `json:"attempt"`
	Group      string          `json:"group"`
	EnqueuedAt time.Time       `json:"enqueued_at"`
	Body       json.RawMessage `json:"body"`
}

func claimedMessage(m queuestore.Message) ClaimedMessage {
	body := json.RawMessage(m.Body)
	if !json.Valid(body) {
		// Stored by something other than daguq's enqueue: pass it as text.
		body, _ = json.Marshal(string(m.Body))
	}
	return ClaimedMessage{ID: m.ID, Queue: m.Queue, Priority: m.Priority, Attempt: m.Attempt,
		Group: m.Group, EnqueuedAt: m.EnqueuedAt, Body: body}
}

func (e *queueExecutor) runClaim(ctx context.Context, store Store) error {
	lease, err := store.Claim(ctx, e.claimOptions(e.cfg.BatchSize))
	if err != nil {
		return storeError(err)
	}
	out := ClaimOutput{Queue: e.cfg.Queue, Messages: []ClaimedMessage{}}
	if lease == nil {
		out.SkippedReason = skippedReason(ctx, store, e.cfg.Queue)
		return writeJSON(e.stdout, out)
	}
	out.Token = lease.Token
	exp := lease.ExpiresAt
	out.ExpiresAt = &exp
	out.Count = len(lease.Messages)
	for _, m := range lease.Messages {
		out.Messages = append(out.Messages, claimedMessage(m))
	}
	if err := writeJSON(e.stdout, out); err != nil {
		// Nobody saw the token: give the batch back at once.
		if rerr := store.Release(ctx, lease); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return storeError(fmt.Errorf("print claimed batch: %w", err))
	}
	return nil
}

// FinishOutput is what `action: ack` and `action: nack` print.
type FinishOutput struct {
	Queue   string `json:"queue"`
	Token   string `json:"token"`
	Acked   int    `json:"acked"`
	Retried int    `json:"retried"`
	Dead    int    `json:"dead"`
}

func (e *queueExecutor) runFinish(ctx context.Context, store Store) error {
	lease, err := e.tokenLease(ctx, store)
	if err != nil {
		return err
	}
	out := FinishOutput{Queue: lease.Queue, Token: lease.Token}
	ids := e.cfg.ids
	if e.cfg.Action == ActionAck {
		if err := store.Ack(ctx, lease, ids...); err != nil {
			return finishError(err)
		}
		out.Acked = len(ids)
		if len(ids) == 0 {
			out.Acked = len(lease.Messages)
		}
	} else {
		res, err := store.Nack(ctx, lease, queuestore.NackOptions{IDs: ids, Error: e.cfg.Error, MaxAttempts: e.cfg.MaxAttempts})
		if err != nil {
			return finishError(err)
		}
		out.Retried, out.Dead = len(res.Retried), len(res.Dead)
	}
	return writeJSON(e.stdout, out)
}

// finishError names the ids when the store refused them (ExitCode decides
// the exit status).
func finishError(err error) error {
	if errors.Is(err, queuestore.ErrInvalid) {
		return badKey("ids", err)
	}
	return err
}

// runGet prints the messages a live lease still holds, by its token: the
// step of a DAG run that `daguq dispatch` started reads its batch this way.
// A token whose lease was finished or taken over fails with ErrLeaseLost, so
// a manual retry of a finished run cannot process its batch again.
func (e *queueExecutor) runGet(ctx context.Context, store Store) error {
	lease, err := e.tokenLease(ctx, store)
	if err != nil {
		return err
	}
	out := ClaimOutput{Token: lease.Token, Queue: lease.Queue, Count: len(lease.Messages), Messages: []ClaimedMessage{}}
	exp := lease.ExpiresAt
	out.ExpiresAt = &exp
	for _, m := range lease.Messages {
		out.Messages = append(out.Messages, claimedMessage(m))
	}
	if e.cfg.File != "" {
		if err := writeJSONLines(resolvePath(e.spec.Dir, e.cfg.File), out.Messages); err != nil {
			return fmt.Errorf("write batch file: %w", err)
		}
	}
	return writeJSON(e.stdout, out)
}

// writeJSONLines writes one JSON value per line to path (mode 0600).
func writeJSONLines(path string, msgs []ClaimedMessage) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, m := range msgs {
		if err := enc.Encode(m); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// tokenLease is the live lease of the step's token; it must be a lease of
// the step's queue.
func (e *queueExecutor) tokenLease(ctx context.Context, store Store) (*queuestore.Lease, error) {
	lease, err := store.LeaseByToken(ctx, e.cfg.Token)
	if err != nil {
		if errors.Is(err, queuestore.ErrInvalid) {
			return nil, badKey("token", err)
		}
		return nil, err
	}
	if lease.Queue != e.cfg.Queue {
		token, queue := e.cfg.Token, e.cfg.Queue
		return nil, usageError(badKeys("token", func(n Names) string {
			return fmt.Sprintf("%s %s belongs to %s %q, not %q", n.Key("token"), token, n.Key("queue"), lease.Queue, queue)
		}))
	}
	return lease, nil
}
