package main_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestWorkerWarmShutdown: SIGTERM lets running tasks finish, takes no new
// one, and exits 0; the unstarted tasks stay in the queue.
func TestWorkerWarmShutdown(t *testing.T) {
	t.Parallel()
	s := setup(t)
	q := s.queue()
	s.ok("enqueue", "demo.sleep", `{"ms":3000}`, "--queue", q, "--count", "6", "--quiet")
	w := s.start("worker", "--queues", q, "--concurrency", "2", "--log-format", "json", "--http", "127.0.0.1:0")
	addr, _ := w.logLine("http server listening", 10*time.Second)["addr"].(string)

	// Two delivered (prefetch = concurrency = 2), four still ready.
	require.Eventually(t, func() bool { return s.stats(q).Ready == 4 }, 20*time.Second, 20*time.Millisecond)
	code, _ := get(t, "http://"+addr+"/readyz")
	require.Equal(t, http.StatusOK, code)
	w.signal(syscall.SIGTERM)
	w.logLine("shutting down: finishing running tasks (signal again to exit now)", 5*time.Second)
	// While the running tasks finish, the worker is alive but not ready.
	require.Eventually(t, func() bool {
		code, body := get(t, "http://"+addr+"/readyz")
		return code == http.StatusServiceUnavailable && body == "shutting down\n"
	}, 2*time.Second, 10*time.Millisecond)
	code, _ = get(t, "http://"+addr+"/healthz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, 0, w.wait(20*time.Second), w.stderr.String())

	stopped := w.logLine("worker stopped", time.Second)
	require.Equal(t, 2.0, stopped["processed"], "both running tasks finished")
	require.Equal(t, 0.0, stopped["failed"])
	st := s.stats(q)
	require.Equal(t, 4, st.Ready, "unstarted tasks stay in the queue")
	require.Equal(t, 0, st.Dead)
}

// TestWorkerSecondSignalExitsNow: a second signal during the warm shutdown
// exits at once, and the interrupted task goes back to the queue.
func TestWorkerSecondSignalExitsNow(t *testing.T) {
	t.Parallel()
	s := setup(t)
	q := s.queue()
	s.ok("enqueue", "demo.sleep", `{"ms":60000}`, "--queue", q, "--count", "2", "--quiet")
	w := s.start("worker", "--queues", q, "--concurrency", "1", "--shutdown-timeout", "5m", "--log-format", "json")
	require.Eventually(t, func() bool { return s.stats(q).Ready == 1 }, 20*time.Second, 20*time.Millisecond)

	w.signal(syscall.SIGINT)
	w.logLine("shutting down: finishing running tasks (signal again to exit now)", 5*time.Second)
	began := time.Now()
	w.signal(syscall.SIGTERM)
	require.Equal(t, 1, w.wait(10*time.Second), w.stderr.String())
	require.Less(t, time.Since(began), 5*time.Second)
	w.logLine("exiting now: unfinished tasks go back to their queues", time.Second)

	require.Eventually(t, func() bool { return s.stats(q).Ready == 2 }, 20*time.Second, 50*time.Millisecond,
		"the running task returns to the queue")
	require.Equal(t, 0, s.stats(q).Dead)
}

// TestWorkerHTTP checks /healthz, /readyz and the Prometheus metrics.
func TestWorkerHTTP(t *testing.T) {
	t.Parallel()
	s := setup(t)
	q := s.queue()
	s.ok("enqueue", "demo.noop", "--queue", q, "--count", "5", "--quiet")
	s.ok("enqueue", "demo.panic", "--queue", q, "--count", "2", "--max-retries", "0", "--quiet")
	s.ok("enqueue", "demo.fail", `{"times":1}`, "--queue", q, "--max-retries", "1", "--retry-delay", "1s", "--quiet")

	w := s.start("worker", "--queues", q, "--http", "127.0.0.1:0", "--log-format", "json")
	addr, _ := w.logLine("http server listening", 10*time.Second)["addr"].(string)
	require.NotEmpty(t, addr)
	base := "http://" + addr

	code, body := get(t, base+"/healthz")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "ok\n", body)
	code, body = get(t, base+"/readyz")
	require.Equal(t, http.StatusOK, code, body)

	label := fmt.Sprintf(`{kind="%%s",queue="%s"}`, q)
	want := map[string]float64{
		"warren_tasks_succeeded_total" + fmt.Sprintf(label, "demo.noop"):       5,
		"warren_tasks_processed_total" + fmt.Sprintf(label, "demo.noop"):       5,
		"warren_tasks_failed_total" + fmt.Sprintf(label, "demo.panic"):         2,
		"warren_tasks_dead_lettered_total" + fmt.Sprintf(label, "demo.panic"):  2,
		"warren_tasks_retried_total" + fmt.Sprintf(label, "demo.fail"):         1,
		"warren_tasks_failed_total" + fmt.Sprintf(label, "demo.fail"):          1,
		"warren_tasks_succeeded_total" + fmt.Sprintf(label, "demo.fail"):       1,
		"warren_tasks_processed_total" + fmt.Sprintf(label, "demo.fail"):       2,
		"warren_task_duration_seconds_count" + fmt.Sprintf(label, "demo.noop"): 5,
		"warren_tasks_in_flight":       0,
		"warren_tasks_abandoned_total": 0,
	}
	var metrics map[string]float64
	require.Eventually(t, func() bool {
		_, body := get(t, base+"/metrics")
		metrics = parseMetrics(body)
		for k, v := range want {
			if got, ok := metrics[k]; !ok || got != v {
				return false
			}
		}
		return true
	}, 20*time.Second, 100*time.Millisecond, "metrics never matched; last scrape: %v", func() map[string]float64 { return metrics })
	require.Contains(t, metrics, "go_goroutines")

	w.signal(syscall.SIGTERM)
	require.Equal(t, 0, w.wait(20*time.Second), w.stderr.String())
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

var sampleRE = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$`)

// parseMetrics reads the Prometheus text format into series → value.
func parseMetrics(body string) map[string]float64 {
	out := map[string]float64{}
	for _, l := range strings.Split(body, "\n") {
		m := sampleRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		if v, err := strconv.ParseFloat(m[2], 64); err == nil {
			out[m[1]] = v
		}
	}
	return out
}

// TestWorkerExitWhenIdleWaitsForRetries: the idle period outlasts a retry
// delay, so a task between attempts keeps the worker.
func TestWorkerExitWhenIdleWaitsForRetries(t *testing.T) {
	t.Parallel()
	s := setup(t)
	q := s.queue()
	s.ok("enqueue", "demo.fail", `{"times":2}`, "--queue", q, "--max-retries", "3", "--retry-delay", "1s")
	w := s.start("worker", "--queues", q, "--exit-when-idle", "2500ms", "--log-format", "json")
	require.Equal(t, 0, w.wait(60*time.Second), w.stderr.String())
	stopped := w.logLine("worker stopped", time.Second)
	require.Equal(t, 3.0, stopped["processed"], "two failed attempts, then success")
	st := s.stats(q)
	require.Equal(t, 0, st.Ready)
	require.Equal(t, 0, st.Dead)
}

func TestWorkerBadInput(t *testing.T) {
	t.Parallel()
	s := setup(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--queues", "a:0"}, `invalid --queues entry "a:0": weight must be a whole number ≥ 1`},
		{[]string{"--queues", "a:x"}, `invalid --queues entry "a:x"`},
		{[]string{"--queues", "bad.q"}, `invalid --queues entry "bad.q"`},
		{[]string{"--queues", "a,a:2"}, `queue "a" named twice`},
		{[]string{"--queues", ","}, "name at least one queue"},
		{[]string{"--concurrency", "0"}, "invalid --concurrency 0"},
		{[]string{"--prefetch", "70000"}, "invalid --prefetch 70000"},
		{[]string{"--exit-when-idle", "-1s"}, "invalid --exit-when-idle -1s"},
		{[]string{"--http", "127.0.0.1:notaport"}, "--http: listen tcp"},
		{[]string{"--nope"}, "unknown flag: --nope"},
		{[]string{"extra"}, `unknown command "extra" for "warren worker"`},
	} {
		args := append([]string{"worker"}, c.args...)
		s.fails([]string{c.want}, args...)
	}
	s.fails([]string{`unknown command "nope" for "warren"`}, "nope")
}

// TestWorkerSignalWhileConnecting: a signal before the broker answered is a
// clean stop: nothing had started.
func TestWorkerSignalWhileConnecting(t *testing.T) {
	t.Parallel()
	// A listener that accepts and never speaks AMQP: the handshake hangs.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	s := &bundle{t: t, env: baseEnv("WARREN_AMQP_URL=amqp://warren:pw@" + ln.Addr().String() + "/")}
	w := s.start("worker", "--queues", "q")
	time.Sleep(500 * time.Millisecond) // connecting; there is no log line to wait for
	w.signal(syscall.SIGTERM)
	require.Equal(t, 0, w.wait(5*time.Second), w.stderr.String())
}
