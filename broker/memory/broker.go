package memory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/warrenjobs/warren/broker"
)

// MaxPrefetch is the largest prefetch Consume accepts: AMQP 0-9-1 carries the
// prefetch count in 16 bits, so RabbitMQ allows no more either.
const MaxPrefetch = 65535

var (
	errSettled  = errors.New("delivery already settled")
	errNilMsg   = errors.New("nil message")
	errSubEnded = fmt.Errorf("subscription closed: %w", broker.ErrClosed)
)

// Broker is an in-process broker.Broker. Create it with New; it is safe for
// concurrent use. One mutex guards the queues: every operation is a short
// critical section, so a publish is stored (confirmed) when Publish returns.
type Broker struct {
	log    *slog.Logger
	delays *delayRouter
	events *eventLog

	mu     sync.Mutex
	closed bool
	queues map[string]*queue
	seq    uint64 // orders every message the broker stored, for returns
}

var _ broker.Broker = (*Broker)(nil)

// New returns a running Broker. It panics if cfg is invalid (a negative
// limit): that is a programming error, not a runtime condition.
func New(cfg Config) *Broker {
	if err := cfg.validate(); err != nil {
		panic(err)
	}
	cfg = cfg.withDefaults()
	b := &Broker{
		log:    cfg.Logger,
		queues: make(map[string]*queue),
		events: newEventLog(cfg.EventMaxBatches, cfg.EventMaxBytes, cfg.EventMaxAge),
	}
	b.delays = newDelayRouter(b.deliverDue)
	b.delays.start()
	return b
}

// check returns the error an operation on queue name must fail with, if any:
// a done context, a closed broker or an invalid name. Call with b.mu held.
func (b *Broker) check(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.closed {
		return broker.ErrClosed
	}
	return broker.ValidateQueueName(name)
}

// declareLocked returns queue name, creating it if needed. Call with b.mu held
// and name valid.
func (b *Broker) declareLocked(name string) *queue {
	q := b.queues[name]
	if q == nil {
		q = newQueue(name)
		b.queues[name] = q
	}
	return q
}

// Declare creates the queue (with its dead letters) if it does not exist.
func (b *Broker) Declare(ctx context.Context, queue string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.check(ctx, queue); err != nil {
		return fmt.Errorf("memory: declare: %w", err)
	}
	b.declareLocked(queue)
	return nil
}

// Publish stores msgs (deep copies, times cut to milliseconds like the wire
// format) and returns: a stored message is a confirmed one. Messages whose
// RunAt lies in the future wait in the broker's delay router, not in the queue.
func (b *Broker) Publish(ctx context.Context, msgs []*broker.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	var errs []error
	fail := func(m *broker.Message, err error) {
		id := ""
		if m != nil {
			id = m.ID
		}
		errs = append(errs, &broker.PublishError{ID: id, Err: err})
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range msgs {
		if m == nil {
			fail(m, errNilMsg)
			continue
		}
		if err := b.check(ctx, m.Queue); err != nil {
			fail(m, err)
			continue
		}
		b.publishLocked(normalize(m))
	}
	return errors.Join(errs...)
}

// publishLocked stores m, which the broker owns, in its queue or, when due
// later, in the delay router. Call with b.mu held and m.Queue valid.
func (b *Broker) publishLocked(m *broker.Message) {
	q := b.declareLocked(m.Queue)
	b.seq++
	if m.RunAt.After(time.Now()) {
		b.delays.add(m, b.seq)
		return
	}
	q.push(entry{seq: b.seq, msg: m})
	q.dispatch()
}

// deliverDue moves messages that came due from the delay router to their
// queues. A message whose queue was deleted meanwhile is dropped.
func (b *Broker) deliverDue(msgs []*broker.Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	for _, m := range msgs {
		q := b.queues[m.Queue]
		if q == nil {
			b.log.Warn("memory: dropped a delayed message: its queue was deleted",
				"task_id", m.ID, "kind", m.Kind, "queue", m.Queue)
			continue
		}
		b.seq++
		q.push(entry{seq: b.seq, msg: m})
		q.dispatch()
	}
}

// Consume subscribes to queue, declaring it if needed. prefetch must be
// between 1 and MaxPrefetch.
func (b *Broker) Consume(ctx context.Context, queue string, prefetch int) (broker.Subscription, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.check(ctx, queue); err != nil {
		return nil, fmt.Errorf("memory: consume: %w", err)
	}
	if prefetch < 1 || prefetch > MaxPrefetch {
		return nil, fmt.Errorf("memory: consume %q: prefetch %d outside 1..%d", queue, prefetch, MaxPrefetch)
	}
	s := newSubscription(b, b.declareLocked(queue), prefetch)
	s.stopOnDone(ctx)
	return s, nil
}

// Stats reports the queue's ready messages (returned ones included, delayed
// ones not), active subscriptions and dead letters.
func (b *Broker) Stats(ctx context.Context, queue string) (broker.QueueStats, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	q, err := b.lookup(ctx, queue)
	if err != nil {
		return broker.QueueStats{}, fmt.Errorf("memory: stats: %w", err)
	}
	return broker.QueueStats{Queue: queue, Ready: q.readyLen(), Consumers: len(q.subs), Dead: len(q.dead)}, nil
}

// lookup returns the declared queue name. Call with b.mu held.
func (b *Broker) lookup(ctx context.Context, name string) (*queue, error) {
	if err := b.check(ctx, name); err != nil {
		return nil, err
	}
	q := b.queues[name]
	if q == nil {
		return nil, fmt.Errorf("%w: %q", broker.ErrQueueNotFound, name)
	}
	return q, nil
}

// Purge removes the queue's ready messages. Unsettled deliveries, delayed
// messages and dead letters stay.
func (b *Broker) Purge(ctx context.Context, queue string) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	q, err := b.lookup(ctx, queue)
	if err != nil {
		return 0, fmt.Errorf("memory: purge: %w", err)
	}
	return q.purge(), nil
}

// DeleteQueue deletes the queue, its ready messages and dead letters. Its
// subscriptions end (Err wraps broker.ErrQueueNotFound); settling their
// unsettled deliveries still succeeds but changes nothing. Delayed messages
// bound for it are dropped when they come due, unless it was declared again by
// then. Deleting a queue that does not exist is not an error.
func (b *Broker) DeleteQueue(ctx context.Context, queue string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.check(ctx, queue); err != nil {
		return fmt.Errorf("memory: delete queue: %w", err)
	}
	q := b.queues[queue]
	if q == nil {
		return nil
	}
	delete(b.queues, queue)
	q.delete(fmt.Errorf("memory: queue %q deleted: %w", queue, broker.ErrQueueNotFound))
	return nil
}

// Ping reports ErrClosed after Close, nil otherwise.
func (b *Broker) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return fmt.Errorf("memory: ping: %w", broker.ErrClosed)
	}
	return nil
}

// Close ends every subscription and events follower and discards everything
// the broker holds. Later calls return nil.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	for _, q := range b.queues {
		q.delete(broker.ErrClosed)
	}
	b.queues = nil
	b.mu.Unlock()
	// Without b.mu: the router may be waiting for it in deliverDue.
	b.delays.stop()
	b.events.close()
	return nil
}

// normalize returns a deep copy of m as the wire would carry it: times at
// millisecond precision (zero stays zero), durations in whole milliseconds.
func normalize(m *broker.Message) *broker.Message {
	c := m.Clone()
	for _, t := range []*time.Time{&c.EnqueuedAt, &c.RunAt, &c.FailedAt, &c.DeadAt} {
		if !t.IsZero() {
			*t = time.UnixMilli(t.UnixMilli())
		}
	}
	c.Timeout = c.Timeout.Truncate(time.Millisecond)
	c.RetryDelay = c.RetryDelay.Truncate(time.Millisecond)
	return c
}
