package faults_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/warrenjobs/warren/jobs"
	"github.com/warrenjobs/warren/jobs/internal/faults"
)

// Scenario 5: 1% of the traffic is poison — half the tasks always fail, half
// always panic. Each is dead-lettered after exactly its retries (MaxRetries 2:
// three attempts, 1 s apart), with its error and, for panics, its stack. The
// healthy tasks keep flowing at ≥ 90% of a baseline measured side by side in
// the same test: two identical workers drain two identical backlogs at the
// same time, one with poison in it, so both see the same machine load.
func TestPoisonAndPanic(t *testing.T) {
	t.Parallel()
	x := setup(t, setupOpts{weight: 2})
	base := x.sibling()
	const (
		n          = 4000
		every      = 100 // one poison task in every
		maxRetries = 2
		minRatio   = 0.9
	)
	poisonous := func(seq int) (fail, panics bool) {
		switch seq % (2 * every) {
		case 0:
			return true, false
		case every:
			return false, true
		}
		return false, false
	}
	opts := &jobs.EnqueueOpts{RetryDelay: time.Second, MaxRetries: maxRetries}
	pp := x.producer(x.ctl, 30*time.Second)
	bp := base.producer(x.ctl, 30*time.Second)
	for first := 0; first < n; first += 500 {
		if _, err := bp.Enqueue(context.Background(), "s5-base-", tasks(first, 500, nil), opts); err != nil {
			t.Fatal(err)
		}
		if _, err := pp.Enqueue(context.Background(), "s5-", tasks(first, 500, func(t *faults.Task) {
			t.Fail, t.Panic = poisonous(t.Seq)
		}), opts); err != nil {
			t.Fatal(err)
		}
	}
	poison := n / every
	healthy := n - poison

	// Both workers drain at once; progress is sampled until either queue's
	// healthy tasks are all done, and the rates compared over the window in
	// which both were running.
	wo := workerOpts{concurrency: 8, prefetch: 16, sleep: 10 * time.Millisecond}
	x.startWorker(wo)
	base.startWorker(wo)
	type sample struct {
		at         time.Time
		base, pois int
	}
	var first, last sample
	deadline := time.Now().Add(3 * time.Minute)
	for {
		s := sample{time.Now(), base.countDone(nil), x.countDone(nil)}
		if first.at.IsZero() && s.base > 0 && s.pois > 0 {
			first = s
		}
		if s.base >= n || s.pois >= healthy {
			last = s
			break
		}
		if time.Now().After(deadline) {
			x.dumpLogs()
			t.Fatalf("not drained after 3 minutes: baseline %d/%d, with poison %d/%d", s.base, n, s.pois, healthy)
		}
		time.Sleep(100 * time.Millisecond)
	}
	window := last.at.Sub(first.at).Seconds()
	if first.at.IsZero() || window < 1 {
		t.Fatalf("measurement window %.2fs too short to compare rates", window)
	}
	baseRate := float64(last.base-first.base) / window
	poisRate := float64(last.pois-first.pois) / window
	ratio := poisRate / baseRate
	t.Logf("over %.1fs: baseline %.0f tasks/s, with 1%% poison %.0f healthy tasks/s (ratio %.2f)", window, baseRate, poisRate, ratio)

	x.waitSettled(2*time.Minute, true)
	base.waitSettled(2*time.Minute, true)
	h := x.history(true)

	// Each poison task: dead-lettered after exactly 1+maxRetries attempts.
	deadCount := 0
	for id, m := range h.Dead {
		deadCount++
		var seq int
		fmt.Sscanf(strings.TrimPrefix(id, "s5-"), "%d", &seq)
		fail, panics := poisonous(seq)
		switch {
		case !fail && !panics:
			t.Errorf("healthy task %s dead-lettered: %s", id, m.DeadReason)
			continue
		case m.Attempt != 1+maxRetries:
			t.Errorf("task %s dead-lettered with Attempt %d, want %d", id, m.Attempt, 1+maxRetries)
		case h.Attempts[id] != 1+maxRetries:
			t.Errorf("task %s ran %d attempts, want %d", id, h.Attempts[id], 1+maxRetries)
		case !strings.Contains(m.DeadReason, "max retries exceeded"):
			t.Errorf("task %s dead reason %q", id, m.DeadReason)
		case m.LastError == "":
			t.Errorf("task %s dead-lettered without its last error", id)
		case panics && !strings.Contains(m.Stack, "TaskWorker"):
			t.Errorf("panicking task %s dead-lettered without the panic's stack: %q", id, m.Stack)
		}
	}
	if deadCount != poison {
		t.Errorf("%d dead letters, want the %d poison tasks", deadCount, poison)
	}
	if len(base.dead()) != 0 {
		t.Errorf("the baseline queue has dead letters")
	}
	x.stopWorkers()
	base.stopWorkers()

	bh := base.history(true)
	all := faults.NewHistory()
	merge(all, h)
	merge(all, bh)
	x.report("5. poison and panic", fmt.Sprintf("%d poison tasks (%d always fail, %d always panic) in %d, MaxRetries %d",
		poison, poison/2, poison-poison/2, n, maxRetries),
		all, fmt.Sprintf("%d dead-lettered after exactly %d attempts; healthy rate %.0f/s vs baseline %.0f/s (%.0f%%)",
			deadCount, 1+maxRetries, poisRate, baseRate, 100*ratio))
	if ratio < minRatio {
		t.Errorf("healthy tasks flowed at %.0f%% of the baseline rate, want ≥ %.0f%%", 100*ratio, 100*minRatio)
	}
}

// sibling returns a bundle on the same broker and connection with a queue
// and history of its own, sharing x's budget.
func (x *bundle) sibling() *bundle {
	x.t.Helper()
	s := &bundle{t: x.t, url: x.url, ctl: x.ctl, began: x.began, dir: x.t.TempDir(),
		queue: x.queue + "b"}
	q, ctl := s.queue, x.ctl
	x.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = ctl.DeleteQueue(ctx, q)
	})
	x.t.Cleanup(s.reapProcs)
	return s
}

func merge(dst, src *faults.History) {
	for id := range src.Confirmed {
		dst.Confirmed[id] = true
	}
	for id := range src.Errored {
		dst.Errored[id] = true
	}
	for id, n := range src.Runs {
		dst.Runs[id] += n
	}
	for id, n := range src.Attempts {
		dst.Attempts[id] += n
	}
	for id, m := range src.Dead {
		dst.Dead[id] = m
	}
}
