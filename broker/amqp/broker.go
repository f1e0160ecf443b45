package amqp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenjobs/warren/broker"
)

// Broker is a broker.Broker on RabbitMQ. Open one per process and share it;
// it is safe for concurrent use.
type Broker struct {
	cfg   Config
	pub   *publisher
	admin *admin
	topo  *topology
	dead  *deadLocks

	mu      sync.Mutex
	closed  bool
	closers map[closer]struct{} // subscriptions and event followers
}

type closer interface{ Close() error }

var _ broker.Broker = (*Broker)(nil)

// Open validates cfg, connects the publishing connection and returns the
// Broker. Other connections are made when first needed: one per
// subscription and per events follower, and one for administrative calls.
func Open(ctx context.Context, cfg Config) (*Broker, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	b := &Broker{
		cfg:     cfg,
		admin:   newAdmin(cfg),
		dead:    &deadLocks{m: make(map[string]sem)},
		closers: make(map[closer]struct{}),
	}
	b.topo = newTopology(b.admin)
	pub, err := newPublisher(ctx, cfg, func(err *amqp.Error) {
		// A 404 on a publishing channel: an exchange warren publishes to
		// was deleted. Forget the cache so that it is declared again.
		if err != nil && err.Code == amqp.NotFound {
			b.topo.forgetAll()
		}
	})
	if err != nil {
		return nil, err
	}
	b.pub = pub
	return b, nil
}

func (b *Broker) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}

// track registers c to be closed by Close; false when the broker is closed.
func (b *Broker) track(c closer) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.closers[c] = struct{}{}
	return true
}

func (b *Broker) forget(c closer) {
	b.mu.Lock()
	delete(b.closers, c)
	b.mu.Unlock()
}

// Close closes every connection; subscriptions and event followers end.
// Later calls return broker.ErrClosed.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return broker.ErrClosed
	}
	b.closed = true
	closers := make([]closer, 0, len(b.closers))
	for c := range b.closers {
		closers = append(closers, c)
	}
	b.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range closers {
		wg.Go(func() { _ = c.Close() })
	}
	wg.Go(b.pub.close)
	wg.Go(b.admin.close)
	wg.Wait()
	return nil
}

// Ping reports whether the broker is reachable now: the publishing
// connection is up and not blocked, and a round trip on the administrative
// connection (open and close a channel) succeeds within ctx.
func (b *Broker) Ping(ctx context.Context) error {
	if b.isClosed() {
		return broker.ErrClosed
	}
	if err := b.pub.usable(); err != nil {
		return fmt.Errorf("amqp: ping: %w", err)
	}
	if err := b.admin.do(ctx, func(*amqp.Channel) error { return nil }); err != nil {
		return fmt.Errorf("amqp: ping: %w", err)
	}
	return nil
}

// Declare declares queue's topology (and the delay levels, once per process).
func (b *Broker) Declare(ctx context.Context, queue string) error {
	if err := b.usable(queue); err != nil {
		return err
	}
	return b.topo.ensure(ctx, queue)
}

// usable checks the broker is open and queue a valid name.
func (b *Broker) usable(queue string) error {
	if b.isClosed() {
		return broker.ErrClosed
	}
	return broker.ValidateQueueName(queue)
}

// Consume declares queue's topology and starts a subscription on a
// connection of its own.
func (b *Broker) Consume(ctx context.Context, queue string, prefetch int) (broker.Subscription, error) {
	if err := b.usable(queue); err != nil {
		return nil, err
	}
	if prefetch < 1 || prefetch > 65535 {
		return nil, fmt.Errorf("amqp: prefetch %d: want 1 to 65535", prefetch)
	}
	if err := b.topo.ensure(ctx, queue); err != nil {
		return nil, err
	}
	s, err := b.newSubscription(ctx, queue, prefetch)
	if err != nil {
		return nil, err
	}
	if !b.track(s) {
		_ = s.Close()
		return nil, broker.ErrClosed
	}
	return s, nil
}

// Stats reads queue's figures with passive declares (no management plugin
// needed). Ready counts messages in the work queue; Dead the dead-letter
// queue's messages, except those a browse holds at that moment.
func (b *Broker) Stats(ctx context.Context, queue string) (broker.QueueStats, error) {
	st := broker.QueueStats{Queue: queue}
	if err := b.usable(queue); err != nil {
		return st, err
	}
	err := b.admin.do(ctx, func(ch *amqp.Channel) error {
		q, err := ch.QueueDeclarePassive(workQueue(queue), true, false, false, false, nil)
		if err != nil {
			return notFound(err, queue)
		}
		st.Ready, st.Consumers = q.Messages, q.Consumers
		// A 404 closed the channel; the dead-letter queue needs a live one.
		d, err := ch.QueueDeclarePassive(deadQueue(queue), true, false, false, false, nil)
		if err != nil {
			return notFound(err, queue)
		}
		st.Dead = d.Messages
		return nil
	})
	return st, err
}

// Purge removes the work queue's ready messages; delayed messages still
// waiting in the delay levels and dead letters stay.
func (b *Broker) Purge(ctx context.Context, queue string) (int, error) {
	if err := b.usable(queue); err != nil {
		return 0, err
	}
	var n int
	err := b.admin.do(ctx, func(ch *amqp.Channel) error {
		var err error
		n, err = ch.QueuePurge(workQueue(queue), false)
		return notFound(err, queue)
	})
	return n, err
}

// DeleteQueue deletes the work queue and its dead-letter queue (their delay
// binding goes with the work queue). Deleting a missing queue is no error.
// Delayed messages bound for the queue land, when due, in the
// warren.delay.unroutable queue (see WIRE.md).
func (b *Broker) DeleteQueue(ctx context.Context, queue string) error {
	if err := b.usable(queue); err != nil {
		return err
	}
	b.topo.forgetQueue(queue)
	return b.admin.do(ctx, func(ch *amqp.Channel) error {
		if _, err := ch.QueueDelete(workQueue(queue), false, false, false); err != nil {
			return fmt.Errorf("amqp: delete %s: %w", workQueue(queue), err)
		}
		if _, err := ch.QueueDelete(deadQueue(queue), false, false, false); err != nil {
			return fmt.Errorf("amqp: delete %s: %w", deadQueue(queue), err)
		}
		return nil
	})
}

// Publish publishes msgs with confirms, pipelined on one channel: messages
// due now go to the work queue through the default exchange, later ones to
// the delay levels. A message the broker returns as unroutable (its queue
// was deleted since this process declared it) is published once more after
// declaring the queue again.
func (b *Broker) Publish(ctx context.Context, msgs []*broker.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	errs := b.publish(ctx, msgs, false)
	var joined []error
	for i, err := range errs {
		if err != nil {
			joined = append(joined, &broker.PublishError{ID: msgs[i].ID, Err: err})
		}
	}
	return errors.Join(joined...)
}

// publishOne publishes m (dead: to its queue's dead-letter queue) and
// returns its *broker.PublishError or nil.
func (b *Broker) publishOne(ctx context.Context, m *broker.Message, dead bool) error {
	if err := b.publish(ctx, []*broker.Message{m}, dead)[0]; err != nil {
		return &broker.PublishError{ID: m.ID, Err: err}
	}
	return nil
}

// publishMalformed dead-letters a malformed delivery as it came (see
// encodeMalformed) to dead.Queue's dead-letter queue.
func (b *Broker) publishMalformed(ctx context.Context, d *amqp.Delivery, dead *broker.Message) error {
	o := &outgoing{id: d.MessageId, queue: dead.Queue, key: deadQueue(dead.Queue), pub: encodeMalformed(d, dead.Queue, dead)}
	errs := make([]error, 1)
	if b.isClosed() {
		errs[0] = broker.ErrClosed
	} else {
		b.sendAll(ctx, []*outgoing{o}, errs, true)
	}
	if errs[0] != nil {
		return &broker.PublishError{ID: d.MessageId, Err: errs[0]}
	}
	return nil
}

// publish returns one error per message, nil when confirmed. Dead letters are
// published even when they are not valid messages (a malformed delivery is
// dead-lettered as it could be read), but always to a valid queue's
// dead-letter queue.
func (b *Broker) publish(ctx context.Context, msgs []*broker.Message, dead bool) []error {
	errs := make([]error, len(msgs))
	if b.isClosed() {
		for i := range errs {
			errs[i] = broker.ErrClosed
		}
		return errs
	}
	now := time.Now()
	outs := make([]*outgoing, len(msgs))
	for i, m := range msgs {
		if err := broker.ValidateQueueName(m.Queue); err != nil {
			errs[i] = err
			continue
		}
		if !dead {
			if err := check(m); err != nil {
				errs[i] = err
				continue
			}
		}
		o, err := route(m, now, dead)
		if err != nil {
			errs[i] = err
			continue
		}
		outs[i] = o
	}
	b.sendAll(ctx, outs, errs, true)
	return errs
}

// sendAll declares what outs need, sends them and fills errs (entries whose
// outs[i] is nil are left alone). With again, messages returned as
// unroutable are sent once more after the cache entry of their queue was
// dropped and the queue declared again.
func (b *Broker) sendAll(ctx context.Context, outs []*outgoing, errs []error, again bool) {
	declared := make(map[string]error)
	var batch []*outgoing
	var index []int
	for i, o := range outs {
		if o == nil {
			continue
		}
		err, ok := declared[o.queue]
		if !ok {
			err = b.topo.ensure(ctx, o.queue)
			declared[o.queue] = err
		}
		if err != nil {
			errs[i] = err
			continue
		}
		batch = append(batch, o)
		index = append(index, i)
	}
	if len(batch) == 0 {
		return
	}
	var retry []*outgoing
	for j, err := range b.pub.send(ctx, batch) {
		i := index[j]
		errs[i] = err
		if again && errors.Is(err, broker.ErrUnroutable) {
			b.topo.forgetQueue(outs[i].queue)
			retry = append(retry, outs[i])
			continue
		}
	}
	if len(retry) > 0 && ctx.Err() == nil {
		again := make([]*outgoing, len(outs))
		for i, o := range outs {
			if o != nil && errors.Is(errs[i], broker.ErrUnroutable) {
				again[i] = o
			}
		}
		b.sendAll(ctx, again, errs, false)
	}
}

// route returns the publishing of m: to the dead-letter queue, to the work
// queue through the default exchange when due, or to the delay levels.
func route(m *broker.Message, now time.Time, dead bool) (*outgoing, error) {
	pub := encode(m)
	pub.Body = bytes.Clone(m.Args) // written after Publish may have returned (see publisher.send)
	o := &outgoing{id: m.ID, queue: m.Queue, pub: pub}
	switch secs := delaySeconds(m.RunAt, now); {
	case dead:
		o.key = deadQueue(m.Queue)
	case secs == 0:
		o.key = workQueue(m.Queue)
	case secs > maxDelaySeconds:
		return nil, fmt.Errorf("amqp: run at %v is more than %d s ahead", m.RunAt, maxDelaySeconds)
	default:
		o.exchange = levelName(delayLevels - 1)
		o.key = delayKey(secs, m.Queue)
	}
	return o, nil
}
