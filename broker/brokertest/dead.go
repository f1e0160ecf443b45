package brokertest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/warrenjobs/warren/broker"
)

// DeadLetter removes the delivery and stores the dead letter with every field:
// Stats counts it, Dead lists it, oldest first.
func testDeadLetterKeepsEverything(t *testing.T, x *bundle) {
	q := x.queue()
	msgs := []*broker.Message{fullMessage(q), newMessage(q), newMessage(q)}
	dead := x.deadLetter(q, msgs...)
	if st := x.stats(q); st.Dead != 3 || st.Ready != 0 {
		t.Fatalf("Stats after 3 dead letters: %+v, want Dead 3, Ready 0", st)
	}
	got := x.dead(q, 10)
	assertIDs(t, "Dead (oldest first)", ids(dead), ids(got))
	for i := range dead {
		assertMessage(t, dead[i], got[i])
	}
	assertIDs(t, "Dead with limit 2", ids(dead[:2]), ids(x.dead(q, 2)))

	// The work queue has nothing left to deliver.
	sub := x.consume(q, 10)
	expectNone(t, sub)
}

// Browsing dead letters 30 times returns the same list in the same order and
// never changes the count.
func testDeadBrowseNeverLoses(t *testing.T, x *bundle) {
	q := x.queue()
	dead := x.deadLetter(q, newMessages(q, 4)...)
	for i := range 30 {
		got := x.dead(q, 100)
		assertIDs(t, "browse", ids(dead), ids(got))
		if i%10 == 9 {
			assertIDs(t, "browse with limit 1", ids(dead[:1]), ids(x.dead(q, 1)))
		}
		if st := x.stats(q); st.Dead != len(dead) {
			t.Fatalf("Stats after browse %d: Dead %d, want %d", i+1, st.Dead, len(dead))
		}
	}
	got := x.dead(q, 100)
	for i := range dead {
		assertMessage(t, dead[i], got[i])
	}
}

// Concurrent browses of one broker (a dashboard serving several requests) each
// see every dead letter.
func testDeadBrowseConcurrent(t *testing.T, x *bundle) {
	q := x.queue()
	dead := x.deadLetter(q, newMessages(q, 3)...)
	var wg sync.WaitGroup
	errs := make(chan string, 20)
	for range 4 {
		wg.Go(func() {
			for range 5 {
				got, err := x.b.Dead(x.ctx, q, 100)
				if err != nil {
					errs <- err.Error()
					return
				}
				if len(got) != len(dead) {
					errs <- fmt.Sprintf("a concurrent browse saw %d dead letters, want %d", len(got), len(dead))
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if st := x.stats(q); st.Dead != len(dead) {
		t.Fatalf("Stats after concurrent browsing: Dead %d, want %d", st.Dead, len(dead))
	}
	assertIDs(t, "after concurrent browsing", ids(dead), ids(x.dead(q, 100)))
}

// assertRetried checks that got is dead as republished by RetryDead: the same
// task with its failure fields cleared and a fresh retry budget.
func assertRetried(t *testing.T, dead, got *broker.Message) {
	t.Helper()
	want := dead.Clone()
	want.LastError, want.Stack, want.DeadReason = "", "", ""
	want.FailedAt, want.DeadAt = time.Time{}, time.Time{}
	want.RetryBase = dead.Attempt
	want.RunAt = got.RunAt // RetryDead may set it; it must not delay the task (checked by arrival)
	assertMessage(t, want, got)
}

// RetryDead moves the named dead letters (all for nil, none for an empty list)
// back to the work queue, cleared for a fresh retry budget; the others stay.
func testRetryDead(t *testing.T, x *bundle) {
	q := x.queue()
	dead := x.deadLetter(q, fullMessage(q), newMessage(q), newMessage(q))

	n, err := x.b.RetryDead(x.ctx, q, []string{})
	if err != nil || n != 0 {
		t.Fatalf("RetryDead(empty list): %d, %v; want 0, nil", n, err)
	}
	n, err = x.b.RetryDead(x.ctx, q, []string{dead[1].ID, "bt-no-such-task"})
	if err != nil || n != 1 {
		t.Fatalf("RetryDead(one id): %d, %v; want 1, nil", n, err)
	}
	assertIDs(t, "Dead after RetryDead(one id)", []string{dead[0].ID, dead[2].ID}, ids(x.dead(q, 10)))
	if st := x.stats(q); st.Dead != 2 {
		t.Fatalf("Stats after RetryDead(one id): Dead %d, want 2", st.Dead)
	}

	sub := x.consume(q, 10)
	d := receive(t, sub)
	assertRetried(t, dead[1], d.Message())
	x.ack(d)
	expectNone(t, sub)

	n, err = x.b.RetryDead(x.ctx, q, nil)
	if err != nil || n != 2 {
		t.Fatalf("RetryDead(nil): %d, %v; want 2, nil", n, err)
	}
	if got := x.dead(q, 10); len(got) != 0 {
		t.Fatalf("Dead after RetryDead(nil): %v, want none", ids(got))
	}
	ds := receiveN(t, sub, 2)
	assertSameIDs(t, "retried by RetryDead(nil)", []string{dead[0].ID, dead[2].ID}, deliveredIDs(ds))
	for _, d := range ds {
		if d.Message().ID == dead[0].ID {
			assertRetried(t, dead[0], d.Message())
		} else {
			assertRetried(t, dead[2], d.Message())
		}
	}
	x.ack(ds...)
	if st := x.stats(q); st.Dead != 0 {
		t.Fatalf("Stats after RetryDead(nil): Dead %d, want 0", st.Dead)
	}
}

// DeleteDead removes the named dead letters (all for nil, none for an empty
// list) and nothing else.
func testDeleteDead(t *testing.T, x *bundle) {
	q := x.queue()
	dead := x.deadLetter(q, newMessages(q, 3)...)
	ready := newMessage(q)
	x.publish(ready)

	n, err := x.b.DeleteDead(x.ctx, q, []string{})
	if err != nil || n != 0 {
		t.Fatalf("DeleteDead(empty list): %d, %v; want 0, nil", n, err)
	}
	n, err = x.b.DeleteDead(x.ctx, q, []string{dead[0].ID, "bt-no-such-task"})
	if err != nil || n != 1 {
		t.Fatalf("DeleteDead(one id): %d, %v; want 1, nil", n, err)
	}
	assertIDs(t, "Dead after DeleteDead(one id)", ids(dead[1:]), ids(x.dead(q, 10)))

	n, err = x.b.DeleteDead(x.ctx, q, nil)
	if err != nil || n != 2 {
		t.Fatalf("DeleteDead(nil): %d, %v; want 2, nil", n, err)
	}
	if got := x.dead(q, 10); len(got) != 0 {
		t.Fatalf("Dead after DeleteDead(nil): %v, want none", ids(got))
	}
	x.waitStats(q, "Dead 0, Ready 1", func(s broker.QueueStats) bool { return s.Dead == 0 && s.Ready == 1 })

	// The work queue kept its message; nothing deleted came back.
	sub := x.consume(q, 10)
	d := receive(t, sub)
	assertIDs(t, "work queue after DeleteDead", []string{ready.ID}, []string{d.Message().ID})
	x.ack(d)
	expectNone(t, sub)
}
