package brokertest

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/warrenjobs/warren/broker"
)

// fullMessage returns a message with every field set to a non-default value.
// Times carry nanoseconds on purpose: only milliseconds must survive.
func fullMessage(q string) *broker.Message {
	now := time.Now()
	return &broker.Message{
		ID:         newID(),
		Kind:       "brokertest.full",
		Queue:      q,
		Args:       []byte(`{"to":"ada@example.com","n":42,"tags":["a","b"],"text":"żółw 🐢 \"quoted\""}`),
		Attempt:    4,
		RetryBase:  2,
		MaxRetries: 7,
		Timeout:    90*time.Second + 250*time.Millisecond,
		RetryDelay: 1500 * time.Millisecond,
		EnqueuedAt: now.Add(-time.Hour),
		RunAt:      now.Add(-time.Minute), // in the past: due at once
		Meta:       map[string]string{"tenant": "acme", "traceparent": "00-4bf92f-00f067-01", "empty": ""},
		LastError:  "smtp: 421 try again later\nsecond line",
		Stack:      "goroutine 1 [running]:\nmain.main()\n\t/app/main.go:12 +0x1d",
		FailedAt:   now.Add(-30 * time.Second),
		DeadReason: "not really dead: every field must round-trip",
		DeadAt:     now.Add(-10 * time.Second),
	}
}

// Publish then consume returns every field as sent; the broker keeps no alias
// of the caller's message.
func testPublishRoundTripsEveryField(t *testing.T, x *bundle) {
	q := x.queue()
	want := fullMessage(q)
	sent := want.Clone()
	x.publish(sent)
	// The caller may reuse its message once Publish returned.
	sent.Args[0] = '['
	sent.Meta["tenant"] = "changed"
	sent.Attempt = 99

	sub := x.consume(q, 1)
	d := receive(t, sub)
	assertMessage(t, want, d.Message())
	if d.DecodeErr() != nil {
		t.Fatalf("DecodeErr: %v", d.DecodeErr())
	}
	x.ack(d)
}

// Zero values stay zero: no time is invented, MaxRetries 0 stays 0.
func testPublishRoundTripsZeroValues(t *testing.T, x *bundle) {
	q := x.queue()
	want := &broker.Message{ID: newID(), Kind: "brokertest.zero", Queue: q, Args: []byte(`null`)}
	x.publish(want.Clone())
	sub := x.consume(q, 1)
	d := receive(t, sub)
	assertMessage(t, want, d.Message())
	x.ack(d)
}

// One Publish of many messages returns nil, and each arrives exactly once.
func testPublishManyArriveExactlyOnce(t *testing.T, x *bundle) {
	q := x.queue()
	// One batch large enough to be spread over several channels, one small.
	const n = 1000
	msgs := newMessages(q, n)
	x.publish(msgs[:700]...)
	x.publish(msgs[700:]...)

	sub := x.consume(q, 100)
	seen := make(map[string]bool, n)
	for range n {
		d := receive(t, sub)
		id := d.Message().ID
		if seen[id] {
			t.Fatalf("task %s delivered twice", id)
		}
		seen[id] = true
		x.ack(d)
	}
	expectNone(t, sub)
	for _, m := range msgs {
		if !seen[m.ID] {
			t.Fatalf("task %s never delivered", m.ID)
		}
	}
}

// Publish declares the queue it needs.
func testPublishDeclaresQueue(t *testing.T, x *bundle) {
	q := x.queue()
	m := newMessage(q)
	x.publish(m)
	x.waitStats(q, "Ready 1", func(s broker.QueueStats) bool { return s.Ready == 1 })
	sub := x.consume(q, 1)
	d := receive(t, sub)
	assertIDs(t, "delivered", []string{m.ID}, []string{d.Message().ID})
	x.ack(d)
}

// Publishing nothing succeeds.
func testPublishEmpty(t *testing.T, x *bundle) {
	if err := x.b.Publish(x.ctx, nil); err != nil {
		t.Fatalf("Publish(nil): %v", err)
	}
	if err := x.b.Publish(x.ctx, []*broker.Message{}); err != nil {
		t.Fatalf("Publish(empty): %v", err)
	}
}

// Publish with a cancelled context fails, naming the message and the cause.
func testPublishCancelledContext(t *testing.T, x *bundle) {
	q := x.queue()
	x.declare(q)
	ctx, cancel := context.WithCancel(x.ctx)
	cancel()
	m := newMessage(q)
	err := x.b.Publish(ctx, []*broker.Message{m})
	if err == nil {
		t.Fatal("Publish with a cancelled context returned nil")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Publish error %v: want errors.Is context.Canceled", err)
	}
	if !namesTask(err, m.ID) {
		t.Errorf("Publish error %v: want a *broker.PublishError for task %s", err, m.ID)
	}
}

var invalidQueueNames = []string{
	"",
	"has.dot",
	"has space",
	"ünïcode",
	strings.Repeat("q", 65),
}

// Every method taking a queue name rejects an invalid one with
// broker.ErrInvalidQueueName.
func testInvalidQueueName(t *testing.T, x *bundle) {
	if err := broker.ValidateQueueName(strings.Repeat("q", 64)); err != nil {
		t.Fatalf("64 characters must be valid: %v", err)
	}
	for _, q := range invalidQueueNames {
		check := func(op string, err error) {
			t.Helper()
			if !errors.Is(err, broker.ErrInvalidQueueName) {
				t.Errorf("%s(%q): got %v, want errors.Is broker.ErrInvalidQueueName", op, q, err)
			}
		}
		check("Declare", x.b.Declare(x.ctx, q))
		m := newMessage(q)
		err := x.b.Publish(x.ctx, []*broker.Message{m})
		check("Publish", err)
		if err != nil && !namesTask(err, m.ID) {
			t.Errorf("Publish(%q): error %v does not name task %s", q, err, m.ID)
		}
		sub, err := x.b.Consume(x.ctx, q, 1)
		if err == nil {
			_ = sub.Close()
		}
		check("Consume", err)
		_, err = x.b.Stats(x.ctx, q)
		check("Stats", err)
		_, err = x.b.Purge(x.ctx, q)
		check("Purge", err)
		_, err = x.b.Dead(x.ctx, q, 10)
		check("Dead", err)
		_, err = x.b.RetryDead(x.ctx, q, nil)
		check("RetryDead", err)
		_, err = x.b.DeleteDead(x.ctx, q, nil)
		check("DeleteDead", err)
		check("DeleteQueue", x.b.DeleteQueue(x.ctx, q))
	}
}

// A failed Publish names exactly the messages that failed; the others were
// confirmed and arrive.
func testPublishReportsOnlyFailedMessages(t *testing.T, x *bundle) {
	q := x.queue()
	good1, bad, good2 := newMessage(q), newMessage("no.dots.allowed"), newMessage(q)
	err := x.b.Publish(x.ctx, []*broker.Message{good1, bad, good2})
	if !errors.Is(err, broker.ErrInvalidQueueName) {
		t.Fatalf("Publish: got %v, want errors.Is broker.ErrInvalidQueueName", err)
	}
	var pe *broker.PublishError
	if !errors.As(err, &pe) {
		t.Fatalf("Publish: error %v has no *broker.PublishError", err)
	}
	if !namesTask(err, bad.ID) {
		t.Fatalf("Publish: error %v does not name the invalid task %s", err, bad.ID)
	}
	var confirmed []string
	for _, m := range []*broker.Message{good1, good2} {
		if !namesTask(err, m.ID) {
			confirmed = append(confirmed, m.ID)
		}
	}
	sub := x.consume(q, 10)
	ds := receiveN(t, sub, len(confirmed))
	assertSameIDs(t, "messages not named in the error", confirmed, deliveredIDs(ds))
	x.ack(ds...)
}

// namesTask reports whether err holds a *broker.PublishError for task id.
func namesTask(err error, id string) bool {
	for _, pe := range publishErrors(err) {
		if pe.ID == id {
			return true
		}
	}
	return false
}

// publishErrors returns every *broker.PublishError in err's tree.
func publishErrors(err error) []*broker.PublishError {
	var out []*broker.PublishError
	var walk func(error)
	walk = func(err error) {
		if err == nil {
			return
		}
		if pe, ok := err.(*broker.PublishError); ok {
			out = append(out, pe)
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}
