package view

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/a-h/templ"
	"github.com/stretchr/testify/require"
	"github.com/warrenjobs/warren/dashboard/api"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func page(root string) Page {
	return Page{Root: root, Self: root + "x", Title: "T", Section: "tasks", Refresh: 3 * time.Second, Now: now,
		CSS: "assets/style.1.css", JS: "assets/app.1.js", HTMX: "assets/htmx.1.js"}
}

// render renders c and parses it.
func render(t *testing.T, c templ.Component) *goquery.Document {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, c.Render(context.Background(), &buf))
	doc, err := goquery.NewDocumentFromReader(&buf)
	require.NoError(t, err)
	return doc
}

func testid(doc *goquery.Document, id string) *goquery.Selection {
	return doc.Find(`[data-testid="` + id + `"]`)
}

func TestLayoutLinksAreRelativeAndAssetsHashed(t *testing.T) {
	t.Parallel()
	doc := render(t, TasksPage(page("../../"), Tasks{}))
	href, _ := testid(doc, "nav-workers").Attr("href")
	require.Equal(t, "../../workers", href)
	require.Equal(t, "page", testid(doc, "nav-tasks").AttrOr("aria-current", ""))
	require.Equal(t, "../../assets/htmx.1.js", doc.Find("script").First().AttrOr("src", ""))
	require.Equal(t, 1, testid(doc, "pause").Length(), "a pause control while polling")
	_, hidden := testid(doc, "pause").Attr("hidden")
	require.True(t, hidden, "shown by the script only, so pages read the same without JS")
	live := testid(doc, "live")
	require.Equal(t, "../../x", live.AttrOr("hx-get", ""))
	require.Equal(t, "every 3s", live.AttrOr("hx-trigger", ""))
	_, polls := live.Attr("data-poll")
	require.True(t, polls)
	require.Zero(t, doc.Find("script:not([src])").Length(), "no inline script (CSP)")
}

func TestNoPollingWhenRefreshOff(t *testing.T) {
	t.Parallel()
	p := page("./")
	p.Refresh = 0
	doc := render(t, WorkersPage(p, Workers{}))
	require.Zero(t, testid(doc, "pause").Length())
	_, polls := testid(doc, "live").Attr("hx-get")
	require.False(t, polls)
	require.Equal(t, 1, testid(doc, "no-workers").Length())
}

func TestOverviewQueueRow(t *testing.T) {
	t.Parallel()
	age := 75.0
	q := api.Queue{Name: "emails", Ready: 12, InFlight: 3, Delayed: 2, Consumers: 4, Dead: 5,
		OldestReadySeconds: &age, OldestReadyAtLeast: true, Rates: api.Rates{EnqueuedPerMinute: 42.4, SucceededPerMinute: 3.25}}
	h := make([]api.Minute, 60)
	h[59].Succeeded, h[30].Failed = 10, 4
	doc := render(t, OverviewLive(page("./"), Overview{Queues: []api.Queue{q, {Name: "other"}},
		History: map[string][]api.Minute{"emails": h}, Totals: h, WorkersOnline: 1, WorkersTotal: 2}))
	row := doc.Find(`[data-testid="queue-row"][data-queue="emails"]`)
	require.Equal(t, 1, row.Length())
	cell := func(id string) string { return strings.TrimSpace(row.Find(`[data-testid="` + id + `"]`).Text()) }
	require.Equal(t, "12", cell("queue-ready"))
	require.Equal(t, "3", cell("queue-inflight"))
	require.Equal(t, "2", cell("queue-delayed"))
	require.Equal(t, "4", cell("queue-consumers"))
	require.Equal(t, "5", cell("queue-dead"))
	require.Equal(t, "≥ 1m 15s", cell("queue-oldest"))
	require.Equal(t, "42", cell("queue-rate-enqueued"))
	require.Equal(t, "3.2", cell("queue-rate-succeeded"))
	require.Equal(t, "./queues/emails/dead", row.Find(`[data-testid="queue-dead"] a`).AttrOr("href", ""))
	require.Equal(t, "—", strings.TrimSpace(doc.Find(`[data-queue="other"] [data-testid="queue-oldest"]`).Text()))
	require.Equal(t, "12", strings.TrimSpace(testid(doc, "count-ready").Text()))
	require.Equal(t, "2", strings.TrimSpace(testid(doc, "count-queues").Text()))

	chart := testid(doc, "chart-throughput")
	require.Equal(t, 3, chart.Find("polyline").Length())
	require.Equal(t, "10", strings.TrimSpace(chart.Find(`[data-testid="total-succeeded"]`).Text()))
	pts := strings.Fields(chart.Find(`[data-testid="series-succeeded"]`).AttrOr("points", ""))
	require.Len(t, pts, 60)
	require.Equal(t, "1188.0,10.0", pts[59], "the last minute reaches the top of the axis (max 10)")
	require.Equal(t, "48.0,196.0", pts[0], "an empty minute sits on the x axis")
}

func TestNoQueues(t *testing.T) {
	t.Parallel()
	doc := render(t, OverviewPage(page("./"), Overview{Totals: make([]api.Minute, 60)}))
	require.Equal(t, 1, testid(doc, "no-queues").Length())
}

func TestWorkersRows(t *testing.T) {
	t.Parallel()
	w := api.Worker{ID: "host-1-abc", Host: "host", PID: 1, Queues: map[string]int{"b": 1, "a": 2}, Concurrency: 8, Active: 2,
		Processed: 40, Failed: 3, State: "offline", LastSeen: now.Add(-20 * time.Second), ActiveTasks: []string{"t1"}}
	doc := render(t, WorkersLive(page("./"), Workers{Workers: []api.Worker{w}, OfflineFor: 15 * time.Second, DropAfter: time.Hour}))
	row := doc.Find(`[data-testid="worker-row"][data-worker="host-1-abc"]`)
	require.Equal(t, "offline", row.Find(`[data-testid="worker-state"]`).Text())
	require.Equal(t, "a×2, b×1", row.Find(`[data-testid="worker-queues"]`).Text())
	require.Equal(t, "2 / 8", strings.TrimSpace(row.Find(`[data-testid="worker-active"]`).Text()))
	require.Equal(t, "20s ago", row.Find(`[data-testid="worker-last-seen"]`).Text())
	require.Equal(t, "./tasks/t1", row.Find(`[data-testid="worker-tasks"] a`).AttrOr("href", ""))
}

func TestTaskList(t *testing.T) {
	t.Parallel()
	ts := api.Tasks{Matched: 3, Tasks: []api.Task{
		{ID: "a/b c", Kind: "email.send", Queue: "q", State: "retrying", AttemptCount: 2, LastError: "smtp: 421\nmore", RunAt: now.Add(time.Minute)},
		{ID: "t2", Kind: "k", Queue: "q", State: "succeeded"},
	}}
	doc := render(t, TasksPage(page("./"), Tasks{Filter: TaskFilter{State: "failed", Queue: "q"}, Result: ts, Queues: []string{"q", "r"}, Kinds: []string{"k"}}))
	require.Equal(t, "failed", testid(doc, "filter-state").Find("option[selected]").AttrOr("value", ""))
	require.Equal(t, "q", testid(doc, "filter-queue").Find("option[selected]").AttrOr("value", ""))
	rows := testid(doc, "task-row")
	require.Equal(t, 2, rows.Length())
	first := rows.First()
	require.Equal(t, "./tasks/a%2Fb%20c", first.Find(`[data-testid="task-link"]`).AttrOr("href", ""), "IDs are path-escaped")
	require.Equal(t, "retrying", first.Find(`[data-testid="state"]`).Text())
	require.Equal(t, "smtp: 421 …", first.Find(`[data-testid="task-error"]`).Text())
	require.Contains(t, testid(doc, "task-matched").Text(), "showing the 2 most recently updated")
}

func TestTaskDetail(t *testing.T) {
	t.Parallel()
	task := api.Task{ID: "t1", Kind: "k", Queue: "q", State: "dead", AttemptCount: 2, Args: json.RawMessage(`{"a":1}`),
		Attempts: []api.Attempt{
			{Number: 1, Worker: "w1", Outcome: "retrying", Error: "first", RunSeconds: 1.5},
			{Number: 2, Worker: "w2", Outcome: "dead", Error: "second", Stack: "goroutine 7 [running]:\nmain.f()"},
		}}
	doc := render(t, TaskPage(page("../"), TaskDetail{Task: task}))
	require.Equal(t, "t1", testid(doc, "task-id").Text())
	require.Equal(t, "{\n  \"a\": 1\n}", testid(doc, "task-args").Text())
	atts := testid(doc, "attempt")
	require.Equal(t, 2, atts.Length())
	require.Equal(t, "first", atts.First().Find(`[data-testid="attempt-error"]`).Text())
	require.Equal(t, "1s", atts.First().Find(`[data-testid="attempt-runtime"]`).Text())
	require.Equal(t, "w2", atts.Last().Find(`[data-testid="attempt-worker"]`).Text())
	require.Contains(t, atts.Last().Find(`[data-testid="attempt-stack"]`).Text(), "goroutine 7")
	require.Equal(t, "../queues/q/dead", testid(doc, "task-dead-link").AttrOr("href", ""))

	task.Args, task.Attempts = nil, nil
	doc = render(t, TaskLive(page("../"), TaskDetail{Task: task}))
	require.Equal(t, 1, testid(doc, "task-args-missing").Length())
	require.Equal(t, 1, testid(doc, "no-attempts").Length())
}

func TestDeadLettersControls(t *testing.T) {
	t.Parallel()
	letters := api.DeadLetters{Queue: "q", Total: 3, DeadLetters: []api.DeadLetter{
		{ID: "d1", Kind: "k", Reason: "max retries exceeded (4)", Error: "boom", Args: json.RawMessage(`{"x":1}`)},
		{ID: "d2", Kind: "k", Reason: "malformed message", ArgsText: "not json"},
	}}
	p := page("../../")
	doc := render(t, DeadLettersPage(p, DeadLetters{Letters: letters, Flash: "Deleted 1 dead letter."}))
	require.Equal(t, "3", testid(doc, "dead-count").Text())
	require.Equal(t, "Deleted 1 dead letter.", testid(doc, "flash").Text())
	require.Equal(t, 2, testid(doc, "dead-row").Length())
	require.Equal(t, "max retries exceeded (4)", testid(doc, "dead-reason").First().Text())
	require.Equal(t, "not json", testid(doc, "dead-args").Last().Text())
	form := testid(doc, "dead-form")
	require.Equal(t, "get", form.AttrOr("method", ""), "selection goes to a confirmation page first")
	require.Equal(t, "../../queues/q/dead/confirm", form.AttrOr("action", ""))
	require.Equal(t, "../../queues/q/dead/confirm?action=retry&ids=d1", testid(doc, "retry-one").First().AttrOr("href", ""))
	require.Equal(t, "../../queues/q/dead/confirm?action=delete&all=true", testid(doc, "delete-all").AttrOr("href", ""))
	require.Equal(t, 2, testid(doc, "dead-select").Length())
	require.Zero(t, testid(doc, "live").Length(), "the list does not poll: it holds a selection")

	p.ReadOnly = true
	doc = render(t, DeadLettersPage(p, DeadLetters{Letters: letters}))
	for _, id := range []string{"retry-selected", "delete-selected", "retry-all", "delete-all", "retry-one", "delete-one", "dead-select"} {
		require.Zero(t, testid(doc, id).Length(), id+" is hidden when read-only")
	}
	require.Equal(t, 1, testid(doc, "read-only").Length())
}

func TestConfirm(t *testing.T) {
	t.Parallel()
	doc := render(t, ConfirmPage(page("../../../"), Confirm{Queue: "q", Action: "retry", IDs: []string{"a", "b"}, Post: "../../../queues/q/dead/retry", Cancel: "back"}))
	require.Equal(t, "Retry 2 dead letters of queue q?", strings.TrimSpace(testid(doc, "confirm-message").Text()))
	form := testid(doc, "confirm").Find("form")
	require.Equal(t, "post", form.AttrOr("method", ""))
	require.Equal(t, "../../../queues/q/dead/retry", form.AttrOr("action", ""))
	var ids []string
	form.Find(`input[name="ids"]`).Each(func(_ int, s *goquery.Selection) { ids = append(ids, s.AttrOr("value", "")) })
	require.Equal(t, []string{"a", "b"}, ids)

	doc = render(t, ConfirmPage(page("../../"), Confirm{Queue: "q", Action: "purge", All: true, Count: 7, Post: "purge"}))
	require.Equal(t, "Purge the 7 ready tasks of queue q?", strings.TrimSpace(testid(doc, "confirm-message").Text()))
	require.Equal(t, "Purge q", testid(doc, "confirm-submit").Text())
}

// TestEscaping renders hostile strings everywhere a user controls text.
func TestEscaping(t *testing.T) {
	t.Parallel()
	evil := `<script>alert(1)</script><img src=x onerror=alert(2)>"'`
	task := api.Task{ID: evil, Kind: evil, Queue: "q", State: "dead", LastError: evil, Args: json.RawMessage(`{"x":"` + strings.ReplaceAll(evil, `"`, `\"`) + `"}`),
		Attempts: []api.Attempt{{Number: 1, Worker: evil, Outcome: "dead", Error: evil, Stack: evil}}}
	letters := api.DeadLetters{Queue: "q", Total: 1, DeadLetters: []api.DeadLetter{{ID: evil, Kind: evil, Reason: evil, Error: evil, Stack: evil, ArgsText: evil}}}
	worker := api.Worker{ID: evil, Host: evil, Queues: map[string]int{evil: 1}, ActiveTasks: []string{evil}, State: "online"}
	for name, c := range map[string]templ.Component{
		"task":    TaskPage(page("./"), TaskDetail{Task: task}),
		"tasks":   TasksPage(page("./"), Tasks{Filter: TaskFilter{Kind: evil, Search: evil}, Result: api.Tasks{Tasks: []api.Task{task}}, Kinds: []string{evil}}),
		"dead":    DeadLettersPage(page("./"), DeadLetters{Letters: letters, Flash: evil}),
		"workers": WorkersPage(page("./"), Workers{Workers: []api.Worker{worker}}),
		"confirm": ConfirmPage(page("./"), Confirm{Queue: "q", Action: "delete", IDs: []string{evil}}),
		"problem": ProblemPage(page("./"), Problem{Status: 404, Message: evil}),
	} {
		var buf bytes.Buffer
		require.NoError(t, c.Render(context.Background(), &buf), name)
		html := buf.String()
		require.NotContains(t, html, "<script>alert", name)
		require.NotContains(t, html, "<img src=x", name)
		doc, err := goquery.NewDocumentFromReader(strings.NewReader(html))
		require.NoError(t, err)
		require.Zero(t, doc.Find("img").Length(), name)
		doc.Find("script").Each(func(_ int, s *goquery.Selection) {
			require.NotEmpty(t, s.AttrOr("src", ""), name+": only the page's own scripts")
		})
		require.Contains(t, doc.Text(), "<script>alert(1)</script>", name+": shown as text")
	}
}

func TestNiceCeil(t *testing.T) {
	t.Parallel()
	for in, want := range map[int]int{0: 4, 3: 4, 5: 5, 7: 10, 11: 20, 21: 50, 51: 100, 101: 200, 999: 1000} {
		require.Equal(t, want, niceCeil(in), in)
	}
}

func TestPrettyArgs(t *testing.T) {
	t.Parallel()
	require.Equal(t, "{\n  \"a\": \"<b> & \\\\u003c\"\n}", pretty([]byte(`{"a":"\u003cb\u003e \u0026 \\u003c"}`)))
	require.Equal(t, "not json", pretty([]byte("not json")))
}

func TestShort(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		850 * time.Millisecond: "850ms", 12 * time.Second: "12s", 200 * time.Second: "3m 20s", 15 * time.Minute: "15m",
		2*time.Hour + 5*time.Minute: "2h 5m", 3 * time.Hour: "3h", 76 * time.Hour: "3d 4h",
	} {
		require.Equal(t, want, short(d), d.String())
	}
}
