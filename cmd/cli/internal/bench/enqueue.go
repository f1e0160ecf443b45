package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/warrenjobs/warren/jobs"
)

// enqueue16: throughput of 16 concurrent Enqueue callers vs one raw
// publisher with a pipelined confirm window of 1,000; extra lines: raw with
// a window of 16 and 16 raw callers (what 16 callers can have in flight),
// and EnqueueMany batches vs the window of 1,000.
func enqueue16(ctx context.Context, e *env) (Scenario, error) {
	n := e.cfg.N
	rq, err := e.rawQueue("enqueue")
	if err != nil {
		return Scenario{}, err
	}
	done := e.measure("enqueue-16.raw", n)
	t0 := time.Now()
	if err := rawPublish(ctx, e.raw, rq, n, confirmWin); err != nil {
		return Scenario{}, fmt.Errorf("raw publish: %w", err)
	}
	rawRate := rate(n, time.Since(t0))
	done()
	e.logf("enqueue-16: raw %.0f msg/s", rawRate)

	done = e.measure("enqueue-16.raw16", n)
	t0 = time.Now()
	if err := rawCallers(ctx, e.cfg.URL, rq, n, enqueueCall); err != nil {
		return Scenario{}, fmt.Errorf("raw publish, 16 callers: %w", err)
	}
	raw16Rate := rate(n, time.Since(t0))
	done()
	e.logf("enqueue-16: raw, 16 callers %.0f msg/s", raw16Rate)

	// The most 16 callers can have in flight is 16 messages: the same
	// window on one raw publisher is the ceiling for any Enqueue that
	// returns after its confirm.
	done = e.measure("enqueue-16.raw-window16", n)
	t0 = time.Now()
	if err := rawPublish(ctx, e.raw, rq, n, enqueueCall); err != nil {
		return Scenario{}, fmt.Errorf("raw publish, window 16: %w", err)
	}
	rawWin16Rate := rate(n, time.Since(t0))
	done()
	e.logf("enqueue-16: raw, confirm window 16 %.0f msg/s", rawWin16Rate)

	b, err := e.openWarren(ctx)
	if err != nil {
		return Scenario{}, err
	}
	defer b.Close()
	client, err := jobs.NewClient(b, &jobs.ClientConfig{Logger: discard})
	if err != nil {
		return Scenario{}, err
	}
	defer client.Close(context.WithoutCancel(ctx))

	q := e.warrenQueue("enqueue")
	if err := b.Declare(ctx, q); err != nil {
		return Scenario{}, err
	}
	opts := &jobs.EnqueueOpts{Queue: q}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, enqueueCall)
	done = e.measure("enqueue-16.warren", n)
	t0 = time.Now()
	for range enqueueCall {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if _, err := client.Enqueue(ctx, newArgs(time.Now()), opts); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	warrenRate := rate(n, time.Since(t0))
	done()
	close(errs)
	if err := <-errs; err != nil {
		return Scenario{}, fmt.Errorf("enqueue: %w", err)
	}
	e.logf("enqueue-16: warren Enqueue %.0f msg/s", warrenRate)

	q2 := e.warrenQueue("enqueuemany")
	if err := b.Declare(ctx, q2); err != nil {
		return Scenario{}, err
	}
	opts2 := &jobs.EnqueueOpts{Queue: q2}
	done = e.measure("enqueue-16.many", n)
	t0 = time.Now()
	for done := 0; done < n; {
		size := min(manyBatch, n-done)
		params := make([]jobs.EnqueueParams, size)
		now := time.Now()
		for i := range params {
			params[i] = jobs.EnqueueParams{Args: newArgs(now), Opts: opts2}
		}
		if _, err := client.EnqueueMany(ctx, params); err != nil {
			return Scenario{}, fmt.Errorf("enqueue many: %w", err)
		}
		done += size
	}
	manyRate := rate(n, time.Since(t0))
	done()
	e.logf("enqueue-16: warren EnqueueMany %.0f msg/s", manyRate)

	return Scenario{Lines: []Line{
		line("Enqueue, 16 callers", "msg/s", warrenRate, rawRate, baselineRaw+", confirm window 1000", ">= 0.80"),
		line("Enqueue, 16 callers, vs raw window 16", "msg/s", warrenRate, rawWin16Rate, baselineRaw+", confirm window 16 (the same 16 in flight)", ">= 0.80"),
		line("Enqueue, 16 callers, vs raw 16 callers", "msg/s", warrenRate, raw16Rate, baselineRaw+", 16 callers each publish and confirm, 4 channels", ""),
		line(fmt.Sprintf("EnqueueMany, 1 caller, batches of %d", manyBatch), "msg/s", manyRate, rawRate, baselineRaw+", confirm window 1000", ""),
	}}, nil
}

// latency1: one caller, one task at a time: Enqueue vs a raw
// publish-and-confirm round trip, interleaved in blocks so that both see the
// same background load.
func latency1(ctx context.Context, e *env) (Scenario, error) {
	samples := min(e.cfg.N, maxLatency1)
	rq, err := e.rawQueue("latency")
	if err != nil {
		return Scenario{}, err
	}
	ch, err := confirmChannel(e.raw)
	if err != nil {
		return Scenario{}, err
	}
	defer ch.Close()

	b, err := e.openWarren(ctx)
	if err != nil {
		return Scenario{}, err
	}
	defer b.Close()
	client, err := jobs.NewClient(b, &jobs.ClientConfig{Logger: discard})
	if err != nil {
		return Scenario{}, err
	}
	defer client.Close(context.WithoutCancel(ctx))
	q := e.warrenQueue("latency")
	if err := b.Declare(ctx, q); err != nil {
		return Scenario{}, err
	}
	opts := &jobs.EnqueueOpts{Queue: q}

	rawOne := func() error {
		p := amqp091.Publishing{DeliveryMode: amqp091.Persistent, ContentType: "application/json", Body: rawBody(time.Now())}
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", rq, false, false, p)
		if err != nil {
			return err
		}
		ok, err := dc.WaitContext(ctx)
		if err == nil && !ok {
			err = fmt.Errorf("nacked")
		}
		return err
	}
	warrenOne := func() error {
		_, err := client.Enqueue(ctx, newArgs(time.Now()), opts)
		return err
	}
	// Warm up both paths (connections, caches) before measuring.
	for range 20 {
		if err := rawOne(); err != nil {
			return Scenario{}, err
		}
		if err := warrenOne(); err != nil {
			return Scenario{}, err
		}
	}
	defer e.measure("latency-1", 2*samples)()
	const block = 50
	raw := make([]time.Duration, 0, samples)
	war := make([]time.Duration, 0, samples)
	for len(raw) < samples {
		for i := 0; i < block && len(raw) < samples; i++ {
			t0 := time.Now()
			if err := rawOne(); err != nil {
				return Scenario{}, fmt.Errorf("raw publish: %w", err)
			}
			raw = append(raw, time.Since(t0))
		}
		for i := 0; i < block && len(war) < samples; i++ {
			t0 := time.Now()
			if err := warrenOne(); err != nil {
				return Scenario{}, fmt.Errorf("enqueue: %w", err)
			}
			war = append(war, time.Since(t0))
		}
	}
	return Scenario{Lines: []Line{
		line("Enqueue latency p50", "ms", ms(percentile(war, 50)), ms(percentile(raw, 50)), baselineRaw+", publish and confirm", "<= 1.30"),
		line("Enqueue latency p99", "ms", ms(percentile(war, 99)), ms(percentile(raw, 99)), baselineRaw+", publish and confirm", ""),
	}}, nil
}
