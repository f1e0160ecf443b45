package history

import (
	"maps"
	"time"

	"github.com/warrenjobs/warren/jobs"
)

type worker struct {
	status   jobs.WorkerStatus
	lastSeen time.Time
	interval time.Duration // between its last two beats, 0 until two were seen
}

func (s *Store) heartbeat(e *jobs.Event) {
	if e.Status == nil {
		return
	}
	id := e.Status.ID
	if id == "" {
		id = e.Worker
	}
	if id == "" {
		return
	}
	for q := range e.Status.Queues {
		s.touchQueue(q, e.Time)
	}
	w, ok := s.workers[id]
	if !ok {
		if len(s.workers) >= s.lim.MaxWorkers {
			s.dropStalestWorker()
		}
		w = &worker{}
		s.workers[id] = w
	}
	if e.Time.Before(w.lastSeen) {
		return // an older beat arriving late
	}
	if !w.lastSeen.IsZero() && e.Time.After(w.lastSeen) {
		w.interval = e.Time.Sub(w.lastSeen)
	}
	w.lastSeen = e.Time
	w.status = *e.Status
	w.status.ID = id
	w.status.Queues = maps.Clone(e.Status.Queues)
}

func (s *Store) dropStalestWorker() {
	var id string
	var stalest *worker
	for k, w := range s.workers {
		if stalest == nil || w.lastSeen.Before(stalest.lastSeen) {
			id, stalest = k, w
		}
	}
	delete(s.workers, id)
}

// pruneWorkers forgets workers silent for longer than WorkerDropAfter.
func (s *Store) pruneWorkers(now time.Time) {
	for id, w := range s.workers {
		if now.Sub(w.lastSeen) > s.lim.WorkerDropAfter {
			delete(s.workers, id)
		}
	}
}

// workerState is "online", "stopping" or "offline". A stopping worker that
// missed two of its beats has finished stopping: its last beat says
// stopping, and none follows.
func (s *Store) workerState(w *worker, now time.Time) string {
	silent := now.Sub(w.lastSeen)
	switch {
	case silent > s.lim.WorkerOfflineAfter:
		return "offline"
	case w.status.Stopping && w.interval > 0 && silent > 2*w.interval:
		return "offline"
	case w.status.Stopping:
		return "stopping"
	}
	return "online"
}

// aliveFunc reports whether the worker that started a task at since is still
// running it: a known worker that is not offline, or an unknown one (no
// heartbeat seen) within the offline threshold of the start.
func (s *Store) aliveFunc(now time.Time) func(id string, since time.Time) bool {
	return func(id string, since time.Time) bool {
		if w, ok := s.workers[id]; ok {
			return s.workerState(w, now) != "offline"
		}
		return now.Sub(since) <= s.lim.WorkerOfflineAfter
	}
}
