package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/warrenjobs/warren/cmd/cli/internal/redact"
)

// This file is the raw amqp091-go side: what a careful program would do with
// the library alone, and the ceiling warren is measured against.

func dialRaw(url, name string) (*amqp091.Connection, error) {
	props := amqp091.NewConnectionProperties()
	props.SetClientConnectionName(name)
	conn, err := amqp091.DialConfig(url, amqp091.Config{Properties: props, Dial: amqp091.DefaultDial(10 * time.Second)})
	if err != nil {
		return nil, fmt.Errorf("bench: connect: %w", redactErr(err))
	}
	return conn, nil
}

// redactErr keeps any URL's password out of an error.
func redactErr(err error) error { return errors.New(redact.Text(err.Error())) }

// confirmChannel opens a channel in confirm mode.
func confirmChannel(conn *amqp091.Connection) (*amqp091.Channel, error) {
	ch, err := conn.Channel()
	if err != nil {
		return nil, err
	}
	if err := ch.Confirm(false); err != nil {
		_ = ch.Close()
		return nil, err
	}
	return ch, nil
}

// window pipelines publishes on one confirm-mode channel with at most size
// confirms outstanding, waiting for the oldest when full.
type window struct {
	ch      *amqp091.Channel
	pending []*amqp091.DeferredConfirmation // ring
	head, n int
}

func newWindow(ch *amqp091.Channel, size int) *window {
	return &window{ch: ch, pending: make([]*amqp091.DeferredConfirmation, size)}
}

func (w *window) publish(ctx context.Context, exchange, key string, p amqp091.Publishing) error {
	if w.n == len(w.pending) {
		if err := w.waitOldest(ctx); err != nil {
			return err
		}
	}
	dc, err := w.ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, false, false, p)
	if err != nil {
		return err
	}
	w.pending[(w.head+w.n)%len(w.pending)] = dc
	w.n++
	return nil
}

func (w *window) waitOldest(ctx context.Context) error {
	dc := w.pending[w.head]
	w.pending[w.head] = nil
	w.head = (w.head + 1) % len(w.pending)
	w.n--
	ok, err := dc.WaitContext(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("publish nacked by the broker")
	}
	return nil
}

// flush waits for every outstanding confirm.
func (w *window) flush(ctx context.Context) error {
	for w.n > 0 {
		if err := w.waitOldest(ctx); err != nil {
			return err
		}
	}
	return nil
}

// rawPublish publishes n plain persistent messages of argsBytes to queue
// through a confirm window of size.
func rawPublish(ctx context.Context, conn *amqp091.Connection, queue string, n, size int) error {
	ch, err := confirmChannel(conn)
	if err != nil {
		return err
	}
	defer ch.Close()
	w := newWindow(ch, size)
	body := rawBody(time.Now())
	for range n {
		p := amqp091.Publishing{DeliveryMode: amqp091.Persistent, ContentType: "application/json", Body: body}
		if err := w.publish(ctx, "", queue, p); err != nil {
			return err
		}
	}
	return w.flush(ctx)
}

// wirePublishing is a warren task in the wire format of WIRE.md, built with
// amqp091-go alone: what another program enqueueing warren tasks would send.
// queue is the logical name; the message goes to warren.<queue>.
func wirePublishing(queue string, headers amqp091.Table, now time.Time, body []byte) amqp091.Publishing {
	return amqp091.Publishing{
		Headers:      headers,
		ContentType:  "application/json",
		DeliveryMode: amqp091.Persistent,
		MessageId:    uuid.NewString(),
		Type:         noop{}.Kind(),
		Timestamp:    now,
		AppId:        "warren",
		Body:         body,
	}
}

func wireHeaders(queue string, now time.Time) amqp091.Table {
	return amqp091.Table{
		"x-warren-version":        int64(1),
		"x-warren-queue":          queue,
		"x-warren-attempt":        int64(0),
		"x-warren-retry-base":     int64(0),
		"x-warren-max-retries":    int64(-1),
		"x-warren-timeout-ms":     int64(0),
		"x-warren-retry-delay-ms": int64(0),
		"x-warren-enqueued-at":    now.UnixMilli(),
	}
}

// prefill publishes n warren tasks (WIRE.md messages) to each of the given
// AMQP queues with raw amqp091-go, so that warren and raw drain identical
// backlogs. wq is the warren logical queue named in the headers. publishers
// channels share the work.
func prefill(ctx context.Context, conn *amqp091.Connection, wq string, queues []string, n, publishers int) error {
	now := time.Now()
	headers := wireHeaders(wq, now)
	body := rawBody(now)
	var wg sync.WaitGroup
	errs := make([]error, publishers)
	for p := range publishers {
		wg.Go(func() {
			ch, err := confirmChannel(conn)
			if err != nil {
				errs[p] = err
				return
			}
			defer ch.Close()
			w := newWindow(ch, confirmWin)
			share := n / publishers
			if p < n%publishers {
				share++
			}
			for range share {
				pub := wirePublishing(wq, headers, now, body)
				for _, q := range queues {
					if err := w.publish(ctx, "", q, pub); err != nil {
						errs[p] = err
						return
					}
				}
			}
			errs[p] = w.flush(ctx)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("prefill: %w", err)
	}
	return nil
}

// rawDrain consumes n messages from queue with prefetch and acks each one,
// and returns the time from the first delivery to the last ack.
func rawDrain(ctx context.Context, url, queue string, prefetch, n int) (time.Duration, error) {
	conn, err := dialRaw(url, "warren bench raw consume")
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return 0, err
	}
	if err := ch.Qos(prefetch, 0, false); err != nil {
		return 0, err
	}
	ds, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		return 0, err
	}
	var first time.Time
	for i := range n {
		select {
		case d, ok := <-ds:
			if !ok {
				return 0, errors.New("raw consumer closed")
			}
			if i == 0 {
				first = time.Now()
			}
			if err := d.Ack(false); err != nil {
				return 0, err
			}
		case <-ctx.Done():
			return 0, fmt.Errorf("raw drain: %d of %d after timeout: %w", i, n, ctx.Err())
		}
	}
	return time.Since(first), nil
}

// rawCallers publishes n messages to queue from callers goroutines, each
// waiting for its message's confirm before the next (as Enqueue callers do),
// over a pool of 4 confirm channels on a connection of their own (as warren
// publishes by default).
func rawCallers(ctx context.Context, url, queue string, n, callers int) error {
	conn, err := dialRaw(url, "warren bench raw publish")
	if err != nil {
		return err
	}
	defer conn.Close()
	chans := make([]*amqp091.Channel, 4)
	for i := range chans {
		if chans[i], err = confirmChannel(conn); err != nil {
			return err
		}
	}
	body := rawBody(time.Now())
	var next atomic.Int64
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				p := amqp091.Publishing{DeliveryMode: amqp091.Persistent, ContentType: "application/json", Body: body}
				dc, err := chans[i%int64(len(chans))].PublishWithDeferredConfirmWithContext(ctx, "", queue, false, false, p)
				if err == nil {
					var ok bool
					if ok, err = dc.WaitContext(ctx); err == nil && !ok {
						err = errors.New("nacked")
					}
				}
				if err != nil {
					errs[c] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
