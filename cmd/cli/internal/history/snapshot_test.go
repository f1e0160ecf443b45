package history

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/broker/memory"
	"github.com/warrenjobs/warren/jobs"
)

func TestSnapshotFoldsOutOfOrderEvents(t *testing.T) {
	t.Parallel()
	t0 := time.Now().Add(-time.Minute)
	s := &Snapshot{Tasks: map[string]*Task{}, Workers: map[string]*Worker{}, Queues: map[string]bool{},
		keepEvents: func(id string) bool { return id == "a" }}
	// The worker's batch (started, succeeded) lands before the client's (enqueued).
	s.Add(jobs.Event{Type: jobs.EventStarted, Time: t0.Add(time.Second), TaskID: "a", Kind: "k", Queue: "q", Attempt: 1, Worker: "w1"})
	s.Add(jobs.Event{Type: jobs.EventSucceeded, Time: t0.Add(2 * time.Second), TaskID: "a", Kind: "k", Queue: "q", Attempt: 1, Worker: "w1", Duration: time.Second})
	s.Add(jobs.Event{Type: jobs.EventEnqueued, Time: t0, TaskID: "a", Kind: "k", Queue: "q", Args: json.RawMessage(`{"x":1}`)})
	// Same instant: the later step wins.
	s.Add(jobs.Event{Type: jobs.EventStarted, Time: t0, TaskID: "b", Kind: "k", Queue: "q", Attempt: 1})
	s.Add(jobs.Event{Type: jobs.EventEnqueued, Time: t0, TaskID: "b", Kind: "k", Queue: "q"})
	// A delayed task, a ready one and a retrying one.
	s.Add(jobs.Event{Type: jobs.EventEnqueued, Time: t0, TaskID: "c", Kind: "k", Queue: "q", RunAt: t0.Add(time.Hour)})
	s.Add(jobs.Event{Type: jobs.EventEnqueued, Time: t0.Add(5 * time.Second), TaskID: "d", Kind: "k", Queue: "q"})
	s.Add(jobs.Event{Type: jobs.EventRetrying, Time: t0.Add(3 * time.Second), TaskID: "e", Kind: "k", Queue: "q2", RunAt: t0.Add(4 * time.Second)})
	s.Add(jobs.Event{Type: jobs.EventHeartbeat, Time: t0, Worker: "w1", Status: &jobs.WorkerStatus{ID: "w1", Queues: map[string]int{"q3": 1}}})
	s.Add(jobs.Event{Type: jobs.EventHeartbeat, Time: t0.Add(-time.Second), Worker: "w1", Status: &jobs.WorkerStatus{ID: "w1", Processed: 99}})

	a := s.Tasks["a"]
	require.Equal(t, jobs.EventSucceeded, a.State)
	require.Equal(t, t0, a.EnqueuedAt)
	require.Equal(t, `{"x":1}`, string(a.Args))
	require.Equal(t, time.Second, a.Duration)
	require.Equal(t, "w1", a.Worker)
	require.True(t, a.Finished())
	var types []jobs.EventType
	for _, e := range a.Events {
		types = append(types, e.Type)
	}
	require.Equal(t, []jobs.EventType{jobs.EventEnqueued, jobs.EventStarted, jobs.EventSucceeded}, types)
	require.Nil(t, s.Tasks["b"].Events, "events kept only for the asked task")
	require.Equal(t, jobs.EventStarted, s.Tasks["b"].State)

	now := t0.Add(10 * time.Second)
	f := s.Queue("q", now)
	require.Equal(t, 1, f.Running)
	require.Equal(t, 1, f.Delayed)
	require.Equal(t, t0.Add(5*time.Second), f.OldestReady)
	require.Equal(t, t0.Add(4*time.Second), s.Queue("q2", now).OldestReady)

	require.Equal(t, map[string]bool{"q": true, "q2": true, "q3": true}, s.Queues)
	require.Equal(t, int64(0), s.Workers["w1"].Status.Processed, "an older heartbeat does not replace a newer one")
	require.Equal(t, "running", s.Workers["w1"].State(t0.Add(10*time.Second), 5*time.Second))
	require.Equal(t, "lost", s.Workers["w1"].State(t0.Add(20*time.Second), 5*time.Second))

	sorted := s.SortedTasks()
	require.Equal(t, "d", sorted[0].ID)
}

func TestReplayStopsWhenCaughtUp(t *testing.T) {
	t.Parallel()
	b := memory.New(memory.Config{})
	t.Cleanup(func() { _ = b.Close() })
	ctx := context.Background()
	old, _ := json.Marshal([]jobs.Event{{Type: jobs.EventEnqueued, Time: time.Now(), TaskID: "1", Queue: "q"}})
	require.NoError(t, b.AppendEvents(ctx, old))
	require.NoError(t, b.AppendEvents(ctx, []byte("not json"))) // skipped

	// A writer that keeps appending must not keep the replay going.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				batch, _ := json.Marshal([]jobs.Event{{Type: jobs.EventEnqueued, Time: time.Now(), TaskID: "live", Queue: "q"}})
				_ = b.AppendEvents(ctx, batch)
			}
		}
	}()
	began := time.Now()
	snap, err := Load(ctx, b, time.Now().Add(-time.Hour), nil)
	require.NoError(t, err)
	require.Less(t, time.Since(began), 2*time.Second)
	require.Contains(t, snap.Tasks, "1")

	// An empty window ends after the first wait.
	empty := memory.New(memory.Config{})
	t.Cleanup(func() { _ = empty.Close() })
	began = time.Now()
	snap, err = Load(ctx, empty, time.Time{}, nil)
	require.NoError(t, err)
	require.Empty(t, snap.Tasks)
	require.Less(t, time.Since(began), 3*time.Second)
}

func TestNeedle(t *testing.T) {
	t.Parallel()
	require.Equal(t, `"emails"`, string(Needle("emails")))
	require.Equal(t, `"demo.fail"`, string(Needle("demo.fail")))
	require.Equal(t, `"0b6c7a52-3f5e-4c1e"`, string(Needle("0b6c7a52-3f5e-4c1e")))
	for _, s := range []string{"", `a"b`, `a\b`, "a<b", "a b", "é"} {
		require.Nil(t, Needle(s), s)
	}

	// Load decodes only the batches that contain the needle.
	b := memory.New(memory.Config{})
	t.Cleanup(func() { _ = b.Close() })
	ctx := context.Background()
	for _, q := range []string{"q1", "q2", "q1"} {
		batch, _ := json.Marshal([]jobs.Event{{Type: jobs.EventEnqueued, Time: time.Now(), TaskID: "t-" + q, Queue: q}})
		require.NoError(t, b.AppendEvents(ctx, batch))
	}
	snap, err := Load(ctx, b, time.Time{}, &Options{Needle: Needle("q2")})
	require.NoError(t, err)
	require.Equal(t, map[string]bool{"q2": true}, snap.Queues)
}

// slowLog delivers the events log with a pause after the first batch, as a
// loaded broker does.
type slowLog struct {
	*memory.Broker
	pause time.Duration
}

func (s slowLog) FollowEvents(ctx context.Context, since time.Time) (<-chan broker.EventBatch, error) {
	in, err := s.Broker.FollowEvents(ctx, since)
	if err != nil {
		return nil, err
	}
	out := make(chan broker.EventBatch)
	go func() {
		defer close(out)
		n := 0
		for b := range in {
			if n++; n == 2 {
				time.Sleep(s.pause)
			}
			select {
			case out <- b:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// TestReplayOutlastsAStall: a pause in delivery longer than the idle gap does
// not end the replay early; the mark it appended does.
func TestReplayOutlastsAStall(t *testing.T) {
	t.Parallel()
	mem := memory.New(memory.Config{})
	t.Cleanup(func() { _ = mem.Close() })
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		batch, _ := json.Marshal([]jobs.Event{{Type: jobs.EventEnqueued, Time: time.Now(), TaskID: id, Queue: "q"}})
		require.NoError(t, mem.AppendEvents(ctx, batch))
	}
	snap, err := Load(ctx, slowLog{mem, 3 * idleGap}, time.Time{}, nil)
	require.NoError(t, err)
	require.Len(t, snap.Tasks, 3)
}
