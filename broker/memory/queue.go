package memory

import (
	"cmp"
	"slices"

	"github.com/warrenjobs/warren/broker"
)

// entry is a stored message with the sequence number it was stored under.
type entry struct {
	seq uint64
	msg *broker.Message
}

// queue is a work queue with its dead letters. Every field is guarded by the
// broker's mutex; no method blocks.
//
// Ready messages live in two lines: returns (messages given back by Requeue or
// a subscription's Close, ordered by when they were first stored) and fifo
// (everything else, in arrival order). returns is served first, as RabbitMQ's
// quorum queues do.
type queue struct {
	name    string
	returns []entry
	fifo    fifo
	dead    []*broker.Message
	subs    []*subscription // active subscriptions, served round-robin
	next    int             // round-robin cursor into subs
	deleted bool
}

func newQueue(name string) *queue { return &queue{name: name} }

func (q *queue) readyLen() int { return len(q.returns) + q.fifo.len() }

func (q *queue) push(e entry) { q.fifo.push(e) }

// giveBack returns a delivered message to the head of the queue, keeping
// returned messages in the order they were first stored. A deleted queue
// drops it.
func (q *queue) giveBack(e entry) {
	if q.deleted {
		return
	}
	i, _ := slices.BinarySearchFunc(q.returns, e.seq, func(a entry, seq uint64) int {
		return cmp.Compare(a.seq, seq)
	})
	q.returns = slices.Insert(q.returns, i, e)
}

func (q *queue) pop() (entry, bool) {
	if len(q.returns) > 0 {
		e := q.returns[0]
		q.returns[0] = entry{}
		q.returns = q.returns[1:]
		return e, true
	}
	return q.fifo.pop()
}

// dispatch hands ready messages to subscriptions with free prefetch slots,
// round-robin, until either runs out.
func (q *queue) dispatch() {
	for q.readyLen() > 0 {
		s := q.nextFree()
		if s == nil {
			return
		}
		e, _ := q.pop()
		s.deliver(e)
	}
}

// nextFree returns the next subscription, round-robin, with a free prefetch
// slot, or nil.
func (q *queue) nextFree() *subscription {
	for range len(q.subs) {
		if q.next >= len(q.subs) {
			q.next = 0
		}
		s := q.subs[q.next]
		q.next++
		if s.hasRoom() {
			return s
		}
	}
	return nil
}

func (q *queue) removeSub(s *subscription) {
	if i := slices.Index(q.subs, s); i >= 0 {
		q.subs = slices.Delete(q.subs, i, i+1)
	}
}

// purge drops every ready message and returns how many there were.
func (q *queue) purge() int {
	n := q.readyLen()
	clear(q.returns)
	q.returns = nil
	q.fifo = fifo{}
	return n
}

// delete ends the queue: its subscriptions stop with err and anything given
// back later is dropped.
func (q *queue) delete(err error) {
	q.deleted = true
	for _, s := range slices.Clone(q.subs) {
		s.stop(err)
	}
	q.subs = nil
	q.purge()
	q.dead = nil
}

// fifo is a first-in first-out line of entries on a slice.
type fifo struct {
	items []entry
	head  int
}

func (f *fifo) len() int { return len(f.items) - f.head }

func (f *fifo) push(e entry) { f.items = append(f.items, e) }

func (f *fifo) pop() (entry, bool) {
	if f.len() == 0 {
		return entry{}, false
	}
	e := f.items[f.head]
	f.items[f.head] = entry{}
	f.head++
	switch {
	case f.head == len(f.items):
		f.items, f.head = f.items[:0], 0
	case f.head >= 1024 && f.head*2 >= len(f.items):
		n := copy(f.items, f.items[f.head:])
		clear(f.items[n:])
		f.items, f.head = f.items[:n], 0
	}
	return e, true
}
