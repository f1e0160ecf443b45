package jobs

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/warrenjobs/warren/broker"
)

// appendRecorder is a broker that keeps the batches AppendEvents receives.
type appendRecorder struct {
	broker.Broker
	mu     sync.Mutex
	events []Event
}

func (a *appendRecorder) AppendEvents(_ context.Context, batch []byte) error {
	events, err := DecodeEvents(batch)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.events = append(a.events, events...)
	a.mu.Unlock()
	return nil
}

func (a *appendRecorder) logged() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, e := range a.events {
		out = append(out, e.TaskID+" "+string(e.Type))
	}
	return out
}

// TestEventLogLeavesOutStartedWhenTheOutcomeFollows: an attempt that ends
// before its "started" event was flushed is logged by its outcome alone
// (which carries the start as time less duration); one that ends after the
// flush keeps both; a different attempt, a different worker or an outcome
// without a run time never supersede; OnEvent sees every event.
func TestEventLogLeavesOutStartedWhenTheOutcomeFollows(t *testing.T) {
	sink := &appendRecorder{}
	var seen []string
	l := newEventLog(sink, time.Hour, nil, func(e Event) { seen = append(seen, e.TaskID+" "+string(e.Type)) })
	now := time.Now()
	ev := func(id string, typ EventType, attempt int, worker string, d time.Duration) Event {
		return Event{Type: typ, Time: now, TaskID: id, Kind: "k", Queue: "q", Attempt: attempt, Worker: worker, Duration: d}
	}
	l.Start()
	l.emit(ev("fast", EventStarted, 1, "w1", 0))
	l.emit(ev("slow", EventStarted, 1, "w1", 0))
	l.emit(ev("retried", EventStarted, 1, "w1", 0))
	l.emit(ev("fast", EventSucceeded, 1, "w1", time.Millisecond))
	l.emit(ev("retried", EventRetrying, 1, "w1", time.Millisecond))
	l.emit(ev("retried", EventStarted, 2, "w1", 0))
	l.emit(ev("other", EventStarted, 1, "w1", 0))
	l.emit(ev("other", EventSucceeded, 2, "w1", time.Millisecond)) // not this attempt
	l.emit(ev("moved", EventStarted, 1, "w1", 0))
	l.emit(ev("moved", EventSucceeded, 1, "w2", time.Millisecond)) // another worker
	l.emit(ev("instant", EventStarted, 1, "w1", 0))
	l.emit(ev("instant", EventDead, 1, "w1", 0)) // no run time to derive a start from
	l.Stop(context.Background())                 // flushes

	// "slow2" ends after its start was flushed: both stay. The index of its
	// started event must not survive the flush ("next" takes its place).
	l2 := newEventLog(sink, 5*time.Millisecond, nil, nil)
	l2.Start()
	l2.emit(ev("slow2", EventStarted, 1, "w1", 0))
	deadline := time.Now().Add(5 * time.Second)
	for len(sink.logged()) < 11 {
		if time.Now().After(deadline) {
			t.Fatal("the batcher never flushed")
		}
		time.Sleep(time.Millisecond)
	}
	l2.emit(ev("next", EventStarted, 1, "w1", 0))
	l2.emit(ev("slow2", EventSucceeded, 1, "w1", time.Second))
	l2.Stop(context.Background())

	want := []string{
		"slow started", "fast succeeded", "retried retrying", "retried started",
		"other started", "other succeeded", "moved started", "moved succeeded",
		"instant started", "instant dead", "slow2 started", "next started", "slow2 succeeded",
	}
	got := sink.logged()
	if len(got) != len(want) {
		t.Fatalf("logged %q,\nwant %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("logged %q,\nwant %q", got, want)
		}
	}
	if len(seen) != 12 {
		t.Errorf("OnEvent saw %d events, want all 12: %q", len(seen), seen)
	}
}
