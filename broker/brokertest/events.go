package brokertest

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/warrenjobs/warren/broker"
)

// eventBatch returns batch i of a test's events: a JSON array (what package
// jobs writes) carrying the test's unique token.
func eventBatch(token string, i int) []byte {
	return fmt.Appendf(nil, `[{"brokertest":%q,"batch":%d}]`, token, i)
}

// follower reads an events channel, skipping batches of other tests.
type follower struct {
	t          *testing.T
	ch         <-chan broker.EventBatch
	token      []byte
	lastOffset int64
	started    bool
}

func (x *bundle) follow(ctx context.Context, since time.Time, token string) *follower {
	x.t.Helper()
	ch, err := x.b.FollowEvents(ctx, since)
	if err != nil {
		x.t.Fatalf("FollowEvents: %v", err)
	}
	return &follower{t: x.t, ch: ch, token: []byte(fmt.Sprintf("%q", token))}
}

// next returns the next batch carrying the follower's token, checking that
// offsets (of all batches, ours or not) only grow. It fails when no batch at
// all arrives for waitFor: on a shared broker the log may hold a long history
// of other tests' batches to replay first, which is progress, not a stall.
func (f *follower) next() broker.EventBatch {
	f.t.Helper()
	timer := time.NewTimer(waitFor)
	defer timer.Stop()
	for {
		select {
		case b, ok := <-f.ch:
			if !ok {
				f.t.Fatal("events channel closed while waiting for a batch")
			}
			if f.started && b.Offset <= f.lastOffset {
				f.t.Fatalf("event offsets went from %d to %d", f.lastOffset, b.Offset)
			}
			f.started, f.lastOffset = true, b.Offset
			if bytes.Contains(b.Data, f.token) {
				return b
			}
			timer.Reset(waitFor)
		case <-timer.C:
			f.t.Fatalf("no event batch at all for %v while waiting for this test's", waitFor)
		}
	}
}

// expect reads the next own batch and checks it is batch i.
func (f *follower) expect(token string, i int) broker.EventBatch {
	f.t.Helper()
	b := f.next()
	if want := eventBatch(token, i); !bytes.Equal(b.Data, want) {
		f.t.Fatalf("event batch: got %s, want %s", b.Data, want)
	}
	if b.Time.IsZero() {
		f.t.Fatalf("event batch %d has a zero Time", i)
	}
	return b
}

// closed waits for the channel to be closed, draining it.
func (f *follower) closed() {
	f.t.Helper()
	timer := time.NewTimer(waitFor)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-f.ch:
			if !ok {
				return
			}
		case <-timer.C:
			f.t.Fatalf("events channel not closed within %v of cancelling", waitFor)
		}
	}
}

func (x *bundle) appendEvents(batch []byte) {
	x.t.Helper()
	if err := x.b.AppendEvents(x.ctx, batch); err != nil {
		x.t.Fatalf("AppendEvents: %v", err)
	}
}

// FollowEvents from the beginning replays earlier batches in order, then
// follows new ones live; cancelling its context closes the channel.
func testEventsReplayThenFollow(t *testing.T, x *bundle) {
	token := newID()
	x.appendEvents(eventBatch(token, 0))
	x.appendEvents(eventBatch(token, 1))

	ctx, cancel := context.WithCancel(x.ctx)
	defer cancel()
	f := x.follow(ctx, time.Time{}, token)
	b0 := f.expect(token, 0)
	b1 := f.expect(token, 1)
	if b1.Time.Before(b0.Time) {
		t.Fatalf("batch 1 appended at %v, before batch 0 at %v", b1.Time, b0.Time)
	}

	x.appendEvents(eventBatch(token, 2))
	f.expect(token, 2)

	// A second follower, started later, sees the same history.
	ctx2, cancel2 := context.WithCancel(x.ctx)
	defer cancel2()
	f2 := x.follow(ctx2, time.Time{}, token)
	for i := range 3 {
		f2.expect(token, i)
	}

	cancel()
	f.closed()
	cancel2()
	f2.closed()
}

// FollowEvents with a since after a batch skips that batch and starts at the
// first batch appended at or after since.
func testEventsSince(t *testing.T, x *bundle) {
	token := newID()
	x.appendEvents(eventBatch(token, 0))
	ctx, cancel := context.WithCancel(x.ctx)
	defer cancel()
	f := x.follow(ctx, time.Now().Add(-time.Minute), token)
	b0 := f.expect(token, 0)

	// Some logs keep times in whole seconds; more than a second apart, the
	// two batches are told apart by any of them. This sleep is spacing, not
	// an assertion.
	time.Sleep(time.Until(b0.Time.Add(1100 * time.Millisecond)))
	x.appendEvents(eventBatch(token, 1))
	b1 := f.expect(token, 1)
	if !b1.Time.After(b0.Time) {
		t.Fatalf("batch 1 appended at %v, not after batch 0 at %v", b1.Time, b0.Time)
	}
	x.appendEvents(eventBatch(token, 2))
	cancel()
	f.closed()

	ctx2, cancel2 := context.WithCancel(x.ctx)
	defer cancel2()
	f2 := x.follow(ctx2, b1.Time, token)
	f2.expect(token, 1) // batch 0 would come first if it were replayed
	f2.expect(token, 2)
	cancel2()
	f2.closed()
}
