package history

import (
	"maps"
	"time"

	"github.com/warrenjobs/warren/jobs"
)

type worker struct {
	status   jobs.WorkerStatus
	lastSeen time.Time
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

// workerState is "online", "stopping" or "offline".
func (s *Store) workerState(w *worker, now time.Time) string {
	if now.Sub(w.lastSeen) > s.lim.WorkerOfflineAfter {
		return "offline"
	}
	if w.status.Stopping {
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
