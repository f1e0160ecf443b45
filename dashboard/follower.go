package dashboard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/dashboard/internal/history"
	"github.com/warrenjobs/warren/jobs"
)

// follower reads the events log into the history store: first the retained
// window (the replay), then new batches as they are appended. When the
// broker's feed ends early (connection loss) it follows again from the last
// batch it applied, skipping batches it already has by their offset.
type follower struct {
	broker broker.Broker
	store  *history.Store
	log    *slog.Logger
	replay time.Duration

	caughtUp atomic.Bool
	running  atomic.Bool
	applied  atomic.Int64 // batches applied
	dropped  atomic.Int64 // batches that did not decode
}

// Follow-again backoff bounds, and how quiet the feed must be, or how fresh
// its batches, for the replay to count as finished.
const (
	followRetryMin = 250 * time.Millisecond
	followRetryMax = 15 * time.Second
	caughtUpQuiet  = 750 * time.Millisecond
	caughtUpFresh  = 2 * time.Second
)

// Run follows events until ctx is done, and returns nil then; or until the
// broker is closed, and returns an error wrapping broker.ErrClosed.
func (f *follower) Run(ctx context.Context) error {
	if !f.running.CompareAndSwap(false, true) {
		return errAlreadyRunning
	}
	defer f.running.Store(false)
	since := time.Now().Add(-f.replay)
	var lastOffset int64 = -1
	backoff := followRetryMin
	for ctx.Err() == nil {
		feed, err := f.broker.FollowEvents(ctx, since)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if errors.Is(err, broker.ErrClosed) {
				return fmt.Errorf("dashboard: follow events: %w", err)
			}
			f.log.Warn("dashboard: cannot follow events; retrying", "err", err, "in", backoff)
			if !sleep(ctx, backoff) {
				break
			}
			backoff = min(backoff*2, followRetryMax)
			continue
		}
		got := f.drain(ctx, feed, &lastOffset, &since)
		if ctx.Err() != nil {
			break
		}
		if got {
			backoff = followRetryMin
		}
		f.log.Warn("dashboard: events feed ended; following again", "since", since, "in", backoff)
		if !sleep(ctx, backoff) {
			break
		}
		backoff = min(backoff*2, followRetryMax)
	}
	return nil
}

// drain applies batches from feed until it closes. It reports whether any
// batch arrived.
func (f *follower) drain(ctx context.Context, feed <-chan broker.EventBatch, lastOffset *int64, since *time.Time) bool {
	quiet := time.NewTimer(caughtUpQuiet)
	defer quiet.Stop()
	got := false
	for {
		select {
		case <-ctx.Done():
			return got
		case <-quiet.C:
			f.caughtUp.Store(true)
		case b, ok := <-feed:
			if !ok {
				return got
			}
			got = true
			quiet.Reset(caughtUpQuiet)
			if b.Offset <= *lastOffset {
				continue // already applied before the feed was followed again
			}
			*lastOffset = b.Offset
			if !b.Time.IsZero() {
				*since = b.Time
			}
			events, err := jobs.DecodeEvents(b.Data)
			if err != nil {
				f.dropped.Add(1)
				f.log.Warn("dashboard: undecodable event batch skipped", "offset", b.Offset, "err", err)
				continue
			}
			f.store.Apply(events)
			f.applied.Add(1)
			if !f.caughtUp.Load() && !b.Time.IsZero() && time.Since(b.Time) < caughtUpFresh {
				f.caughtUp.Store(true)
			}
		}
	}
}

// sleep waits d or until ctx is done; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
