package jobstest_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/warrenjobs/warren/jobs"
	"github.com/warrenjobs/warren/jobs/jobstest"
)

func TestWorkRecoversPanicAndAppliesTimeout(t *testing.T) {
	t.Parallel()
	panicky := jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[Resize]) error { panic("oops") })
	err := jobstest.Work(context.Background(), panicky, Resize{}, nil)
	var pe *jobs.PanicError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, "oops", pe.Value)

	slow := jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[Resize]) error {
		<-ctx.Done()
		return ctx.Err()
	})
	start := time.Now()
	err = jobstest.Work(context.Background(), slow, Resize{}, &jobstest.WorkOpts{Timeout: 20 * time.Millisecond, Attempt: 3})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Less(t, time.Since(start), time.Second)

	var seen *jobs.Job[Resize]
	rec := jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[Resize]) error { seen = j; return nil })
	require.NoError(t, jobstest.Work(context.Background(), rec, Resize{Image: "x", Width: 3}, &jobstest.WorkOpts{Attempt: 2, Meta: map[string]string{"k": "v"}}))
	require.Equal(t, 2, seen.Attempt)
	require.Equal(t, "x", seen.Args.Image)
	require.Equal(t, "v", seen.Meta["k"])
}

// A handler test written with jobstest runs in milliseconds, with no broker.
func TestHandlerTestIsFast(t *testing.T) {
	t.Parallel()
	start := time.Now()
	for i := 0; i < 1000; i++ {
		require.NoError(t, jobstest.Work(context.Background(), ResizeWorker{}, Resize{Image: "a", Width: 10}, nil))
	}
	env := jobstest.NewEnv(t)
	require.NoError(t, Upload(context.Background(), env.Client, "dog.png"))
	jobstest.RequireEnqueued(t, env.Recorder, Resize{Image: "dog.png", Width: 640}, "images")
	require.Less(t, time.Since(start), 500*time.Millisecond)
}

func TestRequireEnqueuedFailsOnMismatch(t *testing.T) {
	t.Parallel()
	env := jobstest.NewEnv(t)
	require.NoError(t, Upload(context.Background(), env.Client, "cat.png"))
	ft := &fakeT{}
	func() {
		defer func() { _ = recover() }()
		jobstest.RequireEnqueued(ft, env.Recorder, Resize{Image: "dog.png", Width: 640}, "")
	}()
	require.Contains(t, ft.msg, `no "image.resize" task with args {"image":"dog.png","width":640}`)
	require.Contains(t, ft.msg, "cat.png")

	ft = &fakeT{}
	func() {
		defer func() { _ = recover() }()
		jobstest.RequireNotEnqueued(ft, env.Recorder, "image.resize")
	}()
	require.Contains(t, ft.msg, "1 \"image.resize\" task(s) enqueued")
}

// fakeT captures Fatalf without ending the real test.
type fakeT struct {
	testing.TB
	msg string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic("fatal")
}

func TestDrainRunsEverythingDue(t *testing.T) {
	t.Parallel()
	env := jobstest.NewEnv(t)
	var ran atomic.Int32
	workers := jobs.NewWorkers()
	jobs.AddWorker(workers, jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[Resize]) error {
		ran.Add(1)
		if j.Args.Width < 0 {
			return errors.New("retry me")
		}
		return nil
	}))
	ctx := context.Background()
	for i := 0; i < 50; i++ {
		_, err := env.Client.Enqueue(ctx, Resize{Width: i}, &jobs.EnqueueOpts{Queue: "a"})
		require.NoError(t, err)
	}
	_, err := env.Client.Enqueue(ctx, Resize{Width: -1}, &jobs.EnqueueOpts{Queue: "b"})
	require.NoError(t, err)
	_, err = env.Client.Enqueue(ctx, Resize{Width: 1}, &jobs.EnqueueOpts{Queue: "b", Delay: time.Hour})
	require.NoError(t, err)
	_, err = env.Client.Enqueue(ctx, unknown{}, &jobs.EnqueueOpts{Queue: "a"})
	require.NoError(t, err)

	res, err := env.Drain(ctx, workers, "a", "b")
	require.NoError(t, err)
	require.Equal(t, jobstest.DrainResult{Succeeded: 50, Retried: 1, Dead: 1}, res)
	require.EqualValues(t, 51, ran.Load(), "the delayed task is not due")
}

type unknown struct{}

func (unknown) Kind() string { return "nobody.handles" }
