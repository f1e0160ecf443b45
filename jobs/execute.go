package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/warrenjobs/warren/broker"
)

// settleTimeout bounds one settle call (ack, retry, dead-letter) to the broker.
const settleTimeout = 30 * time.Second

// execute runs one delivery to its outcome and settles it with the broker.
func (r *Runner) execute(d broker.Delivery) {
	msg := d.Message()

	if err := d.DecodeErr(); err != nil {
		r.deadLetter(d, msg, msg.Attempt, "malformed message: "+err.Error(), "", "")
		return
	}
	if r.cfg.MaxPayloadBytes > 0 && len(msg.Args) > r.cfg.MaxPayloadBytes {
		r.deadLetter(d, msg, msg.Attempt, fmt.Sprintf("%v: %d bytes, limit %d", ErrPayloadTooLarge, len(msg.Args), r.cfg.MaxPayloadBytes), "", "")
		return
	}
	h, ok := r.workers.lookup(msg.Kind)
	if !ok {
		r.deadLetter(d, msg, msg.Attempt, fmt.Sprintf("%v %q: no worker registered", ErrUnknownKind, msg.Kind), "", "")
		return
	}
	t := &task{
		id: msg.ID, kind: msg.Kind, queue: msg.Queue, args: msg.Args, attempt: msg.Attempt + 1,
		maxRetries: r.cfg.maxRetries(msg), enqueuedAt: msg.EnqueuedAt, lastError: msg.LastError, meta: msg.Meta,
	}
	run, err := h.decode(t)
	if err != nil {
		r.deadLetter(d, msg, msg.Attempt, "wrong shape: "+err.Error(), "", "")
		return
	}
	timeout := r.cfg.DefaultTimeout
	switch {
	case msg.Timeout > 0:
		timeout = msg.Timeout
	case t.timeout > 0:
		timeout = t.timeout
	}
	if timeout+r.cfg.GracePeriod >= r.cfg.ConsumerTimeout {
		r.deadLetter(d, msg, msg.Attempt, fmt.Sprintf("time limit %s plus grace %s is not below the consumer timeout %s", timeout, r.cfg.GracePeriod, r.cfg.ConsumerTimeout), "", "")
		return
	}

	begin := time.Now()
	r.events.emit(Event{Type: EventStarted, Time: begin, TaskID: msg.ID, Kind: msg.Kind, Queue: msg.Queue, Attempt: t.attempt, Worker: r.cfg.ID})
	chain := chainWork(r.cfg.Middleware, func(ctx context.Context, _ *broker.Message) error { return run(ctx) })
	err = r.attempt(chain, msg, timeout)
	took := time.Since(begin)

	if r.hardCtx.Err() != nil && err != nil {
		// Interrupted by shutdown: leave it unsettled so it goes back to the queue.
		r.taskLog(msg).Warn("task interrupted by shutdown; it will run again", "err", err)
		return
	}
	r.processed.Add(1)
	r.settle(d, msg, t, err, took)
}

// taskLog is the logger of one attempt of msg. It is built only when there
// is something to log: With costs more than the rest of a no-op task.
func (r *Runner) taskLog(msg *broker.Message) *slog.Logger {
	return r.log.With("task_id", msg.ID, "kind", msg.Kind, "queue", msg.Queue, "attempt", msg.Attempt+1)
}

// attempt runs the handler chain under the time limit and the panic guard.
func (r *Runner) attempt(chain HandleFunc, msg *broker.Message, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(r.hardCtx, timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- &PanicError{Value: p, Stack: string(debug.Stack())}
			}
		}()
		done <- chain(ctx, msg)
	}()
	limitErr := func(err error) error {
		if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && !isControl(err) {
			return fmt.Errorf("%w (%s): %w", ErrTimeLimit, timeout, err)
		}
		return err
	}
	select {
	case err := <-done:
		return limitErr(err)
	case <-ctx.Done():
	}
	grace := time.NewTimer(r.cfg.GracePeriod)
	defer grace.Stop()
	select {
	case err := <-done:
		if err == nil {
			return nil
		}
		return limitErr(err)
	case <-grace.C:
		r.abandoned.Add(1)
		return fmt.Errorf("%w (%s): handler ignored its context and was abandoned after a %s grace period", ErrTimeLimit, timeout, r.cfg.GracePeriod)
	}
}

func isControl(err error) bool {
	var ra *RetryAfterError
	return isSkipRetry(err) || isCancel(err) || errors.As(err, &ra)
}

// settle turns an attempt's outcome into ack, retry or dead-letter.
func (r *Runner) settle(d broker.Delivery, msg *broker.Message, t *task, err error, took time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	ev := Event{Time: time.Now(), TaskID: msg.ID, Kind: msg.Kind, Queue: msg.Queue, Attempt: t.attempt, Duration: took, Worker: r.cfg.ID}
	if err == nil {
		if aerr := d.Ack(ctx); aerr != nil {
			r.taskLog(msg).Warn("ack failed; the task will run again", "err", aerr)
			return
		}
		ev.Type = EventSucceeded
		r.events.emit(ev)
		return
	}
	r.failed.Add(1)
	stack := ""
	var pe *PanicError
	if errors.As(err, &pe) {
		stack = pe.Stack
	}
	ev.Error, ev.Stack = err.Error(), stack

	var ra *RetryAfterError
	switch {
	case isCancel(err):
		if aerr := d.Ack(ctx); aerr != nil {
			r.taskLog(msg).Warn("ack of cancelled task failed; it will run again", "err", aerr)
			return
		}
		ev.Type = EventCancelled
		r.events.emit(ev)
	case errors.As(err, &ra):
		// A requested delay does not use up a retry: the budget moves along.
		next := r.nextAttempt(msg, err, stack, time.Now().Add(ra.Delay))
		next.RetryBase++
		r.retry(ctx, d, msg, next, ev)
	case isSkipRetry(err):
		r.deadLetter(d, msg, t.attempt, "skip retry: "+err.Error(), err.Error(), stack)
	default:
		used := t.attempt - msg.RetryBase
		if used > t.maxRetries {
			r.deadLetter(d, msg, t.attempt, fmt.Sprintf("max retries exceeded (%d)", t.maxRetries), err.Error(), stack)
			return
		}
		delay := msg.RetryDelay
		if delay <= 0 && t.nextRetry != nil {
			delay = t.nextRetry()
		}
		if delay <= 0 {
			delay = r.cfg.Backoff.NextRetry(used)
		}
		r.retry(ctx, d, msg, r.nextAttempt(msg, err, stack, time.Now().Add(delay)), ev)
	}
}

func (r *Runner) nextAttempt(msg *broker.Message, err error, stack string, at time.Time) *broker.Message {
	next := msg.Clone()
	next.Attempt = msg.Attempt + 1
	next.LastError, next.Stack, next.FailedAt = err.Error(), stack, time.Now()
	next.RunAt = at
	return next
}

func (r *Runner) retry(ctx context.Context, d broker.Delivery, msg, next *broker.Message, ev Event) {
	err := r.settleAgain(ctx, msg, "scheduling retry", func(ctx context.Context) error { return d.Retry(ctx, next) })
	if err != nil {
		r.taskLog(msg).Warn("scheduling retry failed; the task will run again", "err", err)
		return
	}
	ev.Type, ev.RunAt = EventRetrying, next.RunAt
	r.events.emit(ev)
}

// deadLetter moves the delivery to its queue's dead-letter queue. attempt is
// the number of attempts made so far.
func (r *Runner) deadLetter(d broker.Delivery, msg *broker.Message, attempt int, reason, lastErr, stack string) {
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	now := time.Now()
	dead := msg.Clone()
	dead.Attempt = attempt
	dead.DeadReason, dead.DeadAt = reason, now
	if lastErr != "" {
		dead.LastError, dead.Stack, dead.FailedAt = lastErr, stack, now
	}
	dead.RunAt = time.Time{}
	err := r.settleAgain(ctx, msg, "dead-lettering", func(ctx context.Context) error { return d.DeadLetter(ctx, dead) })
	if err != nil {
		r.log.Error("dead-lettering failed; the task will be delivered again", "task_id", msg.ID, "err", err)
		return
	}
	r.log.Warn("task dead-lettered", "task_id", msg.ID, "kind", msg.Kind, "queue", msg.Queue, "reason", reason)
	ev := Event{Type: EventDead, Time: now, TaskID: msg.ID, Kind: msg.Kind, Queue: msg.Queue,
		Attempt: attempt, Error: reason, Reason: reason, Stack: stack, Worker: r.cfg.ID}
	if lastErr != "" {
		ev.Error = reason + ": " + lastErr
	}
	r.events.emit(ev)
}

// Pauses between tries of a settle whose publish failed.
const (
	settleRetryMin = 250 * time.Millisecond
	settleRetryMax = 5 * time.Second
)

// settleAgain runs settle (a Retry or DeadLetter of the delivery) and, while
// its publish fails, runs it again with backoff. A *broker.PublishError means
// nothing was settled: the delivery is still held on a live session (the
// broker blocked publishing under a resource alarm, or the publishing
// connection is recovering), and no broker delivers it again while that
// session lives. Giving up would strand it, holding a prefetch slot, until the
// connection dies or RabbitMQ's consumer timeout fires; running the handler
// again would repeat its effects. So the attempt's outcome is kept and only
// the settle is repeated. Any other error ends the loop: the delivery is back
// with the broker (its session ended) or the broker is closed. So does the
// shutdown's hard deadline; closing the subscription then returns the
// message to its queue.
func (r *Runner) settleAgain(ctx context.Context, msg *broker.Message, what string, settle func(ctx context.Context) error) error {
	err := settle(ctx)
	for delay := settleRetryMin; err != nil; delay = min(2*delay, settleRetryMax) {
		var pe *broker.PublishError
		if !errors.As(err, &pe) || errors.Is(err, broker.ErrClosed) {
			return err
		}
		r.taskLog(msg).Warn(what+" failed; trying again", "err", err, "in", delay)
		select {
		case <-time.After(delay):
		case <-r.hardCtx.Done():
			return err
		}
		retryCtx, cancel := context.WithTimeout(context.Background(), settleTimeout)
		err = settle(retryCtx)
		cancel()
	}
	return nil
}
