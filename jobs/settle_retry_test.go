package jobs_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/broker/memory"
	"github.com/warrenjobs/warren/jobs"
)

// blockedBroker fails the publish of the first retries and dead letters, the
// way RabbitMQ refuses publishes under a memory alarm while the consumer's
// session lives on (so nothing redelivers the message by itself).
type blockedBroker struct {
	broker.Broker
	retryFails, deadFails atomic.Int32
}

var errAlarm = errors.New("broker blocked publishing (resource alarm)")

func (b *blockedBroker) Consume(ctx context.Context, q string, prefetch int) (broker.Subscription, error) {
	s, err := b.Broker.Consume(ctx, q, prefetch)
	if err != nil {
		return nil, err
	}
	out := make(chan broker.Delivery)
	go func() {
		defer close(out)
		for d := range s.Deliveries() {
			select {
			case out <- &blockedDelivery{Delivery: d, b: b}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return &blockedSubscription{Subscription: s, out: out}, nil
}

type blockedSubscription struct {
	broker.Subscription
	out chan broker.Delivery
}

func (s *blockedSubscription) Deliveries() <-chan broker.Delivery { return s.out }

type blockedDelivery struct {
	broker.Delivery
	b *blockedBroker
}

func (d *blockedDelivery) Retry(ctx context.Context, next *broker.Message) error {
	if d.b.retryFails.Add(-1) >= 0 {
		return &broker.PublishError{ID: next.ID, Err: errAlarm}
	}
	return d.Delivery.Retry(ctx, next)
}

func (d *blockedDelivery) DeadLetter(ctx context.Context, dead *broker.Message) error {
	if d.b.deadFails.Add(-1) >= 0 {
		return &broker.PublishError{ID: dead.ID, Err: errAlarm}
	}
	return d.Delivery.DeadLetter(ctx, dead)
}

// When the publish of a retry or a dead letter fails (a memory alarm blocks
// publishing), the delivery is still held, unsettled, and no broker delivers
// it again while the consumer lives. The runner keeps the attempt's outcome
// and settles again with backoff, without running the handler again: the
// task is retried, then dead-lettered, as if nothing had happened. It used
// to give up and strand the message until the connection died or RabbitMQ's
// consumer timeout (30 min) fired. Found by the fault-injection suite
// (jobs/internal/faults, scenario 4).
func TestSettleRetriedWhenPublishFails(t *testing.T) {
	t.Parallel()
	mem := memory.New(memory.Config{Logger: quiet()})
	t.Cleanup(func() { _ = mem.Close() })
	b := &blockedBroker{Broker: mem}
	b.retryFails.Store(3)
	b.deadFails.Store(2)
	q := uniqueQueue(t, mem)
	var runs atomic.Int32
	w := jobs.NewWorkers()
	jobs.AddWorker(w, jobs.WorkFunc(func(context.Context, *jobs.Job[sleepArgs]) error {
		runs.Add(1)
		return errors.New("always fails")
	}))
	id, err := newClient(t, mem).Enqueue(context.Background(), sleepArgs{},
		&jobs.EnqueueOpts{Queue: q, MaxRetries: 1, RetryDelay: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	startRunner(t, b, w, &jobs.RunnerConfig{Queues: map[string]int{q: 1}, DisableEvents: true})
	dead := deadLetters(t, mem, q, 1, 20*time.Second)
	if dead[0].ID != id || dead[0].Attempt != 2 {
		t.Fatalf("dead letter %s attempt %d, want %s attempt 2", dead[0].ID, dead[0].Attempt, id)
	}
	if n := runs.Load(); n != 2 {
		t.Fatalf("handler ran %d times, want 2 (a failed settle must not run it again)", n)
	}
	if b.retryFails.Load() >= 0 || b.deadFails.Load() >= 0 {
		t.Fatalf("the failing settles were not all tried")
	}
}
