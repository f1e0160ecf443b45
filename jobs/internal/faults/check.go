package faults

import (
	"fmt"
	"sort"
	"strings"

	"github.com/warrenjobs/warren/broker"
)

// History is what a scenario observed: the producers' enqueue outcomes, the
// handlers' executions and, read at the end, the dead letters.
type History struct {
	Confirmed map[string]bool // Enqueue returned nil
	Errored   map[string]bool // Enqueue returned an error: may or may not run
	Runs      map[string]int  // completed executions (OpDone) per task
	Attempts  map[string]int  // every recorded attempt (done, fail, panic) per task
	Dead      map[string]*broker.Message
}

// NewHistory returns an empty history.
func NewHistory() *History {
	return &History{
		Confirmed: map[string]bool{},
		Errored:   map[string]bool{},
		Runs:      map[string]int{},
		Attempts:  map[string]int{},
		Dead:      map[string]*broker.Message{},
	}
}

// Add folds record entries into h.
func (h *History) Add(entries []Entry) {
	for _, e := range entries {
		switch e.Op {
		case OpEnqueued:
			h.Confirmed[e.ID] = true
		case OpEnqueueError:
			h.Errored[e.ID] = true
		case OpDone:
			h.Runs[e.ID]++
			h.Attempts[e.ID]++
		case OpFail, OpPanic:
			h.Attempts[e.ID]++
		}
	}
	// A task enqueued again after an error (same ID) and then confirmed is
	// confirmed.
	for id := range h.Confirmed {
		delete(h.Errored, id)
	}
}

// AddDead records dead letters read with broker.Dead.
func (h *History) AddDead(dead []*broker.Message) {
	for _, m := range dead {
		h.Dead[m.ID] = m
	}
}

// Result is the checker's verdict on a history.
type Result struct {
	Confirmed    int // tasks whose Enqueue returned nil
	Errored      int // tasks whose Enqueue failed (excluded from lost)
	Executed     int // distinct tasks run to completion
	Executions   int // completed runs, duplicates included
	DeadLettered int // distinct tasks in the dead-letter queue

	// Lost: confirmed, but neither completed nor dead-lettered.
	Lost []string
	// Duplicated: completed runs beyond one per task.
	Duplicated int
	// DuplicatedTasks: tasks that completed more than once.
	DuplicatedTasks []string
	// Unexpected: completed or dead-lettered, but never enqueued (neither
	// confirmed nor errored).
	Unexpected []string
}

// Check computes lost = confirmed − (executed ∪ dead-lettered), the
// duplicated executions, and the unexpected tasks.
func Check(h *History) Result {
	r := Result{Confirmed: len(h.Confirmed), Errored: len(h.Errored), DeadLettered: len(h.Dead)}
	for id := range h.Confirmed {
		if h.Runs[id] == 0 && h.Dead[id] == nil {
			r.Lost = append(r.Lost, id)
		}
	}
	seen := map[string]bool{}
	for id, n := range h.Runs {
		r.Executed++
		r.Executions += n
		if n > 1 {
			r.Duplicated += n - 1
			r.DuplicatedTasks = append(r.DuplicatedTasks, id)
		}
		seen[id] = true
	}
	for id := range h.Dead {
		seen[id] = true
	}
	for id := range seen {
		if !h.Confirmed[id] && !h.Errored[id] {
			r.Unexpected = append(r.Unexpected, id)
		}
	}
	sort.Strings(r.Lost)
	sort.Strings(r.DuplicatedTasks)
	sort.Strings(r.Unexpected)
	return r
}

// String summarises r on one line, with a few IDs of each anomaly.
func (r Result) String() string {
	return fmt.Sprintf("confirmed %d (errored %d), executed %d in %d runs, dead-lettered %d; lost %d%s, duplicated %d%s, unexpected %d%s",
		r.Confirmed, r.Errored, r.Executed, r.Executions, r.DeadLettered,
		len(r.Lost), sample(r.Lost), r.Duplicated, sample(r.DuplicatedTasks), len(r.Unexpected), sample(r.Unexpected))
}

func sample(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	const n = 5
	if len(ids) > n {
		return " [" + strings.Join(ids[:n], " ") + " ...]"
	}
	return " [" + strings.Join(ids, " ") + "]"
}
