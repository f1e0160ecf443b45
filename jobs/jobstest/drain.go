package jobstest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/warrenjobs/warren/jobs"
)

// DrainResult counts the outcomes of the attempts Drain ran.
type DrainResult struct {
	Succeeded int
	Retried   int // failed attempts with a retry scheduled (not run by Drain)
	Dead      int // dead-lettered
	Cancelled int
}

// Drain executes, one at a time, every task that is due on queues (default
// jobs.DefaultQueue), with the given workers, until nothing is ready and
// nothing is running. Retries and delayed tasks that are not yet due stay
// scheduled: Drain does not fast-forward time.
func (e *Env) Drain(ctx context.Context, workers *jobs.Workers, queues ...string) (DrainResult, error) {
	if len(queues) == 0 {
		queues = []string{jobs.DefaultQueue}
	}
	weights := make(map[string]int, len(queues))
	for _, q := range queues {
		weights[q] = 1
	}
	var (
		mu      sync.Mutex
		res     DrainResult
		running = map[string]bool{} // task IDs started and not yet settled
	)
	r, err := jobs.NewRunner(e.Broker, workers, &jobs.RunnerConfig{
		Queues: weights, Concurrency: 1, Prefetch: 1, DisableEvents: true,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		OnEvent: func(ev jobs.Event) {
			mu.Lock()
			defer mu.Unlock()
			switch ev.Type {
			case jobs.EventStarted:
				running[ev.TaskID] = true
				return
			case jobs.EventSucceeded:
				res.Succeeded++
			case jobs.EventRetrying:
				res.Retried++
			case jobs.EventDead:
				res.Dead++
			case jobs.EventCancelled:
				res.Cancelled++
			default:
				return
			}
			delete(running, ev.TaskID)
		},
	})
	if err != nil {
		return DrainResult{}, fmt.Errorf("jobstest: drain: %w", err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- r.Run(runCtx) }()

	// Idle means: nothing ready, every started attempt settled, and it stays
	// so for a few polls (the in-memory broker hands out deliveries at once).
	idlePolls := 0
	for idlePolls < 4 {
		select {
		case <-ctx.Done():
			stop()
			<-done
			return res, ctx.Err()
		case err := <-done:
			stop()
			return res, err
		case <-time.After(5 * time.Millisecond):
		}
		ready := 0
		for _, q := range queues {
			if s, err := e.Broker.Stats(ctx, q); err == nil {
				ready += s.Ready
			}
		}
		mu.Lock()
		idle := ready == 0 && len(running) == 0
		mu.Unlock()
		if idle {
			idlePolls++
		} else {
			idlePolls = 0
		}
	}
	stop()
	err = <-done
	mu.Lock()
	defer mu.Unlock()
	return res, err
}
