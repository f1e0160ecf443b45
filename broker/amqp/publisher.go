package amqp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenjobs/warren/broker"
)

var (
	// ErrBlocked reports a publish refused without trying because RabbitMQ
	// blocked the publishing connection (a memory or disk alarm).
	ErrBlocked = errors.New("broker blocked publishing (resource alarm)")
	// ErrNotConnected reports a publish refused without trying because the
	// publishing connection is lost and being recovered.
	ErrNotConnected = errors.New("not connected to the broker (recovering)")
	// ErrConnectionLost reports a publish whose confirm never came because
	// the connection or channel was lost after the message was written: the
	// broker may or may not have it.
	ErrConnectionLost = errors.New("connection lost before the broker confirmed; the message may or may not be enqueued")
)

// outgoing is one message ready to be written.
type outgoing struct {
	id       string
	queue    string // logical queue, for the topology cache; "" for the events stream
	exchange string
	key      string
	pub      amqp.Publishing
}

// publisher owns the publishing connection and a pool of confirm-mode
// channels on it. It recovers through the library; its recovery hooks mark a
// channel down synchronously, before the library reconnects, so nothing is
// written on a channel between its loss and its reopening (see pubChannel).
type publisher struct {
	log    *slog.Logger
	conn   *connection
	closed atomic.Bool
	pool   atomic.Pointer[[]*pubChannel] // set once, after every channel is open
	onLost func(err *amqp.Error)         // called by the hooks, before recovery

	blocked atomic.Pointer[string] // the alarm's reason while blocked
}

// pubChannel is one channel of the pool. mu is held for reading while
// writing to the channel and for writing by the recovery hook that marks it
// down; so a write either completes before the channel is marked down or
// sees it down. The library reopens the channel in confirm mode; the state
// listener marks it ready again. Publishers only ever try-lock mu: while the
// hook waits for a write stuck in a dead socket, they fail at once instead of
// queueing behind it past their deadline.
type pubChannel struct {
	ch      *amqp.Channel
	mu      sync.RWMutex
	ready   atomic.Bool   // written under mu
	lost    chan struct{} // closed when the session in use is lost; guarded by mu
	returns *returnSet
}

func (pc *pubChannel) down() {
	pc.mu.Lock()
	if pc.ready.Load() {
		pc.ready.Store(false)
		close(pc.lost)
		// Returns of the lost session nobody took: their publishes failed,
		// and a retry of the same task must not match them.
		pc.returns.reset()
	}
	pc.mu.Unlock()
}

func (pc *pubChannel) up() {
	pc.mu.Lock()
	if !pc.ready.Load() && !pc.ch.IsClosed() {
		pc.lost = make(chan struct{})
		pc.ready.Store(true)
	}
	pc.mu.Unlock()
}

// publisherHooks is the publishing connection's amqp.ConnectionRecovery.
type publisherHooks struct {
	p   *publisher
	def amqp.DefaultConnectionRecovery
}

func (h *publisherHooks) OnConnectionClose(conn *amqp.Connection, err *amqp.Error) {
	if !h.p.closed.Load() {
		h.p.log.Warn("amqp: publishing connection lost; recovering", "error", err)
	}
	h.p.blocked.Store(nil) // a new connection starts unblocked
	for _, pc := range h.p.channels() {
		pc.down()
	}
	h.p.onLost(err)
	h.def.OnConnectionClose(conn, err)
}

func (h *publisherHooks) OnChannelClose(ch *amqp.Channel, err *amqp.Error) {
	for _, pc := range h.p.channels() {
		if pc.ch == ch && ch.IsClosed() {
			pc.down()
		}
	}
	h.p.onLost(err)
	h.def.OnChannelClose(ch, err)
}

func newPublisher(ctx context.Context, cfg Config, onLost func(*amqp.Error)) (*publisher, error) {
	p := &publisher{log: cfg.Logger, onLost: onLost}
	conn, err := cfg.dial(ctx, "publish", cfg.recoveryConfig(&publisherHooks{p: p}))
	if err != nil {
		return nil, err
	}
	pool := make([]*pubChannel, cfg.PublishChannels)
	for i := range pool {
		ch, err := conn.Channel()
		if err == nil {
			err = ch.Confirm(false)
		}
		if err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("amqp: open publishing channel: %w", err)
		}
		pc := &pubChannel{ch: ch, lost: make(chan struct{})}
		pc.ready.Store(true)
		pc.returns = watchReturns(ch)
		states := make(chan *amqp.StateChanged, 16)
		ch.NotifyStateChange(states)
		go func() {
			for s := range states {
				if s.To == amqp.StateOpen {
					pc.up()
				}
			}
			pc.down()
		}()
		pool[i] = pc
	}
	p.pool.Store(&pool)
	p.conn = conn

	blocks := conn.NotifyBlocked(make(chan amqp.Blocking, 16))
	go func() {
		for b := range blocks {
			if b.Active {
				reason := b.Reason
				p.blocked.Store(&reason)
				p.log.Warn("amqp: broker blocked publishing", "reason", b.Reason)
			} else {
				p.blocked.Store(nil)
				p.log.Info("amqp: broker unblocked publishing")
			}
		}
	}()
	states := make(chan *amqp.StateChanged, 16)
	conn.NotifyStateChange(states)
	go func() {
		for s := range states {
			if s.From == amqp.StateReconnecting && s.To == amqp.StateOpen {
				p.log.Info("amqp: publishing connection recovered")
			}
		}
	}()
	return p, nil
}

// channels returns the pool; empty while it is being built (a connection lost
// then fails Open anyway).
func (p *publisher) channels() []*pubChannel {
	if pool := p.pool.Load(); pool != nil {
		return *pool
	}
	return nil
}

// pick returns a ready channel of the pool, read-locked: the caller writes,
// then unlocks. It tries the pool's channels from the one at index start
// on, and never waits for a lock.
func (p *publisher) pick(start int) (*pubChannel, error) {
	if b := p.blocked.Load(); b != nil {
		return nil, fmt.Errorf("%w: %s", ErrBlocked, *b)
	}
	pool := p.channels()
	n := len(pool)
	for i := range n {
		pc := pool[(start+i)%n]
		if !pc.ready.Load() || !pc.mu.TryRLock() {
			continue // down, or being marked down
		}
		if pc.ready.Load() {
			return pc, nil
		}
		pc.mu.RUnlock()
	}
	return nil, ErrNotConnected
}

// usable reports whether publishing could be tried now (for Ping).
func (p *publisher) usable() error {
	pc, err := p.pick(0)
	if err != nil {
		return err
	}
	pc.mu.RUnlock()
	return nil
}

// spreadMin is the batch size from which send spreads a batch over the
// pool's channels: RabbitMQ runs each channel in a process of its own, so
// parts of a large batch are taken in parallel. Smaller batches all go to
// the first ready channel: concurrent single enqueues are confirmed faster
// by one channel process than spread over several (about 12% here with 16
// callers), and the rest of the pool stands by when it is down.
const spreadMin = 256

// send publishes outs and waits for every confirm. It returns one error per
// message, nil when confirmed; a returned (unroutable) message wraps
// broker.ErrUnroutable. It returns when ctx is done at the latest: writes
// still in progress then finish in the background, and their messages count
// as failed (the broker may still have them).
func (p *publisher) send(ctx context.Context, outs []*outgoing) []error {
	parts := min(len(p.channels()), len(outs)/(spreadMin/2))
	if len(outs) < spreadMin || parts < 2 {
		return p.sendOn(ctx, outs, 0)
	}
	errs := make([]error, len(outs))
	size := (len(outs) + parts - 1) / parts
	var wg sync.WaitGroup
	for part, lo := 0, 0; lo < len(outs); part, lo = part+1, lo+size {
		hi := min(lo+size, len(outs))
		wg.Go(func() { copy(errs[lo:hi], p.sendOn(ctx, outs[lo:hi], part)) })
	}
	wg.Wait()
	return errs
}

// sendOn writes outs on one channel (the first ready from index start),
// pipelined, then waits for every confirm (see send).
func (p *publisher) sendOn(ctx context.Context, outs []*outgoing, start int) []error {
	errs := make([]error, len(outs))
	fail := func(err error) []error {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	pc, err := p.pick(start)
	if err != nil {
		return fail(err)
	}
	lost := pc.lost
	dcs := make([]*amqp.DeferredConfirmation, len(outs))
	werrs := make([]error, len(outs))
	written := make(chan struct{})
	go func() {
		defer close(written)
		defer pc.mu.RUnlock()
		// Corked, the batch (and whatever other publishers write meanwhile)
		// goes out in as few writes as fit.
		uncork := p.conn.cork()
		defer uncork()
		for i, o := range outs {
			dcs[i], werrs[i] = pc.ch.PublishWithDeferredConfirmWithContext(ctx, o.exchange, o.key, true, false, o.pub)
		}
	}()
	select {
	case <-written:
	case <-ctx.Done():
		return fail(ctx.Err())
	}

	var asked []string
	for i, dc := range dcs {
		if werrs[i] != nil {
			errs[i] = werrs[i]
			continue
		}
		errs[i] = waitConfirm(ctx, dc, lost)
		if errs[i] == nil {
			asked = append(asked, outs[i].id)
		}
	}
	if len(asked) == 0 {
		return errs
	}
	returned := pc.returns.take(asked)
	j := 0
	for i := range outs {
		if errs[i] != nil || werrs[i] != nil {
			continue
		}
		if returned[j] {
			errs[i] = broker.ErrUnroutable
		}
		j++
	}
	return errs
}

// waitConfirm waits for one publisher confirm. A confirm that is already in
// wins over a lost session or a done context.
func waitConfirm(ctx context.Context, dc *amqp.DeferredConfirmation, lost <-chan struct{}) error {
	select {
	case <-dc.Done():
	case <-lost:
	case <-ctx.Done():
	}
	select {
	case <-dc.Done():
		if dc.Acked() {
			return nil
		}
		select {
		case <-lost:
			return ErrConnectionLost
		default:
			return broker.ErrNacked
		}
	default:
	}
	select {
	case <-lost:
		return ErrConnectionLost
	default:
		return ctx.Err()
	}
}

func (p *publisher) close() {
	p.closed.Store(true)
	if p.conn != nil {
		p.conn.shut(closeTimeout)
	}
}
