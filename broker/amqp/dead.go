package amqp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenjobs/warren/broker"
)

// Dead letters live in a classic queue (classic queues have no delivery
// limit, so nothing here can ever make the broker drop one). Every operation
// consumes from it on a fresh channel with manual acks and a prefetch as
// large as what it may hold: it reads at most as many messages as the queue
// held when it started, acks only the ones it removes, and closes the
// channel at the end, which puts everything else back in place (classic
// queues requeue at the original position). Operations on one queue's dead
// letters are serialised within a process, so that concurrent browses all
// see every dead letter; across processes, a dead letter held by one
// operation is invisible to another for its duration.

// maxDeadScan bounds how many dead letters one operation can hold unacked
// (the AMQP prefetch count is 16 bits).
const maxDeadScan = 65535

// deadLocks serialises dead-letter operations per queue.
type deadLocks struct {
	mu sync.Mutex
	m  map[string]sem
}

func (d *deadLocks) lock(ctx context.Context, queue string) (func(), error) {
	d.mu.Lock()
	s, ok := d.m[queue]
	if !ok {
		s = newSem()
		d.m[queue] = s
	}
	d.mu.Unlock()
	if err := s.acquire(ctx); err != nil {
		return nil, err
	}
	return s.release, nil
}

// Dead returns up to limit dead letters of queue, oldest first (at most
// 65535), without removing or reordering any. A dead letter that is not a
// valid warren message is returned as far as it could be read. A dead letter
// RabbitMQ dead-lettered by itself (past the work queue's delivery limit) has
// DeadReason "broker: " and the x-death reason, DeadAt its time.
func (b *Broker) Dead(ctx context.Context, queue string, limit int) ([]*broker.Message, error) {
	var out []*broker.Message
	err := b.scanDead(ctx, queue, func(ch *amqp.Channel, d *amqp.Delivery) (bool, error) {
		if len(out) >= limit {
			return false, nil
		}
		if d == nil {
			return true, nil
		}
		out = append(out, decodeDead(d, queue))
		return len(out) < limit, nil
	})
	return out, err
}

func decodeDead(d *amqp.Delivery, queue string) *broker.Message {
	m, _ := decode(d, queue)
	if m.DeadReason == "" {
		if reason, at, ok := brokerDeath(d.Headers); ok {
			m.DeadReason = "broker: " + reason
			if m.DeadAt.IsZero() {
				m.DeadAt = at
			}
		}
	}
	return m
}

// RetryDead moves dead letters back to the work queue: each is republished
// (confirmed) before it is acked away, so a crash in between leaves a
// duplicate, never a loss. Dead letters that are not valid messages are left
// in place. It scans at most the dead letters present when it starts, and at
// most 65535 that stay.
func (b *Broker) RetryDead(ctx context.Context, queue string, ids []string) (int, error) {
	if ids != nil && len(ids) == 0 {
		return 0, b.usable(queue)
	}
	want := idSet(ids)
	moved := 0
	var batch []*amqp.Delivery
	var msgs []*broker.Message
	flush := func(ch *amqp.Channel) error {
		if len(batch) == 0 {
			return nil
		}
		ds, ms := batch, msgs
		batch, msgs = nil, nil // published at most once, whatever happens
		errs := b.publish(ctx, ms, false)
		var failed []error
		for i, err := range errs {
			if err != nil {
				failed = append(failed, &broker.PublishError{ID: ms[i].ID, Err: err})
				continue
			}
			if err := ch.Ack(ds[i].DeliveryTag, false); err != nil {
				return fmt.Errorf("amqp: remove retried dead letter %s: %w", ms[i].ID, err)
			}
			moved++
		}
		return errors.Join(failed...)
	}
	err := b.scanDead(ctx, queue, func(ch *amqp.Channel, d *amqp.Delivery) (bool, error) {
		if d == nil { // the scan would block: free the window
			return true, flush(ch)
		}
		if !want.match(d.MessageId) {
			return true, nil
		}
		m, derr := decode(d, queue)
		if derr != nil {
			return true, nil
		}
		m.LastError, m.Stack, m.DeadReason = "", "", ""
		m.FailedAt, m.DeadAt, m.RunAt = time.Time{}, time.Time{}, time.Time{}
		m.RetryBase = m.Attempt
		m.Queue = queue
		batch, msgs = append(batch, d), append(msgs, m)
		if len(batch) >= 256 {
			if err := flush(ch); err != nil {
				return false, err
			}
		}
		return !want.done(), nil
	}, flush)
	return moved, err
}

// DeleteDead acks away the dead letters with the given IDs (all for nil).
func (b *Broker) DeleteDead(ctx context.Context, queue string, ids []string) (int, error) {
	if ids != nil && len(ids) == 0 {
		return 0, b.usable(queue)
	}
	want := idSet(ids)
	n := 0
	err := b.scanDead(ctx, queue, func(ch *amqp.Channel, d *amqp.Delivery) (bool, error) {
		if d == nil || !want.match(d.MessageId) {
			return true, nil
		}
		if err := ch.Ack(d.DeliveryTag, false); err != nil {
			return false, fmt.Errorf("amqp: delete dead letter %s: %w", d.MessageId, err)
		}
		n++
		return !want.done(), nil
	})
	return n, err
}

// scanDead consumes queue's dead letters, at most as many as it held at the
// start, and calls visit for each until visit returns false. Before it would
// wait for the next one, it calls visit with a nil delivery (a chance to
// flush acks that free the prefetch window). finish runs before the channel
// is closed, which requeues everything not acked.
func (b *Broker) scanDead(ctx context.Context, queue string,
	visit func(ch *amqp.Channel, d *amqp.Delivery) (bool, error),
	finish ...func(ch *amqp.Channel) error,
) error {
	if err := b.usable(queue); err != nil {
		return err
	}
	unlock, err := b.dead.lock(ctx, queue)
	if err != nil {
		return err
	}
	defer unlock()
	return b.admin.do(ctx, func(ch *amqp.Channel) error {
		q, err := ch.QueueDeclarePassive(deadQueue(queue), true, false, false, false, nil)
		if err != nil {
			return notFound(err, queue)
		}
		total := q.Messages
		if total == 0 {
			return nil
		}
		window := min(total, maxDeadScan)
		if err := ch.Qos(window, 0, false); err != nil {
			return err
		}
		deliveries, err := ch.Consume(deadQueue(queue), "", false, false, false, false, nil)
		if err != nil {
			return notFound(err, queue)
		}
		err = scan(ctx, ch, deliveries, total, visit)
		for _, f := range finish {
			if ferr := f(ch); err == nil {
				err = ferr
			}
		}
		return err
	})
}

func scan(ctx context.Context, ch *amqp.Channel, deliveries <-chan amqp.Delivery, total int,
	visit func(ch *amqp.Channel, d *amqp.Delivery) (bool, error),
) error {
	// Normally all of the (at most window) messages arrive at once. When
	// none is pending, either another process holds some (a concurrent scan)
	// or the window is full of dead letters that stay: after quiet, the scan
	// ends with what it saw.
	const quiet = time.Second
	timer := time.NewTimer(quiet)
	defer timer.Stop()
	for seen := 0; seen < total; seen++ {
		var d amqp.Delivery
		var ok bool
		select {
		case d, ok = <-deliveries:
		default:
			if more, err := visit(ch, nil); err != nil || !more {
				return err
			}
			timer.Reset(quiet)
			select {
			case d, ok = <-deliveries:
			case <-timer.C:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if !ok {
			return errors.New("amqp: dead-letter scan: channel closed")
		}
		more, err := visit(ch, &d)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// ids is a set of task IDs; a nil set matches everything.
type ids struct {
	all  bool
	want map[string]bool
	left int
}

func idSet(list []string) *ids {
	if list == nil {
		return &ids{all: true}
	}
	s := &ids{want: make(map[string]bool, len(list))}
	for _, id := range list {
		if !s.want[id] {
			s.want[id] = true
			s.left++
		}
	}
	return s
}

// match reports whether id is wanted, and counts it as found.
func (s *ids) match(id string) bool {
	if s.all {
		return true
	}
	if s.want[id] {
		s.want[id] = false
		s.left--
		return true
	}
	return false
}

func (s *ids) done() bool { return !s.all && s.left == 0 }
