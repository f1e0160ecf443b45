package amqp

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/warrenjobs/warren/broker"
)

// libraryBuffers counts amqp091-go's per-consumer buffer goroutines.
func libraryBuffers() int {
	buf := make([]byte, 4<<20)
	n := runtime.Stack(buf, true)
	return strings.Count(string(buf[:n]), "amqp091-go.(*consumers).buffer(")
}

// TestReconnectsLeaveNoConsumerBuffers: amqp091-go keeps a goroutine per
// registered consumer, holding what it buffered, until the consumer is
// cancelled and its deliveries read. Consumers of lost sessions are
// released: after cuts under load only the live consumer's remains.
func TestReconnectsLeaveNoConsumerBuffers(t *testing.T) {
	x, proxy := proxied(t, Config{})
	q := x.queue()
	before := libraryBuffers()
	sub := x.consume(q, 20)
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			msgs := make([]*broker.Message, 20)
			for i := range msgs {
				msgs[i] = newMessage(q)
			}
			_ = x.b.Publish(x.ctx, msgs)
		}
	}()
	go func() {
		for d := range sub.Deliveries() {
			time.Sleep(time.Millisecond)
			_ = d.Ack(x.ctx)
		}
	}()
	for range 6 {
		time.Sleep(700 * time.Millisecond)
		proxy.Cut()
	}
	time.Sleep(2 * time.Second)
	close(stop)
	time.Sleep(time.Second)
	var after int
	eventually(t, 10*time.Second, func() bool { after = libraryBuffers(); return after <= before+1 }, "consumer buffers released")
	t.Logf("library consumer buffers: %d before, %d after 6 cuts", before, after)
}
