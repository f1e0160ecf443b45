// Package history keeps the dashboard's bounded, in-memory picture of recent
// tasks, workers and per-queue activity, built only from lifecycle events.
//
// Every figure is a function of the events applied, whatever their arrival
// order (workers' and clients' batches interleave), so two dashboards that
// read the same retained events agree, and a restarted one that replays them
// loses nothing. Memory is bounded by Limits however long the store runs:
// tasks are forgotten least-recently-updated first, finished ones before
// unfinished ones.
//
//	s := history.New(history.Limits{})
//	s.Apply(events)
//	page := s.Tasks(history.Filter{State: api.StateFailed}, time.Now())
package history

import (
	"container/list"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/jobs"
)

// Limits bound the store. Zero fields take the defaults below.
type Limits struct {
	// MaxTasks is how many tasks are remembered. Default 10,000.
	MaxTasks int
	// MaxBytes bounds the approximate memory held by tasks (args, errors,
	// stacks). Default 64 MiB.
	MaxBytes int
	// MaxAttempts is how many attempts are kept per task, the latest ones.
	// Default 20.
	MaxAttempts int
	// MaxWorkers is how many worker processes are remembered. Default 1,000.
	MaxWorkers int
	// MaxQueues is how many queues are remembered. Default 1,000.
	MaxQueues int
	// WorkerOfflineAfter marks a worker offline when its last heartbeat is
	// older. Default 15 s (three missed beats at the runner's default 5 s).
	WorkerOfflineAfter time.Duration
	// WorkerDropAfter forgets a worker whose last heartbeat is older.
	// Default 15 min.
	WorkerDropAfter time.Duration
}

// Defaults of Limits.
const (
	DefaultMaxTasks           = 10_000
	DefaultMaxBytes           = 64 << 20
	DefaultMaxAttempts        = 20
	DefaultMaxWorkers         = 1_000
	DefaultMaxQueues          = 1_000
	DefaultWorkerOfflineAfter = 15 * time.Second
	DefaultWorkerDropAfter    = 15 * time.Minute
)

// Caps on the text kept per attempt.
const (
	maxErrorLen = 8 << 10
	maxStackLen = 32 << 10
)

// Window is how far back the per-minute counters reach.
const Window = time.Hour

const windowMinutes = int64(Window / time.Minute)

func (l Limits) withDefaults() Limits {
	if l.MaxTasks <= 0 {
		l.MaxTasks = DefaultMaxTasks
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxAttempts <= 0 {
		l.MaxAttempts = DefaultMaxAttempts
	}
	if l.MaxWorkers <= 0 {
		l.MaxWorkers = DefaultMaxWorkers
	}
	if l.MaxQueues <= 0 {
		l.MaxQueues = DefaultMaxQueues
	}
	if l.WorkerOfflineAfter <= 0 {
		l.WorkerOfflineAfter = DefaultWorkerOfflineAfter
	}
	if l.WorkerDropAfter <= 0 {
		l.WorkerDropAfter = DefaultWorkerDropAfter
	}
	return l
}

// Store is safe for concurrent use: one writer applying events, many readers.
type Store struct {
	lim Limits

	mu      sync.RWMutex
	tasks   map[string]*task
	open    list.List // unfinished tasks, most recently updated at the front
	done    list.List // finished tasks, likewise
	bytes   int
	workers map[string]*worker
	queues  map[string]*queue
	evicted int64
	latest  time.Time // the newest event time applied
}

// New returns an empty store.
func New(lim Limits) *Store {
	return &Store{
		lim:     lim.withDefaults(),
		tasks:   make(map[string]*task),
		workers: make(map[string]*worker),
		queues:  make(map[string]*queue),
	}
}

// Limits returns the limits in force, defaults filled in.
func (s *Store) Limits() Limits { return s.lim }

// Apply records events, in any order.
func (s *Store) Apply(events []jobs.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range events {
		s.apply(&events[i])
	}
	s.evict()
	s.pruneWorkers(s.latest)
}

func (s *Store) apply(e *jobs.Event) {
	if e.Time.After(s.latest) {
		s.latest = e.Time
	}
	if e.Type == jobs.EventHeartbeat {
		s.heartbeat(e)
		return
	}
	if e.TaskID == "" {
		return
	}
	q := s.touchQueue(e.Queue, e.Time)
	if q != nil {
		q.count(e)
	}
	t, ok := s.tasks[e.TaskID]
	if !ok {
		t = &task{id: e.TaskID}
		s.tasks[e.TaskID] = t
		t.elem = s.open.PushFront(t)
		t.inOpen = true
	}
	s.bytes -= t.size
	t.apply(e, s.lim.MaxAttempts)
	t.size = t.footprint()
	s.bytes += t.size
	s.file(t)
}

// file moves t to the front of the list its state belongs to.
func (s *Store) file(t *task) {
	wantOpen := !t.finished()
	if wantOpen == t.inOpen {
		if t.inOpen {
			s.open.MoveToFront(t.elem)
		} else {
			s.done.MoveToFront(t.elem)
		}
		return
	}
	if t.inOpen {
		s.open.Remove(t.elem)
		t.elem = s.done.PushFront(t)
	} else {
		s.done.Remove(t.elem)
		t.elem = s.open.PushFront(t)
	}
	t.inOpen = wantOpen
}

// evict forgets tasks past the limits: finished ones first, least recently
// updated first.
func (s *Store) evict() {
	for len(s.tasks) > s.lim.MaxTasks || s.bytes > s.lim.MaxBytes {
		l := &s.done
		if l.Len() == 0 {
			l = &s.open
		}
		back := l.Back()
		if back == nil {
			return
		}
		t := back.Value.(*task)
		l.Remove(back)
		delete(s.tasks, t.id)
		s.bytes -= t.size
		s.evicted++
		if t.waiting() {
			if q := s.queues[t.queue]; q != nil {
				q.forgotWaiting = true
			}
		}
	}
}

// Evicted reports how many tasks were forgotten to stay within the limits.
func (s *Store) Evicted() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.evicted
}

// Size reports the number of tasks held and their approximate bytes.
func (s *Store) Size() (tasks, bytes int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.tasks), s.bytes
}

// Latest is the time of the newest event applied.
func (s *Store) Latest() time.Time {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.latest
}

// touchQueue returns the record of a valid queue name, creating it.
func (s *Store) touchQueue(name string, at time.Time) *queue {
	if broker.ValidateQueueName(name) != nil {
		return nil
	}
	q, ok := s.queues[name]
	if !ok {
		if len(s.queues) >= s.lim.MaxQueues {
			s.dropStalestQueue()
		}
		q = &queue{name: name}
		s.queues[name] = q
	}
	if at.After(q.lastSeen) {
		q.lastSeen = at
	}
	return q
}

func (s *Store) dropStalestQueue() {
	var stalest *queue
	for _, q := range s.queues {
		if stalest == nil || q.lastSeen.Before(stalest.lastSeen) {
			stalest = q
		}
	}
	if stalest != nil {
		delete(s.queues, stalest.name)
	}
}

// ForgetWaiting clears a queue's note that waiting tasks were forgotten; the
// dashboard calls it when the broker reports the queue empty.
func (s *Store) ForgetWaiting(queue string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.queues[queue]; q != nil {
		q.forgotWaiting = false
	}
}

// truncate cuts s to at most n bytes, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "\n… (truncated)"
}
