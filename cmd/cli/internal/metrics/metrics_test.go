package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"github.com/warrenjobs/warren/jobs"
)

func TestObserve(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	status := jobs.WorkerStatus{Active: 3, Abandoned: 1}
	m := New(reg, []string{"k"}, func() jobs.WorkerStatus { return status })
	t0 := time.Now()
	ev := func(typ jobs.EventType, id, kind string, at time.Duration, took time.Duration) {
		m.Observe(jobs.Event{Type: typ, TaskID: id, Kind: kind, Queue: "q", Time: t0.Add(at), Duration: took})
	}
	ev(jobs.EventEnqueued, "1", "k", 0, 0)
	ev(jobs.EventStarted, "1", "k", 0, 0)
	ev(jobs.EventSucceeded, "1", "k", 0, 20*time.Millisecond)
	ev(jobs.EventStarted, "2", "k", 0, 0)
	ev(jobs.EventRetrying, "2", "k", 0, 5*time.Millisecond)
	ev(jobs.EventStarted, "2", "k", time.Second, 0)
	ev(jobs.EventDead, "2", "k", 3*time.Second, 0) // dead after running: duration from its start
	ev(jobs.EventDead, "3", "bogus.kind", 0, 0)    // malformed, never ran
	ev(jobs.EventHeartbeat, "", "", 0, 0)

	count := func(c *prometheus.CounterVec, kind string) float64 {
		return testutil.ToFloat64(c.WithLabelValues(kind, "q"))
	}
	require.Equal(t, 3.0, count(m.processed, "k"))
	require.Equal(t, 1.0, count(m.succeeded, "k"))
	require.Equal(t, 2.0, count(m.failed, "k"))
	require.Equal(t, 1.0, count(m.retried, "k"))
	require.Equal(t, 1.0, count(m.dead, "k"))
	require.Equal(t, 1.0, count(m.dead, Unregistered), "unknown kinds share one label")
	require.Equal(t, 0.0, count(m.processed, Unregistered))

	require.NoError(t, testutil.CollectAndCompare(m.duration, strings.NewReader(`
# HELP warren_task_duration_seconds Run time of task attempts.
# TYPE warren_task_duration_seconds histogram
warren_task_duration_seconds_bucket{kind="k",queue="q",le="0.001"} 0
warren_task_duration_seconds_bucket{kind="k",queue="q",le="0.005"} 1
warren_task_duration_seconds_bucket{kind="k",queue="q",le="0.01"} 1
warren_task_duration_seconds_bucket{kind="k",queue="q",le="0.05"} 2
warren_task_duration_seconds_bucket{kind="k",queue="q",le="0.1"} 2
warren_task_duration_seconds_bucket{kind="k",queue="q",le="0.5"} 2
warren_task_duration_seconds_bucket{kind="k",queue="q",le="1"} 2
warren_task_duration_seconds_bucket{kind="k",queue="q",le="5"} 3
warren_task_duration_seconds_bucket{kind="k",queue="q",le="10"} 3
warren_task_duration_seconds_bucket{kind="k",queue="q",le="30"} 3
warren_task_duration_seconds_bucket{kind="k",queue="q",le="60"} 3
warren_task_duration_seconds_bucket{kind="k",queue="q",le="300"} 3
warren_task_duration_seconds_bucket{kind="k",queue="q",le="900"} 3
warren_task_duration_seconds_bucket{kind="k",queue="q",le="+Inf"} 3
warren_task_duration_seconds_sum{kind="k",queue="q"} 2.025
warren_task_duration_seconds_count{kind="k",queue="q"} 3
`)))
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP warren_tasks_in_flight Tasks running now.
# TYPE warren_tasks_in_flight gauge
warren_tasks_in_flight 3
# HELP warren_tasks_abandoned_total Handlers abandoned past their time limit; their goroutines may still be running.
# TYPE warren_tasks_abandoned_total counter
warren_tasks_abandoned_total 1
`), "warren_tasks_in_flight", "warren_tasks_abandoned_total"))
}
