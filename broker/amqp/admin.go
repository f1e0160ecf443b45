package amqp

import (
	"context"
	"errors"
	"fmt"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenjobs/warren/broker"
)

// admin runs short operations (declares, figures, purges, dead-letter scans)
// each on a channel of its own, opened and closed around the operation, on a
// connection without library recovery. It is dialled on first use and dialled
// again on the first use after it died.
//
// Why not on a recovering connection: a passive declare of a missing queue
// closes its channel with 404 by design, and on a recovering connection the
// library then reopens that channel behind our back; worse, amqp091-go
// v1.17.0 wedges connection recovery for good when a channel is closed while
// its connection is down (Connection.Reconnect fails on every attempt with
// "channel/connection is not open" because the closed channel is still
// registered). Throwaway channels live where that cannot happen.
type admin struct {
	cfg     Config
	dialing sem // one dial at a time; waiting for it honours the caller's ctx

	mu     sync.Mutex
	conn   *connection
	closed bool
}

func newAdmin(cfg Config) *admin { return &admin{cfg: cfg, dialing: newSem()} }

// current returns the live connection, or nil.
func (a *admin) current() (*connection, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, broker.ErrClosed
	}
	if a.conn != nil && !a.conn.IsClosed() {
		return a.conn, nil
	}
	return nil, nil
}

func (a *admin) connection(ctx context.Context) (*connection, error) {
	if conn, err := a.current(); conn != nil || err != nil {
		return conn, err
	}
	if err := a.dialing.acquire(ctx); err != nil {
		return nil, err
	}
	defer a.dialing.release()
	if conn, err := a.current(); conn != nil || err != nil {
		return conn, err
	}
	conn, err := a.cfg.dial(ctx, "admin", nil)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		go conn.shut(closeTimeout)
		return nil, broker.ErrClosed
	}
	a.conn = conn
	return conn, nil
}

// do runs fn on a fresh channel and closes the channel afterwards (which
// requeues anything fn left unacknowledged). It returns when fn does or when
// ctx is done, whichever comes first; fn should watch ctx too, and after ctx
// is done it finishes in the background.
func (a *admin) do(ctx context.Context, fn func(ch *amqp.Channel) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	conn, err := a.connection(ctx)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() {
		ch, err := conn.Channel()
		if err != nil {
			done <- fmt.Errorf("amqp: open channel: %w", err)
			return
		}
		err = fn(ch)
		_ = ch.Close() // a no-op when a channel exception closed it already
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *admin) close() {
	a.mu.Lock()
	conn := a.conn
	a.closed = true
	a.mu.Unlock()
	if conn != nil && !conn.IsClosed() {
		conn.shut(closeTimeout)
	}
}

// isCode reports whether err is an AMQP exception with the given reply code
// (amqp.NotFound, amqp.PreconditionFailed, ...).
func isCode(err error, code int) bool {
	var ae *amqp.Error
	return errors.As(err, &ae) && ae.Code == code
}

// notFound maps a 404 channel exception to broker.ErrQueueNotFound.
func notFound(err error, queue string) error {
	if isCode(err, amqp.NotFound) {
		return fmt.Errorf("amqp: queue %s: %w", queue, broker.ErrQueueNotFound)
	}
	return err
}
