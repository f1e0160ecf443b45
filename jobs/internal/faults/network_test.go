package faults_test

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/warrenjobs/warren/broker/amqp"
	"github.com/warrenjobs/warren/broker/amqp/amqptest"
)

// Scenario 3: every TCP connection of the producer and the worker is cut,
// then black-holed for longer than the heartbeat timeout, then cut again,
// all through a proxy in front of the broker. Every Enqueue returns within
// its context deadline, and the same worker process resumes consuming by
// itself.
func TestNetworkCutAndBlackhole(t *testing.T) {
	t.Parallel()
	x := setup(t, setupOpts{})
	u, err := url.Parse(x.url)
	if err != nil {
		t.Fatal(err)
	}
	proxy := amqptest.NewProxy(t, u.Host)
	const (
		heartbeat = time.Second
		deadline  = 2 * time.Second
		blackhole = 6 * time.Second // both ends give up after 1.5-2 heartbeats
		// slack for a loaded 2-core machine running -race: a call must return
		// at its deadline, give or take scheduling.
		slack = time.Second
	)
	pb := x.open(proxy.URL(x.url), func(c *amqp.Config) {
		c.Heartbeat, c.DialTimeout, c.ReconnectInterval = heartbeat, 2*heartbeat, 200*time.Millisecond
	})
	wo := workerOpts{url: proxy.URL(x.url), concurrency: 8, prefetch: 16, sleep: 5 * time.Millisecond, heartbeat: heartbeat}
	worker := x.startWorker(wo)
	x.eventually(time.Minute, "worker consuming", func() bool { return x.stats().Consumers == 1 })

	l := startLoad(x.producer(pb, deadline), "s3-", 4, 5, 20*time.Millisecond, retryOpts, retriedTenth)
	time.Sleep(2 * time.Second)
	proxy.Cut()
	time.Sleep(3 * time.Second)
	proxy.Blackhole()
	time.Sleep(blackhole)
	proxy.Restore()
	time.Sleep(3 * time.Second)
	proxy.Cut()
	time.Sleep(3 * time.Second)
	l.stop()

	// The worker was never restarted: the tasks confirmed after the faults
	// completing proves it resumed by itself.
	x.waitSettled(2*time.Minute, false)
	if !worker.alive() {
		t.Fatalf("the worker died:\n%s", tail(worker.log, 30))
	}
	if n := x.logCount("worker", "connection lost"); n == 0 {
		t.Errorf("the worker never lost its connections: the faults missed")
	}
	x.stopWorkers()
	if st := x.stats(); st.Ready != 0 {
		x.quiesce(wo)
	}
	h := x.history(true)
	x.report("3. network cut, blackhole", fmt.Sprintf("2 cuts of every connection, 1 blackhole of %s (heartbeat %s)", blackhole, heartbeat),
		h, fmt.Sprintf("%d of %d enqueue calls failed; slowest call %s (deadline %s); %d tasks completed after a retry",
			l.failed.Load(), l.calls.Load(), l.slowestCall().Round(time.Millisecond), deadline, retried(h)))
	if l.slowestCall() > deadline+slack {
		t.Errorf("an Enqueue took %s, past its %s deadline", l.slowestCall(), deadline)
	}
	if l.failed.Load() == 0 {
		t.Errorf("no enqueue failed during the faults: the faults missed")
	}
}
