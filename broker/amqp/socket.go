package amqp

import (
	"net"
	"sync"
	"time"
)

// socketConn is the net.Conn under every connection. It does two things
// amqp091-go does not:
//
// Every write gets a deadline. amqp091-go writes without one: a write into a
// socket whose peer stopped reading (a network partition with a full send
// buffer) would block while holding the channel's lock, and the heartbeat
// timeout could not tear the connection down (its shutdown waits for that
// lock) until the kernel gave up on the socket, many minutes later. With the
// deadline the write fails and recovery starts.
//
// Writes can be corked. amqp091-go flushes every published message with a
// write system call of its own; between cork and uncork, writes wait in
// memory and go out together, in order, when the last cork is removed (or
// when corkLimit bytes wait). The publisher corks around every batch it
// writes, and concurrent publishers' corks overlap, so messages of many
// callers share one write. A write that fails after it was reported done
// closes the socket: the library sees the connection lost and recovers, and
// the unconfirmed publishes fail as they would have.
type socketConn struct {
	net.Conn
	timeout time.Duration

	mu    sync.Mutex
	corks int
	buf   []byte
}

// corkLimit is how many bytes wait in a corked socket before they are
// written anyway.
const corkLimit = 64 << 10

func (c *socketConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.corks == 0 {
		return c.write(p)
	}
	c.buf = append(c.buf, p...)
	if len(c.buf) >= corkLimit {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (c *socketConn) write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *socketConn) flushLocked() error {
	_, err := c.write(c.buf)
	c.buf = c.buf[:0]
	if err != nil {
		_ = c.Conn.Close()
	}
	return err
}

// cork holds writes back until the matching uncork.
func (c *socketConn) cork() {
	c.mu.Lock()
	c.corks++
	c.mu.Unlock()
}

// uncork removes one cork; the last one writes what waits.
func (c *socketConn) uncork() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corks--
	if c.corks == 0 && len(c.buf) > 0 {
		_ = c.flushLocked()
	}
}

// socketRef is a connection's current socket, replaced on every reconnect.
type socketRef struct {
	mu   sync.Mutex
	conn *socketConn
}

func (s *socketRef) set(c *socketConn) {
	s.mu.Lock()
	s.conn = c
	s.mu.Unlock()
}

func (s *socketRef) current() *socketConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn
}

func (s *socketRef) close() {
	if c := s.current(); c != nil {
		_ = c.Conn.Close()
	}
}

// cork corks the connection's current socket and returns the function that
// uncorks it (the same socket, even if the connection reconnected since).
func (c *connection) cork() (uncork func()) {
	sock := c.sock.current()
	if sock == nil {
		return func() {}
	}
	sock.cork()
	return sock.uncork
}
