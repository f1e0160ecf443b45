package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/jobs"
)

// e2eLatency: enqueue-to-handler-start latency at 50% of warren's measured
// maximum rate, open loop, beside raw publish-to-receive at the same rate.
func e2eLatency(ctx context.Context, e *env) (Scenario, error) {
	probeN, k := max(e.cfg.N/2, 10), max(e.cfg.N/2, 10) // k tasks per side
	maxRate, err := e.probeMaxRate(ctx, probeN)
	if err != nil {
		return Scenario{}, fmt.Errorf("probe max rate: %w", err)
	}
	r := maxRate / 2
	e.logf("e2e-latency: max %.0f tasks/s; open loop at %.0f/s", maxRate, r)
	select { // let the broker settle after the probe's burst
	case <-time.After(time.Second):
	case <-ctx.Done():
		return Scenario{}, ctx.Err()
	}

	// Both sides run twice, in the order raw, warren, warren, raw, half of k
	// each time, so that a drift in the background weighs on both alike.
	var rawLat, warLat []time.Duration
	for i, side := range []string{"raw", "warren", "warren", "raw"} {
		half := k / 2
		if i >= 2 {
			half = k - k/2
		}
		f, into := e.rawE2E, &rawLat
		if side == "warren" {
			f, into = e.warrenE2E, &warLat
		}
		done := e.measure("e2e-latency."+side, half)
		lat, err := f(ctx, half, r)
		done()
		if err != nil {
			return Scenario{}, fmt.Errorf("%s: %w", side, err)
		}
		*into = append(*into, lat...)
	}
	base := fmt.Sprintf("%s publish-and-confirm to receive, same rate", baselineRaw)
	return Scenario{
		Lines: []Line{
			line("enqueue to handler start p50", "ms", ms(percentile(warLat, 50)), ms(percentile(rawLat, 50)), base, ""),
			line("enqueue to handler start p99", "ms", ms(percentile(warLat, 99)), ms(percentile(rawLat, 99)), base, ""),
		},
		Notes: []string{fmt.Sprintf("warren's maximum enqueue+run rate %.0f tasks/s (16 callers, one Runner); open loop at %.0f/s, %d tasks per side, %d senders",
			maxRate, r, k, e2eSenders)},
	}, nil
}

// probeMaxRate runs n tasks through 16 Enqueue callers and one Runner at
// once, as fast as they go, and returns the rate at which they completed.
func (e *env) probeMaxRate(ctx context.Context, n int) (float64, error) {
	ctx, cancel := phase(ctx, 2*n)
	defer cancel()
	b, err := e.openWarren(ctx)
	if err != nil {
		return 0, err
	}
	defer b.Close()
	q := e.warrenQueue("e2eprobe")
	if err := b.Declare(ctx, q); err != nil {
		return 0, err
	}
	var ran atomic.Int64
	done := make(chan struct{})
	stopRunner, err := e.startRunner(ctx, b, q, func(context.Context, *jobs.Job[noop]) error {
		if ran.Add(1) == int64(n) {
			close(done)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	defer stopRunner()
	client, err := jobs.NewClient(b, &jobs.ClientConfig{Logger: discard})
	if err != nil {
		return 0, err
	}
	defer client.Close(context.WithoutCancel(ctx))
	opts := &jobs.EnqueueOpts{Queue: q}
	var next atomic.Int64
	errs := make(chan error, enqueueCall)
	t0 := time.Now()
	for range enqueueCall {
		go func() {
			for next.Add(1) <= int64(n) {
				if _, err := client.Enqueue(ctx, newArgs(time.Now()), opts); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	select {
	case <-done:
		return rate(n, time.Since(t0)), nil
	case err := <-errs:
		return 0, err
	case <-ctx.Done():
		return 0, fmt.Errorf("%d of %d tasks ran: %w", ran.Load(), n, ctx.Err())
	}
}

// startRunner runs a Runner (events on) on q with handler f until the
// returned stop is called.
func (e *env) startRunner(ctx context.Context, b broker.Broker, q string, f func(context.Context, *jobs.Job[noop]) error) (stop func(), err error) {
	r, err := jobs.NewRunner(b, workersFor(f), &jobs.RunnerConfig{
		Queues: map[string]int{q: 1}, Concurrency: e.cfg.Concurrency, Prefetch: e.cfg.Prefetch,
		Logger: discard, ShutdownTimeout: 10 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	exited := make(chan struct{})
	go func() { defer close(exited); _ = r.Run(runCtx) }()
	return func() { cancel(); <-exited }, nil
}

// latencies collects want samples from concurrent receivers.
type latencies struct {
	mu   sync.Mutex
	ds   []time.Duration
	want int
	done chan struct{}
}

func newLatencies(want int) *latencies {
	return &latencies{ds: make([]time.Duration, 0, want), want: want, done: make(chan struct{})}
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ds) < l.want {
		l.ds = append(l.ds, d)
		if len(l.ds) == l.want {
			close(l.done)
		}
	}
}

func (l *latencies) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ds)
}

// wait returns the samples once all arrived.
func (l *latencies) wait(ctx context.Context) ([]time.Duration, error) {
	select {
	case <-l.done:
		return l.ds, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%d of %d tasks arrived: %w", l.count(), l.want, ctx.Err())
	}
}

// openLoop calls send for k tasks, the i-th due at start + i/r, from
// e2eSenders goroutines. A sender that falls behind sends late, and the
// receiver measures from the due time all the same.
func openLoop(ctx context.Context, k int, r float64, send func(ctx context.Context, due time.Time) error) error {
	interval := time.Duration(float64(time.Second) / r)
	start := time.Now().Add(10 * time.Millisecond)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, e2eSenders)
	for s := range e2eSenders {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(k) || ctx.Err() != nil {
					return
				}
				due := start.Add(time.Duration(i) * interval)
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
				if err := send(ctx, due); err != nil {
					errs[s] = err
					return
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (e *env) warrenE2E(ctx context.Context, k int, r float64) ([]time.Duration, error) {
	ctx, cancel := phase(ctx, k)
	defer cancel()
	b, err := e.openWarren(ctx)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	q := e.warrenQueue("e2e")
	if err := b.Declare(ctx, q); err != nil {
		return nil, err
	}
	lat := newLatencies(k)
	stopRunner, err := e.startRunner(ctx, b, q, func(_ context.Context, job *jobs.Job[noop]) error {
		lat.add(time.Since(time.Unix(0, job.Args.T)))
		return nil
	})
	if err != nil {
		return nil, err
	}
	defer stopRunner()
	client, err := jobs.NewClient(b, &jobs.ClientConfig{Logger: discard})
	if err != nil {
		return nil, err
	}
	defer client.Close(context.WithoutCancel(ctx))
	opts := &jobs.EnqueueOpts{Queue: q}
	err = openLoop(ctx, k, r, func(ctx context.Context, due time.Time) error {
		_, err := client.Enqueue(ctx, newArgs(due), opts)
		return err
	})
	if err != nil {
		return nil, err
	}
	return lat.wait(ctx)
}

// rawE2E publishes k messages open loop at rate r, each one confirmed
// before its sender goes on (as Enqueue does), on a pool of 4 confirm
// channels, while a raw consumer with the same prefetch receives and acks
// them.
func (e *env) rawE2E(ctx context.Context, k int, r float64) ([]time.Duration, error) {
	ctx, cancel := phase(ctx, k)
	defer cancel()
	q, err := e.rawQueue("e2e")
	if err != nil {
		return nil, err
	}
	pubConn, err := dialRaw(e.cfg.URL, "warren bench raw publish")
	if err != nil {
		return nil, err
	}
	defer pubConn.Close()
	chans := make([]*amqp091.Channel, 4)
	for i := range chans {
		if chans[i], err = confirmChannel(pubConn); err != nil {
			return nil, err
		}
	}
	subConn, err := dialRaw(e.cfg.URL, "warren bench raw consume")
	if err != nil {
		return nil, err
	}
	defer subConn.Close()
	sub, err := subConn.Channel()
	if err != nil {
		return nil, err
	}
	if err := sub.Qos(e.cfg.Prefetch, 0, false); err != nil {
		return nil, err
	}
	ds, err := sub.Consume(q, "", false, false, false, false, nil)
	if err != nil {
		return nil, err
	}
	lat := newLatencies(k)
	go func() {
		for d := range ds {
			var a noop
			if json.Unmarshal(d.Body, &a) == nil {
				lat.add(time.Since(time.Unix(0, a.T)))
			}
			_ = d.Ack(false)
		}
	}()
	var rr atomic.Uint32
	err = openLoop(ctx, k, r, func(ctx context.Context, due time.Time) error {
		ch := chans[rr.Add(1)%uint32(len(chans))]
		p := amqp091.Publishing{DeliveryMode: amqp091.Persistent, ContentType: "application/json", Body: rawBody(due)}
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", q, false, false, p)
		if err != nil {
			return err
		}
		ok, err := dc.WaitContext(ctx)
		if err == nil && !ok {
			err = errors.New("nacked")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return lat.wait(ctx)
}
