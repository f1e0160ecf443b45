package brokertest

import (
	"errors"
	"testing"
	"time"

	"github.com/warrenjobs/warren/broker"
)

// Stats reports ready messages, consumers and dead letters; Declare is
// idempotent.
func testStats(t *testing.T, x *bundle) {
	q := x.queue()
	x.declare(q)
	x.declare(q)
	if st := x.stats(q); st != (broker.QueueStats{Queue: q}) {
		t.Fatalf("Stats of a fresh queue: %+v, want all zero", st)
	}

	x.publish(newMessages(q, 2)...)
	x.waitStats(q, "Ready 2", func(s broker.QueueStats) bool { return s.Ready == 2 })
	sub := x.consume(q, 1)
	x.waitStats(q, "Consumers 1, Ready 1", func(s broker.QueueStats) bool { return s.Consumers == 1 && s.Ready == 1 })
	d := receive(t, sub)
	x.deadLetterDelivery(d)
	x.waitStats(q, "Dead 1", func(s broker.QueueStats) bool { return s.Dead == 1 })
	if err := sub.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	x.waitStats(q, "Consumers 0, Ready 1, Dead 1", func(s broker.QueueStats) bool {
		return s == broker.QueueStats{Queue: q, Ready: 1, Dead: 1}
	})
}

// deadLetterDelivery dead-letters d as it is, with a reason.
func (x *bundle) deadLetterDelivery(d broker.Delivery) {
	x.t.Helper()
	m := d.Message().Clone()
	m.DeadReason, m.DeadAt = "brokertest", time.Now()
	if err := d.DeadLetter(x.ctx, m); err != nil {
		x.t.Fatalf("DeadLetter: %v", err)
	}
}

// Stats on a queue never declared is ErrQueueNotFound.
func testStatsQueueNotFound(t *testing.T, x *bundle) {
	q := x.queue()
	_, err := x.b.Stats(x.ctx, q)
	if !errors.Is(err, broker.ErrQueueNotFound) {
		t.Fatalf("Stats of an undeclared queue: got %v, want errors.Is broker.ErrQueueNotFound", err)
	}
	// Asking must not declare it.
	if _, err := x.b.Stats(x.ctx, q); !errors.Is(err, broker.ErrQueueNotFound) {
		t.Fatalf("second Stats of an undeclared queue: got %v, want errors.Is broker.ErrQueueNotFound", err)
	}
}

// Purge removes the ready messages and says how many; dead letters and
// delayed messages (held by the broker, not in the queue yet) stay.
func testPurge(t *testing.T, x *bundle) {
	q := x.queue()
	dead := x.deadLetter(q, newMessage(q))
	delayed := newMessage(q)
	delayed.RunAt = time.Now().Add(2 * time.Second) // well after the Purge below
	x.publish(delayed)
	x.publish(newMessages(q, 5)...)
	x.waitStats(q, "Ready 5", func(s broker.QueueStats) bool { return s.Ready == 5 })

	n, err := x.b.Purge(x.ctx, q)
	if time.Now().After(delayed.RunAt) {
		t.Fatal("setup took longer than the delay; cannot tell whether Purge removed the delayed message")
	}
	if err != nil || n != 5 {
		t.Fatalf("Purge: %d, %v; want 5, nil", n, err)
	}
	if st := x.stats(q); st.Ready != 0 || st.Dead != 1 {
		t.Fatalf("Stats after Purge: %+v, want Ready 0, Dead 1", st)
	}
	if n, err := x.b.Purge(x.ctx, q); err != nil || n != 0 {
		t.Fatalf("second Purge: %d, %v; want 0, nil", n, err)
	}
	assertIDs(t, "Dead after Purge", ids(dead), ids(x.dead(q, 10)))

	sub := x.consume(q, 10)
	d := receive(t, sub)
	assertIDs(t, "delivered after Purge", []string{delayed.ID}, []string{d.Message().ID})
	x.ack(d)
	expectNone(t, sub)
}

// DeleteQueue removes the queue with its messages and dead letters; deleting
// again is fine; declaring again gives an empty queue.
func testDeleteQueue(t *testing.T, x *bundle) {
	q := x.queue()
	x.deadLetter(q, newMessage(q))
	x.publish(newMessages(q, 3)...)
	x.waitStats(q, "Ready 3, Dead 1", func(s broker.QueueStats) bool { return s.Ready == 3 && s.Dead == 1 })

	if err := x.b.DeleteQueue(x.ctx, q); err != nil {
		t.Fatalf("DeleteQueue: %v", err)
	}
	if _, err := x.b.Stats(x.ctx, q); !errors.Is(err, broker.ErrQueueNotFound) {
		t.Fatalf("Stats after DeleteQueue: got %v, want errors.Is broker.ErrQueueNotFound", err)
	}
	if err := x.b.DeleteQueue(x.ctx, q); err != nil {
		t.Fatalf("DeleteQueue of a deleted queue: %v, want nil", err)
	}
	x.declare(q)
	if st := x.stats(q); st != (broker.QueueStats{Queue: q}) {
		t.Fatalf("Stats after DeleteQueue and Declare: %+v, want all zero", st)
	}
	if got := x.dead(q, 10); len(got) != 0 {
		t.Fatalf("Dead after DeleteQueue and Declare: %v, want none", ids(got))
	}
}
