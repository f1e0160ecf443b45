package amqp

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/broker/amqp/amqptest"
)

// proxied opens a Broker that reaches the shared broker through a TCP proxy
// the test can cut or blackhole. x.url stays the direct URL (for cleanup).
func proxied(t *testing.T, cfg Config) (*bundle, *amqptest.Proxy) {
	t.Helper()
	direct := amqptest.URL(t)
	u, err := url.Parse(direct)
	if err != nil {
		t.Fatal(err)
	}
	proxy := amqptest.NewProxy(t, u.Host)
	cfg.URL = proxy.URL(direct)
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = time.Second
	}
	if cfg.ReconnectInterval == 0 {
		cfg.ReconnectInterval = 100 * time.Millisecond
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 2 * time.Second
	}
	x := setup(t, cfg)
	x.url = direct
	return x, proxy
}

func (s *subscription) generation() uint64 {
	s.link.mu.RLock()
	defer s.link.mu.RUnlock()
	return s.link.gen
}

// After a reconnect, the library reuses the channel object for a new server
// channel whose delivery tags start at 1 again. Settling a delivery of the
// old session must send nothing (it would ack whatever carries the same tag
// now): it fails, the messages are delivered again, each once, and the new
// channel is not closed by an unknown tag.
func TestStaleSettleAfterReconnectIsRefused(t *testing.T) {
	t.Parallel()
	x, proxy := proxied(t, Config{})
	q := x.queue()
	a, b := newMessage(q), newMessage(q)
	x.publish(a, b)
	sub := x.consume(q, 2)
	old := []broker.Delivery{receive(t, sub, 5*time.Second), receive(t, sub, 5*time.Second)}

	proxy.Cut()
	// The broker requeued both; the subscription consumes again by itself.
	again := []broker.Delivery{receive(t, sub, 20*time.Second), receive(t, sub, 20*time.Second)}
	gen := sub.(*subscription).generation()
	if got := []string{again[0].Message().ID, again[1].Message().ID}; !slices.Contains(got, a.ID) || !slices.Contains(got, b.ID) {
		t.Fatalf("redelivered %v, want %s and %s", got, a.ID, b.ID)
	}
	// The hazard is real: the old deliveries' tags are live on the new channel.
	for i := range old {
		oldTag, newTag := old[i].(*delivery).tag, again[i].(*delivery).tag
		if oldTag != newTag {
			t.Fatalf("tags old %d new %d: expected the new session to reuse tags", oldTag, newTag)
		}
	}

	if err := old[0].Ack(x.ctx); !errors.Is(err, ErrSessionLost) {
		t.Fatalf("Ack of a delivery from the lost session: %v, want ErrSessionLost", err)
	}
	next := old[1].Message().Clone()
	next.Attempt++
	if err := old[1].Retry(x.ctx, next); !errors.Is(err, ErrSessionLost) {
		t.Fatalf("Retry of a delivery from the lost session: %v, want ErrSessionLost", err)
	}
	if err := old[1].Ack(x.ctx); err == nil {
		t.Fatal("second settle after a refused one returned nil")
	}

	// Nothing was acked: the new deliveries are still ours to settle, once.
	for _, d := range again {
		if err := d.Ack(x.ctx); err != nil {
			t.Fatalf("Ack on the new session: %v", err)
		}
	}
	expectNone(t, sub, 500*time.Millisecond) // the refused Retry published nothing
	eventually(t, 5*time.Second, func() bool { return x.stats(q).Ready == 0 }, "queue empty")

	// The channel survived (an unknown delivery tag would have closed it).
	c := newMessage(q)
	x.publish(c)
	if d := receive(t, sub, 5*time.Second); d.Message().ID != c.ID {
		t.Fatalf("got %s, want %s", d.Message().ID, c.ID)
	} else if err := d.Ack(x.ctx); err != nil {
		t.Fatal(err)
	}
	if g := sub.(*subscription).generation(); g != gen {
		t.Fatalf("the consumer's connection or channel was lost again (generation %d -> %d)", gen, g)
	}
}

// While the network is partitioned, Publish returns within its deadline;
// once the connection is declared dead it fails at once; after the
// partition heals, publishing and consuming resume by themselves.
func TestPublishDuringBlackhole(t *testing.T) {
	t.Parallel()
	x, proxy := proxied(t, Config{})
	q := x.queue()
	sub := x.consume(q, 10)
	first := newMessage(q)
	x.publish(first)
	if err := receive(t, sub, 5*time.Second).Ack(x.ctx); err != nil {
		t.Fatal(err)
	}

	proxy.Blackhole()
	lost := newMessage(q)
	ctx, cancel := context.WithTimeout(x.ctx, 500*time.Millisecond)
	start := time.Now()
	err := x.b.Publish(ctx, []*broker.Message{lost})
	cancel()
	took := time.Since(start)
	if err == nil {
		t.Fatal("Publish during a blackhole succeeded")
	}
	if took > 800*time.Millisecond {
		t.Fatalf("Publish took %v with a 500ms deadline", took)
	}
	t.Logf("publish during blackhole: %v after %v", err, took.Round(time.Millisecond))

	pingCtx, cancel := context.WithTimeout(x.ctx, 500*time.Millisecond)
	if err := x.b.Ping(pingCtx); err == nil {
		t.Error("Ping during a blackhole succeeded")
	}
	cancel()

	// The heartbeat (1s here) declares the connection dead within about 3s;
	// from then on Publish fails fast.
	// Messages that may arrive (again): the first one, if its ack was held
	// in the partition, and those of failed publishes.
	unknown := map[string]bool{first.ID: true, lost.ID: true}
	eventually(t, 15*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(x.ctx, 2*time.Second)
		defer cancel()
		start := time.Now()
		m := newMessage(q)
		unknown[m.ID] = true
		err := x.b.Publish(ctx, []*broker.Message{m})
		return errors.Is(err, ErrNotConnected) && time.Since(start) < 100*time.Millisecond
	}, "Publish fails fast with ErrNotConnected")

	proxy.Restore()
	var m *broker.Message
	eventually(t, 30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(x.ctx, 2*time.Second)
		defer cancel()
		m = newMessage(q)
		err := x.b.Publish(ctx, []*broker.Message{m})
		unknown[m.ID] = err != nil
		return err == nil
	}, "Publish works again after the partition healed")
	// Messages of failed publishes may or may not have reached the queue
	// (their outcome was unknown); m must arrive.
	for {
		d := receive(t, sub, 30*time.Second)
		if err := d.Ack(x.ctx); err != nil {
			t.Fatal(err)
		}
		if d.Message().ID == m.ID {
			break
		}
		if !unknown[d.Message().ID] {
			t.Fatalf("unexpected task %s", d.Message().ID)
		}
	}
	if err := x.b.Ping(x.ctx); err != nil {
		t.Fatalf("Ping after recovery: %v", err)
	}
}

// An events follower resumes after a lost connection where it stopped: the
// batch appended meanwhile arrives, nothing arrives twice.
func TestFollowEventsResumesAfterCut(t *testing.T) {
	t.Parallel()
	x, proxy := proxied(t, Config{})
	direct := setup(t, Config{URL: x.url})
	mark := randomHex(8)
	if err := direct.b.AppendEvents(x.ctx, []byte(`["`+mark+`-1"]`)); err != nil {
		t.Fatal(err)
	}
	since := time.Now().Add(-2 * time.Second)
	ctx, cancel := context.WithCancel(x.ctx)
	defer cancel()
	events, err := x.b.FollowEvents(ctx, since)
	if err != nil {
		t.Fatal(err)
	}
	next := func() string {
		t.Helper()
		for {
			select {
			case e, ok := <-events:
				if !ok {
					t.Fatal("events closed")
				}
				if s := string(e.Data); len(s) > 20 && s[2:18] == mark {
					return s
				}
			case <-time.After(30 * time.Second):
				t.Fatal("no event batch within 30s")
			}
		}
	}
	if got := next(); got != `["`+mark+`-1"]` {
		t.Fatalf("first batch %s", got)
	}
	proxy.Cut()
	if err := direct.b.AppendEvents(x.ctx, []byte(`["`+mark+`-2"]`)); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != `["`+mark+`-2"]` {
		t.Fatalf("after the cut got %s, want batch 2 (and batch 1 not again)", got)
	}
	cancel()
	eventually(t, 5*time.Second, func() bool {
		select {
		case _, ok := <-events:
			return !ok
		default:
			return false
		}
	}, "events closed after ctx was cancelled")
}
