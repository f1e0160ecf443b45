// Package metrics turns a worker's lifecycle events into Prometheus metrics.
// It is driven by jobs.RunnerConfig.OnEvent and reads the gauges from the
// runner's Stats, so it adds no work to the task path beyond a map update.
//
// The metrics, labelled by kind and queue where it says so:
//
//	warren_tasks_processed_total{kind,queue}      attempts that ran to an outcome
//	warren_tasks_succeeded_total{kind,queue}      attempts that succeeded
//	warren_tasks_failed_total{kind,queue}         attempts that failed (retried, dead-lettered or cancelled after running)
//	warren_tasks_retried_total{kind,queue}        retries scheduled
//	warren_tasks_dead_lettered_total{kind,queue}  tasks dead-lettered, including malformed ones that never ran
//	warren_task_duration_seconds{kind,queue}      run time of each attempt (histogram)
//	warren_tasks_in_flight                        tasks running now
//	warren_tasks_abandoned_total                  handlers abandoned past their time limit (their goroutines may still run)
//
// A kind no worker is registered for is labelled "unregistered", so that
// malformed input cannot grow the label space.
package metrics

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/warrenjobs/warren/jobs"
)

// Unregistered labels tasks whose kind has no registered worker.
const Unregistered = "unregistered"

// Metrics is the set of worker metrics. Observe is safe for concurrent use.
type Metrics struct {
	processed, succeeded, failed, retried, dead *prometheus.CounterVec
	duration                                    *prometheus.HistogramVec

	kinds map[string]bool

	mu      sync.Mutex
	started map[string]time.Time // task ID → start of its running attempt
}

// New registers the metrics with reg. kinds are the registered kinds; status
// reports the runner's live counters (jobs.Runner.Stats).
func New(reg prometheus.Registerer, kinds []string, status func() jobs.WorkerStatus) *Metrics {
	labels := []string{"kind", "queue"}
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "warren", Name: name, Help: help}, labels)
	}
	m := &Metrics{
		processed: counter("tasks_processed_total", "Task attempts that ran to an outcome."),
		succeeded: counter("tasks_succeeded_total", "Task attempts that succeeded."),
		failed:    counter("tasks_failed_total", "Task attempts that failed (retried, dead-lettered or cancelled after running)."),
		retried:   counter("tasks_retried_total", "Retries scheduled."),
		dead:      counter("tasks_dead_lettered_total", "Tasks dead-lettered, including malformed ones that never ran."),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "warren", Name: "task_duration_seconds", Help: "Run time of task attempts.",
			Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5, 10, 30, 60, 300, 900},
		}, labels),
		kinds:   map[string]bool{},
		started: map[string]time.Time{},
	}
	for _, k := range kinds {
		m.kinds[k] = true
	}
	reg.MustRegister(m.processed, m.succeeded, m.failed, m.retried, m.dead, m.duration,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "warren", Name: "tasks_in_flight", Help: "Tasks running now."},
			func() float64 { return float64(status().Active) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "warren", Name: "tasks_abandoned_total",
			Help: "Handlers abandoned past their time limit; their goroutines may still be running."},
			func() float64 { return float64(status().Abandoned) }),
	)
	return m
}

// Observe records one event. Use it as (or in) RunnerConfig.OnEvent.
func (m *Metrics) Observe(e jobs.Event) {
	kind := e.Kind
	if !m.kinds[kind] {
		kind = Unregistered
	}
	switch e.Type {
	case jobs.EventStarted:
		m.mu.Lock()
		m.started[e.TaskID] = e.Time
		m.mu.Unlock()
		return
	case jobs.EventSucceeded, jobs.EventRetrying, jobs.EventDead, jobs.EventCancelled:
	default:
		return
	}
	m.mu.Lock()
	begin, ran := m.started[e.TaskID]
	delete(m.started, e.TaskID)
	m.mu.Unlock()

	switch e.Type {
	case jobs.EventRetrying:
		m.retried.WithLabelValues(kind, e.Queue).Inc()
	case jobs.EventDead:
		m.dead.WithLabelValues(kind, e.Queue).Inc()
	}
	if !ran {
		return // dead-lettered without running: malformed, unknown kind...
	}
	took := e.Duration
	if took <= 0 {
		took = e.Time.Sub(begin)
	}
	m.processed.WithLabelValues(kind, e.Queue).Inc()
	m.duration.WithLabelValues(kind, e.Queue).Observe(took.Seconds())
	if e.Type == jobs.EventSucceeded {
		m.succeeded.WithLabelValues(kind, e.Queue).Inc()
	} else {
		m.failed.WithLabelValues(kind, e.Queue).Inc()
	}
}
