package dashboard_test

import (
	"context"
	"maps"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/broker/amqp"
	"github.com/warrenjobs/warren/broker/amqp/amqptest"
	"github.com/warrenjobs/warren/dashboard"
	"github.com/warrenjobs/warren/dashboard/api"
	"github.com/warrenjobs/warren/jobs"
)

// openAMQP connects to the test RabbitMQ; each caller gets its own
// connections, as separate processes would.
func openAMQP(t *testing.T) broker.Broker {
	t.Helper()
	return openAMQPAt(t, amqptest.URL(t))
}

func openAMQPAt(t *testing.T, url string) broker.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, err := amqp.Open(ctx, amqp.Config{URL: url, Logger: quiet()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// sharedBrokerConfig adapts a dashboard's config to the shared test broker,
// whose events stream carries every concurrently running test's events: no
// more replay than the test needs (cfg.Replay), and room for every task seen,
// so that other tests' tasks never push this test's out of the history.
func sharedBrokerConfig(cfg dashboard.Config) dashboard.Config {
	cfg.MaxTasks, cfg.MaxTaskBytes = 1_000_000, 1<<30
	return cfg
}

// swappable serves whichever dashboard is current, so a test can restart the
// dashboard behind one address.
type swappable struct {
	h atomic.Pointer[dashboard.Dashboard]
}

func (s *swappable) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.h.Load().ServeHTTP(w, r) }

// TestBrowserEndToEnd drives the real dashboard in headless Chromium against
// the local RabbitMQ and a real worker: it watches a queue's depth change
// without reloading, opens a failed task's detail, retries a dead letter and
// sees it succeed, pauses live updates, and takes a screenshot of each
// screen. The pages must log no error (a CSP violation would).
//
// With WARREN_UPDATE_SCREENSHOTS set, it runs on a private RabbitMQ node (so
// that other tests' queues and workers stay out of the pictures) and writes
// the screenshots to docs/screenshots.
func TestBrowserEndToEnd(t *testing.T) {
	t.Parallel()
	url, queue := "", ""
	if os.Getenv("WARREN_UPDATE_SCREENSHOTS") != "" {
		url, queue = amqptest.StartNode(t).URL(), "emails"
	} else {
		url = amqptest.URL(t)
	}
	work := openAMQPAt(t, url) // the worker's and the producer's connections
	if queue == "" {
		queue = uniqueQueue(t, work)
	}
	client, err := jobs.NewClient(work, &jobs.ClientConfig{Logger: quiet(), EventInterval: 20 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close(context.Background()) })
	enqueue := func(args jobs.JobArgs, opts *jobs.EnqueueOpts) string {
		t.Helper()
		if opts == nil {
			opts = &jobs.EnqueueOpts{}
		}
		opts.Queue = queue
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		id, err := client.Enqueue(ctx, args, opts)
		require.NoError(t, err)
		return id
	}

	d := startDashboard(t, sharedBrokerConfig(dashboard.Config{Broker: openAMQPAt(t, url), Logger: quiet(),
		RefreshInterval: 500 * time.Millisecond, Replay: 5 * time.Second}))
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	br := newBrowser(t, srv.URL+"/")

	// 1. Six slow tasks wait: the overview shows the depth.
	key := uuid.NewString()
	var slow []string
	for i := range 6 {
		_ = i
		slow = append(slow, enqueue(slowArgs{Key: key}, nil))
	}
	br.open("")
	queueRow := row("queue-row", "data-queue", queue)
	br.waitText(queueRow+" "+sel("queue-ready"), "6")
	br.eval(`window.warrenMarker = "still the same page"`)

	// 2. A worker takes four (its concurrency): the live part updates in place.
	workerID := "dash-e2e-" + uuid.NewString()[:8]
	startNamedRunner(t, work, queue, workerID)
	br.waitText(queueRow+" "+sel("queue-ready"), "2")
	br.waitText(queueRow+" "+sel("queue-inflight"), "4")
	br.waitText(queueRow+" "+sel("queue-consumers"), "1")
	require.Equal(t, "still the same page", br.eval(`String(window.warrenMarker)`), "updated by polling, not by reloading")
	br.shot("overview")

	// The worker runs them.
	br.open("workers")
	workerRow := row("worker-row", "data-worker", workerID)
	br.waitText(workerRow+" "+sel("worker-state"), "online")
	br.waitCount(workerRow+" "+sel("worker-tasks")+" a", 4)
	br.shot("workers")

	// Done: the queue is empty.
	close(release(key))
	br.open("")
	br.waitText(queueRow+" "+sel("queue-ready"), "0")
	br.waitText(queueRow+" "+sel("queue-inflight"), "0")

	// 3. A task that fails twice is dead-lettered; another dies at once.
	failed := enqueue(failArgs{Msg: "card declined"}, &jobs.EnqueueOpts{MaxRetries: 1, RetryDelay: time.Second})
	flaky := enqueue(flakyArgs{Fails: 1}, &jobs.EnqueueOpts{MaxRetries: jobs.NoRetries})
	br.waitText(queueRow+" "+sel("queue-dead"), "2")

	// 4. Find the failed task with the filter form and open its detail.
	br.open("tasks")
	br.setValue(sel("filter-state"), "dead")
	br.setValue(sel("filter-queue"), queue)
	br.click(sel("filter-submit"))
	br.waitCount(sel("task-row"), 2)
	br.click(row("task-row", "data-task", failed) + " " + sel("task-link"))
	br.waitText(sel("task-id"), failed)
	br.waitCount(sel("attempt"), 2)
	require.Equal(t, "card declined", br.text(`[data-testid="attempt"][data-attempt="1"] [data-testid="attempt-error"]`))
	require.Equal(t, "retrying", br.text(`[data-testid="attempt"][data-attempt="1"] [data-testid="attempt-outcome"]`))
	require.Equal(t, "dead", br.text(`[data-testid="attempt"][data-attempt="2"] [data-testid="attempt-outcome"]`))
	require.Contains(t, br.text(sel("task-args")), `"msg": "card declined"`)
	br.shot("task")

	br.open("tasks?queue=" + queue)
	br.waitCount(sel("task-row"), 8)
	br.shot("tasks")

	// 5. Retry the dead letter that will succeed now, through the confirmation.
	br.open("queues/" + queue + "/dead")
	br.waitCount(sel("dead-row"), 2)
	require.Equal(t, "max retries exceeded (1)", br.text(row("dead-row", "data-task", failed)+" "+sel("dead-reason")))
	br.shot("dead-letters")
	br.click(row("dead-row", "data-task", flaky) + " " + sel("retry-one"))
	br.waitText(sel("confirm-message"), "Retry 1 dead letter of queue "+queue+"?")
	br.shot("confirm")
	br.click(sel("confirm-submit"))
	br.waitText(sel("flash"), "Sent 1 dead letter back to the queue.")
	br.open("tasks/" + neturl.PathEscape(flaky))
	br.waitText(sel("state"), "succeeded")
	br.waitCount(sel("attempt"), 2)
	br.open("queues/" + queue + "/dead")
	br.waitCount(sel("dead-row"), 1)

	// 6. The queue page; pause live updates and resume them.
	br.open("queues/" + queue)
	br.waitText(sel("queue-dead"), "1")
	br.shot("queue")
	require.Equal(t, "live", br.text(sel("live-status")))
	br.click(sel("pause"))
	require.Equal(t, "true", br.eval(`document.querySelector('[data-testid="pause"]').getAttribute("aria-pressed")`))
	require.Equal(t, "paused", br.text(sel("live-status")))
	paused := br.text(sel("as-of"))
	enqueue(okArgs{N: 1}, nil)
	for range 3 { // three refresh intervals: nothing moves while paused
		time.Sleep(600 * time.Millisecond)
		require.Equal(t, paused, br.text(sel("as-of")))
	}
	br.click(sel("pause"))
	require.Equal(t, "Pause live updates", br.text(sel("pause")))
	br.waitFor("live updates resume", func() (bool, string) {
		got := br.text(sel("as-of"))
		return got != paused, got
	})

	require.Empty(t, br.consoleErrors(), "the pages logged errors")
}

// TestRestartReplaysRabbitMQStream stops a dashboard while tasks are running
// and starts another on RabbitMQ: it replays the events stream and lists the
// earlier tasks, then follows the rest to their end.
func TestRestartReplaysRabbitMQStream(t *testing.T) {
	t.Parallel()
	work := openAMQP(t)
	queue := uniqueQueue(t, work)
	bd := &bundle{broker: work, queue: queue}
	c, err := jobs.NewClient(work, &jobs.ClientConfig{Logger: quiet(), EventInterval: 20 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	bd.client = c

	start := time.Now()
	cfg := sharedBrokerConfig(dashboard.Config{Broker: openAMQP(t), Logger: quiet(), Replay: 5 * time.Second})
	first, stopFirst := startDashboardStoppable(t, cfg)
	var current swappable
	current.h.Store(first)
	bd.srv = httptest.NewServer(&current)
	t.Cleanup(bd.srv.Close)

	startRunner(t, work, queue)
	done := bd.enqueue(t, okArgs{N: 1}, nil)
	dead := bd.enqueue(t, failArgs{Msg: "before the restart"}, &jobs.EnqueueOpts{MaxRetries: jobs.NoRetries})
	key := uuid.NewString()
	running := bd.enqueue(t, slowArgs{Key: key}, nil)
	waitTask(t, bd, done, api.StateSucceeded)
	waitTask(t, bd, dead, api.StateDead)
	waitTask(t, bd, running, api.StateActive)

	// Mid-run: stop the dashboard, start a new one on a new connection.
	stopFirst()
	cfg.Broker = openAMQP(t)
	cfg.Replay = time.Since(start) + 5*time.Second // back to before the test began
	current.h.Store(startDashboard(t, cfg))

	want := map[string]string{done: api.StateSucceeded, dead: api.StateDead, running: api.StateActive}
	var states map[string]string
	eventually(t, func() bool {
		var got api.Tasks
		bd.getJSON(t, "/api/tasks?queue="+queue, &got)
		states = map[string]string{}
		for _, tk := range got.Tasks {
			states[tk.ID] = tk.State
		}
		return maps.Equal(states, want)
	}, "the new dashboard lists the earlier tasks in their states")
	task := waitTask(t, bd, dead, api.StateDead)
	require.Equal(t, "test.fail", task.Kind)
	require.JSONEq(t, `{"msg":"before the restart"}`, string(task.Args))

	close(release(key))
	waitTask(t, bd, running, api.StateSucceeded)
	require.True(t, strings.HasPrefix(bd.srv.URL, "http://127.0.0.1:"))
}
