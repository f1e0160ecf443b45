package dashboard_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/stretchr/testify/require"
	"github.com/warrenjobs/warren/dashboard"
	"github.com/warrenjobs/warren/dashboard/api"
	"github.com/warrenjobs/warren/jobs"
)

func TestAuthRequiredExceptHealthz(t *testing.T) {
	t.Parallel()
	bd := setup(t, dashboard.Config{BasicAuth: &dashboard.BasicAuth{User: "ops", Password: "s3cret:with:colons"}})

	resp := bd.request(t, http.MethodGet, "/healthz", nil, http.Header{"Authorization": {"none"}})
	require.Equal(t, http.StatusOK, resp.StatusCode, "/healthz is open")
	var h api.Health
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&h))
	require.Equal(t, "ok", h.Status)

	for _, path := range []string{"/", "/tasks", "/api/queues", "/api/tasks", "/assets/nothing.js"} {
		resp := bd.request(t, http.MethodGet, path, nil, http.Header{"Authorization": {"none"}})
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, path)
		require.Contains(t, resp.Header.Get("WWW-Authenticate"), "Basic realm=")
	}
	for _, creds := range [][2]string{{"ops", "wrong"}, {"wrong", "s3cret:with:colons"}, {"ops", "s3cret"}, {"", ""}} {
		req, _ := http.NewRequest(http.MethodGet, bd.srv.URL+"/api/queues", nil)
		req.SetBasicAuth(creds[0], creds[1])
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, creds)
	}
	// A POST without credentials is refused before anything happens.
	resp = bd.request(t, http.MethodPost, "/api/queues/"+bd.queue+"/purge", nil, http.Header{"Authorization": {"none"}})
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	require.Equal(t, http.StatusOK, bd.get(t, "/api/queues").StatusCode)
}

func TestHealthzReportsBrokerDown(t *testing.T) {
	t.Parallel()
	bd := setup(t, dashboard.Config{})
	require.NoError(t, bd.broker.Close())
	resp := bd.get(t, "/healthz")
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	var h api.Health
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&h))
	require.Equal(t, "unavailable", h.Status)
}

func TestCrossOriginMutationsRefused(t *testing.T) {
	t.Parallel()
	bd := setup(t, dashboard.Config{})
	bd.enqueue(t, okArgs{N: 1}, nil) // no worker: it stays ready
	ready := func() int {
		var q api.QueueDetail
		bd.getJSON(t, "/api/queues/"+bd.queue, &q)
		return q.Ready
	}
	require.Equal(t, 1, ready())

	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	for name, h := range map[string]http.Header{
		"fetch metadata": {"Sec-Fetch-Site": {"cross-site"}},
		"origin":         {"Origin": {"https://evil.example"}},
		"same-site":      {"Sec-Fetch-Site": {"same-site"}},
	} {
		for _, path := range []string{"/api/queues/" + bd.queue + "/purge", "/queues/" + bd.queue + "/purge",
			"/api/queues/" + bd.queue + "/dead/delete", "/queues/" + bd.queue + "/dead/retry"} {
			hdr := h.Clone()
			for k, v := range form {
				hdr[k] = v
			}
			resp := bd.request(t, http.MethodPost, path, strings.NewReader("all=true"), hdr)
			require.Equal(t, http.StatusForbidden, resp.StatusCode, name+" "+path)
		}
	}
	require.Equal(t, 1, ready(), "nothing was purged")

	// The same request from the dashboard's own pages goes through.
	resp := bd.request(t, http.MethodPost, "/api/queues/"+bd.queue+"/purge", nil, http.Header{"Sec-Fetch-Site": {"same-origin"}})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var res api.ActionResult
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&res))
	require.Equal(t, api.ActionResult{Queue: bd.queue, Action: "purge", Count: 1}, res)
	require.Equal(t, 0, ready())
}

func TestReadOnlyRefusesMutations(t *testing.T) {
	t.Parallel()
	bd := setup(t, dashboard.Config{ReadOnly: true})
	bd.enqueue(t, okArgs{N: 1}, nil)
	for _, path := range []string{"/api/queues/" + bd.queue + "/purge", "/api/queues/" + bd.queue + "/dead/retry",
		"/api/queues/" + bd.queue + "/dead/delete", "/queues/" + bd.queue + "/purge", "/queues/" + bd.queue + "/dead/delete"} {
		resp := bd.request(t, http.MethodPost, path, strings.NewReader("all=true"), http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
		require.Equal(t, http.StatusForbidden, resp.StatusCode, path)
	}
	for _, path := range []string{"/queues/" + bd.queue + "/confirm?action=purge", "/queues/" + bd.queue + "/dead/confirm?action=delete&all=true"} {
		require.Equal(t, http.StatusForbidden, bd.get(t, path).StatusCode, path)
	}
	var q api.QueueDetail
	bd.getJSON(t, "/api/queues/"+bd.queue, &q)
	require.Equal(t, 1, q.Ready)

	doc := bd.doc(t, "/queues/"+bd.queue)
	require.Zero(t, testid(doc, "purge").Length(), "no purge control")
	require.Equal(t, 1, testid(doc, "read-only").Length())
}

func TestMutationsArePostOnly(t *testing.T) {
	t.Parallel()
	bd := setup(t, dashboard.Config{})
	for _, path := range []string{"/api/queues/q/purge", "/api/queues/q/dead/retry", "/api/queues/q/dead/delete", "/queues/q/purge", "/queues/q/dead/retry"} {
		for _, method := range []string{http.MethodGet, http.MethodPut, http.MethodDelete} {
			resp := bd.request(t, method, path, nil, nil)
			require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, method+" "+path)
		}
	}
}

func TestEmptySelectionIsNeverAll(t *testing.T) {
	t.Parallel()
	bd := setup(t, dashboard.Config{})
	bd.runner(t)
	bd.enqueue(t, failArgs{Msg: "x"}, &jobs.EnqueueOpts{MaxRetries: jobs.NoRetries})
	waitDead(t, bd, 1)
	path := "/api/queues/" + bd.queue + "/dead/delete"
	for _, body := range []struct{ ct, body string }{
		{"application/x-www-form-urlencoded", ""},
		{"application/x-www-form-urlencoded", "ids="},
		{"application/json", `{}`},
		{"application/json", `{"ids":[]}`},
		{"application/json", `{"ids":["a"],"all":true}`},
		{"application/x-www-form-urlencoded", "all=yes"},
		{"application/json", `not json`},
	} {
		resp := bd.request(t, http.MethodPost, path, strings.NewReader(body.body), http.Header{"Content-Type": {body.ct}})
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
		var e api.Error
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&e))
		require.NotEmpty(t, e.Error)
	}
	waitDead(t, bd, 1) // still there
	// The HTML form with nothing selected goes back with a note.
	resp := bd.request(t, http.MethodPost, "/queues/"+bd.queue+"/dead/delete", strings.NewReader(""), http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, "../../../queues/"+bd.queue+"/dead?done=none", resp.Header.Get("Location"))
	waitDead(t, bd, 1)
}

// waitDead waits until the queue has n dead letters per the API, and
// returns them.
func waitDead(t *testing.T, bd *bundle, n int) api.DeadLetters {
	t.Helper()
	var dl api.DeadLetters
	eventually(t, func() bool {
		dl = api.DeadLetters{}
		bd.getJSON(t, "/api/queues/"+bd.queue+"/dead", &dl)
		return dl.Total == n && len(dl.DeadLetters) == n
	}, "dead letters")
	return dl
}

// waitTask waits until the task is in state per the API and returns it.
func waitTask(t *testing.T, bd *bundle, id, state string) api.Task {
	t.Helper()
	var task api.Task
	eventually(t, func() bool {
		resp := bd.get(t, "/api/tasks/"+url.PathEscape(id))
		if resp.StatusCode != http.StatusOK {
			return false
		}
		task = api.Task{}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&task))
		return task.State == state
	}, "task "+id+" "+state)
	return task
}

func TestJSONAPI(t *testing.T) {
	t.Parallel()
	bd := setup(t, dashboard.Config{})
	bd.runner(t)
	okID := bd.enqueue(t, okArgs{N: 7}, nil)
	failID := bd.enqueue(t, failArgs{Msg: "card declined"}, &jobs.EnqueueOpts{MaxRetries: 1, RetryDelay: 50 * time.Millisecond})
	waitTask(t, bd, okID, api.StateSucceeded)
	dead := waitTask(t, bd, failID, api.StateDead)

	// Task detail: every attempt with its error.
	require.Equal(t, "test.fail", dead.Kind)
	require.Equal(t, bd.queue, dead.Queue)
	require.JSONEq(t, `{"msg":"card declined"}`, string(dead.Args))
	require.Equal(t, 2, dead.AttemptCount)
	require.Len(t, dead.Attempts, 2)
	require.Equal(t, "retrying", dead.Attempts[0].Outcome)
	require.Equal(t, "card declined", dead.Attempts[0].Error)
	require.False(t, dead.Attempts[0].RetryAt.IsZero())
	require.Equal(t, "dead", dead.Attempts[1].Outcome)
	require.NotEmpty(t, dead.Attempts[1].Worker)

	// Raw field names are the documented ones.
	raw := map[string]any{}
	bd.getJSON(t, "/api/tasks/"+failID, &raw)
	for _, k := range []string{"id", "kind", "queue", "state", "attempt_count", "enqueued_at", "updated_at", "worker", "last_error", "args", "attempts"} {
		require.Contains(t, raw, k)
	}
	attempt := raw["attempts"].([]any)[0].(map[string]any)
	for _, k := range []string{"number", "worker", "started_at", "finished_at", "outcome", "error", "retry_at"} {
		require.Contains(t, attempt, k)
	}

	// Lists and filters.
	var list api.Tasks
	bd.getJSON(t, "/api/tasks?queue="+bd.queue, &list)
	require.Equal(t, 2, list.Matched)
	require.Empty(t, list.Tasks[0].Attempts, "lists leave attempts out")
	bd.getJSON(t, "/api/tasks?state=failed&queue="+bd.queue, &list)
	require.Equal(t, []string{failID}, taskIDs(list))
	bd.getJSON(t, "/api/tasks?q=DECLINED", &list)
	require.Equal(t, []string{failID}, taskIDs(list))
	bd.getJSON(t, "/api/tasks?kind=test.ok&queue="+bd.queue, &list)
	require.Equal(t, []string{okID}, taskIDs(list))
	bd.getJSON(t, "/api/tasks?q="+okID, &list)
	require.Equal(t, []string{okID}, taskIDs(list))
	require.Equal(t, http.StatusBadRequest, bd.get(t, "/api/tasks?state=bogus").StatusCode)
	require.Equal(t, http.StatusBadRequest, bd.get(t, "/api/tasks?limit=0").StatusCode)
	require.Equal(t, http.StatusNotFound, bd.get(t, "/api/tasks/nope").StatusCode)
	require.Equal(t, http.StatusNotFound, bd.get(t, "/api/nothing").StatusCode)

	// Queues: broker figures and event figures.
	var qs api.Queues
	eventually(t, func() bool {
		qs = api.Queues{}
		bd.getJSON(t, "/api/queues", &qs)
		i := slices.IndexFunc(qs.Queues, func(q api.Queue) bool { return q.Name == bd.queue })
		return i >= 0 && qs.Queues[i].Consumers == 1 && qs.Queues[i].Dead == 1
	}, "queue figures")
	rawQ := map[string]any{}
	bd.getJSON(t, "/api/queues/"+bd.queue, &rawQ)
	for _, k := range []string{"name", "ready", "in_flight", "delayed", "consumers", "dead", "oldest_ready_seconds", "rates", "history"} {
		require.Contains(t, rawQ, k)
	}
	var q api.QueueDetail
	bd.getJSON(t, "/api/queues/"+bd.queue, &q)
	require.Len(t, q.History, 60)
	enq, ok, failed := 0, 0, 0
	for _, m := range q.History {
		enq, ok, failed = enq+m.Enqueued, ok+m.Succeeded, failed+m.Failed
	}
	require.Equal(t, [3]int{2, 1, 2}, [3]int{enq, ok, failed})
	require.Positive(t, q.Rates.EnqueuedPerMinute)
	require.Equal(t, http.StatusNotFound, bd.get(t, "/api/queues/never-seen").StatusCode)
	require.Equal(t, http.StatusBadRequest, bd.get(t, "/api/queues/bad.name").StatusCode)

	// Workers from heartbeats.
	var ws api.Workers
	eventually(t, func() bool {
		ws = api.Workers{}
		bd.getJSON(t, "/api/workers", &ws)
		return len(ws.Workers) == 1 && ws.Workers[0].Processed == 3
	}, "worker heartbeat")
	w := ws.Workers[0]
	require.Equal(t, "online", w.State)
	require.Equal(t, map[string]int{bd.queue: 1}, w.Queues)
	require.Equal(t, 4, w.Concurrency)
	require.EqualValues(t, 2, w.Failed)

	// Dead letters from the broker.
	dl := waitDead(t, bd, 1)
	require.Equal(t, failID, dl.DeadLetters[0].ID)
	require.Equal(t, "max retries exceeded (1)", dl.DeadLetters[0].Reason)
	require.Equal(t, "card declined", dl.DeadLetters[0].Error)
	require.Equal(t, 2, dl.DeadLetters[0].Attempts)
	require.JSONEq(t, `{"msg":"card declined"}`, string(dl.DeadLetters[0].Args))
}

func taskIDs(ts api.Tasks) []string {
	out := []string{}
	for _, t := range ts.Tasks {
		out = append(out, t.ID)
	}
	return out
}

func TestDeadLetterActionsThroughAPI(t *testing.T) {
	t.Parallel()
	bd := setup(t, dashboard.Config{})
	stop := startRunner(t, bd.broker, bd.queue)
	var ids []string
	for range 4 {
		ids = append(ids, bd.enqueue(t, flakyArgs{Fails: 1}, &jobs.EnqueueOpts{MaxRetries: jobs.NoRetries}))
	}
	waitDead(t, bd, 4)
	for _, id := range ids {
		waitTask(t, bd, id, api.StateDead)
	}
	stop() // no worker while we act

	post := func(path, ct, body string) api.ActionResult {
		t.Helper()
		resp := bd.request(t, http.MethodPost, path, strings.NewReader(body), http.Header{"Content-Type": {ct}})
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		var res api.ActionResult
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&res))
		return res
	}
	base := "/api/queues/" + bd.queue
	res := post(base+"/dead/delete", "application/json", `{"ids":["`+ids[0]+`"]}`)
	require.Equal(t, api.ActionResult{Queue: bd.queue, Action: "delete", Count: 1}, res)
	waitDead(t, bd, 3)

	res = post(base+"/dead/retry", "application/x-www-form-urlencoded", url.Values{"ids": {ids[1], ids[2]}}.Encode())
	require.Equal(t, 2, res.Count)
	waitDead(t, bd, 1)
	var q api.QueueDetail
	bd.getJSON(t, base, &q)
	require.Equal(t, 2, q.Ready, "retried tasks are back in the work queue")
	// The dashboard recorded them as enqueued again: queued, not dead.
	waitTask(t, bd, ids[1], api.StateQueued)

	// They run and succeed this time (attempt 2).
	startRunner(t, bd.broker, bd.queue)
	done := waitTask(t, bd, ids[1], api.StateSucceeded)
	require.Equal(t, 2, done.AttemptCount)

	res = post(base+"/dead/retry", "application/json", `{"all":true}`)
	require.Equal(t, 1, res.Count)
	waitTask(t, bd, ids[3], api.StateSucceeded)
	waitDead(t, bd, 0)
}

func TestDeadLetterActionsThroughPages(t *testing.T) {
	t.Parallel()
	bd := setup(t, dashboard.Config{})
	stop := startRunner(t, bd.broker, bd.queue)
	a := bd.enqueue(t, failArgs{Msg: "one"}, &jobs.EnqueueOpts{MaxRetries: jobs.NoRetries})
	b := bd.enqueue(t, failArgs{Msg: "two"}, &jobs.EnqueueOpts{MaxRetries: jobs.NoRetries})
	c := bd.enqueue(t, failArgs{Msg: "three"}, &jobs.EnqueueOpts{MaxRetries: jobs.NoRetries})
	waitDead(t, bd, 3)
	stop()

	deadPath := "/queues/" + bd.queue + "/dead"
	doc := bd.doc(t, deadPath)
	require.Equal(t, "3", testid(doc, "dead-count").Text())
	require.Equal(t, 3, testid(doc, "dead-row").Length())
	href := doc.Find(`[data-testid="dead-row"][data-task="`+a+`"] [data-testid="delete-one"]`).AttrOr("href", "")
	require.NotEmpty(t, href)

	// Following the link shows a confirmation; nothing is deleted yet.
	confirmURL := resolve(t, bd.srv.URL+deadPath, href)
	doc = bd.doc(t, confirmURL.RequestURI())
	require.Equal(t, "Delete 1 dead letter of queue "+bd.queue+"?", strings.TrimSpace(testid(doc, "confirm-message").Text()))
	waitDead(t, bd, 3)

	// Submitting the confirmation form deletes and redirects back with a note.
	form := testid(doc, "confirm").Find("form")
	action := resolve(t, confirmURL.String(), form.AttrOr("action", ""))
	resp := submit(t, bd, form, action)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	back := resolve(t, action.String(), resp.Header.Get("Location"))
	require.Equal(t, deadPath, back.Path)
	doc = bd.doc(t, back.RequestURI())
	require.Equal(t, "Deleted 1 dead letter.", testid(doc, "flash").Text())
	require.Equal(t, "2", testid(doc, "dead-count").Text())

	// Select two and retry them.
	doc = bd.doc(t, deadPath+"/confirm?action=retry&ids="+b+"&ids="+c)
	require.Equal(t, 2, testid(doc, "confirm-ids").Find("li").Length())
	form = testid(doc, "confirm").Find("form")
	action = resolve(t, bd.srv.URL+deadPath+"/confirm", form.AttrOr("action", ""))
	resp = submit(t, bd, form, action)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	waitDead(t, bd, 0)

	// Purge: confirmation, then the queue is empty.
	doc = bd.doc(t, "/queues/"+bd.queue)
	purge := resolve(t, bd.srv.URL+"/queues/"+bd.queue, testid(doc, "purge").AttrOr("href", ""))
	doc = bd.doc(t, purge.RequestURI())
	require.Equal(t, "Purge the 2 ready tasks of queue "+bd.queue+"?", strings.TrimSpace(testid(doc, "confirm-message").Text()))
	form = testid(doc, "confirm").Find("form")
	resp = submit(t, bd, form, resolve(t, purge.String(), form.AttrOr("action", "")))
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	doc = bd.doc(t, resolve(t, bd.srv.URL+"/queues/"+bd.queue+"/purge", resp.Header.Get("Location")).RequestURI())
	require.Equal(t, "Purged 2 ready tasks.", testid(doc, "flash").Text())
	require.Equal(t, "0", testid(doc, "queue-ready").Text())

	// Unknown action, and a confirmation without a selection.
	require.Equal(t, http.StatusBadRequest, bd.get(t, deadPath+"/confirm?action=explode").StatusCode)
	resp = bd.get(t, deadPath+"/confirm?action=retry")
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
}

// resolve resolves a link found on the page at base.
func resolve(t *testing.T, base, ref string) *url.URL {
	t.Helper()
	b, err := url.Parse(base)
	require.NoError(t, err)
	r, err := url.Parse(ref)
	require.NoError(t, err)
	return b.ResolveReference(r)
}

// submit posts a form's hidden inputs to action as a browser on the page would.
func submit(t *testing.T, bd *bundle, form *goquery.Selection, action *url.URL) *http.Response {
	t.Helper()
	require.Equal(t, "post", form.AttrOr("method", ""))
	v := url.Values{}
	form.Find("input[type=hidden]").Each(func(_ int, s *goquery.Selection) { v.Add(s.AttrOr("name", ""), s.AttrOr("value", "")) })
	return bd.request(t, http.MethodPost, action.RequestURI(), strings.NewReader(v.Encode()), http.Header{
		"Content-Type": {"application/x-www-form-urlencoded"}, "Sec-Fetch-Site": {"same-origin"}, "Origin": {bd.srv.URL}})
}

func TestEscapesUserText(t *testing.T) {
	t.Parallel()
	bd := setup(t, dashboard.Config{})
	bd.runner(t)
	evilID := `<script>alert("id")</script>`
	id := bd.enqueue(t, evilArgs{Note: `<script>alert("args")</script><img src=x onerror=alert(1)>`},
		&jobs.EnqueueOpts{ID: evilID, MaxRetries: 1, RetryDelay: 20 * time.Millisecond})
	require.Equal(t, evilID, id)
	waitTask(t, bd, id, api.StateDead)
	waitDead(t, bd, 1)

	for _, path := range []string{"/", "/tasks", "/tasks?q=" + url.QueryEscape("<script>"), "/tasks/" + url.PathEscape(id),
		"/queues/" + bd.queue, "/queues/" + bd.queue + "/dead", "/dead", "/workers",
		"/queues/" + bd.queue + "/dead/confirm?action=retry&ids=" + url.QueryEscape(id)} {
		resp := bd.request(t, http.MethodGet, path, nil, http.Header{"Accept": {"text/html"}})
		require.Equal(t, http.StatusOK, resp.StatusCode, path)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		html := string(body)
		require.NotContains(t, html, "<script>alert", path)
		require.NotContains(t, html, "<img src=x", path)
		doc, err := goquery.NewDocumentFromReader(strings.NewReader(html))
		require.NoError(t, err)
		doc.Find("script").Each(func(_ int, s *goquery.Selection) {
			require.NotEmpty(t, s.AttrOr("src", ""), path)
			require.Empty(t, strings.TrimSpace(s.Text()), path+": no inline script")
		})
		require.Zero(t, doc.Find("img").Length(), path)
	}
	doc := bd.doc(t, "/tasks/"+url.PathEscape(id))
	require.Equal(t, evilID, testid(doc, "task-id").Text(), "shown as text")
	require.Equal(t, `<script>alert("error")</script>`, testid(doc, "attempt-error").First().Text())
	require.Contains(t, testid(doc, "task-args").Text(), `<script>alert(\"args\")</script>`)
	require.Equal(t, `<script>alert("kind")</script>`, testid(doc, "task-kind").Text())
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	bd := setup(t, dashboard.Config{})
	for _, path := range []string{"/", "/api/queues", "/healthz", "/tasks/none"} {
		resp := bd.get(t, path)
		require.Equal(t, "no-store", resp.Header.Get("Cache-Control"), path)
		require.Contains(t, resp.Header.Get("Content-Security-Policy"), "script-src 'self'", path)
		require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"), path)
		require.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"), path)
	}
	require.Equal(t, http.StatusNotFound, bd.get(t, "/tasks/none").StatusCode)

	doc := bd.doc(t, "/")
	var assetPaths []string
	doc.Find("script[src], link[rel=stylesheet]").Each(func(_ int, s *goquery.Selection) {
		assetPaths = append(assetPaths, s.AttrOr("src", s.AttrOr("href", "")))
	})
	doc.Find("link[rel=icon]").Each(func(_ int, s *goquery.Selection) { assetPaths = append(assetPaths, s.AttrOr("href", "")) })
	require.Len(t, assetPaths, 4)
	for _, p := range assetPaths {
		require.Regexp(t, `^\./assets/[a-z.]+\.[0-9a-f]{16}\.(js|css|svg)$`, p)
		resp := bd.get(t, strings.TrimPrefix(p, "."))
		require.Equal(t, http.StatusOK, resp.StatusCode, p)
		require.Equal(t, "public, max-age=31536000, immutable", resp.Header.Get("Cache-Control"), p)
		body, _ := io.ReadAll(resp.Body)
		require.NotEmpty(t, body)
		etag := resp.Header.Get("ETag")
		resp = bd.request(t, http.MethodGet, strings.TrimPrefix(p, "."), nil, http.Header{"If-None-Match": {etag}})
		require.Equal(t, http.StatusNotModified, resp.StatusCode)
	}
	require.Equal(t, http.StatusNotFound, bd.get(t, "/assets/htmx.min.js").StatusCode, "only hashed names are served")
}

func TestPollingReturnsTheLivePartOnly(t *testing.T) {
	t.Parallel()
	bd := setup(t, dashboard.Config{RefreshInterval: 2 * time.Second})
	doc := bd.doc(t, "/tasks?state=dead")
	live := testid(doc, "live")
	require.Equal(t, "./tasks?state=dead", live.AttrOr("hx-get", ""))
	require.Equal(t, "every 2s", live.AttrOr("hx-trigger", ""))

	resp := bd.request(t, http.MethodGet, "/tasks?state=dead", nil, http.Header{"HX-Request": {"true"}})
	require.Equal(t, http.StatusOK, resp.StatusCode)
	body, _ := io.ReadAll(resp.Body)
	require.True(t, strings.HasPrefix(strings.TrimSpace(string(body)), `<div id="live"`), string(body))
	require.NotContains(t, string(body), "<html")
}

// TestMountedUnderPrefix follows every link of every screen under a prefix.
func TestMountedUnderPrefix(t *testing.T) {
	t.Parallel()
	bd := setup(t, dashboard.Config{})
	bd.runner(t)
	id := bd.enqueue(t, failArgs{Msg: "x"}, &jobs.EnqueueOpts{MaxRetries: jobs.NoRetries})
	waitTask(t, bd, id, api.StateDead)
	waitDead(t, bd, 1)

	mux := http.NewServeMux()
	mux.Handle("/ops/warren/", http.StripPrefix("/ops/warren", bd.dash))
	mux.Handle("/ops/warren", http.StripPrefix("/ops/warren", bd.dash))
	srv := newServer(t, mux)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	resp, err := client.Get(srv + "/ops/warren")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMovedPermanently, resp.StatusCode)
	require.Equal(t, "/ops/warren/", resolve(t, srv+"/ops/warren", resp.Header.Get("Location")).Path)

	seen := map[string]bool{}
	queue := []string{srv + "/ops/warren/"}
	for len(queue) > 0 && len(seen) < 60 {
		page := queue[0]
		queue = queue[1:]
		if seen[page] {
			continue
		}
		seen[page] = true
		resp, err := client.Get(page)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, page)
		ct := resp.Header.Get("Content-Type")
		if !strings.HasPrefix(ct, "text/html") {
			resp.Body.Close()
			continue
		}
		doc, err := goquery.NewDocumentFromReader(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		doc.Find("a[href], link[href], script[src], [hx-get]").Each(func(_ int, s *goquery.Selection) {
			ref := s.AttrOr("href", s.AttrOr("src", s.AttrOr("hx-get", "")))
			u := resolve(t, page, ref)
			require.True(t, strings.HasPrefix(u.Path, "/ops/warren/"), "%s on %s leaves the mount", ref, page)
			u.Fragment = ""
			queue = append(queue, u.String())
		})
	}
	require.True(t, seen[srv+"/ops/warren/tasks/"+id], "reached the task page")
	require.True(t, seen[srv+"/ops/warren/queues/"+bd.queue+"/dead"], "reached the dead letters")
}

func newServer(t *testing.T, h http.Handler) string {
	srv := httptestServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	b := setup(t, dashboard.Config{}).broker
	for name, cfg := range map[string]dashboard.Config{
		"no broker":      {},
		"half auth":      {Broker: b, BasicAuth: &dashboard.BasicAuth{User: "u"}},
		"fast refresh":   {Broker: b, RefreshInterval: time.Millisecond},
		"negative":       {Broker: b, Replay: -time.Second},
		"drop < offline": {Broker: b, WorkerOfflineAfter: time.Hour, WorkerDropAfter: time.Minute},
		"bad queue":      {Broker: b, Queues: []string{"a.b"}},
		"dead limit":     {Broker: b, DeadLimit: 5000},
	} {
		_, err := dashboard.New(cfg)
		require.Error(t, err, name)
	}
	_, err := dashboard.New(dashboard.Config{Broker: b, RefreshInterval: -1})
	require.NoError(t, err, "negative refresh turns polling off")
}

func TestConfiguredQueuesAreListed(t *testing.T) {
	t.Parallel()
	b := setup(t, dashboard.Config{}).broker
	bd := setupOn(t, b, dashboard.Config{Queues: []string{"declared-nowhere"}})
	var qs api.Queues
	bd.getJSON(t, "/api/queues", &qs)
	require.Len(t, qs.Queues, 1)
	require.Equal(t, "declared-nowhere", qs.Queues[0].Name)
	require.NotEmpty(t, qs.Queues[0].Error)
}

func TestCheckListenAddr(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"127.0.0.1:5555", "localhost:5555", "[::1]:5555", "127.8.9.10:80"} {
		require.NoError(t, dashboard.CheckListenAddr(addr, false, false), addr)
	}
	for _, addr := range []string{":5555", "0.0.0.0:5555", "10.0.0.5:5555", "[::]:5555", "example.com:80"} {
		require.ErrorIs(t, dashboard.CheckListenAddr(addr, false, false), dashboard.ErrInsecureListen, addr)
		require.NoError(t, dashboard.CheckListenAddr(addr, true, false), addr+" with auth")
		require.NoError(t, dashboard.CheckListenAddr(addr, false, true), addr+" insecure")
	}
	require.Error(t, dashboard.CheckListenAddr("no-port", true, false))
}

func TestParseBasicAuth(t *testing.T) {
	t.Parallel()
	a, err := dashboard.ParseBasicAuth("ops:pa:ss")
	require.NoError(t, err)
	require.Equal(t, dashboard.BasicAuth{User: "ops", Password: "pa:ss"}, *a)
	for _, bad := range []string{"", "ops", "ops:", ":pw"} {
		_, err := dashboard.ParseBasicAuth(bad)
		require.Error(t, err, bad)
	}
}

func TestRunTwiceFails(t *testing.T) {
	t.Parallel()
	d, err := dashboard.New(dashboard.Config{Broker: setup(t, dashboard.Config{}).broker, Logger: quiet()})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errs := make(chan error, 2)
	go func() { errs <- d.Run(ctx) }()
	go func() { errs <- d.Run(ctx) }()
	select {
	case err := <-errs:
		require.Error(t, err, "one of two concurrent Runs is refused")
	case <-time.After(10 * time.Second):
		t.Fatal("neither Run returned")
	}
	cancel()
	require.NoError(t, <-errs, "the other returns nil once cancelled")
}
