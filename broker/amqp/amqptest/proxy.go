package amqptest

import (
	"net"
	"net/url"
	"sync"
	"testing"
)

// Proxy is a TCP proxy between clients and a broker, for tests that lose the
// network: [Proxy.Cut] drops every connection at once, [Proxy.Blackhole] keeps
// them open but lets no byte through, as a partition does. The broker is never
// touched, so a Proxy works in front of the shared broker of [URL].
type Proxy struct {
	target string
	ln     net.Listener

	mu     sync.Mutex
	pipes  map[*pipe]struct{}
	open   chan struct{} // closed while bytes flow; replaced by Blackhole
	closed bool
	wg     sync.WaitGroup
}

// pipe is one client connection and, once dialled, its broker connection.
type pipe struct {
	client net.Conn
	done   chan struct{} // closed when the pipe is torn down
	once   sync.Once

	mu     sync.Mutex
	broker net.Conn
}

// NewProxy starts a proxy on 127.0.0.1 (a free port) to target (host:port).
// t.Cleanup closes it and every connection through it.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("amqptest: proxy listen: %v", err)
	}
	open := make(chan struct{})
	close(open)
	p := &Proxy{target: target, ln: ln, pipes: make(map[*pipe]struct{}), open: open}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Addr returns the proxy's listening address, host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL returns amqpURL with its host and port replaced by the proxy's. (With
// amqps, the certificate must then be valid for 127.0.0.1, or set ServerName.)
func (p *Proxy) URL(amqpURL string) string {
	u, err := url.Parse(amqpURL)
	if err != nil {
		panic("amqptest: Proxy.URL: bad URL " + redact(amqpURL))
	}
	u.Host = p.Addr()
	return u.String()
}

// Cut closes every current connection on both sides with a TCP reset, as when a
// broker or a middlebox crashes. New connections are still accepted and
// forwarded (unless the proxy is blackholed).
func (p *Proxy) Cut() {
	p.mu.Lock()
	pipes := make([]*pipe, 0, len(p.pipes))
	for pp := range p.pipes {
		pipes = append(pipes, pp)
	}
	p.mu.Unlock()
	for _, pp := range pipes {
		pp.teardown()
	}
	// Wait until Conns no longer counts them.
	for _, pp := range pipes {
		p.forget(pp)
	}
}

// Blackhole stops forwarding bytes in both directions while keeping every
// connection open, and holds new connections silent too (accepted, but not
// connected to the broker). Nothing is lost: bytes that arrive meanwhile are held
// and delivered after [Proxy.Restore], as TCP retransmits after a partition heals.
// Heartbeats do not pass either, so both ends declare the connection dead after
// their heartbeat timeout. Bytes already read before the call may still arrive.
func (p *Proxy) Blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.open:
		p.open = make(chan struct{})
	default: // already blackholed
	}
}

// Restore forwards bytes again after [Proxy.Blackhole], held ones first.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.open:
	default:
		close(p.open)
	}
}

// Conns returns how many client connections the proxy holds. A connection
// counts until the proxy sees it end: while blackholed, a client that gave up is
// still counted (nothing is read from it) until Restore or Cut.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pipes)
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // listener closed
		}
		pp := &pipe{client: c, done: make(chan struct{})}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			return
		}
		p.pipes[pp] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.serve(pp)
	}
}

// serve connects pp to the broker once traffic flows, then copies both ways
// until either side ends or the pipe is torn down.
func (p *Proxy) serve(pp *pipe) {
	defer p.wg.Done()
	defer p.forget(pp)
	defer pp.teardown()

	if !p.waitOpen(pp) {
		return
	}
	b, err := net.Dial("tcp", p.target)
	if err != nil {
		return // the client sees its connection closed, as with a dead broker
	}
	pp.mu.Lock()
	pp.broker = b
	pp.mu.Unlock()
	select {
	case <-pp.done: // cut while dialling
		b.Close()
		return
	default:
	}

	var copies sync.WaitGroup
	copies.Add(2)
	go func() { defer copies.Done(); p.copy(pp, b, pp.client) }()
	go func() { defer copies.Done(); p.copy(pp, pp.client, b) }()
	copies.Wait()
}

// copy forwards from src to dst, holding bytes while the proxy is blackholed.
// When either side ends, the whole pipe is torn down.
func (p *Proxy) copy(pp *pipe, dst, src net.Conn) {
	defer pp.teardown()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.waitOpen(pp) {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF, reset, or torn down: end the pipe either way
		}
	}
}

// waitOpen blocks while the proxy is blackholed; false when pp was torn down.
func (p *Proxy) waitOpen(pp *pipe) bool {
	p.mu.Lock()
	open := p.open
	p.mu.Unlock()
	select {
	case <-open:
		return true
	case <-pp.done:
		return false
	}
}

// teardown resets both connections of the pipe (SO_LINGER 0: RST, not FIN).
func (pp *pipe) teardown() {
	pp.once.Do(func() {
		close(pp.done)
		reset(pp.client)
		pp.mu.Lock()
		b := pp.broker
		pp.mu.Unlock()
		if b != nil {
			reset(b)
		}
	})
}

func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

func (p *Proxy) forget(pp *pipe) {
	p.mu.Lock()
	delete(p.pipes, pp)
	p.mu.Unlock()
}

// close stops accepting, resets every connection and waits for the goroutines.
func (p *Proxy) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.ln.Close()
	p.Cut()
	p.wg.Wait()
}
