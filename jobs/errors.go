package jobs

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrTimeLimit is the error of an attempt that ran past its time limit.
	ErrTimeLimit = errors.New("time limit exceeded")
	// ErrUnknownKind reports a task whose kind no worker is registered for.
	ErrUnknownKind = errors.New("unknown kind")
	// ErrPayloadTooLarge reports args larger than the configured cap.
	ErrPayloadTooLarge = errors.New("payload too large")
)

// SkipRetry wraps err so that the task is dead-lettered at once, whatever
// retries it has left. Use it for failures no retry can fix.
func SkipRetry(err error) error {
	if err == nil {
		err = errors.New("skip retry")
	}
	return &skipRetryError{err: err}
}

type skipRetryError struct{ err error }

func (e *skipRetryError) Error() string { return "skip retry: " + e.err.Error() }
func (e *skipRetryError) Unwrap() error { return e.err }

// RetryAfter asks for the task to run again after d, for example when a rate
// limit says when to come back. It does not use up a retry: the task's retry
// budget is unchanged.
func RetryAfter(d time.Duration) error {
	return &RetryAfterError{Delay: d}
}

// RetryAfterError is the error RetryAfter returns; errors.As finds it.
type RetryAfterError struct {
	Delay time.Duration
}

func (e *RetryAfterError) Error() string { return fmt.Sprintf("retry after %s", e.Delay) }

// Cancel wraps err so that the task is dropped: neither retried nor
// dead-lettered. The error is recorded in the task's events.
func Cancel(err error) error {
	if err == nil {
		err = errors.New("cancelled")
	}
	return &cancelError{err: err}
}

type cancelError struct{ err error }

func (e *cancelError) Error() string { return "cancel: " + e.err.Error() }
func (e *cancelError) Unwrap() error { return e.err }

// PanicError is the error of an attempt whose handler panicked.
type PanicError struct {
	Value any    // what was passed to panic
	Stack string // the goroutine's stack at the panic
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

func isSkipRetry(err error) bool {
	var e *skipRetryError
	return errors.As(err, &e)
}

func isCancel(err error) bool {
	var e *cancelError
	return errors.As(err, &e)
}
