package main_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestTasksAndWorkers reads task history and worker heartbeats back from the
// events log after a worker run.
func TestTasksAndWorkers(t *testing.T) {
	t.Parallel()
	s := setup(t)
	q := s.queue()
	noops := lines(s.ok("enqueue", "demo.noop", "--queue", q, "--count", "3").stdout)
	panicID := strings.TrimSpace(s.ok("enqueue", "demo.panic", "--queue", q, "--max-retries", "0").stdout)
	delayedID := strings.TrimSpace(s.ok("enqueue", "demo.noop", "--queue", q, "--delay", "1h").stdout)

	w := s.start("worker", "--queues", q, "--exit-when-idle", "1s", "--log-format", "json")
	workerID, _ := w.logLine("worker started", 20*time.Second)["worker"].(string)
	require.NotEmpty(t, workerID)

	// While it runs, the worker is listed as running.
	type workerJSON struct {
		ID          string         `json:"id"`
		Host        string         `json:"host"`
		PID         int            `json:"pid"`
		Queues      map[string]int `json:"queues"`
		Concurrency int            `json:"concurrency"`
		Processed   int64          `json:"processed"`
		Failed      int64          `json:"failed"`
		State       string         `json:"state"`
		LastSeen    time.Time      `json:"last_seen"`
	}
	find := func(rows []workerJSON) *workerJSON {
		for i := range rows {
			if rows[i].ID == workerID {
				return &rows[i]
			}
		}
		return nil
	}
	var workers []workerJSON
	s.okJSON(&workers, "workers", "ls", "--since", window, "--json")
	if wk := find(workers); wk != nil { // the worker may already have exited
		require.Equal(t, "running", wk.State)
	}
	require.Equal(t, 0, w.wait(60*time.Second), w.stderr.String())

	// Once stopped it is hidden, unless --all.
	s.okJSON(&workers, "workers", "ls", "--since", window, "--json")
	require.Nil(t, find(workers), "stopped workers are hidden without --all")
	s.okJSON(&workers, "workers", "ls", "--since", window, "--all", "--json")
	wk := find(workers)
	require.NotNil(t, wk, "worker %s in %+v", workerID, workers)
	require.Equal(t, "stopped", wk.State)
	require.Equal(t, map[string]int{q: 1}, wk.Queues)
	require.Equal(t, 10, wk.Concurrency)
	require.Equal(t, int64(4), wk.Processed)
	require.Equal(t, int64(1), wk.Failed)
	require.NotZero(t, wk.PID)
	r := s.ok("workers", "ls", "--since", window, "--all")
	require.Regexp(t, `(?m)^ID\s+STATE\s+HOST\s+PID\s+QUEUES\s+ACTIVE\s+PROCESSED\s+FAILED\s+UP\s+SEEN$`, r.stdout)
	require.Regexp(t, `(?m)^`+workerID+`\s+stopped\s`, r.stdout)

	// tasks ls: every task of the queue with its latest state.
	type taskJSON struct {
		ID         string     `json:"id"`
		Kind       string     `json:"kind"`
		Queue      string     `json:"queue"`
		State      string     `json:"state"`
		Attempt    int        `json:"attempt"`
		EnqueuedAt *time.Time `json:"enqueued_at"`
		RunAt      *time.Time `json:"run_at"`
		Error      string     `json:"error"`
		Worker     string     `json:"worker"`
		Events     []struct {
			Type string `json:"type"`
		} `json:"events"`
	}
	var tasks []taskJSON
	s.okJSON(&tasks, "tasks", "ls", "--since", window, "--queue", q, "--json")
	require.Len(t, tasks, 5)
	state := map[string]taskJSON{}
	for _, tk := range tasks {
		require.Equal(t, q, tk.Queue)
		require.NotNil(t, tk.EnqueuedAt)
		state[tk.ID] = tk
	}
	for _, id := range noops {
		require.Equal(t, "succeeded", state[id].State)
		require.Equal(t, 1, state[id].Attempt)
		require.Equal(t, workerID, state[id].Worker)
	}
	require.Equal(t, "dead", state[panicID].State)
	require.Contains(t, state[panicID].Error, "max retries exceeded")
	require.Equal(t, "enqueued", state[delayedID].State)
	require.NotNil(t, state[delayedID].RunAt)
	require.WithinDuration(t, time.Now().Add(time.Hour), *state[delayedID].RunAt, 5*time.Minute)

	// Filters and the limit.
	s.okJSON(&tasks, "tasks", "ls", "--since", window, "--queue", q, "--state", "dead", "--json")
	require.Len(t, tasks, 1)
	require.Equal(t, panicID, tasks[0].ID)
	s.okJSON(&tasks, "tasks", "ls", "--since", window, "--queue", q, "--kind", "demo.noop", "--limit", "2", "--json")
	require.Len(t, tasks, 2)
	r = s.ok("tasks", "ls", "--since", window, "--queue", q, "--state", "dead")
	require.Regexp(t, `(?m)^`+panicID+`\s+demo.panic\s+`+q+`\s+dead\s+1\s`, r.stdout)

	// tasks show: the full history, in order.
	var one taskJSON
	s.okJSON(&one, "tasks", "show", "--since", window, panicID, "--json")
	var types []string
	for _, e := range one.Events {
		types = append(types, e.Type)
	}
	require.Equal(t, []string{"enqueued", "started", "dead"}, types)
	r = s.ok("tasks", "show", "--since", window, panicID)
	require.Contains(t, r.stdout, "task "+panicID)
	require.Regexp(t, `(?m)\sdead\s+1\s+`+workerID, r.stdout)

	s.fails([]string{`task "no-such-task" has no events in the last 5m0s`}, "tasks", "show", "--since", window, "no-such-task")
	s.fails([]string{`invalid --state "bogus"`}, "tasks", "ls", "--state", "bogus")
}
