package memory

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/warrenjobs/warren/broker"
)

// eventLog is the events log: an append-only sequence of batches with
// contiguous offsets from 0, trimmed from the oldest end to its retention
// limits (count, bytes, age) like a RabbitMQ stream.
type eventLog struct {
	maxBatches int
	maxBytes   int
	maxAge     time.Duration

	mu      sync.Mutex
	batches []broker.EventBatch // offsets batches[0].Offset, +1, ...
	bytes   int
	next    int64         // offset of the next batch
	last    time.Time     // time of the newest batch; times never go back
	grew    chan struct{} // closed (and replaced) on every append
	closed  bool
	done    chan struct{} // closed by close
}

func newEventLog(maxBatches, maxBytes int, maxAge time.Duration) *eventLog {
	return &eventLog{
		maxBatches: maxBatches,
		maxBytes:   maxBytes,
		maxAge:     maxAge,
		grew:       make(chan struct{}),
		done:       make(chan struct{}),
	}
}

// AppendEvents appends a copy of batch to the events log.
func (b *Broker) AppendEvents(ctx context.Context, batch []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: append events: %w", err)
	}
	if err := b.events.append(batch); err != nil {
		return fmt.Errorf("memory: append events: %w", err)
	}
	return nil
}

// FollowEvents replays the retained batches appended at or after since (all
// when since is zero), then follows new ones until ctx is done or the broker
// is closed; the channel is closed then. A follower that falls behind the
// retention limits skips the batches dropped meanwhile, as on a stream.
func (b *Broker) FollowEvents(ctx context.Context, since time.Time) (<-chan broker.EventBatch, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory: follow events: %w", err)
	}
	ch := make(chan broker.EventBatch)
	f := &follower{log: b.events, since: since, out: ch}
	if err := b.events.startFollower(ctx, f); err != nil {
		return nil, fmt.Errorf("memory: follow events: %w", err)
	}
	return ch, nil
}

func (l *eventLog) append(data []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return broker.ErrClosed
	}
	now := time.Now().Round(0) // wall clock only
	if now.Before(l.last) {
		now = l.last
	}
	l.last = now
	l.batches = append(l.batches, broker.EventBatch{Offset: l.next, Time: now, Data: append([]byte(nil), data...)})
	l.next++
	l.bytes += len(data)
	l.trim(now)
	close(l.grew)
	l.grew = make(chan struct{})
	return nil
}

// trim drops the oldest batches beyond the retention limits. Call with l.mu
// held.
func (l *eventLog) trim(now time.Time) {
	cutoff := now.Add(-l.maxAge)
	drop := 0
	for drop < len(l.batches) {
		b := l.batches[drop]
		over := len(l.batches)-drop > l.maxBatches || l.bytes > l.maxBytes || b.Time.Before(cutoff)
		if !over {
			break
		}
		l.bytes -= len(b.Data)
		drop++
	}
	if drop > 0 {
		clear(l.batches[:drop])
		l.batches = l.batches[drop:]
	}
}

// startFollower runs f on its own goroutine, unless the log is closed.
func (l *eventLog) startFollower(ctx context.Context, f *follower) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return broker.ErrClosed
	}
	go f.run(ctx)
	return nil
}

// read returns copies of up to limit batches from offset from on (the oldest
// retained if from was dropped) appended at or after since, the offset to
// read from next, and a channel closed when the log grows or closes.
func (l *eventLog) read(from int64, since time.Time, limit int) ([]broker.EventBatch, int64, <-chan struct{}, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, from, nil, false
	}
	l.trim(time.Now())
	i := 0
	if len(l.batches) > 0 {
		i = int(max(from-l.batches[0].Offset, 0))
	}
	if !since.IsZero() {
		i += sort.Search(len(l.batches)-min(i, len(l.batches)), func(j int) bool {
			return !l.batches[i+j].Time.Before(since)
		})
	}
	var out []broker.EventBatch
	for ; i < len(l.batches) && len(out) < limit; i++ {
		b := l.batches[i]
		b.Data = append([]byte(nil), b.Data...)
		out = append(out, b)
	}
	next := l.next
	if i < len(l.batches) {
		next = l.batches[i].Offset
	}
	return out, next, l.grew, true
}

func (l *eventLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	close(l.done)
	l.batches, l.bytes = nil, 0
}
