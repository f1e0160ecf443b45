package history

import (
	"container/list"
	"encoding/json"
	"slices"
	"time"

	"github.com/warrenjobs/warren/dashboard/api"
	"github.com/warrenjobs/warren/jobs"
)

// A task's progress is ranked so that events can arrive in any order: the
// state is that of the highest-ranked event seen. Attempt n's start ranks
// 4n+1, its outcome 4n+2; an enqueue ranks 0, or 4n+3 when it re-enqueues a
// task after n attempts (a dead letter sent back), so it comes after attempt
// n's outcome and before attempt n+1's start.
func rank(e *jobs.Event) int {
	switch e.Type {
	case jobs.EventEnqueued:
		if e.Attempt > 0 {
			return 4*e.Attempt + 3
		}
		return 0
	case jobs.EventStarted:
		return 4*e.Attempt + 1
	default:
		return 4*e.Attempt + 2
	}
}

type task struct {
	id, kind, queue string
	args            []byte

	rank       int
	phase      jobs.EventType // type of the highest-ranked event
	enqueuedAt time.Time
	runAt      time.Time // due time while waiting (scheduled or retrying)
	since      time.Time // when it became waiting (enqueue time, or due time)
	updated    time.Time // time of the newest event
	worker     string    // worker of the highest-ranked start
	startedAt  time.Time
	lastError  string

	attempts []attempt // sorted by number, at most MaxAttempts
	dropped  int       // attempts forgotten (only the latest are kept)

	elem   *list.Element
	inOpen bool
	size   int
}

type attempt struct {
	number     int
	worker     string
	startedAt  time.Time
	finishedAt time.Time
	duration   time.Duration
	outcome    jobs.EventType // "" while running
	err, stack string
	retryAt    time.Time
}

func (t *task) apply(e *jobs.Event, maxAttempts int) {
	if t.kind == "" {
		t.kind = e.Kind
	}
	if t.queue == "" {
		t.queue = e.Queue
	}
	if e.Time.After(t.updated) {
		t.updated = e.Time
	}
	if e.Type == jobs.EventEnqueued {
		if len(e.Args) > 0 && t.args == nil {
			t.args = append([]byte(nil), e.Args...)
		}
		if e.Attempt == 0 && (t.enqueuedAt.IsZero() || e.Time.Before(t.enqueuedAt)) {
			t.enqueuedAt = e.Time
		}
	} else {
		t.record(e, maxAttempts)
	}
	r := rank(e)
	if r < t.rank || (r == t.rank && t.phase != "") {
		return
	}
	t.rank, t.phase = r, e.Type
	switch e.Type {
	case jobs.EventEnqueued:
		t.runAt = e.RunAt
		t.since = e.Time
		if e.RunAt.After(e.Time) {
			t.since = e.RunAt
		}
	case jobs.EventStarted:
		t.worker, t.startedAt = e.Worker, e.Time
		t.runAt, t.since = time.Time{}, time.Time{}
	case jobs.EventRetrying:
		t.runAt, t.since = e.RunAt, e.RunAt
		t.lastError = truncate(e.Error, maxErrorLen)
	case jobs.EventSucceeded:
		t.runAt, t.since = time.Time{}, time.Time{}
		t.lastError = "" // the attempts keep their errors
	default:
		t.runAt, t.since = time.Time{}, time.Time{}
		if e.Error != "" {
			t.lastError = truncate(e.Error, maxErrorLen)
		}
	}
	if e.Worker != "" && e.Type != jobs.EventStarted {
		t.worker = e.Worker
	}
}

// record notes a start or an outcome in the attempt it belongs to.
func (t *task) record(e *jobs.Event, maxAttempts int) {
	i, found := slices.BinarySearchFunc(t.attempts, e.Attempt, func(a attempt, n int) int { return a.number - n })
	if !found {
		if len(t.attempts) >= maxAttempts && i == 0 {
			return // older than every kept attempt
		}
		t.attempts = slices.Insert(t.attempts, i, attempt{number: e.Attempt})
		if len(t.attempts) > maxAttempts {
			t.attempts = slices.Delete(t.attempts, 0, 1)
			t.dropped++
			i--
		}
	}
	a := &t.attempts[i]
	if e.Worker != "" {
		a.worker = e.Worker
	}
	if e.Type == jobs.EventStarted {
		a.startedAt = e.Time
		return
	}
	a.outcome, a.finishedAt, a.duration = e.Type, e.Time, e.Duration
	a.err, a.stack = truncate(e.Error, maxErrorLen), truncate(e.Stack, maxStackLen)
	a.retryAt = e.RunAt
	if a.startedAt.IsZero() && e.Duration > 0 {
		a.startedAt = e.Time.Add(-e.Duration)
	}
}

// finished reports whether the task has reached an end state.
func (t *task) finished() bool {
	switch t.phase {
	case jobs.EventSucceeded, jobs.EventDead, jobs.EventCancelled:
		return true
	}
	return false
}

// waiting reports whether the task waits in its queue (due or not).
func (t *task) waiting() bool {
	return t.phase == jobs.EventEnqueued || t.phase == jobs.EventRetrying
}

// footprint is the task's approximate memory use.
func (t *task) footprint() int {
	n := 256 + len(t.id) + len(t.kind) + len(t.queue) + len(t.args) + len(t.lastError) + len(t.worker)
	for _, a := range t.attempts {
		n += 128 + len(a.worker) + len(a.err) + len(a.stack)
	}
	return n
}

// state is the task's state at now, given which workers are alive.
func (t *task) state(now time.Time, alive func(id string, since time.Time) bool) string {
	switch t.phase {
	case jobs.EventEnqueued:
		if t.runAt.After(now) {
			return api.StateScheduled
		}
		return api.StateQueued
	case jobs.EventStarted:
		if !alive(t.worker, t.startedAt) {
			// Its worker is gone: the broker gave the task back to the queue.
			return api.StateQueued
		}
		return api.StateActive
	case jobs.EventSucceeded:
		return api.StateSucceeded
	case jobs.EventRetrying:
		return api.StateRetrying
	case jobs.EventDead:
		return api.StateDead
	case jobs.EventCancelled:
		return api.StateCancelled
	}
	return api.StateQueued
}

// readySince is when the task became due in its queue, or zero when it is
// not waiting there now.
func (t *task) readySince(state string, now time.Time) time.Time {
	switch state {
	case api.StateQueued:
		if t.phase == jobs.EventStarted {
			return t.startedAt
		}
		return t.since
	case api.StateRetrying:
		if !t.runAt.After(now) {
			return t.runAt
		}
	}
	return time.Time{}
}

func (t *task) summary(state string) api.Task {
	at := api.Task{
		ID: t.id, Kind: t.kind, Queue: t.queue, State: state,
		EnqueuedAt: t.enqueuedAt.UTC(), UpdatedAt: t.updated.UTC(),
		Worker: t.worker, LastError: t.lastError, AttemptCount: t.attemptCount(),
	}
	if state == api.StateScheduled || state == api.StateRetrying {
		at.RunAt = t.runAt.UTC()
	}
	return at
}

// attemptCount is the number of attempts that ran.
func (t *task) attemptCount() int {
	n := 0
	for _, a := range t.attempts {
		if a.number > n {
			n = a.number
		}
	}
	return n
}

func (t *task) detail(state string) api.Task {
	at := t.summary(state)
	if json.Valid(t.args) {
		at.Args = json.RawMessage(t.args)
	}
	at.AttemptsDropped = t.dropped
	at.Attempts = make([]api.Attempt, 0, len(t.attempts))
	for _, a := range t.attempts {
		out := api.Attempt{
			Number: a.number, Worker: a.worker, StartedAt: a.startedAt.UTC(), FinishedAt: a.finishedAt.UTC(),
			RunSeconds: a.duration.Seconds(), Outcome: string(a.outcome), Error: a.err, Stack: a.stack,
			RetryAt: a.retryAt.UTC(),
		}
		if a.outcome == "" {
			out.Outcome = "running"
			if state != api.StateActive || a.number != t.attemptCount() {
				out.Outcome = "interrupted"
			}
		}
		at.Attempts = append(at.Attempts, out)
	}
	return at
}
