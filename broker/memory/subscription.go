package memory

import (
	"context"
	"fmt"

	"github.com/warrenjobs/warren/broker"
)

// subscription is a consumer of one queue. Its state is guarded by the
// broker's mutex.
//
// Deliveries travel on a channel buffered to prefetch, so the queue hands one
// over without blocking: a delivery in the buffer counts as unsettled, and
// there are never more than prefetch of those.
type subscription struct {
	b         *Broker
	q         *queue
	prefetch  int
	ch        chan broker.Delivery
	unsettled map[*delivery]struct{}
	stopped   bool  // no more deliveries; ch is closed
	closed    bool  // unsettled deliveries went back; settling fails
	err       error // why it ended, if not by Stop or Close
	cancelCtx func() bool
}

var _ broker.Subscription = (*subscription)(nil)

// newSubscription attaches a subscription to q. Call with b.mu held.
func newSubscription(b *Broker, q *queue, prefetch int) *subscription {
	s := &subscription{
		b:         b,
		q:         q,
		prefetch:  prefetch,
		ch:        make(chan broker.Delivery, prefetch),
		unsettled: make(map[*delivery]struct{}),
	}
	q.subs = append(q.subs, s)
	q.dispatch()
	return s
}

// stopOnDone stops s when ctx is done. Call with b.mu held.
func (s *subscription) stopOnDone(ctx context.Context) {
	s.cancelCtx = context.AfterFunc(ctx, func() {
		s.b.mu.Lock()
		defer s.b.mu.Unlock()
		s.stop(nil)
		s.q.dispatch()
	})
}

func (s *subscription) hasRoom() bool { return len(s.unsettled) < s.prefetch }

// deliver hands e to the consumer. Call with b.mu held and hasRoom true.
func (s *subscription) deliver(e entry) {
	d := &delivery{s: s, e: e, view: e.msg.Clone()}
	s.unsettled[d] = struct{}{}
	s.ch <- d // never blocks: len(ch) <= len(unsettled) < prefetch = cap(ch)
}

// stop detaches s from its queue and closes Deliveries, with err as the
// reason it ended (nil for Stop). Deliveries still buffered, never received
// by the consumer, go back to the queue. Call with b.mu held; the caller
// dispatches the queue afterwards.
func (s *subscription) stop(err error) {
	if s.stopped {
		return
	}
	s.stopped, s.err = true, err
	if s.cancelCtx != nil {
		s.cancelCtx()
	}
	s.q.removeSub(s)
drain:
	for {
		select {
		case d := <-s.ch:
			s.giveBack(d.(*delivery))
		default:
			break drain
		}
	}
	close(s.ch)
}

// giveBack settles d by returning its message to the queue. Call with b.mu held.
func (s *subscription) giveBack(d *delivery) {
	d.settled = true
	delete(s.unsettled, d)
	s.q.giveBack(d.e)
}

func (s *subscription) Deliveries() <-chan broker.Delivery { return s.ch }

// Stop ends deliveries; received ones can still be settled until Close.
func (s *subscription) Stop(ctx context.Context) error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.stop(nil)
	s.q.dispatch()
	return nil
}

// Close ends the subscription and returns its unsettled deliveries to the
// head of the queue, in the order they were first stored.
func (s *subscription) Close() error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	s.stop(nil)
	if s.closed {
		return nil
	}
	s.closed = true
	for d := range s.unsettled {
		s.giveBack(d)
	}
	s.q.dispatch()
	return nil
}

func (s *subscription) Err() error {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	return s.err
}

// delivery is one message handed to a subscription. The consumer gets view, a
// copy of its own; the broker keeps e for requeueing.
type delivery struct {
	s       *subscription
	e       entry
	view    *broker.Message
	settled bool
}

var _ broker.Delivery = (*delivery)(nil)

func (d *delivery) Message() *broker.Message { return d.view }
func (d *delivery) DecodeErr() error         { return nil }

// settle runs the settle operation op under the broker's lock after checking
// that d can still be settled. op may refuse by returning an error, leaving d
// unsettled; on nil, d is settled (removed) and the queue dispatched.
func (d *delivery) settle(ctx context.Context, what string, op func() error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memory: %s: %w", what, err)
	}
	s := d.s
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	switch {
	case s.b.closed:
		return fmt.Errorf("memory: %s: %w", what, broker.ErrClosed)
	case d.settled:
		return fmt.Errorf("memory: %s: %w", what, errSettled)
	case s.closed:
		return fmt.Errorf("memory: %s: %w", what, errSubEnded)
	}
	if err := op(); err != nil {
		return fmt.Errorf("memory: %s: %w", what, err)
	}
	d.settled = true
	delete(s.unsettled, d)
	s.q.dispatch()
	return nil
}

func (d *delivery) Ack(ctx context.Context) error {
	return d.settle(ctx, "ack", func() error { return nil })
}

// Retry stores next (a copy), to be delivered at next.RunAt, and removes d.
// An empty next.Queue means d's queue.
func (d *delivery) Retry(ctx context.Context, next *broker.Message) error {
	return d.settle(ctx, "retry", func() error {
		m, err := d.target(next)
		if err != nil {
			return err
		}
		d.s.b.publishLocked(m)
		return nil
	})
}

// DeadLetter stores dead (a copy) with the dead letters of its queue and
// removes d. An empty dead.Queue means d's queue.
func (d *delivery) DeadLetter(ctx context.Context, dead *broker.Message) error {
	return d.settle(ctx, "dead-letter", func() error {
		m, err := d.target(dead)
		if err != nil {
			return err
		}
		q := d.s.b.declareLocked(m.Queue)
		q.dead = append(q.dead, m)
		return nil
	})
}

// target returns the broker's copy of m, bound for d's queue when m names none.
func (d *delivery) target(m *broker.Message) (*broker.Message, error) {
	if m == nil {
		return nil, errNilMsg
	}
	c := normalize(m)
	if c.Queue == "" {
		c.Queue = d.s.q.name
	}
	if err := broker.ValidateQueueName(c.Queue); err != nil {
		return nil, err
	}
	return c, nil
}

// Requeue gives the message back to the head of its queue at once.
func (d *delivery) Requeue(ctx context.Context) error {
	return d.settle(ctx, "requeue", func() error {
		d.s.q.giveBack(d.e)
		return nil
	})
}
