package memory_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/broker/memory"
)

func appendN(t *testing.T, b *memory.Broker, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := b.AppendEvents(t.Context(), fmt.Appendf(nil, "batch-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
}

// readBatches reads n batches from ch.
func readBatches(t *testing.T, ch <-chan broker.EventBatch, n int) []broker.EventBatch {
	t.Helper()
	var out []broker.EventBatch
	for range n {
		select {
		case b, ok := <-ch:
			if !ok {
				t.Fatal("events channel closed")
			}
			out = append(out, b)
		case <-time.After(5 * time.Second):
			t.Fatalf("got %d of %d batches", len(out), n)
		}
	}
	return out
}

func offsets(bs []broker.EventBatch) []int64 {
	var out []int64
	for _, b := range bs {
		out = append(out, b.Offset)
	}
	return out
}

// The log keeps at most EventMaxBatches; offsets keep counting.
func TestEventsRetentionByCount(t *testing.T) {
	t.Parallel()
	b, ctx := setup(t, memory.Config{EventMaxBatches: 3})
	appendN(t, b, 0, 5)
	ch, err := b.FollowEvents(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	got := readBatches(t, ch, 3)
	if fmt.Sprint(offsets(got)) != "[2 3 4]" || string(got[0].Data) != "batch-2" {
		t.Fatalf("retained offsets %v (first %q), want [2 3 4] from batch-2", offsets(got), got[0].Data)
	}
}

// The log keeps at most EventMaxBytes of data.
func TestEventsRetentionByBytes(t *testing.T) {
	t.Parallel()
	b, ctx := setup(t, memory.Config{EventMaxBytes: 16}) // "batch-N" is 7 bytes: two fit
	appendN(t, b, 0, 4)
	ch, err := b.FollowEvents(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if got := offsets(readBatches(t, ch, 2)); fmt.Sprint(got) != "[2 3]" {
		t.Fatalf("retained offsets %v, want [2 3]", got)
	}
}

// A follower that does not read while the log moves past its position skips
// what was dropped and carries on with what is retained.
func TestEventsSlowFollowerSkipsDropped(t *testing.T) {
	t.Parallel()
	b, ctx := setup(t, memory.Config{EventMaxBatches: 2})
	appendN(t, b, 0, 1)
	ch, err := b.FollowEvents(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	got := offsets(readBatches(t, ch, 1))
	// The follower holds at most what was retained when it last read (two
	// batches); five appends while it waits drop at least one it never saw.
	appendN(t, b, 1, 6)
	for got[len(got)-1] != 5 {
		got = append(got, offsets(readBatches(t, ch, 1))...)
	}
	increasing := true
	for i := 1; i < len(got); i++ {
		increasing = increasing && got[i] > got[i-1]
	}
	if got[0] != 0 || !increasing || len(got) >= 6 {
		t.Fatalf("offsets %v: want 0, then strictly increasing to 5, with some skipped", got)
	}
}

// Batches are copies: changing one read does not change what others read.
func TestEventsCopies(t *testing.T) {
	t.Parallel()
	b, ctx := setup(t, memory.Config{})
	data := []byte("abc")
	if err := b.AppendEvents(ctx, data); err != nil {
		t.Fatal(err)
	}
	data[0] = 'X'
	for range 2 {
		fctx, cancel := context.WithCancel(ctx)
		ch, _ := b.FollowEvents(fctx, time.Time{})
		got := readBatches(t, ch, 1)[0]
		if string(got.Data) != "abc" {
			t.Fatalf("batch %q, want abc", got.Data)
		}
		got.Data[0] = 'Y'
		cancel()
	}
}

// A since in the future replays nothing; batches appended from then on arrive.
func TestEventsSinceFuture(t *testing.T) {
	t.Parallel()
	b, ctx := setup(t, memory.Config{})
	appendN(t, b, 0, 2)
	since := time.Now().Add(50 * time.Millisecond)
	ch, err := b.FollowEvents(ctx, since)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(since.Add(5 * time.Millisecond))) // spacing, not an assertion
	appendN(t, b, 2, 3)
	if got := readBatches(t, ch, 1)[0]; got.Offset != 2 {
		t.Fatalf("first batch offset %d, want 2", got.Offset)
	}
}
