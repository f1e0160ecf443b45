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
	if err := e.fill(ctx, wq, []string{rq, "warren." + wq}, n+e.drainMargin()); err != nil {
		return Scenario{}, err
	}
	rawTook, warTook, err := e.abba(ctx, "drain", n,
		func(ctx context.Context, n int) (time.Duration, error) {
			return rawDrain(ctx, e.cfg.URL, rq, e.cfg.Prefetch, n)
		},
		func(ctx context.Context, n int) (time.Duration, error) { return e.warrenDrain(ctx, wq, n, true) })
	if err != nil {
		return Scenario{}, err
	}
	e.logf("drain: raw %.0f msg/s, warren %.0f tasks/s", rate(n, rawTook), rate(n, warTook))
	return Scenario{Lines: []Line{
		line("drain, events on", "tasks/s", rate(n, warTook), rate(n, rawTook), fmt.Sprintf("%s, consume and ack, prefetch %d", baselineRaw, e.cfg.Prefetch), ">= 0.80"),
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
	if err := e.fill(ctx, on, []string{"warren." + on, "warren." + off}, n+e.drainMargin()); err != nil {
		return Scenario{}, err
	}
	offTook, onTook, err := e.abba(ctx, "events-cost", n,
		func(ctx context.Context, n int) (time.Duration, error) { return e.warrenDrain(ctx, off, n, false) },
		func(ctx context.Context, n int) (time.Duration, error) { return e.warrenDrain(ctx, on, n, true) })
	if err != nil {
		return Scenario{}, err
	}
	e.logf("events-cost: off %.0f tasks/s, on %.0f tasks/s", rate(n, offTook), rate(n, onTook))
	return Scenario{Lines: []Line{
		line("drain, events on vs off", "tasks/s", rate(n, onTook), rate(n, offTook), baselineEventsOff, ">= 0.90"),
	}}, nil
}

// drainMargin is how many tasks beyond n a queue drained in halves needs:
// a Runner stopped after its half finishes the tasks it is running.
func (e *env) drainMargin() int { return 2 * (e.cfg.Concurrency + e.cfg.Prefetch) }

// abba drains n tasks on each side in the order a, b, b, a, half of n at a
// time, so that a drift in the background (the broker still settling the
// pre-fill, other load) weighs on both sides alike; it returns each side's
// total time. Each half is timed from its first delivery to its last task.
func (e *env) abba(ctx context.Context, scenario string, n int, a, b func(ctx context.Context, n int) (time.Duration, error)) (ta, tb time.Duration, err error) {
	halves := []int{n / 2, n - n/2}
	steps := []struct {
		side string
		f    func(context.Context, int) (time.Duration, error)
		half int
		sum  *time.Duration
	}{{"a", a, halves[0], &ta}, {"b", b, halves[0], &tb}, {"b", b, halves[1], &tb}, {"a", a, halves[1], &ta}}
	for _, s := range steps {
		if s.half == 0 {
			continue
		}
		pctx, cancel := phase(ctx, s.half)
		done := e.measure(scenario+"."+s.side, s.half)
		took, err := s.f(pctx, s.half)
		done()
		cancel()
		if err != nil {
			return 0, 0, fmt.Errorf("%s, side %s: %w", scenario, s.side, err)
		}
		*s.sum += took
	}
	return ta, tb, nil
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
