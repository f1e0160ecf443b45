package faults_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/warrenjobs/warren/jobs/internal/faults"
)

// Scenario 8: workers get SIGTERM while tasks are running (some for 1.5 s)
// and more are prefetched; each is replaced at once. A warm shutdown lets the
// running tasks finish and hands the prefetched ones back: nothing is lost,
// nothing runs twice, and every worker exits with status 0.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	x := setup(t, setupOpts{})
	const (
		n       = 3000
		workers = 2
		rounds  = 6
	)
	p := x.producer(x.ctl, 30*time.Second)
	for first := 0; first < n; first += 500 {
		if _, err := p.Enqueue(context.Background(), "s8-", tasks(first, 500, func(t *faults.Task) {
			t.SleepMS = 50
			if t.Seq%40 == 0 {
				t.SleepMS = 1500 // running across a SIGTERM
			}
		}), nil); err != nil {
			t.Fatal(err)
		}
	}
	wo := workerOpts{concurrency: 8, prefetch: 32} // more prefetched than running
	live := make([]*proc, workers)
	for i := range live {
		live[i] = x.startWorker(wo)
	}
	stopped := 0
	for i := range rounds {
		time.Sleep(1500 * time.Millisecond)
		if x.stats().Ready == 0 {
			break
		}
		w := live[i%workers]
		began := time.Now()
		if err := w.stop(t, 45*time.Second); err != nil {
			t.Errorf("worker pid %d: SIGTERM: %v\n%s", w.pid(), err, tail(w.log, 20))
		}
		stopped++
		t.Logf("worker pid %d stopped warmly in %s", w.pid(), time.Since(began).Round(time.Millisecond))
		live[i%workers] = x.startWorker(wo)
	}
	if stopped < 3 {
		t.Errorf("only %d warm shutdowns happened before the queue drained", stopped)
	}
	x.waitSettled(2*time.Minute, false)
	x.quiesce(wo)
	r := x.report("8. graceful shutdown", fmt.Sprintf("%d SIGTERMs to workers with tasks running and prefetched", stopped+workers),
		x.history(true), "every worker exited with status 0")
	if r.Duplicated != 0 {
		t.Errorf("%d tasks ran twice across warm shutdowns: %v", r.Duplicated, r.DuplicatedTasks)
	}
}
