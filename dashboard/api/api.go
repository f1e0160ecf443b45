// Package api defines the JSON documents the warren dashboard serves under
// /api. The field names are stable: a field may be added, never renamed or
// removed, within wire format version 1. The CLI and users' scripts decode
// these types.
//
//	resp, _ := http.Get("http://127.0.0.1:5555/api/queues")
//	var qs api.Queues
//	_ = json.NewDecoder(resp.Body).Decode(&qs)
//
// Times are RFC 3339 in UTC; durations are float seconds in fields whose names
// end in _seconds. Figures marked "from events" are derived from the
// lifecycle events workers publish; the others come from the broker.
package api

import (
	"encoding/json"
	"time"
)

// Queues is GET /api/queues.
type Queues struct {
	Queues []Queue `json:"queues"`
	// Replaying is true while the dashboard is still reading the retained
	// event history after a start: figures from events may be incomplete.
	Replaying bool `json:"replaying"`
}

// Queue is one work queue's figures.
type Queue struct {
	Name string `json:"name"`
	// Ready, Consumers and Dead come from the broker.
	Ready     int `json:"ready"`
	Consumers int `json:"consumers"`
	Dead      int `json:"dead"`
	// InFlight counts tasks started and not yet finished on workers that are
	// online (from events).
	InFlight int `json:"in_flight"`
	// Delayed counts tasks waiting for a future run time: scheduled tasks and
	// retries not yet due (from events).
	Delayed int `json:"delayed"`
	// OldestReadySeconds is the age of the oldest task that is due and not
	// started, counted from when it became due (from events); null when none
	// is known.
	OldestReadySeconds *float64 `json:"oldest_ready_seconds"`
	// OldestReadyAtLeast is true when the dashboard had to forget some waiting
	// tasks of this queue (history limits), so the true age may be larger.
	OldestReadyAtLeast bool `json:"oldest_ready_at_least,omitempty"`
	// Rates are per minute, averaged over the last five minutes (from events).
	Rates Rates `json:"rates"`
	// Error is set when the broker could not report the queue's figures.
	Error string `json:"error,omitempty"`
}

// Rates are events per minute.
type Rates struct {
	EnqueuedPerMinute  float64 `json:"enqueued_per_minute"`
	SucceededPerMinute float64 `json:"succeeded_per_minute"`
	FailedPerMinute    float64 `json:"failed_per_minute"`
}

// QueueDetail is GET /api/queues/{name}.
type QueueDetail struct {
	Queue
	// History holds one entry per minute of the last hour, oldest first.
	History []Minute `json:"history"`
}

// Minute counts a queue's events in one minute (from events).
type Minute struct {
	Time      time.Time `json:"time"` // start of the minute
	Enqueued  int       `json:"enqueued"`
	Succeeded int       `json:"succeeded"`
	Failed    int       `json:"failed"` // failed attempts, dead-lettered ones included
	Dead      int       `json:"dead"`
}

// Workers is GET /api/workers.
type Workers struct {
	Workers []Worker `json:"workers"`
}

// Worker is one worker process, as its last heartbeat described it.
type Worker struct {
	ID          string         `json:"id"`
	Host        string         `json:"host"`
	PID         int            `json:"pid"`
	Queues      map[string]int `json:"queues"` // name → weight
	Concurrency int            `json:"concurrency"`
	Active      int            `json:"active"`
	Processed   int64          `json:"processed"`
	Failed      int64          `json:"failed"`
	Abandoned   int64          `json:"abandoned"`
	StartedAt   time.Time      `json:"started_at"`
	LastSeen    time.Time      `json:"last_seen"`
	// State is "online", "stopping" (shutting down) or "offline" (no heartbeat
	// for longer than the dashboard's offline threshold).
	State string `json:"state"`
	// ActiveTasks are the IDs of the tasks it is running (from events).
	ActiveTasks []string `json:"active_tasks"`
}

// Task states. A task's state is the last step the dashboard knows of.
const (
	StateQueued    = "queued"    // waiting in its queue
	StateScheduled = "scheduled" // enqueued to run at a future time
	StateActive    = "active"    // running on a worker
	StateSucceeded = "succeeded"
	StateRetrying  = "retrying" // an attempt failed; another is scheduled
	StateDead      = "dead"     // dead-lettered
	StateCancelled = "cancelled"
)

// StateFailed is a filter, not a state: tasks whose last attempt failed
// (retrying or dead).
const StateFailed = "failed"

// Tasks is GET /api/tasks.
type Tasks struct {
	Tasks []Task `json:"tasks"`
	// Matched is how many known tasks matched the filter; Tasks holds at most
	// the requested limit of them, most recently updated first.
	Matched int `json:"matched"`
}

// Task is one task as the dashboard knows it from events. In lists,
// Attempts and Args are left out; GET /api/tasks/{id} has them.
type Task struct {
	ID           string    `json:"id"`
	Kind         string    `json:"kind"`
	Queue        string    `json:"queue"`
	State        string    `json:"state"`
	AttemptCount int       `json:"attempt_count"`
	EnqueuedAt   time.Time `json:"enqueued_at,omitzero"`
	RunAt        time.Time `json:"run_at,omitzero"` // when a delayed task or the next retry is due
	UpdatedAt    time.Time `json:"updated_at"`      // time of its last event
	Worker       string    `json:"worker,omitempty"`
	LastError    string    `json:"last_error,omitempty"`

	// Args are the task's JSON arguments; absent when they were over the
	// event size limit (4 KiB) or in lists.
	Args json.RawMessage `json:"args,omitempty"`
	// Attempts, oldest first; absent in lists.
	Attempts []Attempt `json:"attempts,omitempty"`
	// AttemptsDropped counts early attempts not kept (history limits).
	AttemptsDropped int `json:"attempts_dropped,omitempty"`
}

// Attempt is one execution of a task.
type Attempt struct {
	Number     int       `json:"number"` // 1-based; 0: rejected before running
	Worker     string    `json:"worker,omitempty"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// RunSeconds is the handler's run time, once finished.
	RunSeconds float64 `json:"run_seconds,omitempty"`
	// Outcome is "running", "succeeded", "retrying", "dead" or "cancelled".
	Outcome string    `json:"outcome"`
	Error   string    `json:"error,omitempty"`
	Stack   string    `json:"stack,omitempty"`
	RetryAt time.Time `json:"retry_at,omitzero"`
}

// DeadLetters is GET /api/queues/{name}/dead.
type DeadLetters struct {
	Queue string `json:"queue"`
	// Total is the number of dead letters in the queue; DeadLetters holds at
	// most the requested limit, oldest first.
	Total       int          `json:"total"`
	DeadLetters []DeadLetter `json:"dead_letters"`
}

// DeadLetter is a task in a dead-letter queue, read from the broker.
type DeadLetter struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	Queue    string `json:"queue"`
	Attempts int    `json:"attempts"`
	// Args holds the payload when it is valid JSON; otherwise ArgsText holds it
	// as text.
	Args       json.RawMessage   `json:"args,omitempty"`
	ArgsText   string            `json:"args_text,omitempty"`
	Reason     string            `json:"reason"`
	Error      string            `json:"error,omitempty"`
	Stack      string            `json:"stack,omitempty"`
	Meta       map[string]string `json:"meta,omitempty"`
	EnqueuedAt time.Time         `json:"enqueued_at,omitzero"`
	FailedAt   time.Time         `json:"failed_at,omitzero"`
	DeadAt     time.Time         `json:"dead_at,omitzero"`
}

// ActionResult answers a POST: what was done to how many messages.
type ActionResult struct {
	Queue  string `json:"queue"`
	Action string `json:"action"` // "purge", "retry" or "delete"
	Count  int    `json:"count"`
}

// Health is GET /healthz.
type Health struct {
	Status    string `json:"status"` // "ok" or "unavailable"
	Broker    string `json:"broker"` // "ok" or the error
	Replaying bool   `json:"replaying"`
}

// Error is the body of every error response.
type Error struct {
	Error string `json:"error"`
}
