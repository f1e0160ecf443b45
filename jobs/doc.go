// Package jobs is warren's public API: define job kinds, enqueue them with a
// Client, and execute them with a Runner.
//
// A kind is a Go type whose Kind method names it; its handler is a Worker[T]:
//
//	type SendEmail struct{ To string }
//
//	func (SendEmail) Kind() string { return "email.send" }
//
//	workers := jobs.NewWorkers()
//	jobs.AddWorker(workers, jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[SendEmail]) error {
//		return send(ctx, j.Args.To)
//	}))
//
//	client, _ := jobs.NewClient(b, nil)
//	id, err := client.Enqueue(ctx, SendEmail{To: "a@example.com"}, nil)
//
//	runner, _ := jobs.NewRunner(b, workers, &jobs.RunnerConfig{Queues: map[string]int{"default": 1}})
//	err = runner.Run(ctx) // until ctx is cancelled
//
// # Guarantees
//
// Enqueue returns only after the broker confirmed the task. From then on the
// task is executed to completion at least once, or ends in its queue's
// dead-letter queue. A delivery is acknowledged only after its handler
// returned nil, so a crash means the task runs again: handlers should be
// idempotent, keyed on Job.ID.
//
// # Outcomes
//
// A handler's error fails the attempt; the task is retried after a delay
// (RetryDelay, the worker's NextRetry, or the runner's Backoff, by default
// about 1 min, 5 min, 25 min, 2 h) until it has used MaxRetries retries
// (default 4), then dead-lettered with its payload, attempts, last error, stack
// and timestamps. Typed errors change that: SkipRetry dead-letters at once,
// RetryAfter runs the task again after a given delay without using a retry,
// Cancel drops it. A panic is recovered and fails the attempt, its stack
// recorded. Retries and delayed tasks are held by the broker, never in worker
// memory.
//
// # Time limits
//
// Every attempt has a time limit (default 10 min). At the limit the handler's
// context is cancelled; handlers must honour it. A handler still running
// GracePeriod later is abandoned — Go cannot kill a goroutine — the attempt
// fails with ErrTimeLimit, and the abandoned goroutine is counted
// (WorkerStatus.Abandoned). Limits at or above the broker's consumer timeout
// (RabbitMQ: 30 min) are rejected, since the broker would take the task back
// mid-run.
//
// # Bad input
//
// A message that cannot be handled — not a warren message, not JSON, an
// unknown kind, args of the wrong shape, over MaxPayloadBytes — is
// dead-lettered at once with the reason. It never loops and never stops the
// runner.
//
// # Shutdown
//
// When Run's context is cancelled the runner takes no new task, waits up to
// ShutdownTimeout for running ones, and returns everything unfinished to its
// queue.
package jobs
