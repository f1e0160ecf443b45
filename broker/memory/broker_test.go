package memory_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/broker/memory"
)

// setup returns a fresh broker, closed in cleanup, and the test's context.
func setup(t *testing.T, cfg memory.Config) (*memory.Broker, context.Context) {
	t.Helper()
	b := memory.New(cfg)
	t.Cleanup(func() { _ = b.Close() })
	return b, t.Context()
}

func msg(q, id string) *broker.Message {
	return &broker.Message{ID: id, Kind: "test", Queue: q, Args: []byte(`{}`)}
}

func msgs(q string, ids ...string) []*broker.Message {
	out := make([]*broker.Message, len(ids))
	for i, id := range ids {
		out[i] = msg(q, id)
	}
	return out
}

func mustPublish(t *testing.T, b *memory.Broker, ms ...*broker.Message) {
	t.Helper()
	if err := b.Publish(t.Context(), ms); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

func mustConsume(t *testing.T, b *memory.Broker, q string, prefetch int) broker.Subscription {
	t.Helper()
	sub, err := b.Consume(t.Context(), q, prefetch)
	if err != nil {
		t.Fatalf("Consume: %v", err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return sub
}

func recv(t *testing.T, sub broker.Subscription) broker.Delivery {
	t.Helper()
	select {
	case d, ok := <-sub.Deliveries():
		if !ok {
			t.Fatal("deliveries closed")
		}
		return d
	case <-time.After(5 * time.Second):
		t.Fatal("no delivery within 5s")
	}
	return nil
}

func recvIDs(t *testing.T, sub broker.Subscription, n int) []string {
	t.Helper()
	var out []string
	for range n {
		out = append(out, recv(t, sub).Message().ID)
	}
	return out
}

func wantIDs(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

// Requeued messages come back first, in the order they were first stored,
// whatever order they were requeued in.
func TestRequeueOrder(t *testing.T) {
	t.Parallel()
	b, ctx := setup(t, memory.Config{})
	mustPublish(t, b, msgs("q", "a", "b", "c", "d", "e")...)
	sub := mustConsume(t, b, "q", 3)
	var ds []broker.Delivery
	for range 3 {
		ds = append(ds, recv(t, sub))
	}
	if err := sub.Stop(ctx); err != nil { // so nothing is redelivered at once
		t.Fatal(err)
	}
	for _, i := range []int{2, 0} { // requeue c, then a
		if err := ds[i].Requeue(ctx); err != nil {
			t.Fatal(err)
		}
	}
	wantIDs(t, "after requeueing c then a", recvIDs(t, mustConsume(t, b, "q", 10), 4), "a", "c", "d", "e")
}

// Close puts unsettled deliveries back at the head, in store order, ahead of
// messages never delivered.
func TestCloseOrder(t *testing.T) {
	t.Parallel()
	b, ctx := setup(t, memory.Config{})
	mustPublish(t, b, msgs("q", "a", "b", "c", "d")...)
	sub := mustConsume(t, b, "q", 3)
	ds := []broker.Delivery{recv(t, sub), recv(t, sub), recv(t, sub)}
	if err := ds[1].Ack(ctx); err != nil { // b done
		t.Fatal(err)
	}
	recv(t, sub) // d, unsettled too
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	sub2 := mustConsume(t, b, "q", 10)
	wantIDs(t, "after Close", recvIDs(t, sub2, 3), "a", "c", "d")
}

// Deliveries buffered for a subscription but never received go back to the
// queue on Stop, so another subscription can have them.
func TestStopReturnsUnreceived(t *testing.T) {
	t.Parallel()
	b, ctx := setup(t, memory.Config{})
	mustPublish(t, b, msgs("q", "a", "b", "c")...)
	sub := mustConsume(t, b, "q", 5)
	if st, _ := b.Stats(ctx, "q"); st.Ready != 0 {
		t.Fatalf("Ready %d with all three buffered, want 0", st.Ready)
	}
	if err := sub.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-sub.Deliveries(); ok {
		t.Fatal("a delivery was left in the channel after Stop")
	}
	if st, _ := b.Stats(ctx, "q"); st.Ready != 3 || st.Consumers != 0 {
		t.Fatalf("Stats after Stop: %+v, want Ready 3, Consumers 0", st)
	}
}

// What the broker hands out and takes in are copies.
func TestDeepCopies(t *testing.T) {
	t.Parallel()
	b, ctx := setup(t, memory.Config{})
	m := msg("q", "a")
	m.Meta = map[string]string{"k": "v"}
	mustPublish(t, b, m)
	sub := mustConsume(t, b, "q", 1)
	d := recv(t, sub)
	if d.Message() == m {
		t.Fatal("Delivery.Message is the published pointer")
	}

	dead := d.Message().Clone()
	dead.DeadReason = "test"
	if err := d.DeadLetter(ctx, dead); err != nil {
		t.Fatal(err)
	}
	dead.Args[0] = 'X'
	dead.Meta["k"] = "changed by caller"
	d.Message().Meta["k"] = "changed by consumer"

	got, err := b.Dead(ctx, "q", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !bytes.Equal(got[0].Args, []byte(`{}`)) || got[0].Meta["k"] != "v" {
		t.Fatalf("stored dead letter changed through a caller's pointer: %+v", got)
	}
	got[0].Meta["k"] = "changed by browser"
	again, _ := b.Dead(ctx, "q", 1000)
	if again[0].Meta["k"] != "v" {
		t.Fatal("Dead returned the stored message, not a copy")
	}
}

// Times are kept at millisecond precision, durations in whole milliseconds,
// zero times stay zero: what the wire format carries.
func TestNormalizesLikeTheWire(t *testing.T) {
	t.Parallel()
	b, _ := setup(t, memory.Config{})
	at := time.Date(2030, 1, 2, 3, 4, 5, 678_901_234, time.UTC)
	m := msg("q", "a")
	m.EnqueuedAt, m.FailedAt = at, at
	m.Timeout = 1500*time.Millisecond + 999*time.Microsecond
	m.RunAt = time.Now().Add(-time.Second).Add(123 * time.Microsecond)
	mustPublish(t, b, m)
	got := recv(t, mustConsume(t, b, "q", 1)).Message()
	if want := at.Truncate(time.Millisecond); !got.EnqueuedAt.Equal(want) || !got.FailedAt.Equal(want) {
		t.Fatalf("times: got %v / %v, want %v", got.EnqueuedAt, got.FailedAt, want)
	}
	if got.RunAt.Nanosecond()%int(time.Millisecond) != 0 {
		t.Fatalf("RunAt %v has sub-millisecond precision", got.RunAt)
	}
	if got.Timeout != 1500*time.Millisecond {
		t.Fatalf("Timeout %v, want 1.5s", got.Timeout)
	}
	if !got.DeadAt.IsZero() {
		t.Fatalf("DeadAt %v, want zero", got.DeadAt)
	}
}

// Delayed messages come due in RunAt order; equal RunAts in publish order.
func TestDelayOrder(t *testing.T) {
	t.Parallel()
	b, _ := setup(t, memory.Config{})
	base := time.Now().Add(100 * time.Millisecond)
	var ms []*broker.Message
	for i, off := range []int{50, 0, 30, 30, 10} {
		m := msg("q", fmt.Sprint(i))
		m.RunAt = base.Add(time.Duration(off) * time.Millisecond)
		ms = append(ms, m)
	}
	mustPublish(t, b, ms...)
	sub := mustConsume(t, b, "q", 10)
	wantIDs(t, "due order", recvIDs(t, sub, 5), "1", "4", "2", "3", "0")
}

// A delayed message whose queue was deleted is dropped when due (and logged);
// one whose queue was declared again arrives.
func TestDelayedAfterDeleteQueue(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	b, ctx := setup(t, memory.Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	soon := time.Now().Add(100 * time.Millisecond)
	gone, back := msg("gone", "g"), msg("back", "b")
	gone.RunAt, back.RunAt = soon, soon
	mustPublish(t, b, gone, back)
	for _, q := range []string{"gone", "back"} {
		if err := b.DeleteQueue(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Declare(ctx, "back"); err != nil {
		t.Fatal(err)
	}
	wantIDs(t, "redeclared queue", recvIDs(t, mustConsume(t, b, "back", 1), 1), "b")
	deadline := time.Now().Add(5 * time.Second)
	for !bytes.Contains(logs.Bytes(), []byte("task_id=g")) {
		if time.Now().After(deadline) {
			t.Fatalf("no log line for the dropped message; logs: %s", logs.Bytes())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := b.Stats(ctx, "gone"); !errors.Is(err, broker.ErrQueueNotFound) {
		t.Fatalf("a due message re-created its deleted queue: Stats err %v", err)
	}
}

// DeleteQueue ends the queue's subscriptions with ErrQueueNotFound; their
// deliveries can still be settled.
func TestDeleteQueueEndsSubscriptions(t *testing.T) {
	t.Parallel()
	b, ctx := setup(t, memory.Config{})
	mustPublish(t, b, msgs("q", "a", "b")...)
	sub := mustConsume(t, b, "q", 1)
	d := recv(t, sub)
	if err := b.DeleteQueue(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-sub.Deliveries(); ok {
		t.Fatal("delivery after DeleteQueue")
	}
	if err := sub.Err(); !errors.Is(err, broker.ErrQueueNotFound) {
		t.Fatalf("Err: %v, want ErrQueueNotFound", err)
	}
	if err := d.Requeue(ctx); err != nil {
		t.Fatalf("Requeue after DeleteQueue: %v", err)
	}
	if err := b.Declare(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	if st, _ := b.Stats(ctx, "q"); st.Ready != 0 {
		t.Fatalf("a message of the deleted queue came back: %+v", st)
	}
}

// Broker Close ends subscriptions with ErrClosed.
func TestCloseEndsSubscriptions(t *testing.T) {
	t.Parallel()
	b := memory.New(memory.Config{})
	sub, err := b.Consume(t.Context(), "q", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-sub.Deliveries(); ok {
		t.Fatal("delivery after Close")
	}
	if err := sub.Err(); !errors.Is(err, broker.ErrClosed) {
		t.Fatalf("Err: %v, want ErrClosed", err)
	}
	if err := sub.Close(); err != nil {
		t.Fatalf("subscription Close after broker Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// A settle that fails (done context, invalid target) leaves the delivery
// unsettled: it can still be acked.
func TestFailedSettleLeavesDelivery(t *testing.T) {
	t.Parallel()
	b, ctx := setup(t, memory.Config{})
	mustPublish(t, b, msg("q", "a"))
	d := recv(t, mustConsume(t, b, "q", 1))

	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := d.Ack(done); !errors.Is(err, context.Canceled) {
		t.Fatalf("Ack with a cancelled context: %v", err)
	}
	bad := d.Message().Clone()
	bad.Queue = "no.dots"
	if err := d.Retry(ctx, bad); !errors.Is(err, broker.ErrInvalidQueueName) {
		t.Fatalf("Retry to an invalid queue: %v", err)
	}
	if err := d.DeadLetter(ctx, nil); err == nil {
		t.Fatal("DeadLetter(nil) returned nil")
	}
	if err := d.Ack(ctx); err != nil {
		t.Fatalf("Ack after failed settles: %v", err)
	}
}

// Retry and DeadLetter with no Queue in the message use the delivery's queue.
func TestSettleDefaultsToDeliveryQueue(t *testing.T) {
	t.Parallel()
	b, ctx := setup(t, memory.Config{})
	mustPublish(t, b, msgs("q", "a", "b")...)
	sub := mustConsume(t, b, "q", 2)
	da, db := recv(t, sub), recv(t, sub)
	next := da.Message().Clone()
	next.Queue = ""
	if err := da.Retry(ctx, next); err != nil {
		t.Fatal(err)
	}
	dead := db.Message().Clone()
	dead.Queue = ""
	if err := db.DeadLetter(ctx, dead); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, sub).Message(); got.ID != "a" || got.Queue != "q" {
		t.Fatalf("retried: %s in %q, want a in q", got.ID, got.Queue)
	}
	if st, _ := b.Stats(ctx, "q"); st.Dead != 1 {
		t.Fatalf("Dead %d, want 1", st.Dead)
	}
}

func TestConsumePrefetchBounds(t *testing.T) {
	t.Parallel()
	b, ctx := setup(t, memory.Config{})
	for _, p := range []int{-1, 0, memory.MaxPrefetch + 1} {
		if sub, err := b.Consume(ctx, "q", p); err == nil {
			_ = sub.Close()
			t.Errorf("Consume with prefetch %d succeeded", p)
		}
	}
	sub, err := b.Consume(ctx, "q", memory.MaxPrefetch)
	if err != nil {
		t.Fatalf("Consume with prefetch %d: %v", memory.MaxPrefetch, err)
	}
	_ = sub.Close()
}

func TestNewPanicsOnInvalidConfig(t *testing.T) {
	t.Parallel()
	for _, cfg := range []memory.Config{{EventMaxBatches: -1}, {EventMaxBytes: -1}, {EventMaxAge: -time.Second}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%+v) did not panic", cfg)
				}
			}()
			memory.New(cfg).Close()
		}()
	}
}

// Many publishers, consumers settling at random, and browsers at once: every
// message ends acked or dead exactly once. Run with -race.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	b, ctx := setup(t, memory.Config{})
	const publishers, perPublisher = 4, 250
	const total = publishers * perPublisher
	if err := b.Declare(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		acked = map[string]int{}
		wg    sync.WaitGroup
	)
	for p := range publishers {
		wg.Go(func() {
			for i := range perPublisher {
				m := msg("q", fmt.Sprintf("p%d-%d", p, i))
				if i%10 == 0 {
					m.RunAt = time.Now().Add(time.Duration(rand.IntN(20)) * time.Millisecond)
				}
				if err := b.Publish(ctx, []*broker.Message{m}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	consumed := make(chan struct{})
	for range 3 {
		wg.Go(func() {
			sub, err := b.Consume(ctx, "q", 1+rand.IntN(8))
			if err != nil {
				t.Error(err)
				return
			}
			defer sub.Close()
			for {
				select {
				case d := <-sub.Deliveries():
					var err error
					switch r := rand.IntN(10); {
					case r == 0:
						err = d.Requeue(ctx)
					case r == 1 && d.Message().Attempt == 0:
						next := d.Message().Clone()
						next.Attempt++
						err = d.Retry(ctx, next)
					case r == 2:
						err = d.DeadLetter(ctx, d.Message())
					default:
						err = d.Ack(ctx)
						mu.Lock()
						acked[d.Message().ID]++
						mu.Unlock()
					}
					if err != nil {
						t.Error(err)
						return
					}
				case <-consumed:
					return
				}
			}
		})
	}
	wg.Go(func() {
		for {
			select {
			case <-consumed:
				return
			default:
				if _, err := b.Dead(ctx, "q", 1000); err != nil {
					t.Error(err)
					return
				}
				if _, err := b.Stats(ctx, "q"); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})

	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		st, err := b.Stats(ctx, "q")
		if err == nil && n+st.Dead == total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("acked %d + dead %d, want %d", n, st.Dead, total)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(consumed)
	wg.Wait()
	for id, n := range acked {
		if n != 1 {
			t.Errorf("task %s acked %d times", id, n)
		}
	}
	dead, _ := b.Dead(ctx, "q", 1000)
	for _, m := range dead {
		if acked[m.ID] != 0 {
			t.Errorf("task %s both acked and dead", m.ID)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.buf.Bytes())
}
