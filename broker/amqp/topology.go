package amqp

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// This file names, declares and caches the RabbitMQ objects of WIRE.md
// ("Topology").

const (
	prefix = "warren."

	// delayLevels is the number of delay levels; delays up to
	// 2^delayLevels-1 seconds (about 8.5 years) can be expressed.
	delayLevels     = 28
	maxDelaySeconds = 1<<delayLevels - 1
	levelPrefix     = "warren.delay."
	deliverExchange = "warren.delay.deliver"

	// The deliver exchange's alternate exchange and the queue behind it catch
	// delayed messages whose destination queue was deleted while they waited.
	// Without them such a message could never be routed, and a quorum queue
	// with at-least-once dead-lettering never drops a message it cannot
	// route: it keeps retrying it and, once dead_letter_worker_consumer_prefetch
	// (32) of them are pending, dead-letters nothing else — every delayed
	// message of every queue would stop at level 0.
	unroutableName = "warren.delay.unroutable"
	unroutableTTL  = 7 * 24 * time.Hour
	unroutableMax  = 100000

	eventsStream         = "warren.events.stream"
	eventsMaxAge         = "7D"
	eventsMaxLengthBytes = 1000000000

	// deliveryLimit is every quorum queue's x-delivery-limit, set explicitly:
	// RabbitMQ 4.0+ defaults to 20 and drops past it.
	deliveryLimit = 50
)

func workQueue(q string) string { return prefix + q }
func deadQueue(q string) string { return prefix + q + ".dead" }
func levelName(k int) string    { return levelPrefix + strconv.Itoa(k) }

// levelTarget is where level k's queue dead-letters to and where its
// exchange sends keys whose digit k is 0.
func levelTarget(k int) string {
	if k == 0 {
		return deliverExchange
	}
	return levelName(k - 1)
}

func workQueueArgs(q string) amqp.Table {
	return amqp.Table{
		"x-queue-type":              "quorum",
		"x-delivery-limit":          int64(deliveryLimit),
		"x-dead-letter-exchange":    "",
		"x-dead-letter-routing-key": deadQueue(q),
		"x-dead-letter-strategy":    "at-least-once",
		"x-overflow":                "reject-publish",
	}
}

// deadQueueArgs names the classic type explicitly: on a virtual host whose
// default queue type is quorum, a dead-letter queue declared without it would
// get a delivery limit, and browsing could then drop dead letters.
func deadQueueArgs() amqp.Table { return amqp.Table{"x-queue-type": "classic"} }

func levelQueueArgs(k int) amqp.Table {
	return amqp.Table{
		"x-queue-type":           "quorum",
		"x-message-ttl":          int64(1000) << k,
		"x-dead-letter-exchange": levelTarget(k),
		"x-dead-letter-strategy": "at-least-once",
		"x-overflow":             "reject-publish",
		"x-delivery-limit":       int64(deliveryLimit),
	}
}

func eventsArgs() amqp.Table {
	return amqp.Table{
		"x-queue-type":       "stream",
		"x-max-age":          eventsMaxAge,
		"x-max-length-bytes": int64(eventsMaxLengthBytes),
	}
}

// delaySeconds is how many whole seconds (rounded up) lie between now and
// runAt; 0 when runAt is not in the future.
func delaySeconds(runAt, now time.Time) int64 {
	d := runAt.Sub(now)
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// delayKey is the routing key of a message delayed by secs seconds to queue
// q: 28 binary digits, most significant first, then q.
func delayKey(secs int64, q string) string {
	var b strings.Builder
	b.Grow(2*delayLevels + len(q))
	for k := delayLevels - 1; k >= 0; k-- {
		if secs>>k&1 == 1 {
			b.WriteString("1.")
		} else {
			b.WriteString("0.")
		}
	}
	b.WriteString(q)
	return b.String()
}

// levelPattern is the binding key of level k matching digit k == digit.
func levelPattern(k int, digit byte) string {
	var b strings.Builder
	for i := delayLevels - 1; i >= 0; i-- {
		if i == k {
			b.WriteByte(digit)
		} else {
			b.WriteByte('*')
		}
		b.WriteByte('.')
	}
	b.WriteByte('*')
	return b.String()
}

// deliverPattern binds queue q to the deliver exchange.
func deliverPattern(q string) string { return strings.Repeat("*.", delayLevels) + q }

func declareDelays(ch *amqp.Channel) error {
	if err := ch.ExchangeDeclare(unroutableName, "fanout", true, false, false, false, nil); err != nil {
		return fmt.Errorf("declare exchange %s: %w", unroutableName, err)
	}
	args := amqp.Table{
		"x-queue-type":  "classic",
		"x-message-ttl": unroutableTTL.Milliseconds(),
		"x-max-length":  int64(unroutableMax),
	}
	if _, err := ch.QueueDeclare(unroutableName, true, false, false, false, args); err != nil {
		return fmt.Errorf("declare queue %s: %w", unroutableName, err)
	}
	if err := ch.QueueBind(unroutableName, "", unroutableName, false, nil); err != nil {
		return fmt.Errorf("bind queue %s: %w", unroutableName, err)
	}
	ae := amqp.Table{"alternate-exchange": unroutableName}
	if err := ch.ExchangeDeclare(deliverExchange, "topic", true, false, false, false, ae); err != nil {
		return fmt.Errorf("declare exchange %s: %w", deliverExchange, err)
	}
	for k := range delayLevels {
		name := levelName(k)
		if err := ch.ExchangeDeclare(name, "topic", true, false, false, false, nil); err != nil {
			return fmt.Errorf("declare exchange %s: %w", name, err)
		}
		if _, err := ch.QueueDeclare(name, true, false, false, false, levelQueueArgs(k)); err != nil {
			return fmt.Errorf("declare queue %s: %w", name, err)
		}
		if err := ch.QueueBind(name, levelPattern(k, '1'), name, false, nil); err != nil {
			return fmt.Errorf("bind queue %s: %w", name, err)
		}
		if err := ch.ExchangeBind(levelTarget(k), levelPattern(k, '0'), name, false, nil); err != nil {
			return fmt.Errorf("bind exchange %s: %w", name, err)
		}
	}
	return nil
}

func declareQueue(ch *amqp.Channel, q string) error {
	if _, err := ch.QueueDeclare(workQueue(q), true, false, false, false, workQueueArgs(q)); err != nil {
		return fmt.Errorf("declare queue %s: %w", workQueue(q), err)
	}
	if _, err := ch.QueueDeclare(deadQueue(q), true, false, false, false, deadQueueArgs()); err != nil {
		return fmt.Errorf("declare queue %s: %w", deadQueue(q), err)
	}
	if err := ch.QueueBind(workQueue(q), deliverPattern(q), deliverExchange, false, nil); err != nil {
		return fmt.Errorf("bind queue %s: %w", workQueue(q), err)
	}
	return nil
}

// topology declares what publishing and consuming need, once per process:
// the delay levels on first need (the first Declare, Publish or Consume),
// each work queue with its dead-letter queue and delay binding on first use,
// the events stream on first use. Declaring is idempotent, so the cache only
// saves round trips; an entry is forgotten when the broker shows the object
// is gone (a returned publish, a 404), and declared again on next use.
type topology struct {
	admin *admin

	declaring sem // serialises declaring; held across broker round trips

	mu     sync.Mutex
	delays bool
	events bool
	queues map[string]bool
}

func newTopology(a *admin) *topology {
	return &topology{admin: a, declaring: newSem(), queues: make(map[string]bool)}
}

func (t *topology) known(f func() bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return f()
}

// ensure declares, unless cached, the delay levels and queue q (when q is
// not empty).
func (t *topology) ensure(ctx context.Context, q string) error {
	if t.known(func() bool { return t.delays && (q == "" || t.queues[q]) }) {
		return nil
	}
	if err := t.declaring.acquire(ctx); err != nil {
		return err
	}
	defer t.declaring.release()
	needDelays := !t.known(func() bool { return t.delays })
	needQueue := q != "" && !t.known(func() bool { return t.queues[q] })
	if !needDelays && !needQueue {
		return nil
	}
	err := t.admin.do(ctx, func(ch *amqp.Channel) error {
		if needDelays {
			if err := declareDelays(ch); err != nil {
				return err
			}
		}
		if needQueue {
			return declareQueue(ch, q)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("amqp: %w", err)
	}
	t.mu.Lock()
	t.delays = true
	if needQueue {
		t.queues[q] = true
	}
	t.mu.Unlock()
	return nil
}

func (t *topology) ensureEvents(ctx context.Context) error {
	if t.known(func() bool { return t.events }) {
		return nil
	}
	err := t.admin.do(ctx, func(ch *amqp.Channel) error {
		_, err := ch.QueueDeclare(eventsStream, true, false, false, false, eventsArgs())
		return err
	})
	if err != nil {
		return fmt.Errorf("amqp: declare %s: %w", eventsStream, err)
	}
	t.mu.Lock()
	t.events = true
	t.mu.Unlock()
	return nil
}

func (t *topology) forgetQueue(q string) {
	t.mu.Lock()
	delete(t.queues, q)
	t.mu.Unlock()
}

func (t *topology) forgetAll() {
	t.mu.Lock()
	t.delays, t.events = false, false
	clear(t.queues)
	t.mu.Unlock()
}

// sem is a lock whose acquisition honours a context.
type sem chan struct{}

func newSem() sem { return make(sem, 1) }

func (s sem) acquire(ctx context.Context) error {
	select {
	case s <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s sem) release() { <-s }
