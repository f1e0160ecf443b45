package dashboard_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/broker/memory"
	"github.com/warrenjobs/warren/dashboard"
	"github.com/warrenjobs/warren/jobs"
)

// quiet is a logger for tests; set WARREN_TEST_LOG=1 to see the logs.
func quiet() *slog.Logger {
	if os.Getenv("WARREN_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// Test kinds.

type okArgs struct {
	N int `json:"n"`
}

func (okArgs) Kind() string { return "test.ok" }

type failArgs struct {
	Msg string `json:"msg"`
}

func (failArgs) Kind() string { return "test.fail" }

// evilArgs has a kind made of markup: the dashboard must show it as text.
type evilArgs struct {
	Note string `json:"note"`
}

func (evilArgs) Kind() string { return `<script>alert("kind")</script>` }

// flakyArgs fails while its attempt is at most Fails.
type flakyArgs struct {
	Fails int `json:"fails"`
}

func (flakyArgs) Kind() string { return "test.flaky" }

// slowArgs blocks until its release channel (by key) is closed.
type slowArgs struct {
	Key string `json:"key"`
}

func (slowArgs) Kind() string { return "test.slow" }

var (
	releaseMu sync.Mutex
	releases  = map[string]chan struct{}{}
)

func release(key string) chan struct{} {
	releaseMu.Lock()
	defer releaseMu.Unlock()
	ch, ok := releases[key]
	if !ok {
		ch = make(chan struct{})
		releases[key] = ch
	}
	return ch
}

func testWorkers() *jobs.Workers {
	w := jobs.NewWorkers()
	jobs.AddWorker(w, jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[okArgs]) error { return nil }))
	jobs.AddWorker(w, jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[failArgs]) error { return errors.New(j.Args.Msg) }))
	jobs.AddWorker(w, jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[evilArgs]) error {
		return errors.New(`<script>alert("error")</script>`)
	}))
	jobs.AddWorker(w, jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[flakyArgs]) error {
		if j.Attempt <= j.Args.Fails {
			return errors.New("flaky failure")
		}
		return nil
	}))
	jobs.AddWorker(w, jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[slowArgs]) error {
		select {
		case <-release(j.Args.Key):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}))
	return w
}

// bundle is one test's dashboard, its broker and a client.
type bundle struct {
	broker broker.Broker
	dash   *dashboard.Dashboard
	srv    *httptest.Server
	client *jobs.Client
	queue  string
	auth   *dashboard.BasicAuth
}

// setup starts a dashboard on a fresh in-memory broker. cfg may set
// anything but Broker and Logger.
func setup(t *testing.T, cfg dashboard.Config) *bundle {
	t.Helper()
	b := memory.New(memory.Config{})
	t.Cleanup(func() { _ = b.Close() })
	return setupOn(t, b, cfg)
}

func setupOn(t *testing.T, b broker.Broker, cfg dashboard.Config) *bundle {
	t.Helper()
	cfg.Broker, cfg.Logger = b, quiet()
	d := startDashboard(t, cfg)
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	c, err := jobs.NewClient(b, &jobs.ClientConfig{Logger: quiet(), EventInterval: 20 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return &bundle{broker: b, dash: d, srv: srv, client: c, queue: uniqueQueue(t, b), auth: cfg.BasicAuth}
}

// startDashboard creates a dashboard and runs its follower until the test
// ends; the returned stop ends it earlier.
func startDashboard(t *testing.T, cfg dashboard.Config) *dashboard.Dashboard {
	d, _ := startDashboardStoppable(t, cfg)
	return d
}

func startDashboardStoppable(t *testing.T, cfg dashboard.Config) (*dashboard.Dashboard, func()) {
	t.Helper()
	d, err := dashboard.New(cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, broker.ErrClosed) { // a test closed the broker
					require.NoError(t, err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("dashboard Run did not return within 10s")
			}
		})
	}
	t.Cleanup(stop)
	return d, stop
}

func uniqueQueue(t *testing.T, b broker.Broker) string {
	t.Helper()
	q := "dash-" + strings.ReplaceAll(uuid.NewString()[:13], "-", "")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.DeleteQueue(ctx, q)
	})
	return q
}

// runner runs a worker on the bundle's queue until the test ends.
func (bd *bundle) runner(t *testing.T) {
	t.Helper()
	startRunner(t, bd.broker, bd.queue)
}

func startRunner(t *testing.T, b broker.Broker, queue string) (stop func()) {
	t.Helper()
	return startNamedRunner(t, b, queue, "")
}

// startNamedRunner is startRunner with the worker ID that events carry.
func startNamedRunner(t *testing.T, b broker.Broker, queue, id string) (stop func()) {
	t.Helper()
	r, err := jobs.NewRunner(b, testWorkers(), &jobs.RunnerConfig{
		ID: id, Queues: map[string]int{queue: 1}, Concurrency: 4, Logger: quiet(),
		EventInterval: 20 * time.Millisecond, HeartbeatInterval: 200 * time.Millisecond,
		ShutdownTimeout: 2 * time.Second, GracePeriod: time.Second,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(20 * time.Second):
				t.Errorf("runner did not stop within 20s")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func (bd *bundle) enqueue(t *testing.T, args jobs.JobArgs, opts *jobs.EnqueueOpts) string {
	t.Helper()
	if opts == nil {
		opts = &jobs.EnqueueOpts{}
	}
	if opts.Queue == "" {
		opts.Queue = bd.queue
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := bd.client.Enqueue(ctx, args, opts)
	require.NoError(t, err)
	return id
}

// request sends a request with the bundle's credentials.
func (bd *bundle) request(t *testing.T, method, path string, body io.Reader, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, bd.srv.URL+path, body)
	require.NoError(t, err)
	for k, v := range header {
		req.Header[k] = v
	}
	if bd.auth != nil && req.Header.Get("Authorization") == "" {
		req.SetBasicAuth(bd.auth.User, bd.auth.Password)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

func (bd *bundle) get(t *testing.T, path string) *http.Response {
	t.Helper()
	return bd.request(t, http.MethodGet, path, nil, nil)
}

// getJSON fetches path, expects 200 and decodes into v.
func (bd *bundle) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	resp := bd.get(t, path)
	require.Equal(t, http.StatusOK, resp.StatusCode, path)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
}

// doc fetches an HTML page, expecting 200.
func (bd *bundle) doc(t *testing.T, path string) *goquery.Document {
	t.Helper()
	resp := bd.request(t, http.MethodGet, path, nil, http.Header{"Accept": {"text/html"}})
	require.Equal(t, http.StatusOK, resp.StatusCode, path)
	doc, err := goquery.NewDocumentFromReader(resp.Body)
	require.NoError(t, err)
	return doc
}

// eventually polls cond every 20 ms for up to 30 s (CI runs every package
// at once on two cores).
func eventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	require.Eventually(t, cond, 30*time.Second, 20*time.Millisecond, msg)
}

func testid(doc *goquery.Document, id string) *goquery.Selection {
	return doc.Find(`[data-testid="` + id + `"]`)
}

func httptestServer(h http.Handler) *httptest.Server { return httptest.NewServer(h) }

// getJSONFrom fetches path from another dashboard server.
func getJSONFrom(t *testing.T, base, path string, v any) {
	t.Helper()
	resp, err := http.Get(base + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, path)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
}
