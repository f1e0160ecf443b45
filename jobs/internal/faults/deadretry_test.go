package faults_test

import (
	"context"
	"fmt"
	neturl "net/url"
	"sync"
	"testing"
	"time"

	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/warrenjobs/warren/broker/amqp"
	"github.com/warrenjobs/warren/broker/amqp/amqptest"
	"github.com/warrenjobs/warren/jobs"
	"github.com/warrenjobs/warren/jobs/internal/faults"
)

// deadLetters fills the bundle's dead-letter queue with n tasks: each fails
// its first attempt with SkipRetry (and succeeds on any later one, so a
// retried dead letter completes). No worker runs afterwards.
func (x *bundle) deadLetters(prefix string, n int) {
	x.t.Helper()
	p := x.producer(x.ctl, 30*time.Second)
	for first := 0; first < n; first += 500 {
		if _, err := p.Enqueue(context.Background(), prefix, tasks(first, min(500, n-first), func(t *faults.Task) {
			t.FailFirst = true
		}), &jobs.EnqueueOpts{MaxRetries: jobs.NoRetries}); err != nil {
			x.t.Fatal(err)
		}
	}
	x.startWorker(workerOpts{concurrency: 16, prefetch: 64})
	x.eventually(2*time.Minute, fmt.Sprintf("%d dead letters", n), func() bool { return x.stats().Dead == n })
	x.stopWorkers()
	x.t.Logf("%d dead letters made in %s", n, time.Since(x.began).Round(100*time.Millisecond))
}

// Scenario 7a: two operators retry all dead letters of a queue at the same
// time, on separate connections. Each dead letter is moved once: every task
// runs exactly once, none is left behind.
func TestDeadRetryRace(t *testing.T) {
	t.Parallel()
	x := setup(t, setupOpts{})
	const n = 2000
	x.deadLetters("s7a-", n)

	ops := []*amqp.Broker{x.open(x.url), x.open(x.url)}
	moved := make([]int, len(ops))
	errs := make([]error, len(ops))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, op := range ops {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			<-start
			moved[i], errs[i] = op.RetryDead(ctx, x.queue, nil)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("operator %d: RetryDead: %v", i+1, err)
		}
	}
	t.Logf("operator 1 moved %d, operator 2 moved %d", moved[0], moved[1])

	x.startWorker(workerOpts{concurrency: 16, prefetch: 64})
	x.eventually(2*time.Minute, "every retried task done", func() bool { return len(x.history(false).Runs) >= n })
	x.quiesce(workerOpts{concurrency: 16, prefetch: 64})
	h := x.history(true)
	r := x.report("7a. dead-letter retry race", fmt.Sprintf("2 concurrent RetryDead(all) of %d dead letters on separate connections", n),
		h, fmt.Sprintf("moved %d + %d; %d left dead", moved[0], moved[1], len(h.Dead)))
	if moved[0]+moved[1] != n {
		t.Errorf("moved %d + %d, want %d in all", moved[0], moved[1], n)
	}
	if len(h.Dead) != 0 {
		t.Errorf("%d dead letters left after both retries", len(h.Dead))
	}
	if r.Duplicated != 0 {
		t.Errorf("%d duplicate runs: a dead letter was moved twice", r.Duplicated)
	}
}

// Scenario 7b: the operator's connection dies in the middle of RetryDead of
// thousands of dead letters (as when the operator's process crashes):
// whatever happened between republishing and removing, each task is then in
// its queue or its dead-letter queue, never in neither. A second, healthy
// RetryDead then brings every task home.
func TestDeadRetryCrash(t *testing.T) {
	t.Parallel()
	x := setup(t, setupOpts{})
	const n = 3000
	x.deadLetters("s7b-", n)
	proxy, done := x.retryDeadVia(x.url)
	// As soon as the first republished dead letters show in the work queue,
	// freeze the operator's connections (black-hole: RetryDead stops where it
	// is, however fast the machine), then cut them, as a crash would.
	watchFor(t, x.url, "warren."+x.queue, 100, time.Minute)
	proxy.Blackhole()
	time.Sleep(200 * time.Millisecond)
	proxy.Cut()
	proxy.Restore()
	x.afterRetryCrash("7b. dead-letter retry, operator crash", fmt.Sprintf("operator connection cut mid-RetryDead of %d dead letters", n), n, <-done)
}

// Scenario 7c: the broker (a throwaway node) is killed with kill -9 in the
// middle of RetryDead, and restarted. The same holds: each task in its queue
// or its dead-letter queue, never neither.
func TestDeadRetryBrokerCrash(t *testing.T) {
	t.Parallel()
	node := amqptest.StartNode(t)
	x := setup(t, setupOpts{url: node.URL()})
	const n = 3000
	x.deadLetters("s7c-", n)
	proxy, done := x.retryDeadVia(node.URL())
	// Freeze the operator mid-way, so that the broker dies with the
	// operation half done however fast the machine.
	watchFor(t, x.url, "warren."+x.queue, 100, time.Minute)
	proxy.Blackhole()
	node.Kill(t)
	proxy.Cut()
	proxy.Restore()
	node.Start(t)
	x.afterRetryCrash("7c. dead-letter retry, broker crash", fmt.Sprintf("broker kill -9 mid-RetryDead of %d dead letters", n), n, <-done)
}

type retryResult struct {
	moved int
	err   error
}

// retryDeadVia starts RetryDead of every dead letter by an operator reaching
// the broker at url through a proxy the test can break.
func (x *bundle) retryDeadVia(url string) (*amqptest.Proxy, <-chan retryResult) {
	x.t.Helper()
	u, err := neturl.Parse(url)
	if err != nil {
		x.t.Fatal(err)
	}
	proxy := amqptest.NewProxy(x.t, u.Host)
	op := x.open(proxy.URL(url), func(c *amqp.Config) { c.Heartbeat, c.DialTimeout = time.Second, 2*time.Second })
	done := make(chan retryResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		moved, err := op.RetryDead(ctx, x.queue, nil)
		done <- retryResult{moved, err}
	}()
	return proxy, done
}

// afterRetryCrash checks the state a crash mid-RetryDead left (every task
// done once its queue is drained, or still dead), then retries the rest and
// reports.
func (x *bundle) afterRetryCrash(scenario, injected string, n int, res retryResult) {
	t := x.t
	t.Helper()
	t.Logf("RetryDead interrupted after moving %d: %v", res.moved, res.err)
	if res.err == nil {
		t.Fatalf("RetryDead returned nil (moved %d): the fault missed it", res.moved)
	}
	wo := workerOpts{concurrency: 16, prefetch: 64}
	x.startWorker(wo)
	x.eventually(2*time.Minute, "work queue drained", func() bool { return x.stats().Ready == 0 })
	x.quiesce(wo)
	h := x.history(true)
	after := faults.Check(h)
	both := 0
	for id := range h.Dead {
		if h.Runs[id] > 0 {
			both++
		}
	}
	t.Logf("after the crash: %d done, %d still dead, %d in both (republished, not removed)", after.Executed, len(h.Dead), both)
	if len(after.Lost) > 0 {
		t.Errorf("after the crash, %d tasks are neither in their queue nor dead-lettered: %s", len(after.Lost), after)
	}

	// A healthy retry brings the rest home.
	var again int
	x.eventually(time.Minute, "second RetryDead", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		var err error
		again, err = x.ctl.RetryDead(ctx, x.queue, nil)
		if err != nil {
			t.Logf("second RetryDead: %v", err)
		}
		return err == nil
	})
	x.startWorker(wo)
	x.eventually(2*time.Minute, "every task done", func() bool { return len(x.history(false).Runs) >= n })
	x.quiesce(wo)
	h = x.history(true)
	r := x.report(scenario, injected, h, fmt.Sprintf("interrupted after %d moved; %d then in both queue and DLQ; second RetryDead moved %d", res.moved, both, again))
	if len(h.Dead) != 0 {
		t.Errorf("%d dead letters left after the second retry", len(h.Dead))
	}
	if r.Duplicated > both {
		t.Errorf("%d duplicate runs, more than the %d tasks found in both places", r.Duplicated, both)
	}
}

// watchFor polls the message count of a RabbitMQ queue on a raw channel of
// its own, every millisecond or so, until it reaches n.
func watchFor(t *testing.T, url, queue string, n int, within time.Duration) {
	t.Helper()
	conn, err := amqp091.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(within)
	for {
		q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
		if err != nil {
			t.Fatalf("watch %s: %v", queue, err)
		}
		if q.Messages >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s, %s holds %d messages, want %d", within, queue, q.Messages, n)
		}
		time.Sleep(time.Millisecond)
	}
}
