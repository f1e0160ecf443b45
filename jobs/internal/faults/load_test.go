package faults_test

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warrenjobs/warren/jobs"
	"github.com/warrenjobs/warren/jobs/internal/faults"
)

// load is a steady enqueue load: a few goroutines, each enqueuing small
// batches through one Producer until stopped, every call bounded by the
// producer's timeout. It measures how long calls took.
type load struct {
	p      *faults.Producer
	prefix string
	batch  int
	pause  time.Duration // between calls of one goroutine
	opts   *jobs.EnqueueOpts
	shape  func(*faults.Task) // optional, per task

	next    atomic.Int64
	calls   atomic.Int64
	failed  atomic.Int64 // calls that returned an error
	slowest atomic.Int64 // nanoseconds of the longest call
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// startLoad starts goroutines enqueuing batches of batch tasks.
// shape (may be nil) sets each task's behaviour.
func startLoad(p *faults.Producer, prefix string, goroutines, batch int, pause time.Duration, opts *jobs.EnqueueOpts, shape func(*faults.Task)) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{p: p, prefix: prefix, batch: batch, pause: pause, opts: opts, shape: shape, cancel: cancel}
	for range goroutines {
		l.wg.Go(func() { l.run(ctx) })
	}
	return l
}

func (l *load) run(ctx context.Context) {
	for ctx.Err() == nil {
		first := int(l.next.Add(int64(l.batch))) - l.batch
		began := time.Now()
		// The call's own context is not ctx: stopping the load must not
		// turn an in-flight call into an error of the test's making.
		_, err := l.p.Enqueue(context.Background(), l.prefix, tasks(first, l.batch, l.shape), l.opts)
		took := time.Since(began)
		l.calls.Add(1)
		for {
			old := l.slowest.Load()
			if int64(took) <= old || l.slowest.CompareAndSwap(old, int64(took)) {
				break
			}
		}
		pause := l.pause
		if err != nil {
			l.failed.Add(1)
			pause = max(pause, 100*time.Millisecond) // no hot loop while the broker is away
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
}

// stop ends the load and waits for in-flight calls.
func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
}

func (l *load) slowestCall() time.Duration { return time.Duration(l.slowest.Load()) }

// retriedTenth makes every tenth task fail its first attempt, so that it is
// retried through the delay levels (retryOpts) while faults strike.
func retriedTenth(t *faults.Task) { t.FailOnce = t.Seq%10 == 0 }

var retryOpts = &jobs.EnqueueOpts{RetryDelay: 2 * time.Second, MaxRetries: 3}

// retried counts tasks that completed after a failed attempt.
func retried(h *faults.History) int {
	n := 0
	for id, runs := range h.Runs {
		if runs > 0 && h.Attempts[id] > runs {
			n++
		}
	}
	return n
}
