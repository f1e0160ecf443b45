package amqp

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenjobs/warren/broker"
)

// rawChannel opens a plain amqp091-go channel on its own connection, for
// looking at what the Broker declared.
func rawChannel(t *testing.T, url string) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	return ch
}

// redeclare declares a queue again with args on a fresh channel; RabbitMQ
// accepts that only when args are those the queue has.
func redeclare(t *testing.T, url, name string, args amqp.Table) error {
	t.Helper()
	_, err := rawChannel(t, url).QueueDeclare(name, true, false, false, false, args)
	return err
}

func TestDelayKey(t *testing.T) {
	t.Parallel()
	// WIRE.md's example.
	if got, want := delayKey(5, "emails"), strings.Repeat("0.", 25)+"1.0.1.emails"; got != want {
		t.Fatalf("delayKey(5): %s, want %s", got, want)
	}
	if got := delayKey(maxDelaySeconds, "q"); got != strings.Repeat("1.", 28)+"q" {
		t.Fatalf("delayKey(max): %s", got)
	}
	if got, want := levelPattern(0, '1'), strings.Repeat("*.", 27)+"1.*"; got != want {
		t.Fatalf("levelPattern(0, 1): %s, want %s", got, want)
	}
	if got, want := levelPattern(27, '0'), "0."+strings.Repeat("*.", 27)+"*"; got != want {
		t.Fatalf("levelPattern(27, 0): %s, want %s", got, want)
	}
	for _, c := range []struct {
		d    time.Duration
		want int64
	}{{-time.Second, 0}, {0, 0}, {time.Nanosecond, 1}, {time.Second, 1}, {1001 * time.Millisecond, 2}} {
		now := time.Now()
		if got := delaySeconds(now.Add(c.d), now); got != c.want {
			t.Errorf("delaySeconds(%v) = %d, want %d", c.d, got, c.want)
		}
	}
}

// The objects exist with exactly WIRE.md's arguments, written out here by
// hand: RabbitMQ accepts a second declaration only with equal arguments, and
// refuses it (406) when one differs.
func TestTopologyMatchesWire(t *testing.T) {
	t.Parallel()
	x := setup(t, Config{})
	q := x.queue()
	if err := x.b.Declare(x.ctx, q); err != nil {
		t.Fatalf("Declare: %v", err)
	}
	work := amqp.Table{
		"x-queue-type":              "quorum",
		"x-delivery-limit":          int64(50),
		"x-dead-letter-exchange":    "",
		"x-dead-letter-routing-key": "warren." + q + ".dead",
		"x-dead-letter-strategy":    "at-least-once",
		"x-overflow":                "reject-publish",
	}
	if err := redeclare(t, x.url, "warren."+q, work); err != nil {
		t.Fatalf("work queue: %v", err)
	}
	work["x-delivery-limit"] = int64(20)
	if err := redeclare(t, x.url, "warren."+q, work); !isCode(err, amqp.PreconditionFailed) {
		t.Fatalf("work queue with another delivery limit: %v, want 406", err)
	}
	if err := redeclare(t, x.url, "warren."+q+".dead", amqp.Table{"x-queue-type": "classic"}); err != nil {
		t.Fatalf("dead-letter queue: %v", err)
	}
	for _, k := range []int{0, 1, 13, 27} {
		next := fmt.Sprintf("warren.delay.%d", k-1)
		if k == 0 {
			next = "warren.delay.deliver"
		}
		args := amqp.Table{
			"x-queue-type":           "quorum",
			"x-message-ttl":          int64(1000) << k,
			"x-dead-letter-exchange": next,
			"x-dead-letter-strategy": "at-least-once",
			"x-overflow":             "reject-publish",
			"x-delivery-limit":       int64(50),
		}
		if err := redeclare(t, x.url, fmt.Sprintf("warren.delay.%d", k), args); err != nil {
			t.Fatalf("level %d: %v", k, err)
		}
	}
	ch := rawChannel(t, x.url)
	for k := range 28 {
		if err := ch.ExchangeDeclare(fmt.Sprintf("warren.delay.%d", k), "topic", true, false, false, false, nil); err != nil {
			t.Fatalf("level exchange %d: %v", k, err)
		}
	}
	ae := amqp.Table{"alternate-exchange": "warren.delay.unroutable"}
	if err := ch.ExchangeDeclare("warren.delay.deliver", "topic", true, false, false, false, ae); err != nil {
		t.Fatalf("deliver exchange: %v", err)
	}
	unroutable := amqp.Table{"x-queue-type": "classic", "x-message-ttl": int64(7 * 24 * 3600 * 1000), "x-max-length": int64(100000)}
	if err := redeclare(t, x.url, "warren.delay.unroutable", unroutable); err != nil {
		t.Fatalf("unroutable queue: %v", err)
	}

	// The delay binding: a key of 28 digits then the queue name, published
	// to the deliver exchange, reaches the work queue.
	if err := ch.Publish("warren.delay.deliver", strings.Repeat("0.", 28)+q, true, false,
		encode(newMessage(q))); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() bool { return x.stats(q).Ready == 1 }, "the deliver binding routes to %s", q)
}

func TestEventsStreamMatchesWire(t *testing.T) {
	t.Parallel()
	x := setup(t, Config{})
	if err := x.b.AppendEvents(x.ctx, []byte(`[]`)); err != nil {
		t.Fatal(err)
	}
	args := amqp.Table{"x-queue-type": "stream", "x-max-age": "7D", "x-max-length-bytes": int64(1000000000)}
	if err := redeclare(t, x.url, "warren.events.stream", args); err != nil {
		t.Fatalf("events stream: %v", err)
	}
}

// Delays of 1, 3 and 7 s, published in mixed order in one call, each arrive
// within a second of due (and not before).
func TestDelaysArriveOnTime(t *testing.T) {
	t.Parallel()
	x := setup(t, Config{})
	q := x.queue()
	sub := x.consume(q, 10)
	now := time.Now()
	var msgs []*broker.Message
	for _, d := range []time.Duration{7 * time.Second, time.Second, 3 * time.Second} {
		m := newMessage(q)
		m.RunAt = now.Add(d)
		msgs = append(msgs, m)
	}
	x.publish(msgs...)
	due := map[string]time.Time{}
	for _, m := range msgs {
		due[m.ID] = m.RunAt
	}
	var order []time.Duration
	for range msgs {
		d := receive(t, sub, 10*time.Second)
		late := time.Since(due[d.Message().ID])
		t.Logf("task due %v after publish arrived %v late", due[d.Message().ID].Sub(now).Round(time.Second), late.Round(time.Millisecond))
		if late < -10*time.Millisecond || late > time.Second {
			t.Errorf("task %s arrived %v after due, want 0 to 1s", d.Message().ID, late)
		}
		order = append(order, due[d.Message().ID].Sub(now))
		if err := d.Ack(x.ctx); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.IsSorted(order) {
		t.Errorf("arrival order by delay: %v", order)
	}
}

// A 30-day delay is accepted and waits in level 21 (2^21 s ≤ 30 days <
// 2^22 s). The message stays in the shared level queue after the test;
// its queue is deleted in cleanup, so when it comes due it lands in
// warren.delay.unroutable and expires there a week later.
func TestLongDelayWaitsInItsLevel(t *testing.T) {
	t.Parallel()
	x := setup(t, Config{})
	q := x.queue()
	if err := x.b.Declare(x.ctx, q); err != nil {
		t.Fatal(err)
	}
	count := func(name string) int {
		var n int
		err := x.b.admin.do(x.ctx, func(ch *amqp.Channel) error {
			info, err := ch.QueueDeclarePassive(name, true, false, false, false, nil)
			n = info.Messages
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := count("warren.delay.21")
	m := newMessage(q)
	m.RunAt = time.Now().Add(30 * 24 * time.Hour)
	x.publish(m)
	eventually(t, 5*time.Second, func() bool { return count("warren.delay.21") > before },
		"warren.delay.21 holds the 30-day message")
	if st := x.stats(q); st.Ready != 0 {
		t.Fatalf("Ready %d, want 0", st.Ready)
	}
	// 2^28 s is beyond the last level.
	far := newMessage(q)
	far.RunAt = time.Now().Add((1 << 28) * time.Second)
	if err := x.b.Publish(x.ctx, []*broker.Message{far}); err == nil {
		t.Fatal("a delay past 2^28-1 s was accepted")
	}
}

// A message whose destination vanished behind the Broker's back (deleted
// after it was declared and cached) is never reported as published unless
// it is in the queue: Publish declares the queue again and republishes.
func TestPublishAfterQueueDeletedBehindTheCache(t *testing.T) {
	t.Parallel()
	x := setup(t, Config{})
	q := x.queue()
	x.publish(newMessage(q))
	if _, err := rawChannel(t, x.url).QueueDelete("warren."+q, false, false, false); err != nil {
		t.Fatal(err)
	}
	m := newMessage(q)
	x.publish(m)
	if st := x.stats(q); st.Ready != 1 {
		t.Fatalf("Ready %d after republishing, want 1 (the new message only)", st.Ready)
	}
	sub := x.consume(q, 1)
	if d := receive(t, sub, 5*time.Second); d.Message().ID != m.ID {
		t.Fatalf("got %s, want %s", d.Message().ID, m.ID)
	}
}

// Returned messages are matched to their publishes exactly: in one pipelined
// batch alternating between a queue that exists and one that does not, the
// missing queue's messages fail with ErrUnroutable and no other does.
func TestUnroutableMatchedByMessageID(t *testing.T) {
	t.Parallel()
	x := setup(t, Config{PublishChannels: 1})
	q := x.queue()
	if err := x.b.Declare(x.ctx, q); err != nil {
		t.Fatal(err)
	}
	missing := "warren.at-missing-" + randomHex(6)
	var outs []*outgoing
	for i := range 400 {
		m := newMessage(q)
		o, err := route(m, time.Now(), false)
		if err != nil {
			t.Fatal(err)
		}
		if i%3 == 1 {
			o.key = missing
		}
		outs = append(outs, o)
	}
	ctx, cancel := context.WithTimeout(x.ctx, 10*time.Second)
	defer cancel()
	errs := x.b.pub.send(ctx, outs)
	routed := 0
	for i, err := range errs {
		switch {
		case i%3 == 1 && !isUnroutable(err):
			t.Fatalf("message %d to a missing queue: %v, want ErrUnroutable", i, err)
		case i%3 != 1 && err != nil:
			t.Fatalf("message %d: %v", i, err)
		case i%3 != 1:
			routed++
		}
	}
	eventually(t, 5*time.Second, func() bool { return x.stats(q).Ready == routed }, "Ready %d", routed)
}

func isUnroutable(err error) bool { return err == broker.ErrUnroutable }
