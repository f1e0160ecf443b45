package amqp

import (
	"errors"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenjobs/warren/broker"
)

// Malformed deliveries (foreign producers, hostile headers) arrive with
// DecodeErr set and what could be read; dead-lettering them works and
// carries none of their headers; nothing loops or crashes.
func TestMalformedDeliveries(t *testing.T) {
	t.Parallel()
	x := setup(t, Config{})
	q := x.queue()
	sub := x.consume(q, 10)
	ch := rawChannel(t, x.url)
	bad := []amqp.Publishing{
		{MessageId: "no-version", Type: "k", Body: []byte(`{}`)},
		{MessageId: "not-json", Type: "k", Body: []byte(`{`), Headers: amqp.Table{hVersion: int64(1)}},
		{MessageId: "wrong-types", Type: "k", Body: []byte(`1`), Headers: amqp.Table{
			hVersion: int64(1), hAttempt: "many", hMeta: []any{"x"},
			"CC": []any{"warren." + q}, "BCC": []any{"warren." + q},
		}},
		{MessageId: "version-9", Type: "k", Body: []byte(`1`), Headers: amqp.Table{hVersion: int64(9)}},
		{Body: []byte(strings.Repeat("\xff", 1000))},
	}
	for _, p := range bad {
		if err := ch.Publish("", workQueue(q), true, false, p); err != nil {
			t.Fatal(err)
		}
	}
	for range bad {
		d := receive(t, sub, 5*time.Second)
		if !errors.Is(d.DecodeErr(), ErrMalformed) {
			t.Fatalf("delivery %q: DecodeErr %v, want ErrMalformed", d.Message().ID, d.DecodeErr())
		}
		if d.Message().Queue != q {
			t.Fatalf("malformed message queue %q, want %q", d.Message().Queue, q)
		}
		dead := d.Message().Clone()
		dead.DeadReason = "malformed: " + d.DecodeErr().Error()
		dead.DeadAt = time.Now()
		if err := d.DeadLetter(x.ctx, dead); err != nil {
			t.Fatalf("DeadLetter of %q: %v", d.Message().ID, err)
		}
	}
	expectNone(t, sub, 300*time.Millisecond)
	got, err := x.b.Dead(x.ctx, q, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(bad) {
		t.Fatalf("Dead: %d letters, want %d", len(got), len(bad))
	}
	for i, m := range got {
		if m.ID != bad[i].MessageId || string(m.Args) != string(bad[i].Body) || !strings.HasPrefix(m.DeadReason, "malformed: ") {
			t.Errorf("dead letter %d: %+v", i, m)
		}
	}
	// RetryDead leaves letters that are not valid messages in place;
	// DeleteDead removes them by ID.
	if n, err := x.b.RetryDead(x.ctx, q, nil); err != nil || n != 0 {
		t.Fatalf("RetryDead: %d, %v; want 0, nil", n, err)
	}
	if n, err := x.b.DeleteDead(x.ctx, q, []string{"not-json"}); err != nil || n != 1 {
		t.Fatalf("DeleteDead: %d, %v; want 1, nil", n, err)
	}
	if st := x.stats(q); st.Dead != len(bad)-1 || st.Ready != 0 {
		t.Fatalf("Stats: %+v", st)
	}
}

// A message that keeps coming back (a worker crashing on it) is
// dead-lettered by the broker past the explicit delivery limit of 50, into
// the dead-letter queue, where Dead says why.
func TestDeliveryLimitDeadLetters(t *testing.T) {
	t.Parallel()
	x := setup(t, Config{})
	q := x.queue()
	m := newMessage(q)
	x.publish(m)
	sub := x.consume(q, 1)
	requeues := 0
	for done := false; !done; {
		select {
		case d, ok := <-sub.Deliveries():
			if !ok {
				t.Fatal("deliveries closed")
			}
			if err := d.Requeue(x.ctx); err != nil {
				t.Fatal(err)
			}
			if requeues++; requeues > 60 {
				t.Fatalf("still delivered after %d requeues", requeues)
			}
		case <-time.After(time.Second):
			// Not delivered again: dead-lettered (asynchronously).
			eventually(t, 5*time.Second, func() bool { return x.stats(q).Dead == 1 }, "dead-lettered")
			done = true
		}
	}
	t.Logf("dead-lettered by the broker after %d requeues", requeues)
	if requeues < 50 {
		t.Fatalf("dead-lettered after %d requeues, want the limit of 50", requeues)
	}
	got, err := x.b.Dead(x.ctx, q, 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("Dead: %v, %v", got, err)
	}
	if got[0].ID != m.ID || got[0].DeadReason != "broker: delivery_limit" || got[0].DeadAt.IsZero() {
		t.Fatalf("dead letter: %+v", got[0])
	}
}

// A subscription whose queue is deleted ends: Deliveries closes and Err
// says the queue is gone.
func TestSubscriptionEndsWhenQueueDeleted(t *testing.T) {
	t.Parallel()
	x := setup(t, Config{})
	q := x.queue()
	sub := x.consume(q, 1)
	if err := x.b.DeleteQueue(x.ctx, q); err != nil {
		t.Fatal(err)
	}
	select {
	case _, ok := <-sub.Deliveries():
		if ok {
			t.Fatal("unexpected delivery")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Deliveries still open 10s after the queue was deleted")
	}
	if err := sub.Err(); !errors.Is(err, broker.ErrQueueNotFound) {
		t.Fatalf("Err: %v, want ErrQueueNotFound", err)
	}
}
