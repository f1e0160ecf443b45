package amqp

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Close leaves nothing running: no goroutine of this package or of
// amqp091-go survives a Broker that published, consumed, browsed dead
// letters and followed events. Not parallel on purpose: it inspects every
// goroutine of the process, and the sequential phase of the test binary has
// no other test running.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	x := setup(t, Config{})
	q := x.queue()
	x.publish(newMessages(q, 3)...)
	sub := x.consume(q, 2)
	d := receive(t, sub, 5*time.Second)
	if err := d.DeadLetter(x.ctx, d.Message()); err != nil {
		t.Fatal(err)
	}
	if _, err := x.b.Dead(x.ctx, q, 10); err != nil {
		t.Fatal(err)
	}
	if err := x.b.AppendEvents(x.ctx, []byte(`[]`)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(x.ctx)
	defer cancel()
	if _, err := x.b.FollowEvents(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	if len(ours()) == 0 {
		t.Fatal("the detector sees none of the broker's goroutines while it runs")
	}
	if err := x.b.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for left := ours(); len(left) > 0; left = ours() {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines still running 10s after Close:\n%s", len(left), strings.Join(left, "\n\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ours returns the stacks of goroutines running code of this package (other
// than tests) or of amqp091-go.
func ours() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "rabbitmq/amqp091-go") ||
			strings.Contains(g, "warren/broker/amqp.") && !strings.Contains(g, "_test.go") {
			out = append(out, g)
		}
	}
	return out
}

// The same after the connections were lost and recovered once, with a
// subscription that consumed on both sides of the loss.
func TestCloseAfterRecoveryLeavesNoGoroutines(t *testing.T) {
	x, proxy := proxied(t, Config{})
	q := x.queue()
	sub := x.consume(q, 2)
	x.publish(newMessage(q))
	if err := receive(t, sub, 5*time.Second).Ack(x.ctx); err != nil {
		t.Fatal(err)
	}
	proxy.Cut()
	eventually(t, 20*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(x.ctx, time.Second)
		defer cancel()
		return x.b.Publish(ctx, newMessages(q, 1)) == nil
	}, "publishing recovers")
	if err := receive(t, sub, 20*time.Second).Ack(x.ctx); err != nil {
		t.Fatal(err)
	}
	if err := x.b.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for left := ours(); len(left) > 0; left = ours() {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines still running 10s after Close:\n%s", len(left), strings.Join(left, "\n\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
