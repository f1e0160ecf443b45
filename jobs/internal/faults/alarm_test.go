package faults_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/warrenjobs/warren/broker/amqp/amqptest"
	"github.com/warrenjobs/warren/jobs"
	"github.com/warrenjobs/warren/jobs/internal/faults"
)

// Scenario 4: a memory alarm on the broker (a throwaway node) blocks every
// publishing connection. Enqueue fails within its deadline instead of
// hanging; a worker already running keeps consuming, and so does one started
// during the alarm; once the alarm clears, everything flows again.
func TestMemoryAlarm(t *testing.T) {
	t.Parallel()
	node := amqptest.StartNode(t)
	x := setup(t, setupOpts{url: node.URL()})
	const (
		backlog  = 2000
		poison   = 4 // fewer than the workers' 9 slots: each holds its outcome until the alarm clears
		deadline = 2 * time.Second
		slack    = time.Second
	)
	pb := x.open(node.URL())
	p := x.producer(pb, 30*time.Second)
	// The last tasks of the backlog are poison: they fail under the alarm,
	// when their retries cannot be published, and must still end
	// dead-lettered once it clears.
	if _, err := p.Enqueue(context.Background(), "s4-", tasks(0, backlog, func(t *faults.Task) {
		t.Fail = t.Seq >= backlog-poison
	}), &jobs.EnqueueOpts{RetryDelay: time.Second, MaxRetries: 1}); err != nil {
		t.Fatal(err)
	}
	// A slow worker (40 tasks/s) has a backlog of 50 s: left when the alarm
	// is on, however slow rabbitmqctl is.
	slow := x.startWorker(workerOpts{concurrency: 1, prefetch: 1, sleep: 25 * time.Millisecond, extra: shutdown5s})
	x.eventually(time.Minute, "slow worker consuming", func() bool { return x.countDone(slow) > 0 })

	node.SetMemoryAlarm(t, true)
	alarmOn := true
	t.Cleanup(func() { // on failure: clear it before the brokers close
		if alarmOn {
			node.SetMemoryAlarm(t, false)
		}
	})
	atAlarm := x.countDone(slow)
	if st := x.stats(); st.Ready == 0 {
		t.Fatalf("the backlog drained before the alarm was on (%d done): nothing left to show consumption under the alarm", atAlarm)
	}

	// Enqueue fails within its deadline; a few calls, one after another.
	p.Timeout = deadline
	const tries = 5
	slowest, failed := time.Duration(0), 0
	for i := range tries {
		began := time.Now()
		_, err := p.Enqueue(context.Background(), "s4-alarm-", tasks(i, 1, nil), nil)
		took := time.Since(began)
		slowest = max(slowest, took)
		if err != nil {
			failed++
		}
		t.Logf("enqueue under the alarm: %v after %s", err, took.Round(time.Millisecond))
	}
	if failed != tries {
		t.Errorf("%d of %d enqueues under a memory alarm succeeded", tries-failed, tries)
	}
	if slowest > deadline+slack {
		t.Errorf("an enqueue under the alarm took %s, past its %s deadline", slowest, deadline)
	}

	// Consumers keep working: the running worker goes on, and a worker
	// started now comes up and consumes too.
	fresh := x.startWorker(workerOpts{concurrency: 8, prefetch: 16, sleep: 5 * time.Millisecond, extra: shutdown5s})
	x.eventually(2*time.Minute, "backlog drained under the alarm", func() bool { return x.stats().Ready == 0 })
	x.eventually(time.Minute, "poison tasks attempted under the alarm", func() bool {
		return len(x.history(false).Attempts) >= backlog
	})
	underAlarm := x.countDone(nil) - atAlarm
	if n := x.countDone(slow); n <= atAlarm {
		t.Errorf("the running worker completed nothing under the alarm (%d before, %d after)", atAlarm, n)
	}
	if x.countDone(fresh) == 0 {
		t.Errorf("a worker started under the alarm completed nothing")
	}
	if x.logCount("worker", "broker blocked publishing") == 0 {
		t.Errorf("no worker saw its publishing connection blocked: the alarm missed")
	}

	// A worker stopped during the alarm still shuts down warmly and in
	// bounded time, though its publishing connection is blocked (RabbitMQ
	// does not read it, so it never sees connection.close).
	began := time.Now()
	if err := slow.stop(t, 45*time.Second); err != nil {
		t.Errorf("worker SIGTERMed under the alarm: %v\n%s", err, tail(slow.log, 20))
	}
	stopUnderAlarm := time.Since(began)
	t.Logf("worker SIGTERMed under the alarm exited in %s", stopUnderAlarm.Round(time.Millisecond))

	// After the alarm, everything flows.
	node.SetMemoryAlarm(t, false)
	alarmOn = false
	p.Timeout = 30 * time.Second
	if _, err := p.Enqueue(context.Background(), "s4-after-", tasks(0, 500, nil), nil); err != nil {
		t.Fatalf("enqueue after the alarm: %v", err)
	}
	x.waitSettled(2*time.Minute, true)
	x.stopWorkers()
	h := x.history(true)
	for id, m := range h.Dead {
		if m.Attempt != 2 || !strings.Contains(m.DeadReason, "max retries exceeded") {
			t.Errorf("dead letter %s: attempt %d, reason %q; want attempt 2, max retries exceeded", id, m.Attempt, m.DeadReason)
		}
	}
	if len(h.Dead) != poison {
		t.Errorf("%d dead letters, want the %d poison tasks", len(h.Dead), poison)
	}
	x.report("4. memory alarm", fmt.Sprintf("memory alarm raised during enqueue and consumption (%d tasks failing under it), then cleared", poison),
		h, fmt.Sprintf("%d/%d enqueues under the alarm failed, slowest %s (deadline %s); %d tasks completed under the alarm; a worker SIGTERMed under it exited 0 in %s",
			failed, tries, slowest.Round(time.Millisecond), deadline, underAlarm, stopUnderAlarm.Round(100*time.Millisecond)))
}

// countDone counts the tasks completed by the worker process p (nil: by
// every process).
func (x *bundle) countDone(p *proc) int {
	x.t.Helper()
	entries, err := faults.ReadHistory(x.dir)
	if err != nil {
		x.t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if e.Op == faults.OpDone && (p == nil || e.PID == p.pid()) {
			n++
		}
	}
	return n
}

// shutdown5s keeps a warm shutdown short: a task waiting for the alarm to
// clear holds its slot until the shutdown timeout.
var shutdown5s = []string{"-shutdown-timeout", "5s"}
