package brokertest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/broker/brokertest"
	"github.com/warrenjobs/warren/broker/memory"
)

const faultEnv = "BROKERTEST_FAULT"

// TestFaulty runs the suite against a memory broker with one fault injected.
// TestSuiteCatchesFaults runs it in a child process, which must fail.
func TestFaulty(t *testing.T) {
	fault := os.Getenv(faultEnv)
	if fault == "" {
		t.Skip("run by TestSuiteCatchesFaults")
	}
	brokertest.Run(t, func(t *testing.T) broker.Broker {
		return &faultyBroker{Broker: memory.New(memory.Config{}), fault: fault}
	}, brokertest.Features{DelayTolerance: 500 * time.Millisecond})
}

// A suite that cannot fail is worse than none: each fault below is a plausible
// implementation bug, and the named subtest must catch it.
func TestSuiteCatchesFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child test process per fault")
	}
	cases := []struct{ fault, subtest string }{
		{"none", ""}, // control: the unbroken wrapper passes everything
		{"drop-stack", "PublishRoundTripsEveryField"},
		{"second-precision", "PublishRoundTripsEveryField"},
		{"zero-max-retries-to-default", "PublishRoundTripsZeroValues"},
		{"duplicate-publish", "PublishManyArriveExactlyOnce"},
		{"ignore-ctx", "PublishCancelledContext"},
		{"no-queue-check", "InvalidQueueName"},
		{"lose-unnamed", "PublishReportsOnlyFailedMessages"},
		{"double-prefetch", "PrefetchRespected"},
		{"ack-noop", "AckRemoves"},
		{"requeue-drops", "RequeueRedelivers"},
		{"settle-twice-ok", "SettleTwiceFails"},
		{"stop-noop", "StopEndsDeliveriesButAllowsSettling"},
		{"ignore-run-at", "RetryDelayed"},
		{"ignore-run-at", "PublishDelayed"},
		{"late-delay", "RetryDelayed"},
		{"fifo-delays", "MixedDelaysNoHeadOfLineBlocking"},
		{"retry-keeps-original", "RetryDelayed"},
		{"browse-loses", "DeadBrowseNeverLoses"},
		{"dead-newest-first", "DeadLetterKeepsEverything"},
		{"retry-dead-all", "RetryDead"},
		{"retry-dead-keeps-error", "RetryDead"},
		{"delete-dead-empty-is-all", "DeleteDead"},
		{"purge-counts-zero", "Purge"},
		{"stats-declares", "StatsQueueNotFound"},
		{"events-ignore-since", "EventsSince"},
		{"events-no-replay", "EventsReplayThenFollow"},
		{"closed-plain-error", "Closed"},
	}
	// The children run at once, whatever -parallel says: several of them
	// wait out the suite's 10 s timeout before failing.
	type result struct {
		out []byte
		err error
	}
	results := make([]chan result, len(cases))
	for i, tc := range cases {
		results[i] = make(chan result, 1)
		go func() {
			run := "^TestFaulty$"
			if tc.subtest != "" {
				run += "/^" + tc.subtest + "$"
			}
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run="+run, "-test.count=1", "-test.parallel=64", "-test.v")
			cmd.Env = append(os.Environ(), faultEnv+"="+tc.fault)
			out, err := cmd.CombinedOutput()
			results[i] <- result{out, err}
		}()
	}
	for i, tc := range cases {
		t.Run(tc.fault+"/"+tc.subtest, func(t *testing.T) {
			r := <-results[i]
			if tc.fault == "none" {
				if r.err != nil {
					t.Fatalf("suite failed on the unbroken wrapper: %v\n%s", r.err, r.out)
				}
				return
			}
			if r.err == nil {
				t.Fatalf("suite passed a broker with fault %q", tc.fault)
			}
			if !strings.Contains(string(r.out), "--- FAIL: TestFaulty/"+tc.subtest+" ") {
				t.Fatalf("fault %q not caught by subtest %s:\n%s", tc.fault, tc.subtest, r.out)
			}
		})
	}
}

// faultyBroker wraps a correct broker and breaks it in one way.
type faultyBroker struct {
	broker.Broker
	fault string

	mu        sync.Mutex
	lastRunAt time.Time // fifo-delays
	browses   int       // browse-loses
}

func (b *faultyBroker) Declare(ctx context.Context, q string) error {
	if b.fault == "no-queue-check" && broker.ValidateQueueName(q) != nil {
		return nil
	}
	return b.Broker.Declare(ctx, q)
}

func (b *faultyBroker) Publish(ctx context.Context, msgs []*broker.Message) error {
	switch b.fault {
	case "ignore-ctx":
		ctx = context.Background()
	case "lose-unnamed":
		// A batch with an invalid message silently loses its last message.
		for _, m := range msgs {
			if broker.ValidateQueueName(m.Queue) != nil {
				msgs = msgs[:len(msgs)-1]
				break
			}
		}
	case "fifo-delays":
		// One queue with per-message TTL: nothing leaves before the one ahead.
		b.mu.Lock()
		for i, m := range msgs {
			if m.RunAt.Before(b.lastRunAt) {
				msgs[i] = m.Clone()
				msgs[i].RunAt = b.lastRunAt
			}
			b.lastRunAt = msgs[i].RunAt
		}
		b.mu.Unlock()
	}
	out := make([]*broker.Message, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, b.mangle(m))
		if b.fault == "duplicate-publish" && len(msgs) > 100 && len(out) == 50 {
			out = append(out, m)
		}
	}
	return b.Broker.Publish(ctx, out)
}

// mangle applies message-level faults to a copy of m.
func (b *faultyBroker) mangle(m *broker.Message) *broker.Message {
	if m == nil {
		return nil
	}
	m = m.Clone()
	switch b.fault {
	case "drop-stack":
		m.Stack = ""
	case "second-precision":
		m.EnqueuedAt = m.EnqueuedAt.Truncate(time.Second)
	case "zero-max-retries-to-default":
		if m.MaxRetries == 0 {
			m.MaxRetries = -1
		}
	case "ignore-run-at":
		m.RunAt = time.Time{}
	case "late-delay":
		if !m.RunAt.IsZero() {
			m.RunAt = m.RunAt.Add(time.Second)
		}
	}
	return m
}

func (b *faultyBroker) Consume(ctx context.Context, q string, prefetch int) (broker.Subscription, error) {
	if b.fault == "no-queue-check" && broker.ValidateQueueName(q) != nil {
		return nil, errors.New("some other error")
	}
	if b.fault == "double-prefetch" {
		prefetch *= 2
	}
	sub, err := b.Broker.Consume(ctx, q, prefetch)
	if err != nil {
		return nil, err
	}
	return &faultySub{Subscription: sub, b: b, ch: wrapDeliveries(sub.Deliveries(), b)}, nil
}

func (b *faultyBroker) Stats(ctx context.Context, q string) (broker.QueueStats, error) {
	if b.fault == "stats-declares" {
		if err := b.Broker.Declare(ctx, q); err != nil {
			return broker.QueueStats{}, err
		}
	}
	return b.Broker.Stats(ctx, q)
}

func (b *faultyBroker) Purge(ctx context.Context, q string) (int, error) {
	n, err := b.Broker.Purge(ctx, q)
	if b.fault == "purge-counts-zero" {
		n = 0
	}
	return n, err
}

func (b *faultyBroker) Dead(ctx context.Context, q string, limit int) ([]*broker.Message, error) {
	msgs, err := b.Broker.Dead(ctx, q, limit)
	switch b.fault {
	case "browse-loses":
		// Every tenth browse drops the last dead letter, as a careless
		// get-and-requeue over a delivery limit would.
		b.mu.Lock()
		b.browses++
		n := b.browses
		b.mu.Unlock()
		if n%10 == 0 && len(msgs) > 0 {
			_, _ = b.Broker.DeleteDead(ctx, q, []string{msgs[len(msgs)-1].ID})
		}
	case "dead-newest-first":
		for i, j := 0, len(msgs)-1; i < j; i, j = i+1, j-1 {
			msgs[i], msgs[j] = msgs[j], msgs[i]
		}
	}
	return msgs, err
}

func (b *faultyBroker) RetryDead(ctx context.Context, q string, ids []string) (int, error) {
	switch b.fault {
	case "retry-dead-all":
		ids = nil
	case "retry-dead-keeps-error":
		// Republish the dead letters as they are.
		msgs, err := b.Broker.Dead(ctx, q, 0)
		if err != nil {
			return 0, err
		}
		want := map[string]bool{}
		for _, id := range ids {
			want[id] = true
		}
		var move []*broker.Message
		for _, m := range msgs {
			if ids == nil || want[m.ID] {
				move = append(move, m)
			}
		}
		if err := b.Broker.Publish(ctx, move); err != nil {
			return 0, err
		}
		return b.Broker.DeleteDead(ctx, q, idsOf(move))
	}
	return b.Broker.RetryDead(ctx, q, ids)
}

func (b *faultyBroker) DeleteDead(ctx context.Context, q string, ids []string) (int, error) {
	if b.fault == "delete-dead-empty-is-all" && len(ids) == 0 {
		ids = nil
	}
	return b.Broker.DeleteDead(ctx, q, ids)
}

func (b *faultyBroker) FollowEvents(ctx context.Context, since time.Time) (<-chan broker.EventBatch, error) {
	switch b.fault {
	case "events-ignore-since":
		since = time.Time{}
	case "events-no-replay":
		since = time.Now()
	}
	return b.Broker.FollowEvents(ctx, since)
}

func (b *faultyBroker) Ping(ctx context.Context) error {
	err := b.Broker.Ping(ctx)
	if b.fault == "closed-plain-error" && err != nil {
		return errors.New("closed")
	}
	return err
}

func idsOf(msgs []*broker.Message) []string {
	out := []string{}
	for _, m := range msgs {
		out = append(out, m.ID)
	}
	return out
}

type faultySub struct {
	broker.Subscription
	b  *faultyBroker
	ch <-chan broker.Delivery
}

func (s *faultySub) Deliveries() <-chan broker.Delivery { return s.ch }

func (s *faultySub) Stop(ctx context.Context) error {
	if s.b.fault == "stop-noop" {
		return nil
	}
	return s.Subscription.Stop(ctx)
}

// wrapDeliveries forwards deliveries, wrapped, until in is closed.
func wrapDeliveries(in <-chan broker.Delivery, b *faultyBroker) <-chan broker.Delivery {
	out := make(chan broker.Delivery)
	go func() {
		defer close(out)
		for d := range in {
			out <- &faultyDelivery{Delivery: d, b: b}
		}
	}()
	return out
}

type faultyDelivery struct {
	broker.Delivery
	b       *faultyBroker
	settled bool
}

func (d *faultyDelivery) Ack(ctx context.Context) error {
	if d.b.fault == "ack-noop" {
		return nil
	}
	if d.b.fault == "settle-twice-ok" && d.settled {
		return nil
	}
	d.settled = true
	return d.Delivery.Ack(ctx)
}

func (d *faultyDelivery) Requeue(ctx context.Context) error {
	if d.b.fault == "requeue-drops" {
		return d.Delivery.Ack(ctx)
	}
	return d.Delivery.Requeue(ctx)
}

func (d *faultyDelivery) Retry(ctx context.Context, next *broker.Message) error {
	if d.b.fault == "retry-keeps-original" {
		// Publishes the retry but leaves the original to come back too.
		if err := d.b.Broker.Publish(ctx, []*broker.Message{next}); err != nil {
			return err
		}
		return d.Delivery.Requeue(ctx)
	}
	return d.Delivery.Retry(ctx, d.b.mangle(next))
}
