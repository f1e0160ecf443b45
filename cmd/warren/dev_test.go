package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/warrenjobs/warren/dashboard/api"
)

// TestDevFallsBackToMemory: with nothing listening at $WARREN_AMQP_URL,
// `warren dev` says so (without the URL's password) and runs on the in-memory
// broker: its producer, worker and dashboard work together, and SIGINT stops
// it cleanly.
func TestDevFallsBackToMemory(t *testing.T) {
	t.Parallel()
	url := "amqp://guest:dev-secret@" + closedAddr(t) + "/"
	s := &bundle{t: t, env: baseEnv("WARREN_AMQP_URL=" + url)}
	p := s.start("dev", "--addr", "127.0.0.1:0", "--rate", "20", "--queue", "dev-mem", "--log-format", "json")

	base := devDashboard(t, p)
	brokerLine := devField(t, p, "broker")
	require.Equal(t, "RabbitMQ at "+strings.Replace(url, "dev-secret", "xxxxx", 1)+" not reachable (dial tcp "+
		strings.TrimSuffix(strings.TrimPrefix(url, "amqp://guest:dev-secret@"), "/")+": connect: connection refused): "+
		"using the in-memory broker; nothing survives exit", brokerLine)
	requireDevOutcomes(t, base, "dev-mem")
	stopDev(t, p)
	require.NotContains(t, p.stdout.String()+p.stderr.String(), "dev-secret")
}

// TestDevOnRabbitMQ: with RabbitMQ answering, `warren dev` uses it, and the
// producer's tasks succeed, retry and end in the queue's dead-letter queue on
// the broker itself.
func TestDevOnRabbitMQ(t *testing.T) {
	t.Parallel()
	s := setup(t)
	q := s.queue()
	// A short replay: the shared broker's events log may be long.
	p := s.start("dev", "--addr", "127.0.0.1:0", "--rate", "20", "--queue", q, "--history", "10s", "--log-format", "json")

	base := devDashboard(t, p)
	line := devField(t, p, "broker")
	require.True(t, strings.HasPrefix(line, "RabbitMQ at amqp://"), line)
	require.NotContains(t, line, "not reachable")
	requireDevOutcomes(t, base, q)
	require.Positive(t, s.stats(q).Dead, "dead letters are in RabbitMQ's dead-letter queue")
	stopDev(t, p)
}

// TestDevMemoryFlag: --memory skips RabbitMQ even when it answers; --rate 0
// runs no producer.
func TestDevMemoryFlag(t *testing.T) {
	t.Parallel()
	s := setup(t)
	p := s.start("dev", "--memory", "--addr", "127.0.0.1:0", "--rate", "0", "--log-format", "json")
	base := devDashboard(t, p)
	require.Equal(t, "in-memory (--memory): nothing survives exit", devField(t, p, "broker"))
	require.Equal(t, "off (--rate 0)", devField(t, p, "producer"))
	code, body := get(t, base+"api/queues")
	require.Equal(t, http.StatusOK, code, body)
	stopDev(t, p)
}

// TestDevRefusesOpenAddressWithoutAuth: the dashboard's listen check applies.
func TestDevRefusesOpenAddressWithoutAuth(t *testing.T) {
	t.Parallel()
	s := &bundle{t: t, env: baseEnv()}
	requireOneLineError(t, s.run("dev", "--memory", "--addr", "0.0.0.0:0"), []string{"refusing to serve the dashboard without authentication"},
		[]string{"dev", "--memory", "--addr", "0.0.0.0:0"})
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// devField waits for the line of dev's start-up summary named name and
// returns its value.
func devField(t *testing.T, p *proc, name string) string {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + name + ` +(.+)$`)
	var value string
	require.Eventually(t, func() bool {
		m := re.FindStringSubmatch(p.stdout.String())
		if m == nil {
			return false
		}
		value = m[1]
		return true
	}, 15*time.Second, 20*time.Millisecond, "no %q line; stdout:\n%s\nstderr:\n%s", name, p.stdout, p.stderr)
	return value
}

// devDashboard waits for the dashboard URL dev prints and returns it.
func devDashboard(t *testing.T, p *proc) string {
	t.Helper()
	base := devField(t, p, "dashboard")
	require.Regexp(t, `^http://127\.0\.0\.1:\d+/$`, base)
	return base
}

// requireDevOutcomes polls the dashboard's JSON API until queue shows every
// outcome the demo producer promises: a delayed task, a success, a task that
// failed and then succeeded on a retry, and a dead letter (in the task list
// and in the broker's figures), with the worker consuming the queue.
func requireDevOutcomes(t *testing.T, base, queue string) {
	t.Helper()
	want := []string{"scheduled", "succeeded", "succeeded after a retry", "slow task succeeded", "dead", "dead letter counted", "consumer"}
	// The condition runs on another goroutine than the failure message.
	var mu sync.Mutex
	seen := map[string]bool{}
	var last string
	ok := assert.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		var tasks api.Tasks
		if err := fetchJSON(base+"api/tasks?limit=1000&queue="+queue, &tasks); err != nil {
			last = err.Error()
			return false
		}
		for _, task := range tasks.Tasks {
			if task.Queue != queue {
				last = fmt.Sprintf("task %s of queue %s listed under queue=%s", task.ID, task.Queue, queue)
				return false
			}
			switch {
			case task.State == api.StateScheduled:
				seen["scheduled"] = true
			case task.State == api.StateSucceeded && task.Kind == "demo.fail" && task.AttemptCount >= 2:
				seen["succeeded after a retry"] = true
			case task.State == api.StateSucceeded && task.Kind == "demo.sleep":
				seen["slow task succeeded"] = true
			case task.State == api.StateSucceeded:
				seen["succeeded"] = true
			case task.State == api.StateDead:
				seen["dead"] = true
			}
		}
		var q api.QueueDetail
		if err := fetchJSON(base+"api/queues/"+queue, &q); err != nil {
			last = err.Error()
			return false
		}
		last = fmt.Sprintf("%+v", q.Queue)
		seen["dead letter counted"] = seen["dead letter counted"] || q.Dead > 0
		seen["consumer"] = seen["consumer"] || q.Consumers > 0
		for _, w := range want {
			if !seen[w] {
				return false
			}
		}
		return true
	}, 25*time.Second, 200*time.Millisecond)
	if !ok {
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("dashboard never showed all of %v for queue %s; saw %v; last: %s", want, queue, seen, last)
	}

	var workers api.Workers
	require.NoError(t, fetchJSON(base+"api/workers", &workers))
	var mine []api.Worker
	for _, w := range workers.Workers {
		if _, ok := w.Queues[queue]; ok {
			mine = append(mine, w)
		}
	}
	require.Len(t, mine, 1, "one dev worker on %s: %+v", queue, workers.Workers)
	require.Equal(t, "online", mine[0].State)
}

// stopDev sends SIGINT and requires a clean stop: every part stopped, exit 0.
func stopDev(t *testing.T, p *proc) {
	t.Helper()
	p.signal(syscall.SIGINT)
	require.Equal(t, 0, p.wait(20*time.Second), "stderr:\n%s", p.stderr)
	for _, msg := range []string{"dev: producer stopped", "worker stopped", "dev: dashboard stopped", "dev: stopped"} {
		p.logLine(msg, time.Second)
	}
}

// fetchJSON GETs url and decodes its 200 response into v.
func fetchJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w: %s", url, err, body)
	}
	return nil
}
