package jobs_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/jobs"
)

// Cancelling Run lets running tasks finish, takes no new ones, and leaves the
// unstarted ones (prefetched included) in the queue for the next worker.
func TestGracefulShutdownLosesNothing(t *testing.T) {
	t.Parallel()
	eachBroker(t, func(t *testing.T, b broker.Broker) {
		q := uniqueQueue(t, b)
		var started, finished atomic.Int32
		runs := map[string]*atomic.Int32{}
		w := jobs.NewWorkers()
		jobs.AddWorker(w, jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[sleepArgs]) error {
			started.Add(1)
			runs[j.ID].Add(1)
			time.Sleep(time.Duration(j.Args.MS) * time.Millisecond) // ignores ctx: shutdown must wait anyway
			finished.Add(1)
			return nil
		}))
		const n = 10
		params := make([]jobs.EnqueueParams, n)
		for i := range params {
			params[i] = jobs.EnqueueParams{Args: sleepArgs{MS: 400}, Opts: &jobs.EnqueueOpts{Queue: q}}
		}
		ids, err := newClient(t, b).EnqueueMany(context.Background(), params)
		require.NoError(t, err)
		for _, id := range ids {
			runs[id] = new(atomic.Int32)
		}

		_, stop := startRunner(t, b, w, &jobs.RunnerConfig{Queues: map[string]int{q: 1}, Concurrency: 2, Prefetch: 5})
		require.Eventually(t, func() bool { return started.Load() == 2 }, 10*time.Second, 5*time.Millisecond)
		stop()
		require.Equal(t, started.Load(), finished.Load(), "running tasks finished before Run returned")
		first := started.Load()
		require.Less(t, first, int32(n))

		// The rest went back to the queue: a second runner does them, each once.
		_, stop2 := startRunner(t, b, w, &jobs.RunnerConfig{Queues: map[string]int{q: 1}, Concurrency: 10})
		require.Eventually(t, func() bool { return finished.Load() == n }, 15*time.Second, 10*time.Millisecond)
		stop2()
		for id, c := range runs {
			require.EqualValues(t, 1, c.Load(), "task %s ran once", id)
		}
	})
}

// When running tasks outlast ShutdownTimeout their contexts are cancelled and
// they go back to the queue instead of being lost or retried.
func TestShutdownTimeoutReturnsRunningTasks(t *testing.T) {
	t.Parallel()
	eachBroker(t, func(t *testing.T, b broker.Broker) {
		q := uniqueQueue(t, b)
		var runs atomic.Int32
		w := jobs.NewWorkers()
		jobs.AddWorker(w, jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[sleepArgs]) error {
			if runs.Add(1) == 1 {
				<-ctx.Done() // the first run is interrupted by shutdown
				return ctx.Err()
			}
			return nil
		}))
		_, err := newClient(t, b).Enqueue(context.Background(), sleepArgs{}, &jobs.EnqueueOpts{Queue: q})
		require.NoError(t, err)
		_, stop := startRunner(t, b, w, &jobs.RunnerConfig{Queues: map[string]int{q: 1}, ShutdownTimeout: 200 * time.Millisecond})
		require.Eventually(t, func() bool { return runs.Load() == 1 }, 10*time.Second, 5*time.Millisecond)
		stop()
		startRunner(t, b, w, &jobs.RunnerConfig{Queues: map[string]int{q: 1}})
		require.Eventually(t, func() bool { return runs.Load() == 2 }, 10*time.Second, 10*time.Millisecond)
		s, err := b.Stats(context.Background(), q)
		require.NoError(t, err)
		require.Zero(t, s.Dead)
	})
}

func TestMiddlewareWrapsEnqueueAndWork(t *testing.T) {
	t.Parallel()
	eachBroker(t, func(t *testing.T, b broker.Broker) {
		q := uniqueQueue(t, b)
		var order record[string]
		client, err := jobs.NewClient(b, &jobs.ClientConfig{Logger: quiet(), Middleware: []jobs.EnqueueMiddleware{
			func(next jobs.EnqueueFunc) jobs.EnqueueFunc {
				return func(ctx context.Context, msgs []*broker.Message) error {
					for _, m := range msgs {
						m.Meta = map[string]string{"trace": "t-1"}
					}
					return next(ctx, msgs)
				}
			},
		}})
		require.NoError(t, err)
		var meta record[string]
		w := jobs.NewWorkers()
		jobs.AddWorker(w, jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[echoArgs]) error {
			order.add("handler")
			meta.add(j.Meta["trace"])
			return nil
		}))
		mw := func(name string) jobs.WorkMiddleware {
			return func(next jobs.HandleFunc) jobs.HandleFunc {
				return func(ctx context.Context, m *broker.Message) error {
					order.add(name + ">" + m.Kind)
					err := next(ctx, m)
					order.add("<" + name)
					return err
				}
			}
		}
		_, err = client.Enqueue(context.Background(), echoArgs{}, &jobs.EnqueueOpts{Queue: q})
		require.NoError(t, err)
		startRunner(t, b, w, &jobs.RunnerConfig{Queues: map[string]int{q: 1}, Middleware: []jobs.WorkMiddleware{mw("outer"), mw("inner")}})
		require.Eventually(t, func() bool { return order.len() == 5 }, 10*time.Second, 10*time.Millisecond)
		require.Equal(t, []string{"outer>test.echo", "inner>test.echo", "handler", "<inner", "<outer"}, order.all())
		require.Equal(t, []string{"t-1"}, meta.all())
	})
}

func TestWeightedQueuesAllServed(t *testing.T) {
	t.Parallel()
	eachBroker(t, func(t *testing.T, b broker.Broker) {
		hi, lo := uniqueQueue(t, b), uniqueQueue(t, b)
		var seen record[string]
		w := jobs.NewWorkers()
		jobs.AddWorker(w, jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[echoArgs]) error {
			seen.add(j.Queue)
			time.Sleep(2 * time.Millisecond) // slower than the broker refills the prefetch window
			return nil
		}))
		client := newClient(t, b)
		for _, q := range []string{hi, lo} {
			params := make([]jobs.EnqueueParams, 100)
			for i := range params {
				params[i] = jobs.EnqueueParams{Args: echoArgs{}, Opts: &jobs.EnqueueOpts{Queue: q}}
			}
			_, err := client.EnqueueMany(context.Background(), params)
			require.NoError(t, err)
		}
		startRunner(t, b, w, &jobs.RunnerConfig{Queues: map[string]int{hi: 3, lo: 1}, Concurrency: 1, Prefetch: 10})
		require.Eventually(t, func() bool { return seen.len() == 200 }, 20*time.Second, 10*time.Millisecond)
		// While both had work, the heavier queue was served about 3:1.
		firstHundred := seen.all()[:100]
		fromHi := 0
		for _, q := range firstHundred {
			if q == hi {
				fromHi++
			}
		}
		require.Greater(t, fromHi, 60, "weight 3 queue should dominate the first 100")
	})
}
