package amqp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/broker/amqp/amqptest"
)

// testLogger logs to the test's output until the test ends.
func testLogger(t testing.TB) *slog.Logger {
	w := &testWriter{w: t.Output()}
	t.Cleanup(w.stop)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	mu      sync.Mutex
	w       io.Writer
	stopped bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return len(p), nil
	}
	return w.w.Write(p)
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
}

// bundle is what one test works with.
type bundle struct {
	t   *testing.T
	ctx context.Context
	url string
	b   *Broker
}

// setup opens a Broker on the shared test broker (or cfg.URL), closed in
// cleanup.
func setup(t *testing.T, cfg Config) *bundle {
	t.Helper()
	if cfg.URL == "" {
		cfg.URL = amqptest.URL(t)
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := Open(ctx, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return &bundle{t: t, ctx: t.Context(), url: cfg.URL, b: b}
}

// queue returns a unique queue name, deleted in cleanup.
func (x *bundle) queue() string {
	x.t.Helper()
	name := queueName(x.t)
	url, t := x.url, x.t
	t.Cleanup(func() { deleteQueue(t, url, name) })
	return name
}

// deleteQueue deletes q's work and dead-letter queues on a connection of its
// own (the test's Broker may be closed, or its connection broken).
func deleteQueue(t testing.TB, url, q string) {
	conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		t.Errorf("cleanup: delete %s: %v", q, err)
		return
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err == nil {
		_, err = ch.QueueDelete(workQueue(q), false, false, false)
	}
	if err == nil {
		_, err = ch.QueueDelete(deadQueue(q), false, false, false)
	}
	if err != nil {
		t.Errorf("cleanup: delete %s: %v", q, err)
	}
}

func queueName(t testing.TB) string {
	name := strings.ToLower(t.Name())
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	var short []byte
	for _, r := range name {
		if len(short) == 20 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			short = append(short, byte(r))
		}
	}
	return "at-" + string(short) + "-" + randomHex(5)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func newMessage(q string) *broker.Message {
	return &broker.Message{
		ID:         "t-" + randomHex(8),
		Kind:       "test.noop",
		Queue:      q,
		Args:       []byte(`{"n":1}`),
		MaxRetries: -1,
		EnqueuedAt: time.Now(),
	}
}

func newMessages(q string, n int) []*broker.Message {
	msgs := make([]*broker.Message, n)
	for i := range msgs {
		msgs[i] = newMessage(q)
	}
	return msgs
}

func (x *bundle) publish(msgs ...*broker.Message) {
	x.t.Helper()
	if err := x.b.Publish(x.ctx, msgs); err != nil {
		x.t.Fatalf("Publish: %v", err)
	}
}

func (x *bundle) consume(q string, prefetch int) broker.Subscription {
	x.t.Helper()
	sub, err := x.b.Consume(x.ctx, q, prefetch)
	if err != nil {
		x.t.Fatalf("Consume(%q): %v", q, err)
	}
	x.t.Cleanup(func() { _ = sub.Close() })
	return sub
}

// receive waits up to wait for the next delivery.
func receive(t *testing.T, sub broker.Subscription, wait time.Duration) broker.Delivery {
	t.Helper()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case d, ok := <-sub.Deliveries():
		if !ok {
			t.Fatalf("deliveries closed (Err: %v)", sub.Err())
		}
		return d
	case <-timer.C:
		t.Fatalf("no delivery within %v", wait)
	}
	return nil
}

// expectNone checks nothing arrives on sub within wait.
func expectNone(t *testing.T, sub broker.Subscription, wait time.Duration) {
	t.Helper()
	select {
	case d, ok := <-sub.Deliveries():
		if ok {
			t.Fatalf("unexpected delivery of %s", d.Message().ID)
		}
	case <-time.After(wait):
	}
}

// eventually polls cond until it holds or wait passes.
func eventually(t *testing.T, wait time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for tick := 10 * time.Millisecond; !cond(); tick = min(2*tick, 200*time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: "+format, append([]any{wait}, args...)...)
		}
		time.Sleep(tick)
	}
}

func (x *bundle) stats(q string) broker.QueueStats {
	x.t.Helper()
	st, err := x.b.Stats(x.ctx, q)
	if err != nil {
		x.t.Fatalf("Stats(%q): %v", q, err)
	}
	return st
}
