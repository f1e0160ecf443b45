package jobs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// JobArgs is a job kind: the arguments of a task, encoded as JSON on the wire.
// Kind names the kind and must be stable across deploys, e.g. "email.send".
type JobArgs interface {
	Kind() string
}

// JobArgsWithOpts is implemented by args types that want per-kind enqueue
// defaults (queue, retries, time limit...). Per-call options override them.
type JobArgsWithOpts interface {
	JobArgs
	EnqueueOpts() EnqueueOpts
}

// Job is one execution attempt of a task, as a handler sees it.
type Job[T JobArgs] struct {
	ID         string            // task ID, the same on every attempt: use it for idempotency
	Kind       string            // T's Kind
	Queue      string            // queue it was consumed from
	Args       T                 // decoded arguments
	Attempt    int               // 1 on the first attempt; keeps counting across retries
	MaxRetries int               // retries allowed in the current retry budget
	EnqueuedAt time.Time         // when the task was first enqueued
	LastError  string            // the previous attempt's error, if any
	Meta       map[string]string // metadata given at enqueue
}

// Worker handles tasks of kind T. Work returns nil on success; an error fails
// the attempt (see SkipRetry, RetryAfter and Cancel for other outcomes). Work
// must honour ctx: it is cancelled at the task's time limit.
//
// Optional behaviour comes from optional interfaces a worker may implement:
//
//	Timeout(job *Job[T]) time.Duration   // per-kind time limit (0: default)
//	NextRetry(job *Job[T]) time.Duration // per-kind retry delay (0: default policy)
type Worker[T JobArgs] interface {
	Work(ctx context.Context, job *Job[T]) error
}

// WorkerDefaults is meant to be embedded in worker types. It adds nothing today
// and keeps workers compiling when warren grows optional behaviour with
// defaults.
type WorkerDefaults[T JobArgs] struct{}

type workerTimeout[T JobArgs] interface {
	Timeout(job *Job[T]) time.Duration
}

type workerNextRetry[T JobArgs] interface {
	NextRetry(job *Job[T]) time.Duration
}

// WorkFunc adapts a function to a Worker.
func WorkFunc[T JobArgs](f func(ctx context.Context, job *Job[T]) error) Worker[T] {
	return workFunc[T](f)
}

type workFunc[T JobArgs] func(ctx context.Context, job *Job[T]) error

func (f workFunc[T]) Work(ctx context.Context, job *Job[T]) error { return f(ctx, job) }

// handler is a registered Worker with its type erased, as the runner uses it.
type handler interface {
	// decode parses raw args; the error means the payload has the wrong shape.
	decode(t *task) (run func(ctx context.Context) error, err error)
	// decodeArgs parses raw args strictly, for Workers.DecodeArgs.
	decodeArgs(data []byte) (JobArgs, error)
}

// task is one delivery being executed, in the runner's own terms.
type task struct {
	id, kind, queue string
	args            []byte
	attempt         int // 1-based number of this attempt
	maxRetries      int
	enqueuedAt      time.Time
	lastError       string
	meta            map[string]string

	// filled by decode from the worker's optional interfaces
	timeout   time.Duration
	nextRetry func() time.Duration
}

type typedHandler[T JobArgs] struct {
	worker Worker[T]
}

func (h typedHandler[T]) decode(t *task) (func(ctx context.Context) error, error) {
	var args T
	if err := json.Unmarshal(t.args, &args); err != nil {
		return nil, fmt.Errorf("decode args of kind %q: %w", t.kind, err)
	}
	job := &Job[T]{
		ID: t.id, Kind: t.kind, Queue: t.queue, Args: args, Attempt: t.attempt,
		MaxRetries: t.maxRetries, EnqueuedAt: t.enqueuedAt, LastError: t.lastError, Meta: t.meta,
	}
	if w, ok := h.worker.(workerTimeout[T]); ok {
		t.timeout = w.Timeout(job)
	}
	if w, ok := h.worker.(workerNextRetry[T]); ok {
		t.nextRetry = func() time.Duration { return w.NextRetry(job) }
	}
	return func(ctx context.Context) error { return h.worker.Work(ctx, job) }, nil
}

func (h typedHandler[T]) decodeArgs(data []byte) (JobArgs, error) {
	var args T
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&args); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the JSON value")
	}
	return args, nil
}
