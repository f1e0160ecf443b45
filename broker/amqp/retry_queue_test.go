package amqp

import (
	"testing"
	"time"
)

// A valid message whose x-warren-queue header names another queue than the
// one that delivered it (a foreign or hostile producer) is retried into the
// queue that delivered it, as it would be dead-lettered there: a header never
// decides where warren routes a task. Found by the fault-injection suite
// (jobs/internal/faults, scenario 6).
func TestRetryStaysInDeliveringQueue(t *testing.T) {
	t.Parallel()
	x := setup(t, Config{})
	q, other := x.queue(), x.queue()
	if err := x.b.Declare(x.ctx, other); err != nil {
		t.Fatal(err)
	}
	sub := x.consume(q, 1)
	m := newMessage(q)
	pub := encode(m)
	pub.Headers[hQueue] = other
	if err := rawChannel(t, x.url).Publish("", workQueue(q), true, false, pub); err != nil {
		t.Fatal(err)
	}
	d := receive(t, sub, 5*time.Second)
	next := d.Message().Clone()
	next.Attempt++
	next.LastError = "failed once"
	if err := d.Retry(x.ctx, next); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	again := receive(t, sub, 5*time.Second)
	if again.Message().ID != m.ID || again.Message().Attempt != 1 {
		t.Fatalf("got %s attempt %d, want %s attempt 1", again.Message().ID, again.Message().Attempt, m.ID)
	}
	if err := again.Ack(x.ctx); err != nil {
		t.Fatal(err)
	}
	if st := x.stats(other); st.Ready != 0 {
		t.Fatalf("the retry went to queue %s (named by the header): %+v", other, st)
	}
}
