package faults_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/warrenjobs/warren/broker/amqp"
	"github.com/warrenjobs/warren/broker/amqp/amqptest"
)

// Scenario 2: the broker (a throwaway node) is killed with kill -9 and
// restarted, twice, while tasks are being enqueued and consumed. Every
// Enqueue either returned an error or its task completes.
func TestBrokerKill(t *testing.T) {
	t.Parallel()
	node := amqptest.StartNode(t)
	x := setup(t, setupOpts{url: node.URL()})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := x.ctl.Declare(ctx, x.queue); err != nil {
		t.Fatal(err)
	}
	pb := x.open(node.URL(), func(c *amqp.Config) { c.Heartbeat = 2 * time.Second })
	wo := workerOpts{concurrency: 8, prefetch: 16, sleep: 5 * time.Millisecond, heartbeat: 2 * time.Second}
	worker := x.startWorker(wo)
	x.eventually(time.Minute, "worker consuming", func() bool { return x.stats().Consumers == 1 })

	l := startLoad(x.producer(pb, 3*time.Second), "s2-", 4, 5, 20*time.Millisecond, retryOpts, retriedTenth)
	const kills = 2
	for range kills {
		time.Sleep(3 * time.Second)
		node.Kill(t)
		time.Sleep(time.Second)
		node.Start(t)
	}
	time.Sleep(3 * time.Second)
	l.stop()

	x.waitSettled(3*time.Minute, false)
	if !worker.alive() {
		t.Fatalf("the worker died:\n%s", tail(worker.log, 30))
	}
	x.quiesce(wo)
	h := x.history(true)
	r := x.report("2. broker kill -9", fmt.Sprintf("%d kill -9 and restarts of the broker during enqueue and consumption", kills),
		h, fmt.Sprintf("%d of %d enqueue calls failed (tasks errored: %d); %d tasks completed after a retry across the crashes",
			l.failed.Load(), l.calls.Load(), len(h.Errored), retried(h)))
	if l.failed.Load() == 0 {
		t.Errorf("no enqueue failed while the broker was down: the faults missed")
	}
	_ = r
}
