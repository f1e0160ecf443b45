package brokertest

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/warrenjobs/warren/broker"
)

// With prefetch 3 and 10 ready, only 3 deliveries are outstanding until one is
// settled; then exactly one more arrives.
func testPrefetchRespected(t *testing.T, x *bundle) {
	q := x.queue()
	msgs := newMessages(q, 10)
	x.publish(msgs...)
	sub := x.consume(q, 3)
	first := receiveN(t, sub, 3)
	assertIDs(t, "first three", ids(msgs[:3]), deliveredIDs(first))
	expectNone(t, sub)

	x.ack(first[0])
	fourth := receive(t, sub)
	assertIDs(t, "after one ack", ids(msgs[3:4]), []string{fourth.Message().ID})
	expectNone(t, sub)

	// A requeue frees a slot too; the requeued message comes back first.
	if err := first[1].Requeue(x.ctx); err != nil {
		t.Fatalf("Requeue: %v", err)
	}
	again := receive(t, sub)
	assertIDs(t, "after requeue", ids(msgs[1:2]), []string{again.Message().ID})
	expectNone(t, sub)
	x.ack(again, first[2], fourth)
	rest := receiveN(t, sub, 3)
	x.ack(rest...)
}

// Ack removes a message for good: not redelivered to a later subscription, not
// counted as ready.
func testAckRemoves(t *testing.T, x *bundle) {
	q := x.queue()
	msgs := newMessages(q, 3)
	x.publish(msgs...)
	sub := x.consume(q, 10)
	ds := receiveN(t, sub, 3)
	assertIDs(t, "delivered (FIFO)", ids(msgs), deliveredIDs(ds))
	x.ack(ds...)
	if err := sub.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	sub2 := x.consume(q, 10)
	expectNone(t, sub2)
	if st := x.stats(q); st.Ready != 0 {
		t.Fatalf("Stats after acking everything: Ready %d, want 0", st.Ready)
	}
}

// Requeue hands the message back at once, unchanged, even if the consumer
// modified its copy.
func testRequeueRedelivers(t *testing.T, x *bundle) {
	q := x.queue()
	want := fullMessage(q)
	x.publish(want.Clone())
	sub := x.consume(q, 1)
	d := receive(t, sub)
	d.Message().Attempt = 99 // the consumer's copy; the broker's must not change
	d.Message().Meta["tenant"] = "changed"
	if err := d.Requeue(x.ctx); err != nil {
		t.Fatalf("Requeue: %v", err)
	}
	again := receive(t, sub)
	assertMessage(t, want, again.Message())
	x.ack(again)
	expectNone(t, sub)
}

// Closing a subscription returns its unsettled deliveries to the queue: a new
// subscription receives them. Settling one of them afterwards fails.
func testCloseReturnsUnsettled(t *testing.T, x *bundle) {
	q := x.queue()
	msgs := newMessages(q, 3)
	x.publish(msgs...)
	sub := x.consume(q, 10)
	ds := receiveN(t, sub, 3)
	if err := sub.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	expectClosed(t, sub)
	if err := ds[0].Ack(x.ctx); err == nil {
		t.Fatal("Ack after the subscription was closed returned nil; the message went back to the queue")
	}

	sub2 := x.consume(q, 10)
	again := receiveN(t, sub2, 3)
	assertSameIDs(t, "redelivered after Close", ids(msgs), deliveredIDs(again))
	x.ack(again...)
	expectNone(t, sub2)
}

// Stop ends deliveries (the channel closes, nothing new arrives) but deliveries
// already received can still be settled; Close then returns nothing else.
func testStopEndsDeliveries(t *testing.T, x *bundle) {
	q := x.queue()
	msgs := newMessages(q, 2)
	x.publish(msgs...)
	sub := x.consume(q, 1)
	d := receive(t, sub)
	if err := sub.Stop(x.ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	expectClosed(t, sub)
	if err := sub.Err(); err != nil {
		t.Fatalf("Err after Stop: %v, want nil", err)
	}
	x.publish(newMessage(q))
	x.ack(d)
	if err := sub.Close(); err != nil {
		t.Fatalf("Close after Stop: %v", err)
	}

	sub2 := x.consume(q, 10)
	rest := receiveN(t, sub2, 2)
	if rest[0].Message().ID == d.Message().ID || rest[1].Message().ID == d.Message().ID {
		t.Fatalf("task %s was acked after Stop, yet delivered again", d.Message().ID)
	}
	x.ack(rest...)
	expectNone(t, sub2)
}

// Cancelling Consume's context ends deliveries.
func testContextCancelEndsDeliveries(t *testing.T, x *bundle) {
	q := x.queue()
	x.declare(q)
	ctx, cancel := context.WithCancel(x.ctx)
	sub, err := x.b.Consume(ctx, q, 1)
	if err != nil {
		t.Fatalf("Consume: %v", err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	x.publish(newMessage(q))
	x.ack(receive(t, sub))
	cancel()
	expectClosed(t, sub)
}

// A delivery settles once: a second settle of any kind returns an error, has no
// effect (no message published) and leaves the subscription working.
func testSettleTwiceFails(t *testing.T, x *bundle) {
	q := x.queue()
	x.publish(newMessage(q))
	sub := x.consume(q, 1)
	d := receive(t, sub)
	x.ack(d)

	next := d.Message().Clone()
	next.Attempt++
	if err := d.Ack(x.ctx); err == nil {
		t.Error("second Ack returned nil")
	}
	if err := d.Requeue(x.ctx); err == nil {
		t.Error("Requeue after Ack returned nil")
	}
	if err := d.Retry(x.ctx, next); err == nil {
		t.Error("Retry after Ack returned nil")
	}
	if err := d.DeadLetter(x.ctx, next); err == nil {
		t.Error("DeadLetter after Ack returned nil")
	}
	expectNone(t, sub)
	if st := x.stats(q); st.Ready != 0 || st.Dead != 0 {
		t.Fatalf("settles after Ack changed the queue: %+v", st)
	}

	// The subscription still works.
	m := newMessage(q)
	x.publish(m)
	d2 := receive(t, sub)
	assertIDs(t, "after failed settles", []string{m.ID}, []string{d2.Message().ID})
	x.ack(d2)
}

// Two subscriptions on one queue share its messages: each is delivered to one
// of them, once.
func testCompetingConsumers(t *testing.T, x *bundle) {
	q := x.queue()
	x.declare(q)
	subs := []broker.Subscription{x.consume(q, 5), x.consume(q, 5)}
	x.waitStats(q, "Consumers 2", func(s broker.QueueStats) bool { return s.Consumers == 2 })

	const n = 100
	msgs := newMessages(q, n)
	x.publish(msgs...)

	var (
		mu    sync.Mutex
		got   []string
		count [2]int
		wg    sync.WaitGroup
		done  = make(chan struct{})
		errs  = make(chan error, 2)
	)
	for i, sub := range subs {
		wg.Go(func() {
			for {
				select {
				case d, ok := <-sub.Deliveries():
					if !ok {
						errs <- errors.New("deliveries closed early")
						return
					}
					if err := d.Ack(x.ctx); err != nil {
						errs <- err
						return
					}
					mu.Lock()
					got = append(got, d.Message().ID)
					count[i]++
					if len(got) == n {
						close(done)
					}
					mu.Unlock()
				case <-done:
					return
				}
			}
		})
	}
	eventually(t, func() bool {
		select {
		case <-done:
			return true
		case err := <-errs:
			t.Fatalf("consumer: %v", err)
		default:
		}
		return false
	}, "all %d messages delivered", n)
	wg.Wait()
	assertSameIDs(t, "delivered across both subscriptions", ids(msgs), got)
	for _, sub := range subs {
		expectNone(t, sub)
	}
	t.Logf("split between the two subscriptions: %d / %d", count[0], count[1])
}
