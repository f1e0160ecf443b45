package dashboard

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/dashboard/api"
	"github.com/warrenjobs/warren/dashboard/internal/history"
	"github.com/warrenjobs/warren/jobs"
)

// flakyFeed is a broker whose events feed ends after a few batches, then
// starts again from the last batch's time, repeating batches already sent
// (as a stream resumed by timestamp does).
type flakyFeed struct {
	broker.Broker // only FollowEvents is used

	mu      sync.Mutex
	batches []broker.EventBatch
	follows []time.Time // since of each call
}

func (f *flakyFeed) FollowEvents(ctx context.Context, since time.Time) (<-chan broker.EventBatch, error) {
	f.mu.Lock()
	call := len(f.follows)
	f.follows = append(f.follows, since)
	f.mu.Unlock()
	ch := make(chan broker.EventBatch)
	go func() {
		defer close(ch)
		sent := 0
		for _, b := range f.batches {
			if b.Time.Before(since) {
				continue
			}
			select {
			case ch <- b:
			case <-ctx.Done():
				return
			}
			if sent++; call == 0 && sent == 2 {
				return // the first feed breaks after two batches
			}
		}
		<-ctx.Done() // then follows, with nothing new
	}()
	return ch, nil
}

func batch(t *testing.T, offset int64, at time.Time, events ...jobs.Event) broker.EventBatch {
	data, err := json.Marshal(events)
	require.NoError(t, err)
	return broker.EventBatch{Offset: offset, Time: at, Data: data}
}

func TestFollowerResumesWithoutDuplicates(t *testing.T) {
	t.Parallel()
	now := time.Now().Truncate(time.Second)
	ev := func(typ jobs.EventType, id string, attempt int) jobs.Event {
		return jobs.Event{Type: typ, Time: now, TaskID: id, Kind: "k", Queue: "q", Attempt: attempt, Worker: "w"}
	}
	feed := &flakyFeed{batches: []broker.EventBatch{
		batch(t, 10, now, ev(jobs.EventEnqueued, "a", 0), ev(jobs.EventEnqueued, "b", 0)),
		batch(t, 11, now, ev(jobs.EventStarted, "a", 1)), // same second: a resume by time repeats 10 and 11
		batch(t, 12, now.Add(time.Second), ev(jobs.EventSucceeded, "a", 1)),
		batch(t, 13, now.Add(time.Second)),
	}}
	feed.batches[3].Data = []byte("not json")
	store := history.New(history.Limits{})
	f := &follower{broker: feed, store: store, log: slog.New(slog.DiscardHandler), replay: time.Hour}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	require.Eventually(t, func() bool { return f.applied.Load() == 3 && f.dropped.Load() == 1 }, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, f.caughtUp.Load, 10*time.Second, 10*time.Millisecond, "caught up once the feed is quiet")
	cancel()
	require.NoError(t, <-done)

	feed.mu.Lock()
	follows := append([]time.Time(nil), feed.follows...)
	feed.mu.Unlock()
	require.Len(t, follows, 2, "followed again once after the feed ended")
	require.Equal(t, now, follows[1], "from the last batch applied")

	h := store.Activity([]string{"q"}, now.Add(2*time.Second))["q"].History
	enq, ok := 0, 0
	for _, m := range h {
		enq, ok = enq+m.Enqueued, ok+m.Succeeded
	}
	require.Equal(t, 2, enq, "repeated batches are not counted twice")
	require.Equal(t, 1, ok)
	a, _ := store.Task("a", now.Add(2*time.Second))
	require.Equal(t, api.StateSucceeded, a.State)
}

func TestFollowerStopsWhenBrokerClosed(t *testing.T) {
	t.Parallel()
	f := &follower{broker: closedBroker{}, store: history.New(history.Limits{}), log: slog.New(slog.DiscardHandler), replay: time.Hour}
	err := f.Run(context.Background())
	require.ErrorIs(t, err, broker.ErrClosed)
}

type closedBroker struct{ broker.Broker }

func (closedBroker) FollowEvents(context.Context, time.Time) (<-chan broker.EventBatch, error) {
	return nil, broker.ErrClosed
}
