package brokertest

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/warrenjobs/warren/broker"
)

// assertMessage fails t unless got carries every field of want. Times must agree
// to the millisecond (the wire carries Unix milliseconds); a zero time must stay
// zero. A nil Meta and an empty one are the same.
func assertMessage(t *testing.T, want, got *broker.Message) {
	t.Helper()
	if diffs := diffMessage(want, got); len(diffs) > 0 {
		t.Fatalf("message %s differs from what was sent:\n%s", want.ID, bytes.Join(diffs, []byte("\n")))
	}
}

func diffMessage(want, got *broker.Message) [][]byte {
	if got == nil {
		return [][]byte{[]byte("got nil message")}
	}
	var d [][]byte
	add := func(field string, w, g any) {
		d = append(d, fmt.Appendf(nil, "  %s: got %#v, want %#v", field, g, w))
	}
	if got.ID != want.ID {
		add("ID", want.ID, got.ID)
	}
	if got.Kind != want.Kind {
		add("Kind", want.Kind, got.Kind)
	}
	if got.Queue != want.Queue {
		add("Queue", want.Queue, got.Queue)
	}
	if !bytes.Equal(got.Args, want.Args) {
		add("Args", string(want.Args), string(got.Args))
	}
	if got.Attempt != want.Attempt {
		add("Attempt", want.Attempt, got.Attempt)
	}
	if got.RetryBase != want.RetryBase {
		add("RetryBase", want.RetryBase, got.RetryBase)
	}
	if got.MaxRetries != want.MaxRetries {
		add("MaxRetries", want.MaxRetries, got.MaxRetries)
	}
	if got.Timeout != want.Timeout {
		add("Timeout", want.Timeout, got.Timeout)
	}
	if got.RetryDelay != want.RetryDelay {
		add("RetryDelay", want.RetryDelay, got.RetryDelay)
	}
	for _, f := range []struct {
		name      string
		want, got time.Time
	}{
		{"EnqueuedAt", want.EnqueuedAt, got.EnqueuedAt},
		{"RunAt", want.RunAt, got.RunAt},
		{"FailedAt", want.FailedAt, got.FailedAt},
		{"DeadAt", want.DeadAt, got.DeadAt},
	} {
		if !sameMillisecond(f.want, f.got) {
			add(f.name, f.want.Format(time.RFC3339Nano), f.got.Format(time.RFC3339Nano))
		}
	}
	if !sameMeta(want.Meta, got.Meta) {
		add("Meta", want.Meta, got.Meta)
	}
	if got.LastError != want.LastError {
		add("LastError", want.LastError, got.LastError)
	}
	if got.Stack != want.Stack {
		add("Stack", want.Stack, got.Stack)
	}
	if got.DeadReason != want.DeadReason {
		add("DeadReason", want.DeadReason, got.DeadReason)
	}
	return d
}

// sameMillisecond reports whether a and b are both zero, or both non-zero and
// less than a millisecond apart.
func sameMillisecond(a, b time.Time) bool {
	if a.IsZero() || b.IsZero() {
		return a.IsZero() == b.IsZero()
	}
	d := a.Sub(b)
	return d > -time.Millisecond && d < time.Millisecond
}

func sameMeta(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// assertIDs fails t unless got lists exactly the IDs of want, in order.
func assertIDs(t *testing.T, what string, want, got []string) {
	t.Helper()
	if !slices.Equal(want, got) {
		t.Fatalf("%s: got task IDs %v, want %v", what, got, want)
	}
}

// assertSameIDs fails t unless got holds the IDs of want, each once, in any order.
func assertSameIDs(t *testing.T, what string, want, got []string) {
	t.Helper()
	w, g := slices.Clone(want), slices.Clone(got)
	slices.Sort(w)
	slices.Sort(g)
	if !slices.Equal(w, g) {
		t.Fatalf("%s: got task IDs %v, want %v (any order, each once)", what, got, want)
	}
}
