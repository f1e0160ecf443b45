package cli

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/jobs"
)

// idleWatch decides when a worker run with --exit-when-idle is done: no task
// running, none started or finished for `after`, and every queue it consumes
// found with 0 ready tasks for `after` as well. Tasks waiting out a retry
// delay are not in the queue; an idle period longer than the retry delay
// keeps the worker for them.
type idleWatch struct {
	broker broker.Broker
	queues []string
	after  time.Duration
	status func() jobs.WorkerStatus
	log    *slog.Logger

	busy atomic.Int64 // unix nanoseconds of the latest sign of work
}

func newIdleWatch(b broker.Broker, queues []string, after time.Duration, status func() jobs.WorkerStatus, log *slog.Logger) *idleWatch {
	w := &idleWatch{broker: b, queues: queues, after: after, status: status, log: log}
	w.busy.Store(time.Now().UnixNano())
	return w
}

// Observe notes a task event as work (heartbeats are not).
func (w *idleWatch) Observe(e jobs.Event) {
	if e.Type != jobs.EventHeartbeat {
		w.busy.Store(time.Now().UnixNano())
	}
}

// Run polls until the worker is idle, then calls done; it returns early when
// ctx is cancelled.
func (w *idleWatch) Run(ctx context.Context, done func()) {
	tick := min(max(w.after/5, 50*time.Millisecond), time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if w.status().Active > 0 {
			w.busy.Store(time.Now().UnixNano())
			continue
		}
		if !w.queuesEmpty(ctx) {
			w.busy.Store(time.Now().UnixNano())
			continue
		}
		if idle := time.Since(time.Unix(0, w.busy.Load())); idle >= w.after {
			w.log.Info("idle: queues empty and no task for a while; exiting", "idle", idle.Round(time.Millisecond).String())
			done()
			return
		}
	}
}

func (w *idleWatch) queuesEmpty(ctx context.Context) bool {
	for _, q := range w.queues {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := w.broker.Stats(sctx, q)
		cancel()
		if err != nil {
			w.log.Debug("idle check: queue stats", "queue", q, "err", err)
			return false
		}
		if st.Ready > 0 {
			return false
		}
	}
	return true
}
