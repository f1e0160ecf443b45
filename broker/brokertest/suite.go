package brokertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/warrenjobs/warren/broker"
)

// Features says what an implementation can be asked to do in the suite.
type Features struct {
	// DelayTolerance is how late a delayed message may arrive after its RunAt
	// (RabbitMQ: 1s). Default (zero): 1s.
	DelayTolerance time.Duration
}

const (
	// waitFor bounds every wait for something that should happen promptly.
	waitFor = 10 * time.Second
	// quiet is how long the suite watches for something that must not happen.
	quiet = 300 * time.Millisecond
	// earlySlack is how early a delayed message may arrive, to allow for
	// clock granularity.
	earlySlack = 10 * time.Millisecond
)

// Run runs every conformance test as a parallel subtest of t. newBroker must
// return a fresh, connected broker; the suite closes it (see the package doc).
func Run(t *testing.T, newBroker func(t *testing.T) broker.Broker, f Features) {
	t.Helper()
	if newBroker == nil {
		t.Fatal("brokertest: newBroker is nil")
	}
	if f.DelayTolerance <= 0 {
		f.DelayTolerance = time.Second
	}
	s := &suite{newBroker: newBroker, features: f}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, s.setup(t))
		})
	}
}

// tests is the conformance suite, in the order Run starts it.
var tests = []struct {
	name string
	run  func(t *testing.T, x *bundle)
}{
	// publish.go
	{"PublishRoundTripsEveryField", testPublishRoundTripsEveryField},
	{"PublishRoundTripsZeroValues", testPublishRoundTripsZeroValues},
	{"PublishManyArriveExactlyOnce", testPublishManyArriveExactlyOnce},
	{"PublishDeclaresQueue", testPublishDeclaresQueue},
	{"PublishEmpty", testPublishEmpty},
	{"PublishCancelledContext", testPublishCancelledContext},
	{"InvalidQueueName", testInvalidQueueName},
	{"PublishReportsOnlyFailedMessages", testPublishReportsOnlyFailedMessages},
	// consume.go
	{"PrefetchRespected", testPrefetchRespected},
	{"AckRemoves", testAckRemoves},
	{"RequeueRedelivers", testRequeueRedelivers},
	{"CloseReturnsUnsettled", testCloseReturnsUnsettled},
	{"StopEndsDeliveriesButAllowsSettling", testStopEndsDeliveries},
	{"ContextCancelEndsDeliveries", testContextCancelEndsDeliveries},
	{"SettleTwiceFails", testSettleTwiceFails},
	{"CompetingConsumers", testCompetingConsumers},
	// delay.go
	{"RetryDelayed", testRetryDelayed},
	{"RetryImmediate", testRetryImmediate},
	{"PublishDelayed", testPublishDelayed},
	{"MixedDelaysNoHeadOfLineBlocking", testMixedDelays},
	// dead.go
	{"DeadLetterKeepsEverything", testDeadLetterKeepsEverything},
	{"DeadBrowseNeverLoses", testDeadBrowseNeverLoses},
	{"DeadBrowseConcurrent", testDeadBrowseConcurrent},
	{"RetryDead", testRetryDead},
	{"DeleteDead", testDeleteDead},
	// queue.go
	{"Stats", testStats},
	{"StatsQueueNotFound", testStatsQueueNotFound},
	{"Purge", testPurge},
	{"DeleteQueue", testDeleteQueue},
	// events.go
	{"EventsReplayThenFollow", testEventsReplayThenFollow},
	{"EventsSince", testEventsSince},
	// lifecycle.go
	{"Ping", testPing},
	{"Closed", testClosed},
}

type suite struct {
	newBroker func(t *testing.T) broker.Broker
	features  Features
}

// bundle is what one subtest works with.
type bundle struct {
	t        *testing.T
	s        *suite
	b        broker.Broker   // the subtest's broker, closed in cleanup
	ctx      context.Context // the subtest's context
	features Features
}

func (s *suite) setup(t *testing.T) *bundle {
	t.Helper()
	return &bundle{t: t, s: s, b: s.fresh(t), ctx: t.Context(), features: s.features}
}

// fresh returns a new broker from newBroker, closed in cleanup.
func (s *suite) fresh(t *testing.T) broker.Broker {
	t.Helper()
	b := s.newBroker(t)
	if b == nil {
		t.Fatal("brokertest: newBroker returned nil")
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// queue returns a unique queue name, deleted (with its dead letters) in cleanup.
// The queue is not declared.
func (x *bundle) queue() string {
	x.t.Helper()
	name := queueName(x.t)
	b, t := x.b, x.t
	t.Cleanup(func() {
		// t.Context is already cancelled when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if err := b.DeleteQueue(ctx, name); err != nil && !errors.Is(err, broker.ErrClosed) {
			t.Errorf("cleanup: DeleteQueue(%q): %v", name, err)
		}
	})
	return name
}

// queueName is "bt-" + a short form of the subtest's name + random hex, at most
// 64 characters from broker.ValidateQueueName's alphabet.
func queueName(t *testing.T) string {
	name := t.Name()
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	short := make([]byte, 0, 24)
	for _, r := range strings.ToLower(name) {
		if len(short) == cap(short) {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			short = append(short, byte(r))
		}
	}
	return "bt-" + string(short) + "-" + randomHex(6)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newID returns a unique task ID.
func newID() string { return "bt-" + randomHex(8) }

// newMessage returns a minimal valid message for q.
func newMessage(q string) *broker.Message {
	return &broker.Message{
		ID:         newID(),
		Kind:       "brokertest.noop",
		Queue:      q,
		Args:       []byte(`{"n":1}`),
		MaxRetries: -1,
		EnqueuedAt: time.Now(),
	}
}

// newMessages returns n minimal messages for q.
func newMessages(q string, n int) []*broker.Message {
	msgs := make([]*broker.Message, n)
	for i := range msgs {
		msgs[i] = newMessage(q)
	}
	return msgs
}

// publish publishes msgs and fails the test if Publish fails.
func (x *bundle) publish(msgs ...*broker.Message) {
	x.t.Helper()
	if err := x.b.Publish(x.ctx, msgs); err != nil {
		x.t.Fatalf("Publish: %v", err)
	}
}

// declare declares q and fails the test if that fails.
func (x *bundle) declare(q string) {
	x.t.Helper()
	if err := x.b.Declare(x.ctx, q); err != nil {
		x.t.Fatalf("Declare(%q): %v", q, err)
	}
}

// consume subscribes to q; the subscription is closed in cleanup.
func (x *bundle) consume(q string, prefetch int) broker.Subscription {
	x.t.Helper()
	sub, err := x.b.Consume(x.ctx, q, prefetch)
	if err != nil {
		x.t.Fatalf("Consume(%q, %d): %v", q, prefetch, err)
	}
	x.t.Cleanup(func() { _ = sub.Close() })
	return sub
}

// stats returns q's figures and fails the test on error.
func (x *bundle) stats(q string) broker.QueueStats {
	x.t.Helper()
	st, err := x.b.Stats(x.ctx, q)
	if err != nil {
		x.t.Fatalf("Stats(%q): %v", q, err)
	}
	return st
}

// waitStats waits until q's figures satisfy ok.
func (x *bundle) waitStats(q string, what string, ok func(broker.QueueStats) bool) {
	x.t.Helper()
	var last broker.QueueStats
	eventually(x.t, func() bool {
		last = x.stats(q)
		return ok(last)
	}, "Stats(%q): want %s, last %+v", q, what, func() any { return last })
}

// dead lists q's dead letters and fails the test on error.
func (x *bundle) dead(q string, limit int) []*broker.Message {
	x.t.Helper()
	msgs, err := x.b.Dead(x.ctx, q, limit)
	if err != nil {
		x.t.Fatalf("Dead(%q, %d): %v", q, limit, err)
	}
	return msgs
}

// deadLetter publishes msgs to q, consumes them and dead-letters each, in
// order, with failure fields filled in. It returns the dead letters as handed
// to DeadLetter.
func (x *bundle) deadLetter(q string, msgs ...*broker.Message) []*broker.Message {
	x.t.Helper()
	x.publish(msgs...)
	sub, err := x.b.Consume(x.ctx, q, 1)
	if err != nil {
		x.t.Fatalf("Consume(%q): %v", q, err)
	}
	defer sub.Close()
	var dead []*broker.Message
	for i := range msgs {
		d := receive(x.t, sub)
		if d.Message().ID != msgs[i].ID {
			x.t.Fatalf("deadLetter: got task %s, want %s (FIFO order)", d.Message().ID, msgs[i].ID)
		}
		m := d.Message().Clone()
		now := time.Now()
		m.Attempt = 3
		m.LastError = "attempt 3 of " + m.ID + ": boom"
		m.Stack = "goroutine 7 [running]:\nexample.com/app.(*Worker).Work()\n\t/app/worker.go:42 +0x1d"
		m.FailedAt = now
		m.DeadReason = "max retries exceeded"
		m.DeadAt = now
		if err := d.DeadLetter(x.ctx, m); err != nil {
			x.t.Fatalf("DeadLetter: %v", err)
		}
		dead = append(dead, m)
	}
	return dead
}

// receive waits for the next delivery on sub.
func receive(t *testing.T, sub broker.Subscription) broker.Delivery {
	t.Helper()
	timer := time.NewTimer(waitFor)
	defer timer.Stop()
	select {
	case d, ok := <-sub.Deliveries():
		if !ok {
			t.Fatalf("deliveries closed while waiting for a delivery (Err: %v)", sub.Err())
		}
		if err := d.DecodeErr(); err != nil {
			t.Fatalf("delivery %s has DecodeErr: %v", d.Message().ID, err)
		}
		return d
	case <-timer.C:
		t.Fatalf("no delivery within %v", waitFor)
	}
	return nil
}

// receiveN waits for n deliveries on sub.
func receiveN(t *testing.T, sub broker.Subscription, n int) []broker.Delivery {
	t.Helper()
	ds := make([]broker.Delivery, 0, n)
	for range n {
		ds = append(ds, receive(t, sub))
	}
	return ds
}

// expectNone checks that nothing arrives on sub for the quiet window. A closed
// Deliveries channel counts as nothing.
func expectNone(t *testing.T, sub broker.Subscription) {
	t.Helper()
	timer := time.NewTimer(quiet)
	defer timer.Stop()
	select {
	case d, ok := <-sub.Deliveries():
		if ok {
			t.Fatalf("unexpected delivery of task %s (attempt %d)", d.Message().ID, d.Message().Attempt)
		}
	case <-timer.C:
	}
}

// expectClosed waits for sub's Deliveries to be closed, failing if a delivery
// arrives first.
func expectClosed(t *testing.T, sub broker.Subscription) {
	t.Helper()
	timer := time.NewTimer(waitFor)
	defer timer.Stop()
	select {
	case d, ok := <-sub.Deliveries():
		if ok {
			t.Fatalf("unexpected delivery of task %s, want Deliveries closed", d.Message().ID)
		}
	case <-timer.C:
		t.Fatalf("Deliveries not closed within %v", waitFor)
	}
}

// eventually polls cond until it holds or waitFor passes. The last argument,
// if a func() any, is called for the failure message's last value.
func eventually(t *testing.T, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	tick := 10 * time.Millisecond
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			for i, a := range args {
				if f, ok := a.(func() any); ok {
					args[i] = f()
				}
			}
			t.Fatalf("after %v: "+format, append([]any{waitFor}, args...)...)
		}
		time.Sleep(tick)
		tick = min(2*tick, 200*time.Millisecond)
	}
}

// ack acks every delivery.
func (x *bundle) ack(ds ...broker.Delivery) {
	x.t.Helper()
	for _, d := range ds {
		if err := d.Ack(x.ctx); err != nil {
			x.t.Fatalf("Ack(%s): %v", d.Message().ID, err)
		}
	}
}

// ids returns the task IDs of msgs.
func ids(msgs []*broker.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.ID
	}
	return out
}

// deliveredIDs returns the task IDs of ds.
func deliveredIDs(ds []broker.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Message().ID
	}
	return out
}
