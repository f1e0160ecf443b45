package bench

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/warrenjobs/warren/jobs"
)

// drain: n no-op tasks drained by one Runner with events on, vs raw
// consume-and-ack with the same prefetch, from identical pre-filled backlogs.
func drain(ctx context.Context, e *env) (Scenario, error) {
	n := e.cfg.N
	rq, err := e.rawQueue("drain")
	if err != nil {
		return Scenario{}, err
	}
	wq, err := e.declaredWarrenQueue(ctx, "drain")
	if err != nil {
		return Scenario{}, err
	}
	if err := e.fill(ctx, wq, []string{rq, "warren." + wq}, n); err != nil {
		return Scenario{}, err
	}
	pctx, cancel := phase(ctx, n)
	defer cancel()
	done := e.measure("drain.raw", n)
	rawTook, err := rawDrain(pctx, e.cfg.URL, rq, e.cfg.Prefetch, n)
	done()
	if err != nil {
		return Scenario{}, fmt.Errorf("raw drain: %w", err)
	}
	e.logf("drain: raw %.0f msg/s", rate(n, rawTook))
	pctx, cancel = phase(ctx, n)
	defer cancel()
	done = e.measure("drain.warren", n)
	took, err := e.warrenDrain(pctx, wq, n, true)
	done()
	if err != nil {
		return Scenario{}, fmt.Errorf("warren drain: %w", err)
	}
	e.logf("drain: warren %.0f tasks/s", rate(n, took))
	return Scenario{Lines: []Line{
		line("drain, events on", "tasks/s", rate(n, took), rate(n, rawTook), fmt.Sprintf("%s, consume and ack, prefetch %d", baselineRaw, e.cfg.Prefetch), ">= 0.80"),
	}}, nil
}

// eventsCost: the same drain with events on and with events off.
func eventsCost(ctx context.Context, e *env) (Scenario, error) {
	n := e.cfg.N
	on, err := e.declaredWarrenQueue(ctx, "eventson")
	if err != nil {
		return Scenario{}, err
	}
	off, err := e.declaredWarrenQueue(ctx, "eventsoff")
	if err != nil {
		return Scenario{}, err
	}
	if err := e.fill(ctx, on, []string{"warren." + on, "warren." + off}, n); err != nil {
		return Scenario{}, err
	}
	pctx, cancel := phase(ctx, n)
	defer cancel()
	done := e.measure("events-cost.off", n)
	offTook, err := e.warrenDrain(pctx, off, n, false)
	done()
	if err != nil {
		return Scenario{}, fmt.Errorf("drain, events off: %w", err)
	}
	e.logf("events-cost: off %.0f tasks/s", rate(n, offTook))
	pctx, cancel = phase(ctx, n)
	defer cancel()
	done = e.measure("events-cost.on", n)
	onTook, err := e.warrenDrain(pctx, on, n, true)
	done()
	if err != nil {
		return Scenario{}, fmt.Errorf("drain, events on: %w", err)
	}
	e.logf("events-cost: on %.0f tasks/s", rate(n, onTook))
	return Scenario{Lines: []Line{
		line("drain, events on vs off", "tasks/s", rate(n, onTook), rate(n, offTook), baselineEventsOff, ">= 0.90"),
	}}, nil
}

// phase bounds one phase that moves n messages: at least 1,000 a second,
// plus a minute.
func phase(ctx context.Context, n int) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, time.Minute+time.Duration(n)*time.Millisecond)
}

// declaredWarrenQueue returns a fresh warren queue with its topology
// declared.
func (e *env) declaredWarrenQueue(ctx context.Context, scenario string) (string, error) {
	q := e.warrenQueue(scenario)
	b, err := e.openWarren(ctx)
	if err != nil {
		return "", err
	}
	defer b.Close()
	return q, b.Declare(ctx, q)
}

// fill pre-fills queues with n warren tasks of logical queue wq, then lets
// the broker settle for a moment.
func (e *env) fill(ctx context.Context, wq string, queues []string, n int) error {
	t0 := time.Now()
	pctx, cancel := phase(ctx, n*len(queues))
	defer cancel()
	if err := prefill(pctx, e.raw, wq, queues, n, 2); err != nil {
		return err
	}
	e.logf("prefilled %d × %d messages in %.1f s", len(queues), n, time.Since(t0).Seconds())
	select {
	case <-time.After(time.Second):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// warrenDrain runs one Runner on queue until it has run n tasks, and returns
// the time from the first task's start to the n-th task's success (its ack
// sent).
func (e *env) warrenDrain(ctx context.Context, queue string, n int, events bool) (time.Duration, error) {
	b, err := e.openWarren(ctx)
	if err != nil {
		return 0, err
	}
	defer b.Close()
	var first, last atomic.Int64
	var succeeded atomic.Int64
	done := make(chan struct{})
	onEvent := func(ev jobs.Event) {
		switch ev.Type {
		case jobs.EventStarted:
			first.CompareAndSwap(0, time.Now().UnixNano())
		case jobs.EventSucceeded:
			if succeeded.Add(1) == int64(n) {
				last.Store(time.Now().UnixNano())
				close(done)
			}
		}
	}
	workers := workersFor(func(context.Context, *jobs.Job[noop]) error { return nil })
	r, err := jobs.NewRunner(b, workers, &jobs.RunnerConfig{
		Queues: map[string]int{queue: 1}, Concurrency: e.cfg.Concurrency, Prefetch: e.cfg.Prefetch,
		Logger: discard, DisableEvents: !events, OnEvent: onEvent, ShutdownTimeout: 10 * time.Second,
	})
	if err != nil {
		return 0, err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	runErr := make(chan error, 1)
	go func() { runErr <- r.Run(runCtx) }()
	select {
	case <-done:
	case err := <-runErr:
		return 0, fmt.Errorf("runner stopped after %d of %d tasks: %v", succeeded.Load(), n, err)
	case <-ctx.Done():
		stop()
		<-runErr
		return 0, fmt.Errorf("%d of %d tasks after timeout: %w", succeeded.Load(), n, ctx.Err())
	}
	stop()
	if err := <-runErr; err != nil && !errors.Is(err, context.Canceled) {
		return 0, err
	}
	return time.Duration(last.Load() - first.Load()), nil
}
