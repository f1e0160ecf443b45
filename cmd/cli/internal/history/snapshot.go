package history

import (
	"context"
	"sort"
	"time"

	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/jobs"
)

// Task is what the log says about one task: its latest state.
type Task struct {
	ID         string
	Kind       string
	Queue      string
	State      jobs.EventType // the type of its latest event
	Attempt    int
	EnqueuedAt time.Time // zero when the enqueue fell before the window
	UpdatedAt  time.Time // time of the latest event
	RunAt      time.Time // when an enqueued or retrying task is due
	Error      string
	Worker     string
	Duration   time.Duration // run time of the latest finished attempt
	Args       []byte        // from the enqueued event, when recorded
	Events     []jobs.Event  // every event of the task, kept only when asked
}

// Worker is a worker process as its heartbeats describe it.
type Worker struct {
	Status   jobs.WorkerStatus
	LastSeen time.Time
}

// Snapshot is the log's view of a window.
type Snapshot struct {
	Tasks   map[string]*Task   // by task ID
	Workers map[string]*Worker // by worker ID
	Queues  map[string]bool    // queues named in the window's events

	keepEvents func(taskID string) bool
}

// Options narrow what Load reads and keeps.
type Options struct {
	// Needle, if set, skips batches that do not contain it (see Needle and
	// Replay): set it when only events naming one queue, task or type matter.
	Needle []byte
	// KeepEvents, if set, says for which tasks every event is kept in
	// Task.Events (all other tasks keep only their latest state).
	KeepEvents func(taskID string) bool
}

// Load replays the log from since and folds it into a Snapshot.
func Load(ctx context.Context, b broker.Broker, since time.Time, opts *Options) (*Snapshot, error) {
	s := &Snapshot{Tasks: map[string]*Task{}, Workers: map[string]*Worker{}, Queues: map[string]bool{}}
	var needle []byte
	if opts != nil {
		s.keepEvents, needle = opts.KeepEvents, opts.Needle
	}
	if err := Replay(ctx, b, since, needle, s.Add); err != nil {
		return nil, err
	}
	return s, nil
}

// Add folds one event into the snapshot. Events may arrive slightly out of
// order (each process appends its own batches); a task's state is that of its
// latest event by time, and among events of one instant the one furthest in
// the task's life.
func (s *Snapshot) Add(e jobs.Event) {
	if e.Type == jobs.EventHeartbeat {
		if e.Status == nil || e.Worker == "" {
			return
		}
		w := s.Workers[e.Worker]
		if w == nil {
			w = &Worker{}
			s.Workers[e.Worker] = w
		}
		if !e.Time.Before(w.LastSeen) {
			w.Status, w.LastSeen = *e.Status, e.Time
		}
		for q := range e.Status.Queues {
			s.Queues[q] = true
		}
		return
	}
	if e.TaskID == "" {
		return
	}
	if e.Queue != "" {
		s.Queues[e.Queue] = true
	}
	t := s.Tasks[e.TaskID]
	if t == nil {
		t = &Task{ID: e.TaskID}
		s.Tasks[e.TaskID] = t
	}
	if s.keepEvents != nil && s.keepEvents(e.TaskID) {
		t.Events = append(t.Events, e)
		sort.SliceStable(t.Events, func(i, j int) bool { return t.Events[i].Time.Before(t.Events[j].Time) })
	}
	if e.Type == jobs.EventEnqueued {
		t.EnqueuedAt = e.Time
		t.Args = e.Args
	}
	if t.Kind == "" {
		t.Kind = e.Kind
	}
	if t.Queue == "" {
		t.Queue = e.Queue
	}
	newer := e.Time.After(t.UpdatedAt) ||
		(e.Time.Equal(t.UpdatedAt) && rank(e.Type) >= rank(t.State))
	if t.State != "" && !newer {
		return
	}
	t.State, t.UpdatedAt, t.Attempt = e.Type, e.Time, e.Attempt
	t.Error, t.Worker, t.RunAt = e.Error, e.Worker, e.RunAt
	if e.Duration > 0 {
		t.Duration = e.Duration
	}
	if (e.Type == jobs.EventEnqueued || e.Type == jobs.EventRetrying) && t.RunAt.IsZero() {
		t.RunAt = e.Time
	}
}

// rank orders the steps of one attempt.
func rank(t jobs.EventType) int {
	switch t {
	case jobs.EventEnqueued:
		return 0
	case jobs.EventStarted:
		return 1
	default:
		return 2
	}
}

// Finished reports whether the task has reached a final state.
func (t *Task) Finished() bool {
	switch t.State {
	case jobs.EventSucceeded, jobs.EventDead, jobs.EventCancelled:
		return true
	}
	return false
}

// QueueFigures are the counts the log can give for one queue, as of now.
type QueueFigures struct {
	Running     int       // started and not finished
	Delayed     int       // enqueued or retrying, due later than now
	OldestReady time.Time // due time of the oldest task waiting to start; zero if none
}

// Queue computes the log's figures for queue q as of now.
func (s *Snapshot) Queue(q string, now time.Time) QueueFigures {
	var f QueueFigures
	for _, t := range s.Tasks {
		if t.Queue != q {
			continue
		}
		switch t.State {
		case jobs.EventStarted:
			f.Running++
		case jobs.EventEnqueued, jobs.EventRetrying:
			if t.RunAt.After(now) {
				f.Delayed++
			} else if f.OldestReady.IsZero() || t.RunAt.Before(f.OldestReady) {
				f.OldestReady = t.RunAt
			}
		}
	}
	return f
}

// WorkerState says whether a worker is up, by its heartbeats.
func (w *Worker) State(now time.Time, interval time.Duration) string {
	switch {
	case w.Status.Stopping:
		return "stopped"
	case now.Sub(w.LastSeen) > 3*interval:
		return "lost"
	default:
		return "running"
	}
}

// SortedTasks returns the snapshot's tasks, most recently updated first.
func (s *Snapshot) SortedTasks() []*Task {
	out := make([]*Task, 0, len(s.Tasks))
	for _, t := range s.Tasks {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].UpdatedAt.Equal(out[j].UpdatedAt) {
			return out[i].UpdatedAt.After(out[j].UpdatedAt)
		}
		return out[i].ID < out[j].ID
	})
	return out
}
