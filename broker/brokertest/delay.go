package brokertest

import (
	"testing"
	"time"

	"github.com/warrenjobs/warren/broker"
)

// expectOnTime checks that d, received at arrived, came no earlier than runAt
// and no later than runAt plus the implementation's tolerance.
func (x *bundle) expectOnTime(d broker.Delivery, arrived, runAt time.Time) {
	x.t.Helper()
	if early := runAt.Sub(arrived); early > earlySlack {
		x.t.Fatalf("task %s arrived %v before its RunAt", d.Message().ID, early)
	}
	if late := arrived.Sub(runAt); late > x.features.DelayTolerance {
		x.t.Fatalf("task %s arrived %v after its RunAt (tolerance %v)", d.Message().ID, late, x.features.DelayTolerance)
	}
	x.t.Logf("task %s arrived %v after its RunAt", d.Message().ID, arrived.Sub(runAt).Round(time.Millisecond))
}

// Retry with RunAt one second ahead: the delivery is settled at once (prefetch
// 1 is free again), the next attempt is held by the broker (not ready in the
// queue) and arrives on time with next's fields.
func testRetryDelayed(t *testing.T, x *bundle) {
	q := x.queue()
	x.publish(newMessage(q))
	sub := x.consume(q, 1)
	d := receive(t, sub)

	next := d.Message().Clone()
	next.Attempt++
	next.LastError = "temporary failure"
	next.FailedAt = time.Now()
	next.RunAt = time.Now().Add(time.Second)
	if err := d.Retry(x.ctx, next); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	if st := x.stats(q); st.Ready != 0 {
		t.Fatalf("Stats right after Retry: Ready %d, want 0 (the retry is held until RunAt)", st.Ready)
	}
	again := receive(t, sub)
	x.expectOnTime(again, time.Now(), next.RunAt)
	assertMessage(t, next, again.Message())
	x.ack(again)
	expectNone(t, sub)
}

// Retry with a zero RunAt is delivered at once.
func testRetryImmediate(t *testing.T, x *bundle) {
	q := x.queue()
	x.publish(newMessage(q))
	sub := x.consume(q, 1)
	d := receive(t, sub)

	next := d.Message().Clone()
	next.Attempt++
	next.LastError = "retry now"
	next.FailedAt = time.Now()
	next.RunAt = time.Time{}
	retried := time.Now()
	if err := d.Retry(x.ctx, next); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	again := receive(t, sub)
	x.expectOnTime(again, time.Now(), retried)
	assertMessage(t, next, again.Message())
	x.ack(again)
	expectNone(t, sub)
}

// A message published with RunAt two seconds ahead is held, then delivered on
// time.
func testPublishDelayed(t *testing.T, x *bundle) {
	q := x.queue()
	x.declare(q) // measure the delay, not the first declare
	m := newMessage(q)
	m.RunAt = time.Now().Add(2 * time.Second)
	x.publish(m)
	if st := x.stats(q); st.Ready != 0 {
		t.Fatalf("Stats right after a delayed Publish: Ready %d, want 0", st.Ready)
	}
	sub := x.consume(q, 1)
	d := receive(t, sub)
	x.expectOnTime(d, time.Now(), m.RunAt)
	assertMessage(t, m, d.Message())
	x.ack(d)
}

// Delays do not queue behind each other: a 1 s message published after a 2 s
// one arrives first, and each arrives on time.
func testMixedDelays(t *testing.T, x *bundle) {
	q := x.queue()
	x.declare(q) // measure the delays, not the first declare
	now := time.Now()
	long, short := newMessage(q), newMessage(q)
	long.RunAt = now.Add(2 * time.Second)
	short.RunAt = now.Add(time.Second)
	x.publish(long)
	x.publish(short)
	sub := x.consume(q, 2)

	d1 := receive(t, sub)
	at1 := time.Now()
	d2 := receive(t, sub)
	at2 := time.Now()
	assertIDs(t, "arrival order", []string{short.ID, long.ID}, []string{d1.Message().ID, d2.Message().ID})
	x.expectOnTime(d1, at1, short.RunAt)
	x.expectOnTime(d2, at2, long.RunAt)
	x.ack(d1, d2)
}
