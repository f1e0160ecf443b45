package amqp

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/broker/amqp/amqptest"
)

// Publishing benchmarks, warren and raw amqp091-go side by side (compare the
// ratio; absolute figures drift between runs). 200-byte bodies, persistent,
// to a quorum queue, with confirms:
//
//	go test -run '^$' -bench . -benchtime 20000x ./broker/amqp

var benchBody = []byte(`{"to":"someone@example.com","subject":"Your receipt","template":"receipt-v2","order":123456789,"locale":"en-GB","pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`)

func benchBroker(b *testing.B) (*Broker, string) {
	b.Helper()
	url := amqptest.URL(b)
	br, err := Open(context.Background(), Config{URL: url, Logger: testLogger(b)})
	if err != nil {
		b.Fatal(err)
	}
	q := queueName(b)
	b.Cleanup(func() {
		deleteQueue(b, url, q)
		_ = br.Close()
	})
	if err := br.Declare(context.Background(), q); err != nil {
		b.Fatal(err)
	}
	return br, q
}

// benchContext has a deadline, as callers' contexts do (a context that can
// never end lets Publish skip the work of honouring it).
func benchContext(b *testing.B) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	b.Cleanup(cancel)
	return ctx
}

func benchMessages(q string, n int) []*broker.Message {
	msgs := newMessages(q, n)
	for _, m := range msgs {
		m.Args = benchBody
	}
	return msgs
}

func reportRate(b *testing.B, start time.Time) {
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// One Publish call of 1,000 messages at a time (EnqueueMany).
func BenchmarkPublishBatch1000(b *testing.B) {
	br, q := benchBroker(b)
	ctx := benchContext(b)
	start := time.Now()
	for i := 0; i < b.N; i += 1000 {
		if err := br.Publish(ctx, benchMessages(q, min(1000, b.N-i))); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, start)
}

// One message per Publish, one caller: the latency of a confirmed enqueue.
func BenchmarkPublishOne(b *testing.B) {
	br, q := benchBroker(b)
	ctx := benchContext(b)
	msgs := benchMessages(q, b.N)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if err := br.Publish(ctx, msgs[i:i+1]); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, start)
}

// One message per Publish, 64 concurrent callers (a web app enqueueing).
func BenchmarkPublishConcurrent64(b *testing.B) {
	br, q := benchBroker(b)
	ctx := benchContext(b)
	msgs := benchMessages(q, b.N)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	next := make(chan *broker.Message, 1024)
	for range 64 {
		wg.Go(func() {
			for m := range next {
				if err := br.Publish(ctx, []*broker.Message{m}); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for _, m := range msgs {
		next <- m
	}
	close(next)
	wg.Wait()
	reportRate(b, start)
}

// Drain: consume with prefetch 300 and ack each.
func BenchmarkConsumeAck(b *testing.B) {
	br, q := benchBroker(b)
	ctx := benchContext(b)
	for i := 0; i < b.N; i += 1000 {
		if err := br.Publish(ctx, benchMessages(q, min(1000, b.N-i))); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start := time.Now()
	sub, err := br.Consume(ctx, q, 300)
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	for range b.N {
		d := <-sub.Deliveries()
		if err := d.Ack(ctx); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, start)
}

// rawChannelBench is a confirm-mode channel of plain amqp091-go on the
// queue of benchBroker.
func rawConfirmChannel(b *testing.B) *amqp.Channel {
	b.Helper()
	conn, err := amqp.Dial(amqptest.URL(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		b.Fatal(err)
	}
	if err := ch.Confirm(false); err != nil {
		b.Fatal(err)
	}
	return ch
}

func rawPublishing(q string) amqp.Publishing {
	return encode(benchMessages(q, 1)[0])
}

// Raw amqp091-go, pipelined with a window of 1,000 confirms.
func BenchmarkRawPublishWindow1000(b *testing.B) {
	_, q := benchBroker(b)
	ch := rawConfirmChannel(b)
	ctx := benchContext(b)
	start := time.Now()
	for i := 0; i < b.N; i += 1000 {
		var dcs []*amqp.DeferredConfirmation
		for range min(1000, b.N-i) {
			dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", workQueue(q), true, false, rawPublishing(q))
			if err != nil {
				b.Fatal(err)
			}
			dcs = append(dcs, dc)
		}
		for _, dc := range dcs {
			if ok, err := dc.WaitContext(ctx); !ok || err != nil {
				b.Fatal("not confirmed", err)
			}
		}
	}
	reportRate(b, start)
}

// Raw amqp091-go, one confirmed publish at a time.
func BenchmarkRawPublishOne(b *testing.B) {
	_, q := benchBroker(b)
	ch := rawConfirmChannel(b)
	ctx := benchContext(b)
	start := time.Now()
	for range b.N {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", workQueue(q), true, false, rawPublishing(q))
		if err != nil {
			b.Fatal(err)
		}
		if ok, err := dc.WaitContext(ctx); !ok || err != nil {
			b.Fatal("not confirmed", err)
		}
	}
	reportRate(b, start)
}

// Raw amqp091-go consume, prefetch 300, ack each.
func BenchmarkRawConsumeAck(b *testing.B) {
	br, q := benchBroker(b)
	ctx := benchContext(b)
	for i := 0; i < b.N; i += 1000 {
		if err := br.Publish(ctx, benchMessages(q, min(1000, b.N-i))); err != nil {
			b.Fatal(err)
		}
	}
	ch := rawConfirmChannel(b)
	b.ResetTimer()
	start := time.Now()
	if err := ch.Qos(300, 0, false); err != nil {
		b.Fatal(err)
	}
	ds, err := ch.Consume(workQueue(q), "", false, false, false, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		d := <-ds
		if err := d.Ack(false); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b, start)
}

// Single-caller latency of warren and raw amqp091-go, interleaved so both
// see the same machine load; reports medians and their ratio.
func BenchmarkPublishOneVsRaw(b *testing.B) {
	br, q := benchBroker(b)
	ch := rawConfirmChannel(b)
	ctx := benchContext(b)
	msgs := benchMessages(q, b.N)
	raw := rawPublishing(q)
	var ours, theirs []time.Duration
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if err := br.Publish(ctx, msgs[i:i+1]); err != nil {
			b.Fatal(err)
		}
		ours = append(ours, time.Since(start))
		start = time.Now()
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", workQueue(q), true, false, raw)
		if err != nil {
			b.Fatal(err)
		}
		if ok, err := dc.WaitContext(ctx); !ok || err != nil {
			b.Fatal("not confirmed", err)
		}
		theirs = append(theirs, time.Since(start))
	}
	median := func(d []time.Duration) time.Duration {
		slices.Sort(d)
		return d[len(d)/2]
	}
	mo, mt := median(ours), median(theirs)
	b.ReportMetric(float64(mo.Microseconds()), "warren-µs")
	b.ReportMetric(float64(mt.Microseconds()), "raw-µs")
	b.ReportMetric(float64(mo)/float64(mt), "ratio")
}

// Many callers (64, one message per Publish) against raw amqp091-go, both
// pipelining on one channel with a window of 1,000 (ratio) and with the same
// 64 callers each waiting for its confirm over 4 channels (callers-ratio);
// rounds of 2,000 messages alternate so all see the same load.
func BenchmarkPublishConcurrentVsRaw(b *testing.B) {
	br, q := benchBroker(b)
	ch := rawConfirmChannel(b)
	var pool []*amqp.Channel
	for range 4 {
		pool = append(pool, rawConfirmChannel(b))
	}
	ctx := benchContext(b)
	const round = 2000
	var ourTime, rawTime, callersTime time.Duration
	raw := rawPublishing(q)
	b.ResetTimer()
	for i := 0; i < b.N; i += round {
		msgs := benchMessages(q, round)
		start := time.Now()
		var wg sync.WaitGroup
		next := make(chan *broker.Message, round)
		for _, m := range msgs {
			next <- m
		}
		close(next)
		for range 64 {
			wg.Go(func() {
				for m := range next {
					if err := br.Publish(ctx, []*broker.Message{m}); err != nil {
						b.Error(err)
					}
				}
			})
		}
		wg.Wait()
		ourTime += time.Since(start)

		start = time.Now()
		var dcs []*amqp.DeferredConfirmation
		for range round {
			dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", workQueue(q), true, false, raw)
			if err != nil {
				b.Fatal(err)
			}
			dcs = append(dcs, dc)
			if len(dcs) == 1000 {
				for _, dc := range dcs {
					dc.Wait()
				}
				dcs = dcs[:0]
			}
		}
		for _, dc := range dcs {
			dc.Wait()
		}
		rawTime += time.Since(start)

		start = time.Now()
		var left sync.WaitGroup
		todo := make(chan int, round)
		for j := range round {
			todo <- j
		}
		close(todo)
		for range 64 {
			left.Go(func() {
				for j := range todo {
					dc, err := pool[j%len(pool)].PublishWithDeferredConfirmWithContext(ctx, "", workQueue(q), true, false, raw)
					if err != nil {
						b.Error(err)
						return
					}
					dc.Wait()
				}
			})
		}
		left.Wait()
		callersTime += time.Since(start)
	}
	n := float64(((b.N + round - 1) / round) * round)
	b.ReportMetric(n/ourTime.Seconds(), "warren-msgs/s")
	b.ReportMetric(n/rawTime.Seconds(), "raw-window-msgs/s")
	b.ReportMetric(n/callersTime.Seconds(), "raw-callers-msgs/s")
	b.ReportMetric(rawTime.Seconds()/ourTime.Seconds(), "ratio")
	b.ReportMetric(callersTime.Seconds()/ourTime.Seconds(), "callers-ratio")
}

// Drain with prefetch 300, one Ack call per message, warren's subscription
// (which batches the acks into multiple-acks) against a raw amqp091-go
// consumer acking each message, in alternating rounds of 2,000 so both see
// the same load.
func BenchmarkConsumeVsRaw(b *testing.B) {
	br, q := benchBroker(b)
	_, rq := benchBroker(b)
	ctx := benchContext(b)
	sub, err := br.Consume(ctx, q, 300)
	if err != nil {
		b.Fatal(err)
	}
	defer sub.Close()
	ch := rawConfirmChannel(b)
	if err := ch.Qos(300, 0, false); err != nil {
		b.Fatal(err)
	}
	raw, err := ch.Consume(workQueue(rq), "", false, false, false, false, nil)
	if err != nil {
		b.Fatal(err)
	}
	const round = 2000
	var ourTime, rawTime time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i += round {
		b.StopTimer()
		for _, qq := range []string{q, rq} {
			if err := br.Publish(ctx, benchMessages(qq, round)); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		start := time.Now()
		for range round {
			d := <-sub.Deliveries()
			if err := d.Ack(ctx); err != nil {
				b.Fatal(err)
			}
		}
		ourTime += time.Since(start)
		start = time.Now()
		for range round {
			d := <-raw
			if err := d.Ack(false); err != nil {
				b.Fatal(err)
			}
		}
		rawTime += time.Since(start)
	}
	n := float64(((b.N + round - 1) / round) * round)
	b.ReportMetric(n/ourTime.Seconds(), "warren-msgs/s")
	b.ReportMetric(n/rawTime.Seconds(), "raw-msgs/s")
	b.ReportMetric(rawTime.Seconds()/ourTime.Seconds(), "ratio")
}
