package dashboard_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/warrenjobs/warren/dashboard"
	"github.com/warrenjobs/warren/dashboard/api"
	"github.com/warrenjobs/warren/jobs"
)

// TestRestartKeepsHistory stops a dashboard mid-run and starts another on
// the same broker: it replays the events log and shows the earlier tasks in
// the same states, and agrees with a dashboard that ran all along.
func TestRestartKeepsHistory(t *testing.T) {
	t.Parallel()
	bd := setup(t, dashboard.Config{})
	bd.runner(t)
	first, stopFirst := startDashboardStoppable(t, dashboard.Config{Broker: bd.broker, Logger: quiet()})
	firstSrv := newServer(t, first)

	okID := bd.enqueue(t, okArgs{N: 1}, nil)
	deadID := bd.enqueue(t, failArgs{Msg: "before restart"}, &jobs.EnqueueOpts{MaxRetries: jobs.NoRetries})
	waitTask(t, bd, okID, api.StateSucceeded)
	waitTask(t, bd, deadID, api.StateDead)
	eventually(t, func() bool {
		var ts api.Tasks
		getJSONFrom(t, firstSrv, "/api/tasks?queue="+bd.queue, &ts)
		return ts.Matched == 2
	}, "the first dashboard saw both tasks")
	stopFirst()

	// More happens while no second dashboard runs.
	laterID := bd.enqueue(t, okArgs{N: 2}, nil)
	waitTask(t, bd, laterID, api.StateSucceeded)

	second := startDashboard(t, dashboard.Config{Broker: bd.broker, Logger: quiet()})
	secondSrv := newServer(t, second)
	var got api.Tasks
	eventually(t, func() bool {
		got = api.Tasks{}
		getJSONFrom(t, secondSrv, "/api/tasks?queue="+bd.queue, &got)
		return got.Matched == 3
	}, "the restarted dashboard replayed the earlier tasks")
	state := map[string]string{}
	for _, tk := range got.Tasks {
		state[tk.ID] = tk.State
	}
	require.Equal(t, map[string]string{okID: api.StateSucceeded, deadID: api.StateDead, laterID: api.StateSucceeded}, state)
	var dead api.Task
	getJSONFrom(t, secondSrv, "/api/tasks/"+deadID, &dead)
	require.True(t, strings.HasPrefix(dead.Attempts[0].Error, "max retries exceeded (0)"), dead.Attempts[0].Error)

	// Two dashboards agree: the one that ran throughout shows the same.
	var all api.Tasks
	bd.getJSON(t, "/api/tasks?queue="+bd.queue, &all)
	require.Equal(t, taskIDs(all), taskIDs(got))
	require.True(t, slices.EqualFunc(all.Tasks, got.Tasks, func(a, b api.Task) bool {
		return a.ID == b.ID && a.State == b.State && a.AttemptCount == b.AttemptCount && a.UpdatedAt.Equal(b.UpdatedAt)
	}))
	var q1, q2 api.QueueDetail
	bd.getJSON(t, "/api/queues/"+bd.queue, &q1)
	getJSONFrom(t, secondSrv, "/api/queues/"+bd.queue, &q2)
	require.Equal(t, q1.History, q2.History, "the same per-minute counts")
}
