package amqp

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/warrenjobs/warren/broker"
)

// wire is the broker's side of one channel for the acker tests: which
// delivery tags are unacked, and what the caller decided for each. It fails
// the test on any frame RabbitMQ would refuse or that would settle a
// delivery the caller did not ack.
type wire struct {
	t       *testing.T
	mu      sync.Mutex
	unacked map[uint64]bool // tag -> delivered and not settled on the wire
	acked   map[uint64]bool // tags the caller acked
	frames  int
}

func newWire(t *testing.T, n int) *wire {
	w := &wire{t: t, unacked: map[uint64]bool{}, acked: map[uint64]bool{}}
	for tag := uint64(1); tag <= uint64(n); tag++ {
		w.unacked[tag] = true
	}
	return w
}

func (w *wire) send(tag uint64, multiple bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.frames++
	if !w.unacked[tag] {
		w.t.Errorf("ack of tag %d (multiple %v), which is not unacked: RabbitMQ closes the channel", tag, multiple)
		return
	}
	if !multiple {
		if !w.acked[tag] {
			w.t.Errorf("ack of tag %d, which the caller did not ack", tag)
		}
		delete(w.unacked, tag)
		return
	}
	for u := range w.unacked {
		if u > tag {
			continue
		}
		if !w.acked[u] {
			w.t.Errorf("multiple-ack of %d settles tag %d, which the caller did not ack", tag, u)
		}
		delete(w.unacked, u)
	}
}

// nack settles tag on the wire the way Requeue does.
func (w *wire) nack(tag uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.unacked[tag] {
		w.t.Errorf("nack of tag %d, which is not unacked", tag)
	}
	delete(w.unacked, tag)
}

func (w *wire) ack(tag uint64) {
	w.mu.Lock()
	w.acked[tag] = true
	w.mu.Unlock()
}

func (w *wire) state() (unacked, frames int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.unacked), w.frames
}

// TestAckerModel settles 5,000 deliveries in random order from several
// goroutines (acks, requeues, and a few never settled, like tasks still
// running) and checks every frame against the wire model: no frame settles
// a delivery that was not acked, every ack reaches the wire by the final
// flush, and the never-settled stay unacked.
func TestAckerModel(t *testing.T) {
	t.Run("some never settled", func(t *testing.T) { ackerModel(t, 5) })
	// Without a task running at the head, acks go out in multiple-acks.
	t.Run("all settled", func(t *testing.T) { ackerModel(t, 0) })
}

func ackerModel(t *testing.T, stuck int) {
	const n = 5000
	w := newWire(t, n)
	sess := &session{alive: true, gone: make(chan struct{})}
	stop := make(chan struct{})
	a := startAcker(sess, w.send, 150, ackHold, stop)

	tags := make([]uint64, 0, n)
	for tag := uint64(1); tag <= n; tag++ {
		tags = append(tags, tag)
	}
	// Mostly in order, with local shuffles like 32 executors finishing.
	for i := 0; i+32 <= len(tags); i += 32 {
		rand.Shuffle(32, func(x, y int) { tags[i+x], tags[i+y] = tags[i+y], tags[i+x] })
	}
	running := map[uint64]bool{}
	for len(running) < stuck {
		running[uint64(1+rand.IntN(n))] = true
	}
	// Several goroutines settle, like executors; a lone one keeps the
	// order local enough to count the frames.
	workers := 4
	if stuck == 0 {
		workers = 1
	}
	var wg sync.WaitGroup
	for g := range workers {
		wg.Go(func() {
			for i := g; i < len(tags); i += workers {
				tag := tags[i]
				switch {
				case running[tag]:
				case tag%97 == 0:
					w.nack(tag)
					a.sent(tag)
				default:
					w.ack(tag)
					if !a.hold(tag) {
						t.Errorf("hold(%d) refused before the final flush", tag)
					}
				}
			}
		})
	}
	wg.Wait()

	close(stop)
	<-a.done
	a.flush(true)
	if a.hold(n + 1) {
		t.Error("hold after the final flush was accepted")
	}
	unacked, frames := w.state()
	if unacked != len(running) {
		t.Errorf("%d tags unacked on the wire after the final flush, want the %d never settled", unacked, len(running))
	}
	for tag := range running {
		if !w.unacked[tag] {
			t.Errorf("running tag %d was settled", tag)
		}
	}
	t.Logf("%d deliveries settled with %d ack frames", n-len(running), frames)
	if frames > n {
		t.Errorf("%d ack frames for %d deliveries", frames, n)
	}
	if stuck == 0 && frames > n/4 {
		t.Errorf("%d ack frames for %d acks: not batched", frames, n)
	}
}

// TestAckerSendsBehindARunningTask: acks behind a delivery that is still
// running cannot join a multiple-ack; they still reach the wire within a few
// holds, one by one.
func TestAckerSendsBehindARunningTask(t *testing.T) {
	w := newWire(t, 20)
	sess := &session{alive: true, gone: make(chan struct{})}
	stop := make(chan struct{})
	defer close(stop)
	a := startAcker(sess, w.send, 150, ackHold, stop)
	for tag := uint64(2); tag <= 20; tag++ { // tag 1 is still running
		w.ack(tag)
		a.hold(tag)
	}
	deadline := time.Now().Add(time.Second)
	for {
		unacked, _ := w.state()
		if unacked == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d tags still unacked 1 s after their acks, want only the running one", unacked)
		}
		time.Sleep(time.Millisecond)
	}
	w.ack(1)
	a.hold(1)
	deadline = time.Now().Add(time.Second)
	for unacked, _ := w.state(); unacked > 0; unacked, _ = w.state() {
		if time.Now().After(deadline) {
			t.Fatal("the ack of tag 1 never reached the wire")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestAckerSendsAtOnceWhenFull: with enough acks held (every ack, with a
// prefetch of 1 or 2) nothing waits for the hold.
func TestAckerSendsAtOnceWhenFull(t *testing.T) {
	w := newWire(t, 3)
	sess := &session{alive: true, gone: make(chan struct{})}
	stop := make(chan struct{})
	defer close(stop)
	a := startAcker(sess, w.send, 1, time.Hour, stop)
	for tag := uint64(1); tag <= 3; tag++ {
		w.ack(tag)
		a.hold(tag)
		deadline := time.Now().Add(5 * time.Second)
		for unacked, _ := w.state(); unacked > 3-int(tag); unacked, _ = w.state() {
			if time.Now().After(deadline) {
				t.Fatalf("ack of tag %d still held after 5 s with max 1", tag)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// TestAckerSendsLateAcksWhenHalfThePrefetchIsHeld: acks behind a running
// delivery go out one by one as soon as max of them are held, without
// waiting out their rounds.
func TestAckerSendsLateAcksWhenHalfThePrefetchIsHeld(t *testing.T) {
	w := newWire(t, 5)
	sess := &session{alive: true, gone: make(chan struct{})}
	stop := make(chan struct{})
	defer close(stop)
	a := startAcker(sess, w.send, 4, time.Hour, stop)
	for tag := uint64(2); tag <= 5; tag++ { // tag 1 is still running
		w.ack(tag)
		a.hold(tag)
	}
	deadline := time.Now().Add(5 * time.Second)
	for unacked, _ := w.state(); unacked > 1; unacked, _ = w.state() {
		if time.Now().After(deadline) {
			t.Fatalf("%d tags unacked 5 s after 4 acks were held with max 4", unacked)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestAckerStopsWithItsSession: once the session is gone nothing more is
// sent (the broker requeued everything when it ended).
func TestAckerStopsWithItsSession(t *testing.T) {
	w := newWire(t, 10)
	sess := &session{alive: true, gone: make(chan struct{})}
	a := startAcker(sess, w.send, 150, ackHold, make(chan struct{}))
	close(sess.gone)
	<-a.done
	w.ack(1)
	a.hold(1)
	time.Sleep(10 * ackHold)
	if _, frames := w.state(); frames != 0 {
		t.Errorf("%d frames sent after the session was gone", frames)
	}
}

// TestBatchedAcksOnRabbitMQ: on the real broker, acks behind a delivery
// that is still running reach RabbitMQ within a few holds (a cut connection
// then gives back only the running one), and acks held when the
// subscription closes are flushed before its connection goes.
func TestBatchedAcksOnRabbitMQ(t *testing.T) {
	t.Parallel()
	x, proxy := proxied(t, Config{})
	q := x.queue()
	// 9: fewer acks held than the 10 (half the prefetch) that go out at once.
	msgs := make([]*broker.Message, 9)
	for i := range msgs {
		msgs[i] = newMessage(q)
	}
	x.publish(msgs...)
	sub := x.consume(q, 20)
	ds := make([]broker.Delivery, len(msgs))
	for i := range ds {
		ds[i] = receive(t, sub, 5*time.Second)
	}
	for _, d := range ds[1:] { // ds[0] is still running
		if err := d.Ack(x.ctx); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond) // 20 times lateRounds × ackHold
	proxy.Cut()                        // nothing held is flushed: what the broker had is what counts
	again := receive(t, sub, 20*time.Second)
	if again.Message().ID != ds[0].Message().ID {
		t.Fatalf("redelivered %s after the cut, want only the unacked %s", again.Message().ID, ds[0].Message().ID)
	}
	expectNone(t, sub, 500*time.Millisecond)
	if err := again.Ack(x.ctx); err != nil {
		t.Fatal(err)
	}

	// Acked, then closed at once: Close flushes before the connection goes.
	// (45: not a multiple of the 10 held acks that flush at once.)
	more := make([]*broker.Message, 45)
	for i := range more {
		more[i] = newMessage(q)
	}
	x.publish(more...)
	for range more {
		if err := receive(t, sub, 5*time.Second).Ack(x.ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	expectNone(t, x.consume(q, 50), time.Second)
}
