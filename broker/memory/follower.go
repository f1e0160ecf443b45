package memory

import (
	"context"
	"time"

	"github.com/warrenjobs/warren/broker"
)

// followChunk is how many batches a follower copies per visit to the log.
const followChunk = 256

// follower feeds one FollowEvents channel: it replays the log from since, then
// waits for it to grow, until its context is done or the log closes. It reads
// at its own pace; appends never wait for it.
type follower struct {
	log   *eventLog
	since time.Time
	out   chan<- broker.EventBatch
}

func (f *follower) run(ctx context.Context) {
	defer close(f.out)
	var from int64
	for {
		batches, next, grew, ok := f.log.read(from, f.since, followChunk)
		if !ok {
			return
		}
		for _, b := range batches {
			select {
			case f.out <- b:
			case <-ctx.Done():
				return
			case <-f.log.done:
				return
			}
		}
		from = next
		if len(batches) == followChunk {
			continue
		}
		select {
		case <-grew:
		case <-ctx.Done():
			return
		case <-f.log.done:
			return
		}
	}
}
