package jobs_test

// Tests only RabbitMQ can run: raw publishes from foreign clients, a broker
// restart, a cut connection.

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/broker/amqp"
	"github.com/warrenjobs/warren/broker/amqp/amqptest"
	"github.com/warrenjobs/warren/jobs"
)

func openAMQP(t *testing.T, url string) *amqp.Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := amqp.Open(ctx, amqp.Config{URL: url, Logger: quiet()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// Messages another client publishes straight to a work queue, broken in every
// way we could think of, are dead-lettered with a reason; the runner survives
// and keeps working.
func TestMalformedMessagesDeadLettered(t *testing.T) {
	t.Parallel()
	url := amqptest.URL(t)
	b := openAMQP(t, url)
	q := uniqueQueue(t, b)
	ctx := context.Background()
	require.NoError(t, b.Declare(ctx, q))

	conn, err := amqp091.Dial(url)
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	valid := amqp091.Table{"x-warren-version": int64(1), "x-warren-queue": q}
	publish := func(id, kind string, body []byte, headers amqp091.Table) {
		t.Helper()
		require.NoError(t, ch.PublishWithContext(ctx, "", "warren."+q, false, false, amqp091.Publishing{
			MessageId: id, Type: kind, Body: body, Headers: headers, DeliveryMode: 2, ContentType: "application/json",
		}))
	}
	publish("not-json", "test.shape", []byte("{{{not json"), valid)
	publish("no-headers", "test.shape", []byte(`{"n":1}`), nil)
	publish("unknown-kind", "who.knows", []byte(`{}`), valid)
	publish("wrong-types", "test.shape", []byte(`{"n":"seven"}`), valid)
	publish("bad-header-types", "test.shape", []byte(`{"n":1}`), amqp091.Table{"x-warren-version": "one", "x-warren-attempt": "many", "x-warren-timeout-ms": []any{1}})
	publish("huge", "test.shape", []byte(`{"n":1,"pad":"`+strings.Repeat("x", 2<<20)+`"}`), valid)
	// CC routes a copy to q2 at publish time; warren must not copy CC when it
	// republishes the message (here: to dead-letter it), or q2 gets a second.
	q2 := uniqueQueue(t, b)
	require.NoError(t, b.Declare(ctx, q2))
	publish("hostile", "test.shape", []byte(`{"n":-1}`), amqp091.Table{"x-warren-version": int64(1), "x-warren-max-retries": int64(0), "CC": []any{"warren." + q2}, "BCC": []any{"warren." + q2}})
	publish("future-version", "test.shape", []byte(`{"n":1}`), amqp091.Table{"x-warren-version": int64(99)})

	var good atomic.Int32
	w := jobs.NewWorkers()
	jobs.AddWorker(w, jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[shapeArgs]) error {
		if j.Args.N < 0 {
			return errors.New("negative")
		}
		good.Add(1)
		return nil
	}))
	startRunner(t, b, w, &jobs.RunnerConfig{Queues: map[string]int{q: 1}})

	want := map[string]string{
		"not-json":         "",
		"no-headers":       "malformed",
		"unknown-kind":     "unknown kind",
		"wrong-types":      "wrong shape",
		"bad-header-types": "malformed",
		"huge":             "payload too large",
		"future-version":   "malformed",
		"hostile":          "max retries exceeded",
	}
	dead := deadLetters(t, b, q, len(want), 20*time.Second)
	got := map[string]*broker.Message{}
	for _, d := range dead {
		got[d.ID] = d
	}
	for id, reason := range want {
		require.Contains(t, got, id)
		require.NotEmpty(t, got[id].DeadReason, id)
		require.Contains(t, got[id].DeadReason, reason, id)
	}
	require.Equal(t, []byte("{{{not json"), got["not-json"].Args, "raw body kept")
	require.EqualValues(t, 0, good.Load())
	s, err := b.Stats(ctx, q)
	require.NoError(t, err)
	require.Equal(t, 0, s.Ready)
	require.Equal(t, len(want), s.Dead)
	s2, err := b.Stats(ctx, q2)
	require.NoError(t, err)
	require.Equal(t, 1, s2.Ready, "CC/BCC not copied on republish")

	// Still working.
	_, err = newClient(t, b).Enqueue(ctx, shapeArgs{N: 2}, &jobs.EnqueueOpts{Queue: q})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return good.Load() == 1 }, 10*time.Second, 10*time.Millisecond)
}

// Queued and delayed tasks survive a kill -9 of the broker.
func TestTasksSurviveBrokerRestart(t *testing.T) {
	t.Parallel()
	node := amqptest.StartNode(t)
	b := openAMQP(t, node.URL())
	q := uniqueQueue(t, b)
	client := newClient(t, b)
	ctx := context.Background()
	_, err := client.Enqueue(ctx, echoArgs{Msg: "now"}, &jobs.EnqueueOpts{Queue: q})
	require.NoError(t, err)
	_, err = client.Enqueue(ctx, echoArgs{Msg: "delayed"}, &jobs.EnqueueOpts{Queue: q, Delay: 12 * time.Second})
	require.NoError(t, err)
	enqueued := time.Now()

	node.Kill(t)
	node.Start(t)

	type run struct {
		msg string
		at  time.Time
	}
	var seen record[run]
	w := jobs.NewWorkers()
	jobs.AddWorker(w, jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[echoArgs]) error {
		seen.add(run{j.Args.Msg, time.Now()})
		return nil
	}))
	b2 := openAMQP(t, node.URL())
	startRunner(t, b2, w, &jobs.RunnerConfig{Queues: map[string]int{q: 1}})
	require.Eventually(t, func() bool { return seen.len() == 2 }, 40*time.Second, 50*time.Millisecond)
	ran := map[string]time.Time{}
	for _, r := range seen.all() {
		ran[r.msg] = r.at
	}
	require.Contains(t, ran, "now")
	require.Contains(t, ran, "delayed")
	require.GreaterOrEqual(t, ran["delayed"].Sub(enqueued), 11*time.Second, "the delay survived the restart")
}

// A cut connection: the client fails within its deadline while the broker is
// unreachable and never reports an unconfirmed task as enqueued; client and
// runner resume by themselves, and every confirmed task runs.
func TestConnectionLossResumes(t *testing.T) {
	t.Parallel()
	url := amqptest.URL(t)
	proxy := amqptest.NewProxy(t, hostPort(t, url))
	b := openAMQP(t, proxy.URL(url))
	q := uniqueQueue(t, b)
	client := newClient(t, b)

	var seen record[string]
	w := jobs.NewWorkers()
	jobs.AddWorker(w, jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[echoArgs]) error {
		seen.add(j.Args.Msg)
		return nil
	}))
	startRunner(t, b, w, &jobs.RunnerConfig{Queues: map[string]int{q: 1}})

	var confirmed record[string]
	enqueue := func(msg string, timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		_, err := client.Enqueue(ctx, echoArgs{Msg: msg}, &jobs.EnqueueOpts{Queue: q})
		if err == nil {
			confirmed.add(msg)
		}
		return err
	}
	require.NoError(t, enqueue("before", 5*time.Second))
	require.Eventually(t, func() bool { return seen.len() == 1 }, 10*time.Second, 10*time.Millisecond)

	proxy.Blackhole()
	start := time.Now()
	err := enqueue("during", 2*time.Second)
	require.Error(t, err)
	require.Less(t, time.Since(start), 3*time.Second, "Enqueue returned within its deadline")
	proxy.Cut()
	proxy.Restore()

	// Keep enqueueing until the client is back; count only confirmed tasks.
	require.Eventually(t, func() bool { return enqueue("after", 2*time.Second) == nil }, 30*time.Second, 200*time.Millisecond)
	for i := 0; i < 20; i++ {
		require.NoError(t, enqueue("after", 5*time.Second))
	}
	require.Eventually(t, func() bool {
		return containsAll(seen.all(), confirmed.all())
	}, 30*time.Second, 50*time.Millisecond, "every confirmed task ran")
}

func containsAll(have, want []string) bool {
	count := map[string]int{}
	for _, h := range have {
		count[h]++
	}
	for _, w := range want {
		if count[w] == 0 {
			return false
		}
		count[w]--
	}
	return true
}

func hostPort(t *testing.T, url string) string {
	t.Helper()
	rest := url[strings.Index(url, "://")+3:]
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		rest = rest[at+1:]
	}
	if slash := strings.Index(rest, "/"); slash >= 0 {
		rest = rest[:slash]
	}
	if !strings.Contains(rest, ":") {
		rest += ":5672"
	}
	if rest == "" {
		t.Fatal(errors.New("no host in URL"))
	}
	return rest
}
