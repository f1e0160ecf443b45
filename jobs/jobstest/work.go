package jobstest

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/google/uuid"
	"github.com/warrenjobs/warren/jobs"
)

// WorkOpts describe the attempt Work simulates. nil means a first attempt.
type WorkOpts struct {
	Attempt int               // default 1
	ID      string            // default a random UUID
	Queue   string            // default jobs.DefaultQueue
	Meta    map[string]string // passed to the handler
	Timeout time.Duration     // default: the worker's Timeout, else 10 min
}

// Work runs worker on args once, as a runner would: args go through a JSON
// round trip (so a field that does not survive encoding shows up here), the
// handler's context carries the time limit, and a panic is returned as a
// *jobs.PanicError instead of crashing the test.
func Work[T jobs.JobArgs](ctx context.Context, worker jobs.Worker[T], args T, opts *WorkOpts) (err error) {
	o := WorkOpts{}
	if opts != nil {
		o = *opts
	}
	if o.Attempt == 0 {
		o.Attempt = 1
	}
	if o.ID == "" {
		o.ID = uuid.NewString()
	}
	if o.Queue == "" {
		o.Queue = jobs.DefaultQueue
	}
	raw, err := json.Marshal(args)
	if err != nil {
		return fmt.Errorf("jobstest: encode args: %w", err)
	}
	var decoded T
	if err := json.Unmarshal(raw, &decoded); err != nil {
		return fmt.Errorf("jobstest: decode args: %w", err)
	}
	job := &jobs.Job[T]{ID: o.ID, Kind: args.Kind(), Queue: o.Queue, Args: decoded, Attempt: o.Attempt,
		EnqueuedAt: time.Now(), Meta: o.Meta}
	timeout := o.Timeout
	if t, ok := worker.(interface {
		Timeout(*jobs.Job[T]) time.Duration
	}); ok && timeout == 0 {
		timeout = t.Timeout(job)
	}
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			err = &jobs.PanicError{Value: p, Stack: string(debug.Stack())}
		}
	}()
	return worker.Work(ctx, job)
}
