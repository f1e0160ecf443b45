package amqp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	amqp "github.com/rabbitmq/amqp091-go"
)

// ErrSessionLost reports a settle of a delivery whose channel session is
// gone (the connection or channel was lost, or the subscription closed). The
// broker requeued the message when the session ended and delivers it again;
// nothing was sent.
var ErrSessionLost = errors.New("the channel session that delivered this message is gone; the broker will deliver it again")

// errNotReady: the link's connection or channel is down, recovering.
var errNotReady = errors.New("consumer connection not ready")

// consumerLink is a recovering connection of its own with one channel on it,
// for one consumer: a Subscription or an events follower.
//
// The problem it solves: after amqp091-go recovers a connection it reuses the
// same *amqp.Channel object (the Acknowledger of every delivery) for the new
// server channel, whose delivery tags start again at 1. Acking a delivery of
// the old session through it would close the new channel (unknown tag) or,
// worse, ack a different message that happens to have the same tag — a task
// lost. So the link tracks sessions: a session is one server-side life of the
// channel. The library calls our recovery hooks synchronously when the
// connection or channel is lost, before it reconnects anything; the hook marks
// the current session dead under mu. A settle holds mu for reading while it
// checks its session and sends the ack, so it either completes on the session
// that delivered the message (before the hook) or sees the session dead and
// sends nothing. The broker requeues what a dead session held.
//
// Recovery restores the channel (with QoS) but no consumer
// (TopologyRecoveryDisabled); the owner's loop starts a new consumer on a new
// session when the link is up again, signalled on kick.
type consumerLink struct {
	log  *slog.Logger
	role string
	conn *connection
	ch   *amqp.Channel
	kick chan struct{} // capacity 1: the link's state changed
	tags atomic.Uint64

	mu      sync.RWMutex
	cur     *session // nil until the first consumer starts
	gen     uint64   // incremented on every loss
	connUp  bool
	chUp    bool
	ended   bool // the connection is closed for good
	closed  bool // close was called
	prevTag string
	// stale are consumer tags of lost sessions still registered in the
	// library: each keeps a goroutine (and what it buffered) until it is
	// cancelled, which the next fresh session does.
	stale []string
}

// session is one server-side life of the link's channel.
type session struct {
	alive bool          // guarded by consumerLink.mu
	gone  chan struct{} // closed when alive turns false
}

// consumer is one basic.consume on a session.
type consumer struct {
	sess       *session
	tag        string
	deliveries <-chan amqp.Delivery
}

type linkHooks struct {
	l   *consumerLink
	def amqp.DefaultConnectionRecovery
}

func (h *linkHooks) OnConnectionClose(conn *amqp.Connection, err *amqp.Error) {
	h.l.mu.RLock()
	closed := h.l.closed
	h.l.mu.RUnlock()
	if !closed {
		h.l.log.Warn("amqp: consumer connection lost; recovering", "connection", h.l.role, "error", err)
	}
	h.l.lose(nil)
	h.def.OnConnectionClose(conn, err)
}

func (h *linkHooks) OnChannelClose(ch *amqp.Channel, err *amqp.Error) {
	h.l.lose(ch)
	h.def.OnChannelClose(ch, err)
}

func openLink(ctx context.Context, cfg Config, role string) (*consumerLink, error) {
	l := &consumerLink{log: cfg.Logger, role: role, kick: make(chan struct{}, 1)}
	conn, err := cfg.dial(ctx, role, cfg.recoveryConfig(&linkHooks{l: l}))
	if err != nil {
		return nil, err
	}
	ch, err := conn.Channel()
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("amqp: open channel: %w", err)
	}
	l.mu.Lock()
	l.conn, l.ch = conn, ch
	l.connUp, l.chUp = !conn.IsClosed(), !ch.IsClosed()
	l.mu.Unlock()

	connStates := make(chan *amqp.StateChanged, 16)
	conn.NotifyStateChange(connStates)
	go l.watch(connStates, true)
	chStates := make(chan *amqp.StateChanged, 16)
	ch.NotifyStateChange(chStates)
	go l.watch(chStates, false)
	return l, nil
}

// lose marks the link down, and its session dead, when ch (nil: the
// connection) is closed now. Called by the hooks before the library recovers.
// A channel event for a channel already reopened is stale and changes
// nothing.
func (l *consumerLink) lose(ch *amqp.Channel) {
	l.mu.Lock()
	switch {
	case ch == nil:
		l.connUp, l.chUp = false, false
	case ch == l.ch && ch.IsClosed():
		l.chUp = false
	default:
		l.mu.Unlock()
		return
	}
	l.gen++
	l.killLocked()
	l.mu.Unlock()
	l.signal()
}

func (l *consumerLink) killLocked() {
	if l.cur != nil && l.cur.alive {
		l.cur.alive = false
		close(l.cur.gone)
	}
}

// watch follows the connection's (conn) or channel's state changes.
func (l *consumerLink) watch(states <-chan *amqp.StateChanged, conn bool) {
	for s := range states {
		l.mu.Lock()
		switch s.To {
		case amqp.StateOpen:
			// A late Open of an earlier recovery must not mark a closed
			// link up: check the object itself.
			if conn {
				l.connUp = !l.conn.IsClosed()
				if l.connUp && s.From == amqp.StateReconnecting {
					l.log.Info("amqp: consumer connection recovered", "connection", l.role)
				}
			} else {
				l.chUp = !l.ch.IsClosed()
			}
		case amqp.StateClosed:
			l.ended = true
			l.gen++
			l.killLocked()
		}
		l.mu.Unlock()
		l.signal()
	}
}

func (l *consumerLink) signal() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// start starts a consumer of queue on the current session if it is alive, or
// else on a new one. Only the owner's loop calls it, one call at a time.
func (l *consumerLink) start(queue string, prefetch int, args amqp.Table) (*consumer, error) {
	l.mu.Lock()
	if l.closed || l.ended {
		l.mu.Unlock()
		return nil, errLinkEnded
	}
	if !l.connUp || !l.chUp {
		l.mu.Unlock()
		return nil, errNotReady
	}
	gen, sess := l.gen, l.cur
	fresh := sess == nil || !sess.alive
	var release []string
	if fresh {
		release = l.stale
		if l.prevTag != "" {
			release = append(release, l.prevTag)
		}
		l.stale, l.prevTag = nil, ""
	}
	l.mu.Unlock()

	// Release the library's buffers of lost sessions' consumers; the server
	// does not know their tags any more and just confirms. A cancel that
	// fails is tried again by the next fresh session.
	for _, tag := range release {
		if err := l.ch.Cancel(tag, false); err != nil {
			l.mu.Lock()
			l.stale = append(l.stale, tag)
			l.mu.Unlock()
		}
	}
	if err := l.ch.Qos(prefetch, 0, false); err != nil {
		return nil, err
	}
	tag := fmt.Sprintf("%s-%d", l.role, l.tags.Add(1))
	deliveries, err := l.ch.Consume(queue, tag, false, false, false, false, args)
	if err != nil {
		return nil, err
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gen != gen || l.closed || l.ended || l.ch.IsClosed() {
		// Lost while starting: whatever was delivered belongs to a dead
		// session and is requeued by the broker; the consumer's tag is
		// released with the next session.
		l.stale = append(l.stale, tag)
		go drain(deliveries)
		return nil, errNotReady
	}
	if fresh {
		l.killLocked()
		sess = &session{alive: true, gone: make(chan struct{})}
		l.cur = sess
	}
	l.prevTag = tag
	return &consumer{sess: sess, tag: tag, deliveries: deliveries}, nil
}

// settle runs f (an ack or nack) on the channel only if sess is still the
// live session; else it returns ErrSessionLost and sends nothing.
func (l *consumerLink) settle(sess *session, f func(ch *amqp.Channel) error) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.cur != sess || !sess.alive {
		return ErrSessionLost
	}
	return f(l.ch)
}

// cancel cancels c (basic.cancel, waiting for the broker's confirmation) so
// that nothing more is delivered; deliveries in flight still arrive, then
// c.deliveries closes. A stale cancel is harmless: RabbitMQ confirms the
// cancel of an unknown consumer tag.
func (l *consumerLink) cancel(ctx context.Context, c *consumer) error {
	done := make(chan error, 1)
	go func() { done <- l.ch.Cancel(c.tag, false) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close ends the link: its session dies and the connection closes, which
// makes the broker requeue every unsettled delivery.
func (l *consumerLink) close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.gen++
	l.killLocked()
	l.mu.Unlock()
	l.signal()
	l.conn.shut(closeTimeout)
}

var errLinkEnded = errors.New("consumer connection closed")

// drain reads and drops the deliveries of a lost session's consumer until
// the library closes the channel (when the consumer is cancelled, or the
// connection closes), so that its buffer goroutine can end. The broker
// requeued them all.
func drain(deliveries <-chan amqp.Delivery) {
	for range deliveries {
	}
}
