package brokertest

import (
	"errors"
	"testing"
	"time"

	"github.com/warrenjobs/warren/broker"
)

// Ping succeeds on a live broker.
func testPing(t *testing.T, x *bundle) {
	if err := x.b.Ping(x.ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

// After Close every operation fails with broker.ErrClosed, subscriptions end,
// and their unsettled deliveries can no longer be settled.
func testClosed(t *testing.T, x *bundle) {
	// x.b stays open to delete the queue in cleanup; b is the one closed.
	b := x.s.fresh(t)
	q := x.queue()
	if err := b.Publish(x.ctx, newMessages(q, 2)); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	sub, err := b.Consume(x.ctx, q, 1)
	if err != nil {
		t.Fatalf("Consume: %v", err)
	}
	d := receive(t, sub)
	ctx := x.ctx
	ch, err := b.FollowEvents(ctx, time.Now())
	if err != nil {
		t.Fatalf("FollowEvents: %v", err)
	}

	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	expectClosed(t, sub)
	if err := d.Ack(ctx); err == nil {
		t.Error("Ack after broker Close returned nil")
	}
	_ = sub.Close()
	timer := time.NewTimer(waitFor)
	defer timer.Stop()
	for open := true; open; {
		select {
		case _, open = <-ch:
		case <-timer.C:
			t.Fatal("events channel not closed after broker Close")
		}
	}

	check := func(op string, err error) {
		t.Helper()
		if !errors.Is(err, broker.ErrClosed) {
			t.Errorf("%s after Close: got %v, want errors.Is broker.ErrClosed", op, err)
		}
	}
	check("Ping", b.Ping(ctx))
	check("Declare", b.Declare(ctx, q))
	m := newMessage(q)
	err = b.Publish(ctx, []*broker.Message{m})
	check("Publish", err)
	if err != nil && !namesTask(err, m.ID) {
		t.Errorf("Publish after Close: error %v does not name task %s", err, m.ID)
	}
	if sub, err := b.Consume(ctx, q, 1); err == nil {
		_ = sub.Close()
		t.Error("Consume after Close returned nil error")
	} else {
		check("Consume", err)
	}
	_, err = b.Stats(ctx, q)
	check("Stats", err)
	_, err = b.Purge(ctx, q)
	check("Purge", err)
	_, err = b.Dead(ctx, q, 10)
	check("Dead", err)
	_, err = b.RetryDead(ctx, q, nil)
	check("RetryDead", err)
	_, err = b.DeleteDead(ctx, q, nil)
	check("DeleteDead", err)
	check("DeleteQueue", b.DeleteQueue(ctx, q))
	check("AppendEvents", b.AppendEvents(ctx, eventBatch(newID(), 0)))
	_, err = b.FollowEvents(ctx, time.Time{})
	check("FollowEvents", err)

}
