// Package demo holds the demo job kinds of the stock warren binary. The README
// tour, the CLI tests, the benchmarks, the fault suite and `warren dev` use
// them to exercise every outcome a task can have:
//
//	demo.noop  {}              succeeds at once
//	demo.sleep {"ms":N}        sleeps N ms, honouring its context, then succeeds
//	demo.fail  {"times":N}     fails while its attempt number is ≤ N, then succeeds
//	demo.panic {}              panics on every attempt
//	demo.echo  {"msg":S}       logs S, then succeeds
//
// demo.fail counts attempts over the task's whole life: a dead-letter retry
// grants a fresh retry budget but the attempt number keeps counting, so
// {"times":5} with 2 retries is dead-lettered after attempt 3 and, retried
// from the dead-letter queue, succeeds at attempt 6.
//
//	workers := jobs.NewWorkers()
//	demo.Register(workers)
package demo

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/warrenjobs/warren/jobs"
)

// Noop is demo.noop: it does nothing and succeeds.
type Noop struct{}

// Kind implements jobs.JobArgs.
func (Noop) Kind() string { return "demo.noop" }

// Sleep is demo.sleep: it sleeps MS milliseconds, or until its context ends.
type Sleep struct {
	MS int `json:"ms"`
}

// Kind implements jobs.JobArgs.
func (Sleep) Kind() string { return "demo.sleep" }

// Fail is demo.fail: it fails while the attempt number is at most Times.
type Fail struct {
	Times int `json:"times"`
}

// Kind implements jobs.JobArgs.
func (Fail) Kind() string { return "demo.fail" }

// Panic is demo.panic: it panics on every attempt.
type Panic struct{}

// Kind implements jobs.JobArgs.
func (Panic) Kind() string { return "demo.panic" }

// Echo is demo.echo: it logs Msg through slog.Default and succeeds.
type Echo struct {
	Msg string `json:"msg"`
}

// Kind implements jobs.JobArgs.
func (Echo) Kind() string { return "demo.echo" }

// Register adds a worker for every demo kind to workers.
func Register(workers *jobs.Workers) {
	jobs.AddWorker(workers, jobs.WorkFunc(func(context.Context, *jobs.Job[Noop]) error { return nil }))
	jobs.AddWorker(workers, jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[Sleep]) error {
		t := time.NewTimer(time.Duration(j.Args.MS) * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}))
	jobs.AddWorker(workers, jobs.WorkFunc(func(_ context.Context, j *jobs.Job[Fail]) error {
		if j.Attempt <= j.Args.Times {
			return fmt.Errorf("demo.fail: attempt %d of %d planned failures", j.Attempt, j.Args.Times)
		}
		return nil
	}))
	jobs.AddWorker(workers, jobs.WorkFunc(func(context.Context, *jobs.Job[Panic]) error {
		panic("demo.panic: deliberate panic")
	}))
	jobs.AddWorker(workers, jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[Echo]) error {
		slog.Default().InfoContext(ctx, "demo.echo", "echo", j.Args.Msg, "task_id", j.ID, "attempt", j.Attempt)
		return nil
	}))
}
