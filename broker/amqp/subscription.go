package amqp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenjobs/warren/broker"
)

// errAlreadySettled reports a second settle of a delivery. Nothing is sent:
// acking a delivery tag twice would close the channel.
var errAlreadySettled = errors.New("amqp: delivery already settled")

// subscription is a broker.Subscription: one consumer of a work queue on a
// consumerLink of its own. Its loop (run) starts a consumer whenever the link
// is up and none is running, and forwards deliveries through forward.
type subscription struct {
	b        *Broker
	queue    string
	prefetch int
	link     *consumerLink
	out      chan broker.Delivery

	stopCh   chan struct{} // closed by Stop
	doneCh   chan struct{} // closed by Close
	stopped  chan struct{} // closed when the loop has cancelled the consumer after Stop
	loopDone chan struct{} // closed when the loop returned (and out is closed)

	mu       sync.Mutex
	err      error
	stopping bool
	closing  bool
	acks     *acker // of the current session; set by forward
}

func (b *Broker) newSubscription(ctx context.Context, queue string, prefetch int) (*subscription, error) {
	link, err := openLink(ctx, b.cfg, "consume "+queue)
	if err != nil {
		return nil, err
	}
	s := &subscription{
		b:        b,
		queue:    queue,
		prefetch: prefetch,
		link:     link,
		// Buffered up to the prefetch (which bounds what the broker sends
		// unsettled anyway), so the forwarder hands over without a
		// goroutine switch per delivery.
		out:      make(chan broker.Delivery, prefetch),
		stopCh:   make(chan struct{}),
		doneCh:   make(chan struct{}),
		stopped:  make(chan struct{}),
		loopDone: make(chan struct{}),
	}
	// The first consumer starts here, so that Consume reports a missing
	// queue or a refused consume instead of a subscription that never
	// delivers.
	c, err := link.start(workQueue(queue), prefetch, nil)
	if err != nil {
		link.close()
		return nil, fmt.Errorf("amqp: consume %s: %w", queue, notFound(err, queue))
	}
	go s.run(c)
	go func() {
		select {
		case <-ctx.Done():
			stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = s.Stop(stopCtx)
		case <-s.loopDone:
		}
	}()
	return s, nil
}

func (s *subscription) Deliveries() <-chan broker.Delivery { return s.out }

func (s *subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *subscription) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
}

// Stop cancels the consumer: once Stop returned nil, nothing new is
// delivered. Deliveries in flight still arrive, then Deliveries closes;
// settling what was received keeps working until Close.
func (s *subscription) Stop(ctx context.Context) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	if !s.stopping {
		s.stopping = true
		close(s.stopCh)
	}
	s.mu.Unlock()
	select {
	case <-s.stopped:
		return nil
	case <-s.loopDone:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close ends the subscription: the connection closes and the broker requeues
// every unsettled delivery; settling one afterwards fails.
func (s *subscription) Close() error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		<-s.loopDone
		return nil
	}
	s.closing = true
	close(s.doneCh)
	acks := s.acks
	s.mu.Unlock()
	if acks != nil {
		// The flusher stops on doneCh; then what it held goes out before
		// the connection closes, so nothing acked is delivered again.
		<-acks.done
		acks.flush(true)
	}
	s.link.close()
	<-s.loopDone
	s.b.forget(s)
	return nil
}

// run is the subscription's loop. It owns the current consumer and out.
func (s *subscription) run(c *consumer) {
	defer close(s.loopDone)
	defer close(s.out)
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()

	var fwdDone chan struct{}
	startForward := func() {
		fwdDone = make(chan struct{})
		go s.forward(c, fwdDone)
	}
	startForward()
	stopCh := s.stopCh
	cancelled := false // by the broker; set until a consumer starts again
	for {
		select {
		case <-s.doneCh:
			if fwdDone != nil {
				<-fwdDone
			}
			// Closed: what is still buffered went back to the queue.
			for len(s.out) > 0 {
				select {
				case <-s.out:
				default:
				}
			}
			return

		case <-stopCh:
			stopCh = nil
			if c != nil {
				// Bounded by the connection's heartbeat if the broker does
				// not answer; a lost session has nothing to cancel.
				ctx, cancel := context.WithTimeout(context.Background(), 3*s.b.cfg.Heartbeat)
				_ = s.link.cancel(ctx, c)
				cancel()
			}
			close(s.stopped)
			if fwdDone == nil {
				return
			}

		case <-fwdDone:
			fwdDone = nil
			if s.isStopping() {
				return
			}
			select {
			case <-c.sess.gone:
				// Session lost: start again when the link is up.
			default:
				// The broker cancelled the consumer: the queue was deleted,
				// or it will be consumed again below.
				s.b.cfg.Logger.Warn("amqp: consumer cancelled by the broker", "queue", s.queue)
				cancelled = true
			}
			c = nil
			s.link.signal()

		case <-s.link.kick:
			if c != nil || s.isStopping() {
				continue
			}
			var err error
			c, err = s.link.start(workQueue(s.queue), s.prefetch, nil)
			switch {
			case err == nil:
				cancelled = false
				startForward()
			case errors.Is(err, errLinkEnded):
				s.fail(fmt.Errorf("amqp: consume %s: %w", s.queue, err))
				return
			case isCode(err, amqp.NotFound):
				// The queue is gone; so is the session (the 404 closed the
				// channel). Nothing is left to settle: release the connection.
				s.fail(fmt.Errorf("amqp: consume %s: %w", s.queue, broker.ErrQueueNotFound))
				go s.link.close()
				return
			case cancelled && s.queueGone():
				// The 404 of our consume can be lost in the library's
				// recovery of the channel it closed (which then never
				// reopens): ask on the admin connection instead.
				s.fail(fmt.Errorf("amqp: consume %s: %w", s.queue, broker.ErrQueueNotFound))
				go s.link.close()
				return
			default:
				// Not ready, or lost while starting: the hooks and state
				// listeners kick again; the timer covers anything else.
				retry.Reset(s.b.cfg.ReconnectInterval)
			}

		case <-retry.C:
			s.link.signal()
		}
	}
}

// queueGone reports whether the broker says the subscription's queue does
// not exist.
func (s *subscription) queueGone() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := s.b.Stats(ctx, s.queue)
	return errors.Is(err, broker.ErrQueueNotFound)
}

func (s *subscription) isStopping() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopping || s.closing
}

// forward hands c's deliveries to out until c ends, its session is lost or
// the subscription closes. A delivery of a lost session is dropped: the broker
// requeued it.
func (s *subscription) forward(c *consumer, done chan<- struct{}) {
	defer close(done)
	s.mu.Lock()
	if s.acks == nil || s.acks.sess != c.sess {
		s.acks = newAcker(s.link, c.sess, s.prefetch, s.doneCh)
	}
	acks := s.acks
	s.mu.Unlock()
	for {
		select {
		case d, ok := <-c.deliveries:
			if !ok {
				return
			}
			msg, derr := decode(&d, s.queue)
			del := &delivery{sub: s, sess: c.sess, acks: acks, tag: d.DeliveryTag, msg: msg, derr: derr}
			if derr != nil {
				del.raw = &d
			}
			select {
			case s.out <- del:
			case <-c.sess.gone:
				go drain(c.deliveries)
				return
			case <-s.doneCh:
				return
			}
		case <-c.sess.gone:
			go drain(c.deliveries)
			return
		case <-s.doneCh:
			return
		}
	}
}

// delivery is a broker.Delivery. state: 0 unsettled, 1 settling, 2 settled.
type delivery struct {
	sub   *subscription
	sess  *session
	acks  *acker
	tag   uint64
	msg   *broker.Message
	derr  error
	raw   *amqp.Delivery // kept for a malformed delivery, to dead-letter it as it came
	state atomic.Int32
}

func (d *delivery) Message() *broker.Message { return d.msg }
func (d *delivery) DecodeErr() error         { return d.derr }

func (d *delivery) begin() error {
	if !d.state.CompareAndSwap(0, 1) {
		return errAlreadySettled
	}
	return nil
}

// finish sends the ack or nack f, at most once, on the delivering session.
func (d *delivery) finish(f func(ch *amqp.Channel) error) error {
	err := d.sub.link.settle(d.sess, f)
	d.state.Store(2)
	if errors.Is(err, ErrSessionLost) && d.sub.isClosed() {
		return fmt.Errorf("amqp: settle task %s: %w (%w)", d.msg.ID, broker.ErrClosed, err)
	}
	if err != nil {
		return fmt.Errorf("amqp: settle task %s: %w", d.msg.ID, err)
	}
	return nil
}

// alive reports early that a settle could not succeed, so that Retry and
// DeadLetter do not publish a copy of a message the broker will redeliver.
func (d *delivery) alive() error {
	d.sub.link.mu.RLock()
	ok := d.sub.link.cur == d.sess && d.sess.alive
	d.sub.link.mu.RUnlock()
	if ok {
		return nil
	}
	d.state.Store(2)
	if d.sub.isClosed() {
		return fmt.Errorf("amqp: settle task %s: %w (%w)", d.msg.ID, broker.ErrClosed, ErrSessionLost)
	}
	return fmt.Errorf("amqp: settle task %s: %w", d.msg.ID, ErrSessionLost)
}

func (d *delivery) Ack(ctx context.Context) error {
	if err := d.begin(); err != nil {
		return err
	}
	return d.ack()
}

// ack hands the settled delivery's ack to the session's acker (see acks.go).
func (d *delivery) ack() error {
	if err := d.alive(); err != nil {
		return err
	}
	d.state.Store(2)
	if !d.acks.hold(d.tag) {
		return fmt.Errorf("amqp: settle task %s: %w (%w)", d.msg.ID, broker.ErrClosed, ErrSessionLost)
	}
	return nil
}

func (d *delivery) Requeue(ctx context.Context) error {
	if err := d.begin(); err != nil {
		return err
	}
	err := d.finish(func(ch *amqp.Channel) error { return ch.Nack(d.tag, false, true) })
	if err == nil {
		d.acks.sent(d.tag)
	}
	return err
}

func (d *delivery) Retry(ctx context.Context, next *broker.Message) error {
	if err := d.begin(); err != nil {
		return err
	}
	if err := d.alive(); err != nil {
		return err
	}
	next = next.Clone()
	// Like a dead letter, a retry goes back to the queue that delivered: the
	// queue a message names (its x-warren-queue header, written by whoever
	// published it) never decides where warren routes it.
	next.Queue = d.sub.queue
	if err := d.sub.b.publishOne(ctx, next, false); err != nil {
		d.state.Store(0) // nothing was settled; the caller may settle otherwise
		return err
	}
	return d.ack()
}

func (d *delivery) DeadLetter(ctx context.Context, dead *broker.Message) error {
	if err := d.begin(); err != nil {
		return err
	}
	if err := d.alive(); err != nil {
		return err
	}
	dead = dead.Clone()
	dead.Queue = d.sub.queue // dead letters go to the dead-letter queue of the queue that delivered
	var err error
	if d.raw != nil {
		err = d.sub.b.publishMalformed(ctx, d.raw, dead)
	} else {
		err = d.sub.b.publishOne(ctx, dead, true)
	}
	if err != nil {
		d.state.Store(0)
		return err
	}
	return d.ack()
}

func (s *subscription) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}
