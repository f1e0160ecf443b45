package jobs

import (
	"encoding/json"
	"time"
)

// EventType names a step in a task's life, or a worker heartbeat.
type EventType string

// The event types. A task's events are: enqueued, then per attempt started and
// one of succeeded, retrying, dead or cancelled. In the events log an attempt
// that ended within the same batch (about 100 ms) has no started event: its
// outcome carries the worker and the run time, and it started at Time less
// Duration. RunnerConfig.OnEvent sees every event.
const (
	EventEnqueued  EventType = "enqueued"
	EventStarted   EventType = "started"
	EventSucceeded EventType = "succeeded"
	EventRetrying  EventType = "retrying"  // the attempt failed; another is scheduled at RunAt
	EventDead      EventType = "dead"      // dead-lettered
	EventCancelled EventType = "cancelled" // the handler cancelled the task
	EventHeartbeat EventType = "heartbeat" // a worker's periodic status
)

// Event is one lifecycle event. Workers and clients publish them in batches
// to the broker's events log (a RabbitMQ stream), where dashboards read them.
type Event struct {
	Type     EventType       `json:"type"`
	Time     time.Time       `json:"time"`
	TaskID   string          `json:"task_id,omitempty"`
	Kind     string          `json:"kind,omitempty"`
	Queue    string          `json:"queue,omitempty"`
	Attempt  int             `json:"attempt,omitempty"`
	Args     json.RawMessage `json:"args,omitempty"`     // on enqueued, when under 4 KiB
	RunAt    time.Time       `json:"run_at,omitzero"`    // on enqueued and retrying, when delayed
	Error    string          `json:"error,omitempty"`    // on retrying, dead, cancelled: the attempt's error (on dead, prefixed by the reason)
	Reason   string          `json:"reason,omitempty"`   // on dead: why it was dead-lettered
	Stack    string          `json:"stack,omitempty"`    // when the attempt panicked
	Duration time.Duration   `json:"duration,omitempty"` // run time, on an attempt's outcome
	Worker   string          `json:"worker,omitempty"`   // the worker ID that ran it
	Status   *WorkerStatus   `json:"status,omitempty"`   // on heartbeat
}

// WorkerStatus is what a heartbeat says about a worker process.
type WorkerStatus struct {
	ID          string         `json:"id"`
	Host        string         `json:"host"`
	PID         int            `json:"pid"`
	Queues      map[string]int `json:"queues"` // name → weight
	Concurrency int            `json:"concurrency"`
	Active      int            `json:"active"`
	Processed   int64          `json:"processed"` // attempts finished
	Failed      int64          `json:"failed"`    // attempts failed
	Abandoned   int64          `json:"abandoned"` // handlers abandoned past their time limit
	StartedAt   time.Time      `json:"started_at"`
	Stopping    bool           `json:"stopping,omitempty"` // last heartbeat of a stopping worker
}

// maxEventArgs caps the args copied into an enqueued event.
const maxEventArgs = 4 << 10

// DecodeEvents parses one batch read from the events log.
func DecodeEvents(batch []byte) ([]Event, error) {
	var events []Event
	if err := json.Unmarshal(batch, &events); err != nil {
		return nil, err
	}
	return events, nil
}
