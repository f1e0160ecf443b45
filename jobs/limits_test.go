package jobs_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/jobs"
)

type sleepArgs struct {
	MS        int  `json:"ms"`
	IgnoreCtx bool `json:"ignore_ctx"`
}

func (sleepArgs) Kind() string { return "test.sleep" }

func sleepWorker() jobs.Worker[sleepArgs] {
	return jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[sleepArgs]) error {
		d := time.Duration(j.Args.MS) * time.Millisecond
		if j.Args.IgnoreCtx {
			time.Sleep(d)
			return nil
		}
		select {
		case <-time.After(d):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
}

func TestTimeLimit(t *testing.T) {
	t.Parallel()
	eachBroker(t, func(t *testing.T, b broker.Broker) {
		q := uniqueQueue(t, b)
		w := jobs.NewWorkers()
		jobs.AddWorker(w, sleepWorker())
		client := newClient(t, b)
		opts := &jobs.EnqueueOpts{Queue: q, MaxRetries: jobs.NoRetries, Timeout: 200 * time.Millisecond}
		_, err := client.Enqueue(context.Background(), sleepArgs{MS: 5000}, &jobs.EnqueueOpts{Queue: q, MaxRetries: jobs.NoRetries, Timeout: 200 * time.Millisecond, ID: "honours"})
		require.NoError(t, err)
		opts.ID = "ignores"
		_, err = client.Enqueue(context.Background(), sleepArgs{MS: 3000, IgnoreCtx: true}, opts)
		require.NoError(t, err)
		start := time.Now()
		r, _ := startRunner(t, b, w, &jobs.RunnerConfig{Queues: map[string]int{q: 1}, GracePeriod: 300 * time.Millisecond})

		dead := deadLetters(t, b, q, 2, 10*time.Second)
		require.Less(t, time.Since(start), 2500*time.Millisecond, "neither task ran to its end")
		for _, d := range dead {
			require.Contains(t, d.LastError, "time limit exceeded", d.ID)
			if d.ID == "ignores" {
				require.Contains(t, d.LastError, "abandoned")
			}
		}
		require.EqualValues(t, 1, r.Stats().Abandoned)
	})
}

func TestTimeLimitAtConsumerTimeoutRejected(t *testing.T) {
	t.Parallel()
	b := newBroker(t, "memory")
	_, err := newClient(t, b).Enqueue(context.Background(), sleepArgs{}, &jobs.EnqueueOpts{Timeout: 30 * time.Minute})
	require.ErrorContains(t, err, "consumer timeout")
	_, err = jobs.NewRunner(b, jobs.NewWorkers(), &jobs.RunnerConfig{DefaultTimeout: 40 * time.Minute})
	require.ErrorContains(t, err, "consumer timeout")
}

func TestDelayedTaskHeldByBroker(t *testing.T) {
	t.Parallel()
	eachBroker(t, func(t *testing.T, b broker.Broker) {
		q := uniqueQueue(t, b)
		var ran record[time.Time]
		w := jobs.NewWorkers()
		jobs.AddWorker(w, jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[echoArgs]) error {
			ran.add(time.Now())
			return nil
		}))
		startRunner(t, b, w, &jobs.RunnerConfig{Queues: map[string]int{q: 1}})
		client := newClient(t, b)
		enqueued := time.Now()
		_, err := client.Enqueue(context.Background(), echoArgs{Msg: "later"}, &jobs.EnqueueOpts{Queue: q, Delay: 2 * time.Second})
		require.NoError(t, err)
		_, err = client.Enqueue(context.Background(), echoArgs{Msg: "at"}, &jobs.EnqueueOpts{Queue: q, RunAt: enqueued.Add(time.Second)})
		require.NoError(t, err)
		require.Eventually(t, func() bool { return ran.len() == 2 }, 6*time.Second, 10*time.Millisecond)
		times := ran.all()
		require.InDelta(t, 1.0, times[0].Sub(enqueued).Seconds(), 1.0)
		require.GreaterOrEqual(t, times[0].Sub(enqueued), 950*time.Millisecond)
		require.GreaterOrEqual(t, times[1].Sub(enqueued), 1950*time.Millisecond)
		require.Less(t, times[1].Sub(enqueued), 3*time.Second)
	})
}

func TestUnhandleableTasksDeadLettered(t *testing.T) {
	t.Parallel()
	eachBroker(t, func(t *testing.T, b broker.Broker) {
		q := uniqueQueue(t, b)
		w := jobs.NewWorkers()
		jobs.AddWorker(w, jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[shapeArgs]) error { return nil }))
		client := newClient(t, b)
		_, err := client.Enqueue(context.Background(), unknownArgs{}, &jobs.EnqueueOpts{Queue: q, ID: "unknown"})
		require.NoError(t, err)
		_, err = client.Enqueue(context.Background(), wrongShape{N: "seven"}, &jobs.EnqueueOpts{Queue: q, ID: "shape"})
		require.NoError(t, err)
		_, err = client.Enqueue(context.Background(), echoArgs{Msg: strings.Repeat("x", 2000)}, &jobs.EnqueueOpts{Queue: q, ID: "big"})
		require.NoError(t, err)
		startRunner(t, b, w, &jobs.RunnerConfig{Queues: map[string]int{q: 1}, MaxPayloadBytes: 1000})

		reasons := map[string]string{}
		for _, d := range deadLetters(t, b, q, 3, 10*time.Second) {
			reasons[d.ID] = d.DeadReason
			require.Zero(t, d.Attempt, "never attempted")
		}
		require.Contains(t, reasons["unknown"], "unknown kind")
		require.Contains(t, reasons["shape"], "wrong shape")
		require.Contains(t, reasons["big"], "payload too large")
	})
}

func TestEnqueueRejectsBadInput(t *testing.T) {
	t.Parallel()
	b := newBroker(t, "memory")
	c, err := jobs.NewClient(b, &jobs.ClientConfig{Logger: quiet(), MaxPayloadBytes: 100})
	require.NoError(t, err)
	ctx := context.Background()
	cases := map[string]struct {
		args jobs.JobArgs
		opts *jobs.EnqueueOpts
		want string
	}{
		"queue name":     {echoArgs{}, &jobs.EnqueueOpts{Queue: "bad.name"}, "invalid queue name"},
		"negative delay": {echoArgs{}, &jobs.EnqueueOpts{Delay: -time.Second}, "negative"},
		"delay and at":   {echoArgs{}, &jobs.EnqueueOpts{Delay: time.Second, RunAt: time.Now()}, "not both"},
		"retries":        {echoArgs{}, &jobs.EnqueueOpts{MaxRetries: -5}, "max retries"},
		"id":             {echoArgs{}, &jobs.EnqueueOpts{ID: "has space"}, "task ID"},
		"payload":        {echoArgs{Msg: strings.Repeat("y", 200)}, nil, "payload too large"},
		"nil args":       {nil, nil, "nil args"},
	}
	for name, tc := range cases {
		_, err := c.Enqueue(ctx, tc.args, tc.opts)
		require.ErrorContains(t, err, tc.want, name)
	}
}

func TestDuplicateKindRejected(t *testing.T) {
	t.Parallel()
	w := jobs.NewWorkers()
	jobs.AddWorker(w, jobs.WorkFunc(func(context.Context, *jobs.Job[echoArgs]) error { return nil }))
	err := jobs.AddWorkerSafely(w, jobs.WorkFunc(func(context.Context, *jobs.Job[echoArgs]) error { return nil }))
	require.ErrorIs(t, err, jobs.ErrDuplicateKind)
	require.Panics(t, func() {
		jobs.AddWorker(w, jobs.WorkFunc(func(context.Context, *jobs.Job[echoArgs]) error { return nil }))
	})
	require.Equal(t, []string{"test.echo"}, w.Kinds())
}
