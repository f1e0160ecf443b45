package amqp

import (
	"context"
	"errors"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/broker/amqp/amqptest"
)

// Confirmed messages survive a crash of the broker (kill -9), immediate and
// delayed alike; the Broker reconnects by itself. The delayed message
// arrives, never early; an outage that overlaps one of its delay levels'
// expiry delays it by up to the outage (each level's TTL counts from the
// message's arrival in that level).
func TestDurableAcrossBrokerCrash(t *testing.T) {
	t.Parallel()
	node := amqptest.StartNode(t)
	x := setup(t, Config{URL: node.URL(), Heartbeat: 2 * time.Second, ReconnectInterval: 200 * time.Millisecond, DialTimeout: 2 * time.Second})
	q := x.queue()
	if err := x.b.Declare(x.ctx, q); err != nil {
		t.Fatal(err)
	}
	// RabbitMQ 3.10 (ra 2.2) may bring a quorum queue declared within about
	// a second of a kill back empty (see amqptest.Node.Kill); that window is
	// the broker's, not warren's.
	time.Sleep(1500 * time.Millisecond)
	now := time.Now()
	imm, delayed := newMessage(q), newMessage(q)
	delayed.RunAt = now.Add(25 * time.Second)
	x.publish(imm, delayed)

	down := time.Now()
	node.Kill(t)
	ctx, cancel := context.WithTimeout(x.ctx, time.Second)
	if err := x.b.Publish(ctx, []*broker.Message{newMessage(q)}); err == nil {
		t.Error("Publish to a dead broker succeeded")
	}
	cancel()
	node.Start(t)
	up := time.Now()

	m := newMessage(q)
	eventually(t, 30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(x.ctx, 2*time.Second)
		defer cancel()
		return x.b.Publish(ctx, []*broker.Message{m}) == nil
	}, "publishing recovers after the broker restarted")
	sub := x.consume(q, 10)
	got := map[string]bool{}
	for len(got) < 2 {
		d := receive(t, sub, 10*time.Second)
		got[d.Message().ID] = true
		if err := d.Ack(x.ctx); err != nil {
			t.Fatal(err)
		}
	}
	if !got[imm.ID] || !got[m.ID] {
		t.Fatalf("after the crash got %v, want %s and %s", got, imm.ID, m.ID)
	}
	d := receive(t, sub, 40*time.Second)
	arrived := time.Now()
	if d.Message().ID != delayed.ID {
		t.Fatalf("got %s, want the delayed %s", d.Message().ID, delayed.ID)
	}
	late := arrived.Sub(delayed.RunAt)
	t.Logf("broker up again %v after publish; delayed message due at %v arrived %v late",
		up.Sub(now).Round(time.Millisecond), delayed.RunAt.Sub(now).Round(time.Second), late.Round(time.Millisecond))
	if late < -10*time.Millisecond {
		t.Fatalf("delayed message arrived %v early", -late)
	}
	if outage := up.Sub(down); late > outage+time.Second {
		t.Fatalf("delayed message arrived %v late, more than the outage (%v) and a second", late, outage.Round(time.Millisecond))
	}
	if err := d.Ack(x.ctx); err != nil {
		t.Fatal(err)
	}
}

// A broker under a memory alarm blocks publishing connections: Publish
// returns within its deadline, then fails fast with ErrBlocked (and Ping
// reports it) until the alarm clears.
func TestBlockedPublishing(t *testing.T) {
	t.Parallel()
	node := amqptest.StartNode(t)
	x := setup(t, Config{URL: node.URL()})
	q := x.queue()
	x.publish(newMessage(q))

	node.SetMemoryAlarm(t, true)
	ctx, cancel := context.WithTimeout(x.ctx, time.Second)
	start := time.Now()
	err := x.b.Publish(ctx, []*broker.Message{newMessage(q)})
	cancel()
	if err == nil {
		t.Fatal("Publish under a memory alarm succeeded")
	}
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Fatalf("Publish took %v with a 1s deadline", took)
	}
	eventually(t, 10*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(x.ctx, time.Second)
		defer cancel()
		start := time.Now()
		err := x.b.Publish(ctx, []*broker.Message{newMessage(q)})
		return errors.Is(err, ErrBlocked) && time.Since(start) < 100*time.Millisecond
	}, "Publish fails fast with ErrBlocked")
	if err := x.b.Ping(x.ctx); !errors.Is(err, ErrBlocked) {
		t.Errorf("Ping while blocked: %v, want ErrBlocked", err)
	}

	// A blocked connection is not read by the broker, so it never sees
	// connection.close: Close still returns, in bounded time.
	other := setup(t, Config{URL: node.URL()})
	ctx, cancel = context.WithTimeout(x.ctx, time.Second)
	_ = other.b.Publish(ctx, []*broker.Message{newMessage(q)})
	cancel()
	start = time.Now()
	if err := other.b.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Fatalf("Close of a blocked broker took %v", took)
	} else {
		t.Logf("Close of a blocked broker took %v", took.Round(time.Millisecond))
	}

	node.SetMemoryAlarm(t, false)
	eventually(t, 10*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(x.ctx, 2*time.Second)
		defer cancel()
		return x.b.Publish(ctx, []*broker.Message{newMessage(q)}) == nil
	}, "Publish works again once the alarm cleared")
	if err := x.b.Ping(x.ctx); err != nil {
		t.Errorf("Ping after the alarm: %v", err)
	}
}

// Delayed messages whose queue was deleted while they waited do not stop
// delayed delivery for everyone else. (Without the deliver exchange's
// alternate exchange they would: verified on RabbitMQ 3.10.8, after 40
// unroutable dead letters a quorum queue with at-least-once dead-lettering
// dead-letters nothing more.) The strays end in warren.delay.unroutable.
func TestDeletedQueueDoesNotStallDelays(t *testing.T) {
	t.Parallel()
	node := amqptest.StartNode(t)
	x := setup(t, Config{URL: node.URL()})
	gone, q := x.queue(), x.queue()
	strays := newMessages(gone, 40)
	due := time.Now().Add(5 * time.Second)
	for _, m := range strays {
		m.RunAt = due
	}
	x.publish(strays...)
	if err := x.b.DeleteQueue(x.ctx, gone); err != nil {
		t.Fatal(err)
	}
	if time.Now().After(due) {
		t.Fatal("the machine is too slow: the strays came due before their queue was deleted")
	}
	time.Sleep(time.Until(due) + 2*time.Second) // the strays come due and leave level 0
	sub := x.consume(q, 1)
	m := newMessage(q)
	m.RunAt = time.Now().Add(time.Second)
	x.publish(m)
	d := receive(t, sub, 10*time.Second)
	if late := time.Since(m.RunAt); d.Message().ID != m.ID || late > time.Second {
		t.Fatalf("got %s %v after due, want %s within 1s", d.Message().ID, late, m.ID)
	}
	eventually(t, 5*time.Second, func() bool {
		var n int
		_ = x.b.admin.do(x.ctx, func(ch *amqp.Channel) error {
			info, err := ch.QueueDeclarePassive(unroutableName, true, false, false, false, nil)
			n = info.Messages
			return err
		})
		return n == len(strays)
	}, "the %d strays are in %s", len(strays), unroutableName)
}
