package faults_test

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// Scenario 1: worker processes are killed with SIGKILL every couple of
// seconds while 20,000 tasks are enqueued and consumed. Nothing confirmed is
// lost; duplicates come only from deliveries a killed worker held
// unacknowledged, so there are at most prefetch of them per kill.
func TestWorkerSIGKILL(t *testing.T) {
	t.Parallel()
	x := setup(t, setupOpts{weight: 2})
	const (
		total    = 20000
		rate     = 800 // enqueues per second: the run lasts about 25 s
		workers  = 3
		prefetch = 16
		minKills = 5
	)
	wo := workerOpts{concurrency: 8, prefetch: prefetch, sleep: 10 * time.Millisecond}
	producer := x.spawn("producer", "produce", "-url", x.url, "-queue", x.queue, "-prefix", "s1-",
		"-n", strconv.Itoa(total), "-batch", "50", "-rate", strconv.Itoa(rate), "-timeout", "30s",
		"-ledger", x.path("ledger", ".rec"))
	live := make([]*proc, workers)
	for i := range live {
		live[i] = x.startWorker(wo)
	}

	// Kill a random worker every 1.5-2.5 s and start a replacement at once,
	// until the producer is done and the backlog is drained.
	kills := 0
	deadline := time.Now().Add(3 * time.Minute)
	for {
		time.Sleep(1500*time.Millisecond + rand.N(time.Second))
		done := !producer.alive() && x.stats().Ready == 0
		if done && kills >= minKills {
			break
		}
		if time.Now().After(deadline) {
			x.dumpLogs()
			t.Fatalf("run not finished after 3 minutes (%d kills)", kills)
		}
		i := rand.N(workers)
		live[i].kill(t)
		kills++
		live[i] = x.startWorker(wo)
	}
	if err := producer.err; err != nil {
		t.Fatalf("producer: %v\n%s", err, tail(producer.log, 20))
	}
	x.waitSettled(3*time.Minute, false)
	x.quiesce(wo)

	h := x.history(true)
	bound := prefetch * kills
	r := x.report("1. worker SIGKILL", fmt.Sprintf("%d SIGKILLs of %d worker processes (prefetch %d)", kills, workers, prefetch),
		h, fmt.Sprintf("duplicates bound prefetch×kills = %d", bound))
	if r.Confirmed != total {
		t.Errorf("confirmed %d of %d enqueues (no broker fault here: all should be)", r.Confirmed, total)
	}
	if r.Duplicated > bound {
		t.Errorf("duplicated %d > prefetch × kills = %d", r.Duplicated, bound)
	}
}

// quiesce stops every worker warmly and makes sure the work queue is empty,
// so that no redelivery is still pending (it would be a duplicate the
// history missed). Whatever is left is drained by one more worker.
func (x *bundle) quiesce(wo workerOpts) {
	x.t.Helper()
	for range 3 {
		x.stopWorkers()
		if x.stats().Ready == 0 {
			return
		}
		x.startWorker(wo)
		x.eventually(time.Minute, "work queue drained", func() bool { return x.stats().Ready == 0 })
	}
	x.t.Fatalf("work queue not empty after three drains")
}
