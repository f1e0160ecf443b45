package history

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/warrenjobs/warren/dashboard/api"
	"github.com/warrenjobs/warren/jobs"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

func enq(id, queue string, sec float64) jobs.Event {
	return jobs.Event{Type: jobs.EventEnqueued, Time: at(sec), TaskID: id, Kind: "k", Queue: queue, Args: json.RawMessage(`{"to":"a@example.com"}`)}
}

func step(typ jobs.EventType, id string, attempt int, sec float64, worker string) jobs.Event {
	return jobs.Event{Type: typ, Time: at(sec), TaskID: id, Kind: "k", Queue: "q", Attempt: attempt, Worker: worker}
}

func beat(id string, sec float64, queues ...string) jobs.Event {
	qs := map[string]int{}
	for _, q := range queues {
		qs[q] = 1
	}
	return jobs.Event{Type: jobs.EventHeartbeat, Time: at(sec), Worker: id,
		Status: &jobs.WorkerStatus{ID: id, Host: "h", PID: 7, Queues: qs, Concurrency: 4, StartedAt: at(0)}}
}

func TestLifecycleAnyOrder(t *testing.T) {
	t.Parallel()
	retrying := step(jobs.EventRetrying, "t1", 1, 3, "w1")
	retrying.Error, retrying.RunAt = "boom", at(60)
	dead := step(jobs.EventDead, "t1", 2, 62, "w1")
	dead.Error, dead.Stack = "max retries exceeded (1)", "goroutine 1 [running]"
	events := []jobs.Event{
		enq("t1", "q", 1),
		step(jobs.EventStarted, "t1", 1, 2, "w1"),
		retrying,
		step(jobs.EventStarted, "t1", 2, 61, "w1"),
		dead,
	}
	want := func(s *Store) {
		got, ok := s.Task("t1", at(63))
		require.True(t, ok)
		require.Equal(t, api.StateDead, got.State)
		require.Equal(t, 2, got.AttemptCount)
		require.Equal(t, at(1), got.EnqueuedAt)
		require.JSONEq(t, `{"to":"a@example.com"}`, string(got.Args))
		require.Len(t, got.Attempts, 2)
		require.Equal(t, "retrying", got.Attempts[0].Outcome)
		require.Equal(t, "boom", got.Attempts[0].Error)
		require.Equal(t, at(60), got.Attempts[0].RetryAt)
		require.Equal(t, "dead", got.Attempts[1].Outcome)
		require.Equal(t, "goroutine 1 [running]", got.Attempts[1].Stack)
		require.Equal(t, "max retries exceeded (1)", got.LastError)
	}
	// In order, reversed, and shuffled in many ways, the result is the same.
	inOrder := New(Limits{})
	inOrder.Apply(events)
	want(inOrder)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		shuffled := append([]jobs.Event(nil), events...)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		s := New(Limits{})
		for _, e := range shuffled {
			s.Apply([]jobs.Event{e})
		}
		want(s)
	}
}

func TestRequeuedDeadLetterRunsAgain(t *testing.T) {
	t.Parallel()
	s := New(Limits{})
	dead := step(jobs.EventDead, "t1", 1, 2, "w1")
	dead.Error = "boom"
	s.Apply([]jobs.Event{enq("t1", "q", 0), beat("w1", 0, "q"), step(jobs.EventStarted, "t1", 1, 1, "w1"), dead})
	requeue := enq("t1", "q", 3)
	requeue.Attempt = 1
	s.Apply([]jobs.Event{requeue})
	got, _ := s.Task("t1", at(4))
	require.Equal(t, api.StateQueued, got.State)
	require.Equal(t, at(0), got.EnqueuedAt, "the first enqueue time is kept")
	s.Apply([]jobs.Event{beat("w1", 4, "q"), step(jobs.EventStarted, "t1", 2, 4, "w1")})
	got, _ = s.Task("t1", at(5))
	require.Equal(t, api.StateActive, got.State)
	s.Apply([]jobs.Event{step(jobs.EventSucceeded, "t1", 2, 5, "w1")})
	got, _ = s.Task("t1", at(6))
	require.Equal(t, api.StateSucceeded, got.State)
	require.Equal(t, 2, got.AttemptCount)
	require.Empty(t, got.LastError, "a success clears the last error; the attempt keeps it")
}

func TestActiveTaskOfLostWorkerIsQueuedAgain(t *testing.T) {
	t.Parallel()
	s := New(Limits{WorkerOfflineAfter: 15 * time.Second, WorkerDropAfter: time.Minute})
	s.Apply([]jobs.Event{beat("w1", 0, "q"), enq("t1", "q", 0), step(jobs.EventStarted, "t1", 1, 1, "w1")})

	got, _ := s.Task("t1", at(10))
	require.Equal(t, api.StateActive, got.State)
	ws := s.Workers(at(10))
	require.Len(t, ws, 1)
	require.Equal(t, "online", ws[0].State)
	require.Equal(t, []string{"t1"}, ws[0].ActiveTasks)
	require.Equal(t, 1, s.Activity([]string{"q"}, at(10))["q"].InFlight)

	// No beat for 20 s: the worker is offline and its task is back in the queue.
	got, _ = s.Task("t1", at(20))
	require.Equal(t, api.StateQueued, got.State)
	require.Equal(t, "offline", s.Workers(at(20))[0].State)
	act := s.Activity([]string{"q"}, at(20))["q"]
	require.Zero(t, act.InFlight)
	require.True(t, act.HasOldest)
	require.Equal(t, 19*time.Second, act.OldestReady)

	// Past the drop time the worker is forgotten once events move on.
	require.Empty(t, s.Workers(at(62)))
	s.Apply([]jobs.Event{beat("w2", 70)})
	_, bytes := s.Size()
	require.Positive(t, bytes)
	require.Len(t, s.Workers(at(70)), 1)
}

func TestStoppingWorker(t *testing.T) {
	t.Parallel()
	s := New(Limits{})
	b := beat("w1", 0)
	b.Status.Stopping = true
	s.Apply([]jobs.Event{b})
	require.Equal(t, "stopping", s.Workers(at(1))[0].State, "one beat: no interval known yet")

	s.Apply([]jobs.Event{beat("w2", 0), beat("w2", 1)})
	last := beat("w2", 2)
	last.Status.Stopping = true
	s.Apply([]jobs.Event{last})
	state := func(sec float64) string {
		for _, w := range s.Workers(at(sec)) {
			if w.ID == "w2" {
				return w.State
			}
		}
		return ""
	}
	require.Equal(t, "stopping", state(3.5))
	require.Equal(t, "offline", state(4.5), "two beats missed after a stopping beat: it has stopped")
}

func TestEvictsFinishedFirstAndStaysBounded(t *testing.T) {
	t.Parallel()
	s := New(Limits{MaxTasks: 3})
	s.Apply([]jobs.Event{enq("open1", "q", 0), enq("done1", "q", 1), step(jobs.EventSucceeded, "done1", 1, 2, "w")})
	s.Apply([]jobs.Event{enq("open2", "q", 3), enq("open3", "q", 4)})
	n, _ := s.Size()
	require.Equal(t, 3, n)
	_, ok := s.Task("done1", at(5))
	require.False(t, ok, "the finished task goes first")
	for _, id := range []string{"open1", "open2", "open3"} {
		_, ok := s.Task(id, at(5))
		require.True(t, ok, id)
	}
	// Only unfinished tasks left: the least recently updated goes, and the
	// queue's oldest-ready figure becomes a lower bound.
	s.Apply([]jobs.Event{enq("open4", "q", 6)})
	_, ok = s.Task("open1", at(7))
	require.False(t, ok)
	require.True(t, s.Activity([]string{"q"}, at(7))["q"].AtLeast)
	s.ForgetWaiting("q")
	require.False(t, s.Activity([]string{"q"}, at(7))["q"].AtLeast)
	require.EqualValues(t, 2, s.Evicted())
}

func TestMemoryBoundedUnderLoad(t *testing.T) {
	t.Parallel()
	lim := Limits{MaxTasks: 500, MaxBytes: 256 << 10, MaxAttempts: 3}
	s := New(lim)
	bigStack := string(make([]byte, 100<<10)) // truncated to 32 KiB per attempt
	for i := range 5000 {
		id := fmt.Sprintf("t%d", i)
		batch := []jobs.Event{enq(id, "q", float64(i))}
		for a := 1; a <= 6; a++ {
			ev := step(jobs.EventRetrying, id, a, float64(i), "w")
			ev.Error, ev.Stack = "err", bigStack
			batch = append(batch, step(jobs.EventStarted, id, a, float64(i), "w"), ev)
		}
		s.Apply(batch)
		n, bytes := s.Size()
		require.LessOrEqual(t, n, lim.MaxTasks)
		require.LessOrEqual(t, bytes, lim.MaxBytes)
	}
	got, ok := s.Task("t4999", at(5000))
	require.True(t, ok, "the newest task is kept")
	require.Len(t, got.Attempts, 3, "only the latest attempts are kept")
	require.Equal(t, 3, got.AttemptsDropped)
	require.Equal(t, 4, got.Attempts[0].Number)
	require.LessOrEqual(t, len(got.Attempts[0].Stack), maxStackLen+32)
}

func TestFilters(t *testing.T) {
	t.Parallel()
	s := New(Limits{})
	failing := step(jobs.EventRetrying, "t-fail", 1, 3, "w")
	failing.Error, failing.RunAt = "SMTP Timeout talking to mx", at(100)
	other := enq("t-other", "other", 4)
	other.Kind = "report.build"
	other.Args = json.RawMessage(`{"title":"Quarterly"}`)
	later := enq("t-later", "q", 5)
	later.RunAt = at(500)
	s.Apply([]jobs.Event{
		enq("t-fail", "q", 1), step(jobs.EventStarted, "t-fail", 1, 2, "w"), failing,
		enq("t-ok", "q", 1), step(jobs.EventSucceeded, "t-ok", 1, 2, "w"),
		other, later,
	})
	now := at(10)
	ids := func(f Filter) []string {
		var out []string
		for _, t := range s.Tasks(f, now).Tasks {
			out = append(out, t.ID)
		}
		return out
	}
	require.Equal(t, []string{"t-later", "t-other", "t-fail", "t-ok"}, ids(Filter{}), "most recently updated first")
	require.Equal(t, []string{"t-fail"}, ids(Filter{State: api.StateFailed}))
	require.Equal(t, []string{"t-fail"}, ids(Filter{State: api.StateRetrying}))
	require.Equal(t, []string{"t-ok"}, ids(Filter{State: api.StateSucceeded}))
	require.Equal(t, []string{"t-later", "t-other"}, ids(Filter{State: api.StateQueued}), "queued includes scheduled")
	require.Equal(t, []string{"t-later"}, ids(Filter{State: api.StateScheduled}))
	require.Equal(t, []string{"t-other"}, ids(Filter{Queue: "other"}))
	require.Equal(t, []string{"t-other"}, ids(Filter{Kind: "report.build"}))
	require.Equal(t, []string{"t-fail"}, ids(Filter{Search: "smtp timeout"}), "search errors, any case")
	require.Equal(t, []string{"t-other"}, ids(Filter{Search: "quarterly"}), "search args")
	require.Equal(t, []string{"t-ok"}, ids(Filter{Search: "t-ok"}), "search IDs")
	require.Equal(t, []string{"t-later"}, ids(Filter{Limit: 1}))
	require.Equal(t, 4, s.Tasks(Filter{Limit: 1}, now).Matched)
	require.Equal(t, []string{"k", "report.build"}, s.Kinds())
	require.Equal(t, []string{"other", "q"}, s.Queues())
}

func TestCountersAndRates(t *testing.T) {
	t.Parallel()
	s := New(Limits{})
	var batch []jobs.Event
	for i := range 10 {
		id := fmt.Sprintf("t%d", i)
		batch = append(batch, enq(id, "q", 0), step(jobs.EventSucceeded, id, 1, 1, "w"))
	}
	batch = append(batch, step(jobs.EventDead, "x", 1, 61, "w"))
	old := enq("ancient", "q", -2*3600) // older than the window: not counted
	batch = append(batch, old)
	s.Apply(batch)

	now := at(90)
	h := s.Activity([]string{"q"}, now)["q"].History
	require.Len(t, h, 60)
	require.Equal(t, at(90).Truncate(time.Minute), h[59].Time)
	require.Equal(t, api.Minute{Time: t0, Enqueued: 10, Succeeded: 10}, h[58])
	require.Equal(t, 1, h[59].Failed)
	require.Equal(t, 1, h[59].Dead)
	total := 0
	for _, m := range h {
		total += m.Enqueued
	}
	require.Equal(t, 10, total)
	rates := s.Activity([]string{"q"}, now)["q"].Rates
	require.InDelta(t, 10/4.5, rates.EnqueuedPerMinute, 0.01)
	empty := EmptyHistory(now)
	require.Len(t, empty, 60)
	require.Equal(t, h[59].Time, empty[59].Time)
}

func TestDelayedAndOldestReady(t *testing.T) {
	t.Parallel()
	s := New(Limits{})
	scheduled := enq("later", "q", 0)
	scheduled.RunAt = at(300)
	retry := step(jobs.EventRetrying, "retry", 1, 5, "w")
	retry.RunAt = at(20)
	s.Apply([]jobs.Event{scheduled, enq("now", "q", 10), enq("retry", "q", 0), step(jobs.EventStarted, "retry", 1, 1, "w"), retry})
	a := s.Activity([]string{"q"}, at(15))["q"]
	require.Equal(t, 2, a.Delayed)
	require.Equal(t, 5*time.Second, a.OldestReady)
	a = s.Activity([]string{"q"}, at(30))["q"]
	require.Equal(t, 1, a.Delayed, "the retry is due now")
	require.Equal(t, 20*time.Second, a.OldestReady, "the task enqueued at 10 s")
}

func TestContainsFold(t *testing.T) {
	t.Parallel()
	require.True(t, containsFold("Hello World", "o w"))
	require.True(t, containsFold("HELLO", "hello"))
	require.False(t, containsFold("hell", "hello"))
	require.True(t, containsFold("x", ""))
}

func FuzzApply(f *testing.F) {
	f.Add([]byte(`[{"type":"enqueued","time":"2026-01-01T00:00:00Z","task_id":"a","queue":"q","args":{"x":1}},{"type":"started","task_id":"a","attempt":-3}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		events, err := jobs.DecodeEvents(data)
		if err != nil {
			return
		}
		s := New(Limits{MaxTasks: 10, MaxAttempts: 2})
		s.Apply(events)
		now := time.Now()
		for _, tk := range s.Tasks(Filter{}, now).Tasks {
			_, _ = s.Task(tk.ID, now)
		}
		_ = s.Workers(now)
		_ = s.Activity(s.Queues(), now)
	})
}
