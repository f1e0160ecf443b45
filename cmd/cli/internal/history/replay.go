// Package history reads warren's events log for the terminal: it replays the
// log from a point in time until it has caught up, and folds the events into
// what a user asks about — the tasks of a window, the live workers, the
// queues in use.
//
// The log is the only task history RabbitMQ keeps for warren, so everything
// here is as complete as the log: events a worker could not append, and
// tasks whose events fell before the window, are missing.
package history

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/jobs"
)

// Caught-up rules: the replay ends at the first batch appended at or after
// the moment reading began, or when no batch has arrived for idleGap (the log
// has nothing newer), or firstWait after the start when the window is empty.
const (
	idleGap   = 300 * time.Millisecond
	firstWait = time.Second
)

// Replay calls fn with every event of every batch appended at or after since,
// in log order, and returns once it has caught up with the log's end as of
// the call. A batch that does not decode is skipped, and so is one that does
// not contain needle (when set): a cheap pre-filter that spares decoding
// batches that cannot matter.
func Replay(ctx context.Context, b broker.Broker, since time.Time, needle []byte, fn func(jobs.Event)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	batches, err := b.FollowEvents(ctx, since)
	if err != nil {
		return fmt.Errorf("read events log: %w", err)
	}
	timer := time.NewTimer(firstWait)
	defer timer.Stop()
	for {
		select {
		case batch, ok := <-batches:
			if !ok {
				return ctx.Err()
			}
			if needle == nil || bytes.Contains(batch.Data, needle) {
				if events, err := jobs.DecodeEvents(batch.Data); err == nil {
					for _, e := range events {
						fn(e)
					}
				}
			}
			if !batch.Time.Before(start) {
				return nil
			}
			timer.Reset(idleGap)
		case <-timer.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Needle returns the pre-filter for events that name s (a queue, kind, task
// ID or event type): s as a JSON string. It returns nil, no pre-filter, when
// s holds a character JSON encoders may escape.
func Needle(s string) []byte {
	if s == "" {
		return nil
	}
	for _, c := range []byte(s) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':'
		if !ok {
			return nil
		}
	}
	return []byte(`"` + s + `"`)
}
