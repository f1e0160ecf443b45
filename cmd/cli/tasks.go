package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/cmd/cli/internal/history"
	"github.com/warrenjobs/warren/jobs"
)

// heartbeatInterval is the runner's default heartbeat period; a worker silent
// for three of them is reported lost.
const heartbeatInterval = 5 * time.Second

// taskStates are the values of TaskInfo.State.
var taskStates = []string{
	string(jobs.EventEnqueued), string(jobs.EventStarted), string(jobs.EventSucceeded),
	string(jobs.EventRetrying), string(jobs.EventDead), string(jobs.EventCancelled),
}

// TaskInfo is a task in `tasks ls --json` and `tasks show --json`, as the
// events log of the --since window tells it. State is the type of its latest
// event: enqueued, started, succeeded, retrying, dead or cancelled.
type TaskInfo struct {
	ID         string          `json:"id"`
	Kind       string          `json:"kind"`
	Queue      string          `json:"queue"`
	State      string          `json:"state"`
	Attempt    int             `json:"attempt"`
	EnqueuedAt *time.Time      `json:"enqueued_at"` // null when the enqueue fell before the window
	UpdatedAt  time.Time       `json:"updated_at"`
	RunAt      *time.Time      `json:"run_at,omitempty"` // when an enqueued or retrying task is due
	Error      string          `json:"error,omitempty"`
	Worker     string          `json:"worker,omitempty"`
	DurationMS float64         `json:"duration_ms,omitempty"` // run time of the latest finished attempt
	Args       json.RawMessage `json:"args,omitempty"`        // tasks show only
	Events     []jobs.Event    `json:"events,omitempty"`      // tasks show only
}

func taskInfo(t *history.Task, full bool) TaskInfo {
	ti := TaskInfo{
		ID: t.ID, Kind: t.Kind, Queue: t.Queue, State: string(t.State), Attempt: t.Attempt,
		UpdatedAt: t.UpdatedAt, Error: t.Error, Worker: t.Worker,
		DurationMS: float64(t.Duration) / float64(time.Millisecond),
	}
	if !t.EnqueuedAt.IsZero() {
		at := t.EnqueuedAt
		ti.EnqueuedAt = &at
	}
	if (t.State == jobs.EventEnqueued || t.State == jobs.EventRetrying) && !t.RunAt.IsZero() {
		at := t.RunAt
		ti.RunAt = &at
	}
	if full {
		ti.Args, ti.Events = t.Args, t.Events
	}
	return ti
}

func newTasksCommand(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tasks",
		Short: "Recent tasks, from the events log",
		Long: `Recent tasks and their history, from warren's events log (RabbitMQ keeps no
task history itself). Only tasks with events within --since are known.`,
	}
	cmd.AddCommand(newTasksLsCommand(app), newTasksShowCommand(app))
	return cmd
}

func newTasksLsCommand(app *App) *cobra.Command {
	var (
		asJSON             bool
		queue, kind, state string
		window             time.Duration
		limit              int
	)
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List recent tasks, latest first",
		Example: `  warren tasks ls
  warren tasks ls --queue emails --state dead --since 24h --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if queue != "" {
				if err := broker.ValidateQueueName(queue); err != nil {
					return fmt.Errorf("invalid --queue: %w", err)
				}
			}
			if state != "" && !slices.Contains(taskStates, state) {
				return fmt.Errorf("invalid --state %q: use one of %s", state, quoteList(taskStates))
			}
			if limit < 0 {
				return fmt.Errorf("invalid --limit %d: must not be negative", limit)
			}
			return withBroker(cmd, app, func(ctx context.Context, b broker.Broker) error {
				needle := history.Needle(queue)
				if needle == nil {
					needle = history.Needle(kind)
				}
				snap, err := history.Load(ctx, b, time.Now().Add(-window), &history.Options{Needle: needle})
				if err != nil {
					return err
				}
				rows := []TaskInfo{}
				for _, t := range snap.SortedTasks() {
					if (queue != "" && t.Queue != queue) || (kind != "" && t.Kind != kind) || (state != "" && string(t.State) != state) {
						continue
					}
					if limit > 0 && len(rows) == limit {
						break
					}
					rows = append(rows, taskInfo(t, false))
				}
				if asJSON {
					return writeJSON(cmd.OutOrStdout(), rows)
				}
				now := time.Now()
				tbl := newTable(cmd.OutOrStdout(), "ID", "KIND", "QUEUE", "STATE", "ATTEMPT", "UPDATED", "ERROR")
				for _, r := range rows {
					tbl.row(r.ID, r.Kind, r.Queue, r.State, strconv.Itoa(r.Attempt), since(r.UpdatedAt, now), truncate(r.Error, 60))
				}
				return tbl.flush()
			})
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&asJSON, "json", false, "print JSON")
	fl.StringVar(&queue, "queue", "", "only tasks of this queue")
	fl.StringVar(&kind, "kind", "", "only tasks of this kind")
	fl.StringVar(&state, "state", "", "only tasks in this state: "+strings.Join(taskStates, ", "))
	fl.DurationVar(&window, "since", time.Hour, "how far back the events log is read")
	fl.IntVar(&limit, "limit", 50, "show at most this many (0: all)")
	return cmd
}

func newTasksShowCommand(app *App) *cobra.Command {
	var asJSON bool
	var window time.Duration
	cmd := &cobra.Command{
		Use:     "show ID",
		Short:   "Show one task's history",
		Example: `  warren tasks show 0b6c7a52-3f5e-4c1e-9a8e-2f1d4b7c9e10 --since 24h`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			return withBroker(cmd, app, func(ctx context.Context, b broker.Broker) error {
				snap, err := history.Load(ctx, b, time.Now().Add(-window), &history.Options{
					Needle:     history.Needle(id),
					KeepEvents: func(taskID string) bool { return taskID == id },
				})
				if err != nil {
					return err
				}
				t := snap.Tasks[id]
				if t == nil {
					return fmt.Errorf("task %q has no events in the last %s (try a longer --since)", id, window)
				}
				ti := taskInfo(t, true)
				if asJSON {
					return writeJSON(cmd.OutOrStdout(), ti)
				}
				return printTask(cmd.OutOrStdout(), ti)
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().DurationVar(&window, "since", time.Hour, "how far back the events log is read")
	return cmd
}

func printTask(w io.Writer, ti TaskInfo) error {
	fmt.Fprintf(w, "task %s  kind %s  queue %s  state %s\n", ti.ID, ti.Kind, ti.Queue, ti.State)
	if len(ti.Args) > 0 {
		fmt.Fprintf(w, "args %s\n", ti.Args)
	}
	fmt.Fprintln(w)
	t := newTable(w, "TIME", "EVENT", "ATTEMPT", "WORKER", "TOOK", "DETAIL")
	for _, e := range ti.Events {
		took := "-"
		if e.Duration > 0 {
			took = roundDuration(e.Duration).String()
		}
		detail := e.Error
		if !e.RunAt.IsZero() {
			detail = strings.TrimSpace(detail + " (due " + stamp(e.RunAt) + ")")
		}
		attempt := "-"
		if e.Attempt > 0 {
			attempt = strconv.Itoa(e.Attempt)
		}
		t.row(e.Time.Local().Format("15:04:05.000"), string(e.Type), attempt, orDash(e.Worker), took, truncate(detail, 80))
	}
	return t.flush()
}

// roundDuration keeps three significant digits or so: 1.23s, 45ms, 12µs.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// WorkerInfo is a worker in `workers ls --json`, from its latest heartbeat in
// the --since window. State is running, stopped (it said goodbye) or lost
// (no heartbeat for three intervals).
type WorkerInfo struct {
	ID          string         `json:"id"`
	Host        string         `json:"host"`
	PID         int            `json:"pid"`
	Queues      map[string]int `json:"queues"`
	Concurrency int            `json:"concurrency"`
	Active      int            `json:"active"`
	Processed   int64          `json:"processed"`
	Failed      int64          `json:"failed"`
	Abandoned   int64          `json:"abandoned"`
	StartedAt   time.Time      `json:"started_at"`
	LastSeen    time.Time      `json:"last_seen"`
	State       string         `json:"state"`
}

func newWorkersCommand(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "workers",
		Short: "Worker processes, from their heartbeats",
	}
	var asJSON, all bool
	var window time.Duration
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List worker processes seen in the events log",
		Long: `List worker processes, from the heartbeats they append to the events log
every 5 s. A worker is running, stopped (it shut down) or lost (silent for
15 s: killed, or cut off from the broker). Stopped workers are shown with --all.`,
		Example: `  warren workers ls
  warren workers ls --all --since 24h --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withBroker(cmd, app, func(ctx context.Context, b broker.Broker) error {
				snap, err := history.Load(ctx, b, time.Now().Add(-window), &history.Options{Needle: history.Needle(string(jobs.EventHeartbeat))})
				if err != nil {
					return err
				}
				now := time.Now()
				rows := []WorkerInfo{}
				for id, w := range snap.Workers {
					st := w.State(now, heartbeatInterval)
					if st == "stopped" && !all {
						continue
					}
					s := w.Status
					rows = append(rows, WorkerInfo{
						ID: id, Host: s.Host, PID: s.PID, Queues: s.Queues, Concurrency: s.Concurrency,
						Active: s.Active, Processed: s.Processed, Failed: s.Failed, Abandoned: s.Abandoned,
						StartedAt: s.StartedAt, LastSeen: w.LastSeen, State: st,
					})
				}
				sort.Slice(rows, func(i, j int) bool { return rows[i].ID < rows[j].ID })
				if asJSON {
					return writeJSON(cmd.OutOrStdout(), rows)
				}
				t := newTable(cmd.OutOrStdout(), "ID", "STATE", "HOST", "PID", "QUEUES", "ACTIVE", "PROCESSED", "FAILED", "UP", "SEEN")
				for _, r := range rows {
					t.row(r.ID, r.State, r.Host, strconv.Itoa(r.PID), weights(r.Queues),
						fmt.Sprintf("%d/%d", r.Active, r.Concurrency), strconv.FormatInt(r.Processed, 10),
						strconv.FormatInt(r.Failed, 10), age(now.Sub(r.StartedAt)), since(r.LastSeen, now))
				}
				return t.flush()
			})
		},
	}
	ls.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	ls.Flags().BoolVar(&all, "all", false, "include stopped workers")
	ls.Flags().DurationVar(&window, "since", time.Hour, "how far back the events log is read")
	cmd.AddCommand(ls)
	return cmd
}

// weights renders queue weights as the --queues flag takes them.
func weights(q map[string]int) string {
	names := make([]string, 0, len(q))
	for n := range q {
		names = append(names, n)
	}
	sort.Strings(names)
	for i, n := range names {
		if q[n] != 1 {
			names[i] = n + ":" + strconv.Itoa(q[n])
		}
	}
	return strings.Join(names, ",")
}
