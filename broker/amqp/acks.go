package amqp

import (
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Acks are batched. One basic.ack frame per task is a write system call per
// task on the consumer connection, and the broker handles each frame on its
// own; with multiple=true one frame settles a whole run of delivery tags. An
// acker collects the acks of one session for up to ackHold and then sends
// one multiple-ack for the run of settled tags at the head of the session's
// tags, so it never acks a delivery that is still running or that was
// requeued. Acks that arrive out of order (behind a task still running) wait
// a few rounds for the head to reach them and are then sent one by one, as
// without batching; so do they when half the prefetch is held.
//
// What changes for callers: Ack returns once the ack is held, not written.
// A held ack dies with its session like an ack written to a dying socket
// does, and the broker delivers that task again (at least once). Close
// flushes every held ack before the connection closes, so a graceful
// shutdown acks everything it ran; an ack offered after that final flush is
// refused.

const (
	// ackHold is how long an ack waits to be batched: one round.
	ackHold = time.Millisecond
	// lateRounds is how many rounds an ack behind an unsettled delivery
	// waits for the run at the head to reach it before it is sent alone.
	lateRounds = 5
)

// tagState is what the acker knows of a delivery tag at or above low: the
// rounds an ack has been held (1 and up), or tagSent.
type tagState uint8

const (
	tagHeld tagState = 1   // acked by the caller, not sent yet
	tagSent tagState = 255 // settled on the wire already (a nack, or a single ack)
)

// acker batches the acks of one session of a subscription's link.
type acker struct {
	sess *session
	send func(tag uint64, multiple bool) // writes one basic.ack on sess
	max  int                             // held acks that trigger a flush before wait
	wait time.Duration                   // how long acks are held: ackHold

	mu     sync.Mutex
	low    uint64 // every tag below low is settled on the wire
	tags   map[uint64]tagState
	held   int // tags held or late
	closed bool
	wake   chan struct{}
	done   chan struct{} // closed when the flusher has stopped
}

// newAcker starts an acker for sess; its flusher runs until the session is
// gone or stop is closed.
func newAcker(link *consumerLink, sess *session, prefetch int, stop <-chan struct{}) *acker {
	// A lost session refuses the settle: the broker requeued everything it
	// held, and delivers it again.
	send := func(tag uint64, multiple bool) {
		_ = link.settle(sess, func(ch *amqp.Channel) error { return ch.Ack(tag, multiple) })
	}
	return startAcker(sess, send, max(1, prefetch/2), ackHold, stop)
}

func startAcker(sess *session, send func(uint64, bool), maxHeld int, wait time.Duration, stop <-chan struct{}) *acker {
	a := &acker{
		sess: sess, send: send, max: maxHeld, wait: wait,
		low: 1, tags: make(map[uint64]tagState),
		wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
	go a.run(stop)
	return a
}

// hold records an ack of tag to be sent with the next flush. It reports
// false when the acker was flushed for the last time (the subscription is
// closing); nothing is then sent.
func (a *acker) hold(tag uint64) bool {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return false
	}
	a.tags[tag] = tagHeld
	a.held++
	a.mu.Unlock()
	select {
	case a.wake <- struct{}{}:
	default:
	}
	return true
}

// sent records that tag was settled on the wire by someone else (a nack);
// it must be called after the frame was written, never before, so that a
// multiple-ack covering tag cannot overtake it.
func (a *acker) sent(tag uint64) {
	a.mu.Lock()
	a.tags[tag] = tagSent
	a.mu.Unlock()
}

func (a *acker) run(stop <-chan struct{}) {
	defer close(a.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-a.wake:
		case <-a.sess.gone:
			return
		case <-stop:
			return
		}
		// Hold unless enough acks wait already (with a prefetch of 1 or 2,
		// every ack goes out at once: the next delivery waits for it).
		if !a.full() {
			timer.Reset(a.wait)
		hold:
			for {
				select {
				case <-timer.C:
					break hold
				case <-a.wake:
					if a.full() {
						timer.Stop()
						break hold
					}
				case <-a.sess.gone:
					timer.Stop()
					return
				case <-stop:
					timer.Stop()
					return
				}
			}
		}
		if a.flush(false) {
			// Acks still held: come back after another hold.
			select {
			case a.wake <- struct{}{}:
			default:
			}
		}
	}
}

func (a *acker) full() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.held >= a.max
}

// flush sends one multiple-ack for the run of settled tags at the head, and
// one ack each for the held tags that waited lateRounds behind it (all of
// them when too many are held, or with final). It reports whether acks are
// still held. With final, the acker refuses later acks.
func (a *acker) flush(final bool) bool {
	a.mu.Lock()
	var head uint64 // the highest held tag of the run at the head
	for {
		st, ok := a.tags[a.low]
		if !ok {
			break
		}
		if st != tagSent {
			head = a.low
			a.held--
		}
		delete(a.tags, a.low)
		a.low++
	}
	var singles []uint64
	if a.held > 0 {
		full := a.held >= a.max
		for tag, st := range a.tags {
			switch {
			case st == tagSent:
			case st >= lateRounds || final || full:
				singles = append(singles, tag)
				a.tags[tag] = tagSent
				a.held--
			default:
				a.tags[tag] = st + 1
			}
		}
	}
	if final {
		a.closed = true
	}
	still := a.held > 0
	a.mu.Unlock()

	if head > 0 {
		a.send(head, true)
	}
	for _, tag := range singles {
		a.send(tag, false)
	}
	return still
}
