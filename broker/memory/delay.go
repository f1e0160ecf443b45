package memory

import (
	"container/heap"
	"sync"
	"time"

	"github.com/warrenjobs/warren/broker"
)

// delayRouter holds messages until their RunAt, then hands them to deliver. It
// is one goroutine sleeping on a timer set for the earliest message: nothing
// polls, and a short delay published after a long one is not held up by it.
//
// Lock order: callers may hold the broker's mutex when calling add; the router
// never holds its own mutex while calling deliver.
type delayRouter struct {
	deliver func([]*broker.Message)
	wake    chan struct{} // an earlier message may have arrived
	quit    chan struct{}
	done    chan struct{}

	mu   sync.Mutex
	held delayHeap
}

func newDelayRouter(deliver func([]*broker.Message)) *delayRouter {
	return &delayRouter{
		deliver: deliver,
		wake:    make(chan struct{}, 1),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
	}
}

// start runs the router's goroutine. Call it once.
func (r *delayRouter) start() { go r.run() }

// stop ends the router and waits for it; held messages are discarded.
func (r *delayRouter) stop() {
	select {
	case <-r.quit:
	default:
		close(r.quit)
	}
	<-r.done
}

// add holds m until m.RunAt; seq breaks ties between equal RunAts.
func (r *delayRouter) add(m *broker.Message, seq uint64) {
	r.mu.Lock()
	heap.Push(&r.held, delayed{msg: m, seq: seq})
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// len returns how many messages the router holds.
func (r *delayRouter) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.held)
}

func (r *delayRouter) run() {
	defer close(r.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		due, wait := r.popDue(time.Now())
		if len(due) > 0 {
			r.deliver(due)
			continue
		}
		var fire <-chan time.Time
		if wait > 0 {
			timer.Reset(wait)
			fire = timer.C
		}
		select {
		case <-fire:
		case <-r.wake:
		case <-r.quit:
			return
		}
		timer.Stop()
	}
}

// popDue removes and returns the messages due at now, in RunAt order, and how
// long until the next one is due (0: none held).
func (r *delayRouter) popDue(now time.Time) ([]*broker.Message, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var due []*broker.Message
	for len(r.held) > 0 {
		if wait := r.held[0].msg.RunAt.Sub(now); wait > 0 {
			return due, wait
		}
		due = append(due, heap.Pop(&r.held).(delayed).msg)
	}
	return due, 0
}

// delayed is a held message; seq keeps messages with equal RunAt in the order
// they were published.
type delayed struct {
	msg *broker.Message
	seq uint64
}

// delayHeap is a min-heap of held messages by RunAt, then seq.
type delayHeap []delayed

func (h delayHeap) Len() int { return len(h) }
func (h delayHeap) Less(i, j int) bool {
	if !h[i].msg.RunAt.Equal(h[j].msg.RunAt) {
		return h[i].msg.RunAt.Before(h[j].msg.RunAt)
	}
	return h[i].seq < h[j].seq
}
func (h delayHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *delayHeap) Push(x any)   { *h = append(*h, x.(delayed)) }
func (h *delayHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = delayed{}
	*h = old[:len(old)-1]
	return x
}
