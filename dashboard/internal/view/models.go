// Package view holds the dashboard's templ components and the typed view
// models they render. Components never fetch anything: handlers build a
// model and render it, so every screen can be rendered to a buffer in tests.
//
// Every element a test or a script looks for carries a data-testid.
package view

import (
	"time"

	"github.com/warrenjobs/warren/dashboard/api"
)

// Page is what the layout needs on every screen.
type Page struct {
	// Root is the relative path from the current page to the dashboard's
	// root, ending in "/" ("./", "../", "../../"), so links work wherever the
	// dashboard is mounted.
	Root string
	// Self is the current page's URL relative to the page itself: the polled
	// fragment's source.
	Self      string
	Title     string
	Section   string        // "overview", "workers", "tasks", "dead": the highlighted tab
	Refresh   time.Duration // how often live parts poll; zero: never
	ReadOnly  bool
	Replaying bool // the dashboard is still reading retained history
	Now       time.Time
	Icon      string // asset paths relative to Root
	CSS       string
	JS        string
	HTMX      string
}

// URL joins a path below the dashboard's root to Root.
func (p Page) URL(path string) string { return p.Root + path }

// Overview is the overview screen.
type Overview struct {
	Queues        []api.Queue
	History       map[string][]api.Minute // per queue, for sparklines
	Totals        []api.Minute
	WorkersOnline int
	WorkersTotal  int
	Flash         string
}

// Workers is the workers screen.
type Workers struct {
	Workers    []api.Worker
	OfflineFor time.Duration // the threshold, for the legend
	DropAfter  time.Duration
}

// Tasks is the task list with its filter.
type Tasks struct {
	Filter TaskFilter
	Result api.Tasks
	Queues []string // choices for the queue filter
	Kinds  []string // suggestions for the kind filter
}

// TaskFilter is the task list's query.
type TaskFilter struct {
	State, Queue, Kind, Search string
	Limit                      int
}

// States lists the task states the filter offers, "failed" included.
var States = []string{api.StateQueued, api.StateScheduled, api.StateActive, api.StateSucceeded,
	api.StateRetrying, api.StateFailed, api.StateDead, api.StateCancelled}

// TaskDetail is one task's screen.
type TaskDetail struct {
	Task api.Task
}

// QueueDetail is one queue's screen.
type QueueDetail struct {
	Queue  api.QueueDetail
	Recent api.Tasks
	Flash  string
}

// DeadIndex lists the queues with their dead-letter counts.
type DeadIndex struct {
	Queues []api.Queue
}

// DeadLetters is one queue's dead-letter screen.
type DeadLetters struct {
	Letters api.DeadLetters
	Limit   int
	Flash   string
}

// Confirm asks before a destructive action.
type Confirm struct {
	Queue  string
	Action string   // "purge", "retry" or "delete"
	IDs    []string // the selected dead letters; empty with All
	All    bool
	Count  int    // how many messages the action concerns, as last counted
	Post   string // the form's action, relative to the page
	Cancel string // where "cancel" goes, relative to the page
}

// Problem is an error screen.
type Problem struct {
	Status  int
	Message string
}
