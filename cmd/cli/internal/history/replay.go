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

// Caught-up rules. Replay first appends an empty batch, a mark, to the log:
// reading ends at the first batch appended at or after the moment reading
// began, which is the mark at the latest. A mark can be appended by any
// client of the broker and costs one confirmed publish; every reader of the
// log decodes it as no events. Should the mark not go through (a broker that
// refuses the write), or not come back, the replay also ends when no batch has
// arrived for a while: markedGap with a mark on its way, else idleGap, and
// firstWait before the first batch.
const (
	markedGap = 10 * time.Second
	idleGap   = 300 * time.Millisecond
	firstWait = time.Second
)

// mark is the batch Replay appends: a JSON array of no events.
var mark = []byte("[]")

// Replay calls fn with every event of every batch appended at or after since,
// in log order, and returns once it has caught up with the log's end as of
// the call. A batch that does not decode is skipped, and so is one that does
// not contain needle (when set): a cheap pre-filter that spares decoding
// batches that cannot matter.
func Replay(ctx context.Context, b broker.Broker, since time.Time, needle []byte, fn func(jobs.Event)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	// A broker may keep append times to the millisecond: the mark can then
	// carry a time just before start.
	markFrom := start.Truncate(time.Millisecond)
	batches, err := b.FollowEvents(ctx, since)
	if err != nil {
		return fmt.Errorf("read events log: %w", err)
	}
	first, gap := firstWait, idleGap
	if b.AppendEvents(ctx, mark) == nil {
		first, gap = markedGap, markedGap
	}
	timer := time.NewTimer(first)
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
			if !batch.Time.Before(start) || (bytes.Equal(batch.Data, mark) && !batch.Time.Before(markFrom)) {
				return nil
			}
			timer.Reset(gap)
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
