package history

import (
	"cmp"
	"container/list"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/warrenjobs/warren/dashboard/api"
	"github.com/warrenjobs/warren/jobs"
)

// Filter selects tasks. Empty fields match everything.
type Filter struct {
	State  string // one of the api.State* values, or api.StateFailed
	Queue  string
	Kind   string
	Search string // a task ID, or text found in its ID, args or errors (case-insensitive)
	Limit  int    // at most this many; default 100
}

// DefaultLimit is the page size of Tasks when Filter.Limit is zero.
const DefaultLimit = 100

// Tasks lists the tasks matching f, most recently updated first.
func (s *Store) Tasks(f Filter, now time.Time) api.Tasks {
	if f.Limit <= 0 {
		f.Limit = DefaultLimit
	}
	needle := strings.ToLower(strings.TrimSpace(f.Search))
	s.mu.RLock()
	defer s.mu.RUnlock()
	alive := s.aliveFunc(now)
	type hit struct {
		t     *task
		state string
	}
	var hits []hit
	for _, l := range []*list.List{&s.open, &s.done} {
		for e := l.Front(); e != nil; e = e.Next() {
			t := e.Value.(*task)
			if f.Queue != "" && t.queue != f.Queue || f.Kind != "" && t.kind != f.Kind {
				continue
			}
			st := t.state(now, alive)
			if !stateMatches(f.State, st) {
				continue
			}
			if needle != "" && !t.matches(needle) {
				continue
			}
			hits = append(hits, hit{t, st})
		}
	}
	slices.SortStableFunc(hits, func(a, b hit) int {
		if c := b.t.updated.Compare(a.t.updated); c != 0 {
			return c
		}
		return cmp.Compare(a.t.id, b.t.id)
	})
	out := api.Tasks{Matched: len(hits), Tasks: make([]api.Task, 0, min(len(hits), f.Limit))}
	for _, h := range hits[:min(len(hits), f.Limit)] {
		out.Tasks = append(out.Tasks, h.t.summary(h.state))
	}
	return out
}

func stateMatches(want, got string) bool {
	switch want {
	case "":
		return true
	case api.StateFailed:
		return got == api.StateRetrying || got == api.StateDead
	case api.StateQueued:
		return got == api.StateQueued || got == api.StateScheduled
	}
	return want == got
}

// matches reports whether needle (lower case) is the task's ID or occurs in
// its ID, args or errors.
func (t *task) matches(needle string) bool {
	if containsFold(t.id, needle) || containsFold(string(t.args), needle) || containsFold(t.lastError, needle) {
		return true
	}
	for _, a := range t.attempts {
		if containsFold(a.err, needle) {
			return true
		}
	}
	return false
}

// containsFold reports whether lower-case needle occurs in s, ignoring ASCII
// case, without allocating.
func containsFold(s, needle string) bool {
	if needle == "" {
		return true
	}
	first := needle[0]
	upper := first
	if 'a' <= first && first <= 'z' {
		upper = first - 'a' + 'A'
	}
	for i := 0; i+len(needle) <= len(s); i++ {
		if c := s[i]; c != first && c != upper {
			continue
		}
		if strings.EqualFold(s[i:i+len(needle)], needle) {
			return true
		}
	}
	return false
}

// Task returns one task with its attempts.
func (s *Store) Task(id string, now time.Time) (api.Task, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.tasks[id]
	if !ok {
		return api.Task{}, false
	}
	return t.detail(t.state(now, s.aliveFunc(now))), true
}

// Workers lists the known workers, online ones first, then by ID.
func (s *Store) Workers(now time.Time) []api.Worker {
	s.mu.RLock()
	defer s.mu.RUnlock()
	running := make(map[string][]string)
	alive := s.aliveFunc(now)
	for e := s.open.Front(); e != nil; e = e.Next() {
		t := e.Value.(*task)
		if t.phase == jobs.EventStarted && alive(t.worker, t.startedAt) {
			running[t.worker] = append(running[t.worker], t.id)
		}
	}
	out := make([]api.Worker, 0, len(s.workers))
	for id, w := range s.workers {
		if now.Sub(w.lastSeen) > s.lim.WorkerDropAfter {
			continue
		}
		st := w.status
		active := running[id]
		slices.Sort(active)
		out = append(out, api.Worker{
			ID: id, Host: st.Host, PID: st.PID, Queues: maps.Clone(st.Queues), Concurrency: st.Concurrency,
			Active: st.Active, Processed: st.Processed, Failed: st.Failed, Abandoned: st.Abandoned,
			StartedAt: st.StartedAt.UTC(), LastSeen: w.lastSeen.UTC(), State: s.workerState(w, now),
			ActiveTasks: append([]string{}, active...),
		})
	}
	order := map[string]int{"online": 0, "stopping": 1, "offline": 2}
	slices.SortFunc(out, func(a, b api.Worker) int {
		if c := cmp.Compare(order[a.State], order[b.State]); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out
}

// Queues returns the names of the queues seen in events, sorted.
func (s *Store) Queues() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Sorted(maps.Keys(s.queues))
}

// Kinds returns the kinds of the tasks held, sorted.
func (s *Store) Kinds() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	seen := make(map[string]struct{})
	for _, t := range s.tasks {
		if t.kind != "" {
			seen[t.kind] = struct{}{}
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// Activity is what events say about a queue right now.
type Activity struct {
	InFlight    int
	Delayed     int
	OldestReady time.Duration // zero with HasOldest false when nothing is known to wait
	HasOldest   bool
	AtLeast     bool // waiting tasks were forgotten: the true age may be larger
	Rates       api.Rates
	History     []api.Minute // the last Window, one per minute, oldest first
}

// Activity reports each named queue's activity at now.
func (s *Store) Activity(names []string, now time.Time) map[string]Activity {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]Activity, len(names))
	for _, n := range names {
		q := s.queues[n]
		h := q.history(now, nil)
		a := Activity{History: h, Rates: rates(h, now)}
		if q != nil {
			a.AtLeast = q.forgotWaiting
		}
		out[n] = a
	}
	alive := s.aliveFunc(now)
	for e := s.open.Front(); e != nil; e = e.Next() {
		t := e.Value.(*task)
		a, ok := out[t.queue]
		if !ok {
			continue
		}
		st := t.state(now, alive)
		switch {
		case st == api.StateActive:
			a.InFlight++
		case st == api.StateScheduled || st == api.StateRetrying && t.runAt.After(now):
			a.Delayed++
		}
		if since := t.readySince(st, now); !since.IsZero() {
			if age := max(now.Sub(since), 0); !a.HasOldest || age > a.OldestReady {
				a.OldestReady, a.HasOldest = age, true
			}
		}
		out[t.queue] = a
	}
	return out
}

// EmptyHistory is a Window of empty minutes up to now.
func EmptyHistory(now time.Time) []api.Minute {
	return (*queue)(nil).history(now, nil)
}
