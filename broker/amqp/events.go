package amqp

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenjobs/warren/broker"
)

// hAppendedAt carries an event batch's append time in Unix milliseconds; the
// timestamp property has whole seconds only.
const hAppendedAt = "x-warren-appended-at"

// eventsPrefetch is the credit of an events follower (a stream consumer
// needs one).
const eventsPrefetch = 512

// AppendEvents appends batch to the events stream, confirmed.
func (b *Broker) AppendEvents(ctx context.Context, batch []byte) error {
	if b.isClosed() {
		return broker.ErrClosed
	}
	for attempt := 0; ; attempt++ {
		if err := b.topo.ensureEvents(ctx); err != nil {
			return err
		}
		now := time.Now()
		o := &outgoing{
			id:  "events-" + randomID(),
			key: eventsStream,
			pub: amqp.Publishing{
				Headers:      amqp.Table{hAppendedAt: now.UnixMilli()},
				ContentType:  contentType,
				DeliveryMode: amqp.Persistent,
				Timestamp:    now,
				AppId:        appID,
				Body:         bytes.Clone(batch),
			},
		}
		o.pub.MessageId = o.id
		err := b.pub.send(ctx, []*outgoing{o})[0]
		if errors.Is(err, broker.ErrUnroutable) && attempt == 0 {
			b.topo.forgetAll() // the stream was deleted: declare it again
			continue
		}
		if err != nil {
			return fmt.Errorf("amqp: append events: %w", err)
		}
		return nil
	}
}

func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// FollowEvents replays the retained batches appended at or after since (all
// for the zero time), then follows new ones, on a connection of its own. It
// survives connection loss: it resumes after the last batch it handed over.
// The channel closes when ctx is done or the broker is closed.
func (b *Broker) FollowEvents(ctx context.Context, since time.Time) (<-chan broker.EventBatch, error) {
	if b.isClosed() {
		return nil, broker.ErrClosed
	}
	if err := b.topo.ensureEvents(ctx); err != nil {
		return nil, err
	}
	link, err := openLink(ctx, b.cfg, "events")
	if err != nil {
		return nil, err
	}
	f := &follower{
		b:      b,
		link:   link,
		since:  since,
		out:    make(chan broker.EventBatch, 64),
		doneCh: make(chan struct{}),
		exited: make(chan struct{}),
	}
	c, err := link.start(eventsStream, eventsPrefetch, f.consumeArgs())
	if err != nil {
		link.close()
		return nil, fmt.Errorf("amqp: follow events: %w", err)
	}
	if !b.track(f) {
		link.close()
		return nil, broker.ErrClosed
	}
	go f.run(ctx, c)
	return f.out, nil
}

// follower is one FollowEvents consumer.
type follower struct {
	b      *Broker
	link   *consumerLink
	since  time.Time
	out    chan broker.EventBatch
	doneCh chan struct{} // closed by Close
	exited chan struct{} // closed when run returned (and out is closed)
	once   sync.Once

	next    int64 // offset to resume from, valid when resume
	resumes bool
}

// consumeArgs starts at the first retained batch, at since (the stream
// starts at the chunk holding it, which may hold earlier batches: run skips
// them), or after the last batch handed over.
func (f *follower) consumeArgs() amqp.Table {
	switch {
	case f.resumes:
		return amqp.Table{"x-stream-offset": f.next}
	case f.since.IsZero():
		return amqp.Table{"x-stream-offset": "first"}
	default:
		return amqp.Table{"x-stream-offset": f.since.Truncate(time.Second)}
	}
}

func (f *follower) Close() error {
	f.once.Do(func() { close(f.doneCh) })
	f.link.close()
	<-f.exited
	f.b.forget(f)
	return nil
}

func (f *follower) run(ctx context.Context, c *consumer) {
	defer close(f.exited)
	defer close(f.out)
	defer f.link.close()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	var deliveries <-chan amqp.Delivery
	var gone <-chan struct{}
	var (
		pending  int    // delivered, not acked yet
		lastTag  uint64 // of the last delivery
		ackLater = time.NewTimer(time.Hour)
	)
	ackLater.Stop()
	defer ackLater.Stop()
	ack := func() {
		if pending > 0 && c != nil {
			_ = f.link.settle(c.sess, func(ch *amqp.Channel) error { return ch.Ack(lastTag, true) })
		}
		pending = 0
	}
	use := func(c *consumer) {
		deliveries, gone, pending = c.deliveries, c.sess.gone, 0
	}
	use(c)
	for {
		select {
		case <-ctx.Done():
			go f.Close()
			return
		case <-f.doneCh:
			return

		case d, ok := <-deliveries:
			if !ok {
				c, deliveries, gone = nil, nil, nil
				f.link.signal()
				continue
			}
			// Stream acks only grant credit, and this consumer reads in
			// order: one multiple-ack per 64 deliveries, or after a short
			// pause, acks them all (on the delivering session only, as
			// every settle).
			pending, lastTag = pending+1, d.DeliveryTag
			if pending >= 64 {
				ack()
			} else if pending == 1 {
				ackLater.Reset(50 * time.Millisecond)
			}
			batch, ok := eventBatch(&d)
			if !ok {
				continue
			}
			f.next, f.resumes = batch.Offset+1, true
			if batch.Time.Before(f.since) {
				continue
			}
			select {
			case f.out <- batch:
			case <-ctx.Done():
				go f.Close()
				return
			case <-f.doneCh:
				return
			}

		case <-gone:
			go drain(deliveries)
			c, deliveries, gone = nil, nil, nil

		case <-f.link.kick:
			if c != nil {
				continue
			}
			var err error
			c, err = f.link.start(eventsStream, eventsPrefetch, f.consumeArgs())
			switch {
			case err == nil:
				use(c)
			case errors.Is(err, errLinkEnded), isCode(err, amqp.NotFound):
				return // closed, or the stream was deleted
			default:
				retry.Reset(f.b.cfg.ReconnectInterval)
			}

		case <-ackLater.C:
			ack()

		case <-retry.C:
			f.link.signal()
		}
	}
}

// eventBatch reads a stream delivery; ok is false without a readable offset.
func eventBatch(d *amqp.Delivery) (broker.EventBatch, bool) {
	offset, ok := toInt64(d.Headers["x-stream-offset"])
	if !ok {
		return broker.EventBatch{}, false
	}
	t := d.Timestamp
	if ms, ok := toInt64(d.Headers[hAppendedAt]); ok && ms >= 0 && ms <= maxMillis {
		t = time.UnixMilli(ms)
	}
	return broker.EventBatch{Offset: offset, Time: t, Data: d.Body}, true
}
