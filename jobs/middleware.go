package jobs

import (
	"context"

	"github.com/warrenjobs/warren/broker"
)

// EnqueueFunc publishes a batch of task messages.
type EnqueueFunc func(ctx context.Context, msgs []*broker.Message) error

// EnqueueMiddleware wraps every enqueue of a Client: it may read or change the
// messages (add Meta, for example), time the call, or refuse it.
type EnqueueMiddleware func(next EnqueueFunc) EnqueueFunc

// HandleFunc executes one attempt of a task.
type HandleFunc func(ctx context.Context, msg *broker.Message) error

// WorkMiddleware wraps every attempt a Runner executes, inside the time limit
// and the panic guard: logging, metrics and tracing plug in here.
type WorkMiddleware func(next HandleFunc) HandleFunc

func chainEnqueue(mw []EnqueueMiddleware, f EnqueueFunc) EnqueueFunc {
	for i := len(mw) - 1; i >= 0; i-- {
		f = mw[i](f)
	}
	return f
}

func chainWork(mw []WorkMiddleware, f HandleFunc) HandleFunc {
	for i := len(mw) - 1; i >= 0; i-- {
		f = mw[i](f)
	}
	return f
}
