package amqp

import (
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// returnSet collects a channel's basic.returns so that a confirmed publish
// can be checked for having been returned (mandatory, unroutable).
//
// RabbitMQ sends basic.return before the basic.ack of the same message on the
// same channel, and the library's reader goroutine pushes the return onto the
// listener before it resolves the confirm. The listener is only ever received
// from while mu is held, and a publisher checks after its confirm by draining
// it under mu: a return pushed before the confirm is then either in the set
// already or drained now. Never a receive outside mu (a return in flight
// between a receive and the set would be missed: a false success). To keep
// the listener from filling when no publisher checks (a full listener stalls
// the library's reader, and drops the return after 5 s), a ticker drains it
// too, under mu.
type returnSet struct {
	returns chan amqp.Return

	mu     sync.Mutex
	set    map[string]returned
	closed bool
}

type returned struct {
	n  int
	at time.Time
}

const returnDrainInterval = 100 * time.Millisecond

func watchReturns(ch *amqp.Channel) *returnSet {
	rs := &returnSet{
		returns: ch.NotifyReturn(make(chan amqp.Return, 4096)),
		set:     make(map[string]returned),
	}
	go func() {
		tick := time.NewTicker(returnDrainInterval)
		defer tick.Stop()
		for range tick.C {
			rs.mu.Lock()
			rs.drainLocked()
			closed := rs.closed
			rs.mu.Unlock()
			if closed {
				return // the channel closed for good
			}
		}
	}()
	return rs
}

// drainLocked moves everything the listener holds into the set.
func (rs *returnSet) drainLocked() {
	for {
		select {
		case r, ok := <-rs.returns:
			if !ok {
				rs.closed = true
				return
			}
			e := rs.set[r.MessageId]
			rs.set[r.MessageId] = returned{e.n + 1, time.Now()}
		default:
			if len(rs.set) > 4096 {
				// Returns nobody asked about: their publishers gave up.
				for id, e := range rs.set {
					if time.Since(e.at) > time.Minute {
						delete(rs.set, id)
					}
				}
			}
			return
		}
	}
}

// reset forgets every return so far. Called once the session is lost, when
// the listener gets nothing more from it.
func (rs *returnSet) reset() {
	rs.mu.Lock()
	rs.drainLocked()
	clear(rs.set)
	rs.mu.Unlock()
}

// take reports, for each id confirmed on the channel, whether it was
// returned, and forgets those returns. Call it only after the confirms.
func (rs *returnSet) take(ids []string) []bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.drainLocked()
	answer := make([]bool, len(ids))
	if len(rs.set) == 0 {
		return answer
	}
	for i, id := range ids {
		if e, ok := rs.set[id]; ok {
			answer[i] = true
			if e.n--; e.n == 0 {
				delete(rs.set, id)
			} else {
				rs.set[id] = e
			}
		}
	}
	return answer
}
