package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warrenjobs/warren/broker"
)

// Runner consumes queues and executes their tasks with the registered
// workers: the engine of a worker process. Create it with NewRunner, then Run.
type Runner struct {
	broker  broker.Broker
	workers *Workers
	cfg     RunnerConfig
	log     *slog.Logger
	events  *eventLog

	// hardCtx is the parent of every handler's context; it is cancelled when
	// the shutdown timeout runs out.
	hardCtx    context.Context
	hardCancel context.CancelFunc

	active    atomic.Int64
	processed atomic.Int64
	failed    atomic.Int64
	abandoned atomic.Int64
	started   atomic.Int64 // unix nanoseconds
	stopping  atomic.Bool
	running   atomic.Bool
}

// NewRunner checks cfg (nil means all defaults) and returns a runner.
func NewRunner(b broker.Broker, workers *Workers, cfg *RunnerConfig) (*Runner, error) {
	if b == nil {
		return nil, errors.New("jobs: NewRunner: nil broker")
	}
	if workers == nil {
		return nil, errors.New("jobs: NewRunner: nil workers")
	}
	c := cfg.withDefaults()
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("jobs: invalid runner config: %w", err)
	}
	r := &Runner{broker: b, workers: workers, cfg: c, log: c.Logger.With("worker", c.ID)}
	if !c.DisableEvents {
		r.events = newEventLog(b, c.EventInterval, r.log, c.OnEvent)
	} else if c.OnEvent != nil {
		r.events = newEventLog(nil, 0, r.log, c.OnEvent)
	}
	return r, nil
}

// ID is the worker's ID as it appears in events.
func (r *Runner) ID() string { return r.cfg.ID }

// Stats reports the runner's counters.
func (r *Runner) Stats() WorkerStatus {
	host, _ := os.Hostname()
	return WorkerStatus{
		ID: r.cfg.ID, Host: host, PID: os.Getpid(), Queues: r.cfg.Queues,
		Concurrency: r.cfg.Concurrency, Active: int(r.active.Load()),
		Processed: r.processed.Load(), Failed: r.failed.Load(), Abandoned: r.abandoned.Load(),
		StartedAt: time.Unix(0, r.started.Load()), Stopping: r.stopping.Load(),
	}
}

// Run consumes the configured queues until ctx is cancelled, then shuts down
// warmly: it takes no new task, waits up to ShutdownTimeout for running ones,
// and returns every unfinished delivery to its queue. It returns nil after a
// clean shutdown, or the error that stopped consumption.
func (r *Runner) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("jobs: Runner.Run called twice")
	}
	r.started.Store(time.Now().UnixNano())
	r.hardCtx, r.hardCancel = context.WithCancel(context.WithoutCancel(ctx))
	defer r.hardCancel()

	subs := make([]broker.Subscription, 0, len(r.cfg.Queues))
	weights := make([]int, 0, len(r.cfg.Queues))
	closeAll := func() {
		for _, s := range subs {
			_ = s.Close()
		}
	}
	for q, w := range r.cfg.Queues {
		s, err := r.broker.Consume(ctx, q, r.cfg.Prefetch)
		if err != nil {
			closeAll()
			return fmt.Errorf("jobs: consume queue %q: %w", q, err)
		}
		subs = append(subs, s)
		weights = append(weights, w)
	}
	r.events.Start()
	hb := newHeartbeat(r)
	hb.Start()
	r.log.Info("worker started", "queues", r.cfg.Queues, "concurrency", r.cfg.Concurrency, "prefetch", r.cfg.Prefetch)

	var wg sync.WaitGroup
	runErr := r.dispatch(ctx, subs, weights, &wg)

	// Warm shutdown: no new deliveries, wait for running tasks.
	r.stopping.Store(true)
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	for _, s := range subs {
		if err := s.Stop(stopCtx); err != nil {
			r.log.Warn("stop consumer", "err", err)
		}
	}
	cancel()
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(r.cfg.ShutdownTimeout):
		r.log.Warn("shutdown timeout: returning running tasks to their queues", "active", r.active.Load())
		r.hardCancel()
		select {
		case <-finished:
		case <-time.After(r.cfg.GracePeriod):
		}
	}
	closeAll()
	hb.Stop()
	flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	r.events.Stop(flushCtx)
	cancel()
	r.log.Info("worker stopped", "processed", r.processed.Load(), "failed", r.failed.Load())
	return runErr
}

// dispatch takes one delivery per free slot and hands it to an executor,
// until ctx is done or a subscription ends. It returns the subscription's
// error, if any. Executors are Concurrency long-lived goroutines: a goroutine
// per task would pay for its start and stack growth on every task.
func (r *Runner) dispatch(ctx context.Context, subs []broker.Subscription, weights []int, wg *sync.WaitGroup) error {
	if len(subs) == 1 {
		return r.dispatchOne(ctx, subs[0], wg)
	}
	slots := make(chan struct{}, r.cfg.Concurrency)
	work := make(chan broker.Delivery)
	defer close(work)
	for range r.cfg.Concurrency {
		go func() {
			for d := range work {
				r.execute(d)
				r.active.Add(-1)
				<-slots
				wg.Done()
			}
		}()
	}
	pick := newPicker(subs, weights)
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		d, sub, ok := pick.next(ctx)
		if !ok {
			<-slots
			// A subscription also ends when ctx (its Consume context) is
			// done: that is the shutdown asked for, not an error.
			if sub != nil && ctx.Err() == nil {
				if err := sub.Err(); err != nil {
					return fmt.Errorf("jobs: subscription ended: %w", err)
				}
				return errors.New("jobs: subscription ended")
			}
			return nil
		}
		wg.Add(1)
		r.active.Add(1)
		work <- d // a slot is free, so an executor is or soon will be
	}
}

// dispatchOne is dispatch for a single queue: with no choice to make, the
// executors take deliveries straight from the subscription, one handoff
// fewer per task. A delivery taken once dispatch has returned is left
// unsettled: it goes back to its queue when the subscription closes.
func (r *Runner) dispatchOne(ctx context.Context, sub broker.Subscription, wg *sync.WaitGroup) error {
	var (
		mu      sync.Mutex
		stopped bool
	)
	begin := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return false
		}
		wg.Add(1)
		r.active.Add(1)
		return true
	}
	ended := make(chan struct{})
	var endOnce sync.Once
	deliveries := sub.Deliveries()
	for range r.cfg.Concurrency {
		go func() {
			for {
				select {
				case d, ok := <-deliveries:
					if !ok {
						endOnce.Do(func() { close(ended) })
						return
					}
					if !begin() {
						return
					}
					r.execute(d)
					r.active.Add(-1)
					wg.Done()
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	select {
	case <-ctx.Done():
	case <-ended:
	}
	mu.Lock()
	stopped = true
	mu.Unlock()
	// A subscription also ends when ctx (its Consume context) is done: that
	// is the shutdown asked for, not an error.
	if ctx.Err() != nil {
		return nil
	}
	if err := sub.Err(); err != nil {
		return fmt.Errorf("jobs: subscription ended: %w", err)
	}
	return errors.New("jobs: subscription ended")
}
