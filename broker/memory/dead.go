package memory

import (
	"context"
	"fmt"
	"time"

	"github.com/warrenjobs/warren/broker"
)

// Dead returns copies of up to limit of the queue's dead letters, oldest first
// (none when limit <= 0, as broker/amqp). Browsing changes nothing.
func (b *Broker) Dead(ctx context.Context, queue string, limit int) ([]*broker.Message, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	q, err := b.lookup(ctx, queue)
	if err != nil {
		return nil, fmt.Errorf("memory: dead: %w", err)
	}
	n := max(min(len(q.dead), limit), 0)
	out := make([]*broker.Message, n)
	for i := range out {
		out[i] = q.dead[i].Clone()
	}
	return out, nil
}

// RetryDead moves the dead letters with the given IDs (all when ids is nil,
// none when it is empty) back to the work queue, each with its failure fields
// cleared, RunAt cleared (it is due at once) and RetryBase set to Attempt, as
// broker/amqp does.
func (b *Broker) RetryDead(ctx context.Context, queue string, ids []string) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	q, err := b.lookup(ctx, queue)
	if err != nil {
		return 0, fmt.Errorf("memory: retry dead: %w", err)
	}
	moved := q.takeDead(ids)
	for _, m := range moved {
		m.Queue = queue
		m.LastError, m.Stack, m.DeadReason = "", "", ""
		m.FailedAt, m.DeadAt, m.RunAt = time.Time{}, time.Time{}, time.Time{}
		m.RetryBase = m.Attempt
		b.publishLocked(m)
	}
	return len(moved), nil
}

// DeleteDead removes the dead letters with the given IDs (all when ids is nil,
// none when it is empty).
func (b *Broker) DeleteDead(ctx context.Context, queue string, ids []string) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	q, err := b.lookup(ctx, queue)
	if err != nil {
		return 0, fmt.Errorf("memory: delete dead: %w", err)
	}
	return len(q.takeDead(ids)), nil
}

// takeDead removes and returns the dead letters with the given IDs (all when
// ids is nil), in order. Call with b.mu held.
func (q *queue) takeDead(ids []string) []*broker.Message {
	if ids == nil {
		taken := q.dead
		q.dead = nil
		return taken
	}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	var taken []*broker.Message
	kept := q.dead[:0]
	for _, m := range q.dead {
		if want[m.ID] {
			taken = append(taken, m)
		} else {
			kept = append(kept, m)
		}
	}
	clear(q.dead[len(kept):])
	q.dead = kept
	return taken
}
