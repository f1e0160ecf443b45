package amqptest

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

// echoServer answers every line with the same line until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// echoClient dials addr and returns a function that sends a line and reads the echo.
func echoClient(t *testing.T, addr string) (net.Conn, func(string, time.Duration) (string, error)) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	r := bufio.NewReader(c)
	return c, func(line string, timeout time.Duration) (string, error) {
		c.SetDeadline(time.Now().Add(timeout))
		if _, err := io.WriteString(c, line+"\n"); err != nil {
			return "", err
		}
		got, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		return got[:len(got)-1], nil
	}
}

func TestProxyForwardsAndCuts(t *testing.T) {
	t.Parallel()
	p := NewProxy(t, echoServer(t))

	_, say := echoClient(t, p.Addr())
	got, err := say("hello", 5*time.Second)
	require.NoError(t, err)
	require.Equal(t, "hello", got)
	require.Equal(t, 1, p.Conns())

	p.Cut()
	require.Equal(t, 0, p.Conns())
	_, err = say("after cut", 5*time.Second)
	require.Error(t, err, "a cut connection must not carry bytes")
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "cut must be noticed at once, not by timeout: %v", err)

	_, say2 := echoClient(t, p.Addr())
	got, err = say2("again", 5*time.Second)
	require.NoError(t, err, "new connections are accepted after a cut")
	require.Equal(t, "again", got)
	require.Equal(t, 1, p.Conns())
}

func TestProxyBlackholeHoldsBytesUntilRestore(t *testing.T) {
	t.Parallel()
	p := NewProxy(t, echoServer(t))
	_, say := echoClient(t, p.Addr())
	_, err := say("warm", 5*time.Second)
	require.NoError(t, err)

	p.Blackhole()
	_, err = say("held", 300*time.Millisecond)
	var ne net.Error
	require.True(t, errors.As(err, &ne) && ne.Timeout(), "blackholed connection must stay silent, got %v", err)

	// A new connection is accepted but gets no answer either.
	_, sayNew := echoClient(t, p.Addr())
	_, err = sayNew("new", 300*time.Millisecond)
	require.True(t, errors.As(err, &ne) && ne.Timeout(), "new connection must be held silent, got %v", err)
	require.Equal(t, 2, p.Conns())

	p.Restore()
	c, _ := echoClient(t, p.Addr())
	r := bufio.NewReader(c)
	c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = io.WriteString(c, "fresh\n")
	require.NoError(t, err)
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "fresh\n", line)
}

func TestProxyBlackholeDeliversHeldBytesAfterRestore(t *testing.T) {
	t.Parallel()
	p := NewProxy(t, echoServer(t))
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	defer c.Close()
	r := bufio.NewReader(c)

	p.Blackhole()
	_, err = io.WriteString(c, "during partition\n")
	require.NoError(t, err)
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	_, err = r.ReadString('\n')
	require.Error(t, err)

	p.Restore()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := r.ReadString('\n')
	require.NoError(t, err, "bytes sent during the blackhole arrive after Restore")
	require.Equal(t, "during partition\n", line)
}

func TestProxyURL(t *testing.T) {
	t.Parallel()
	p := NewProxy(t, "127.0.0.1:5672")
	u, err := url.Parse(p.URL("amqp://guest:guest@127.0.0.1:5672/vh?heartbeat=2"))
	require.NoError(t, err)
	require.Equal(t, p.Addr(), u.Host)
	require.Equal(t, "/vh", u.Path)
	require.Equal(t, "heartbeat=2", u.RawQuery)
	pw, _ := u.User.Password()
	require.Equal(t, "guest", pw)
}

// amqpThrough dials the shared broker through a new proxy with the given heartbeat.
func amqpThrough(t *testing.T, heartbeat time.Duration) (*Proxy, *amqp.Connection, chan *amqp.Error) {
	t.Helper()
	brokerURL := URL(t)
	u, err := url.Parse(brokerURL)
	require.NoError(t, err)
	p := NewProxy(t, u.Host)
	conn, err := amqp.DialConfig(p.URL(brokerURL), amqp.Config{Heartbeat: heartbeat, Dial: amqp.DefaultDial(5 * time.Second)})
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	return p, conn, closed
}

func TestProxyCutAMQP(t *testing.T) {
	t.Parallel()
	p, conn, closed := amqpThrough(t, 10*time.Second)
	ch, err := conn.Channel()
	require.NoError(t, err)
	_, err = ch.QueueDeclare("", false, true, true, false, nil)
	require.NoError(t, err)
	require.Equal(t, 1, p.Conns())

	began := time.Now()
	p.Cut()
	select {
	case err := <-closed:
		require.NotNil(t, err, "a cut is an abnormal close")
		require.Less(t, time.Since(began), 2*time.Second, "the client notices a cut at once")
	case <-time.After(10 * time.Second):
		t.Fatal("client did not notice the cut")
	}
	require.True(t, conn.IsClosed())

	conn2, err := amqp.Dial(p.URL(URL(t)))
	require.NoError(t, err, "new connections pass after a cut")
	defer conn2.Close()
	require.Equal(t, 1, p.Conns())
}

func TestProxyBlackholeAMQP(t *testing.T) {
	t.Parallel()
	const heartbeat = time.Second
	p, conn, closed := amqpThrough(t, heartbeat)
	ch, err := conn.Channel()
	require.NoError(t, err)
	require.NoError(t, ch.Confirm(false))
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	require.NoError(t, err)

	p.Blackhole()
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", q.Name, false, false, amqp.Publishing{Body: []byte("x")})
	require.NoError(t, err, "the write succeeds: the proxy accepts the bytes")

	// amqp091-go declares the connection dead after 1.5 heartbeat intervals
	// without a byte from the server (3 of its half-interval ticks).
	select {
	case err := <-closed:
		require.NotNil(t, err)
		took := time.Since(began)
		require.Greater(t, took, heartbeat, "not before the heartbeat timeout")
		require.Less(t, took, 8*heartbeat)
		t.Logf("blackhole noticed after %s (heartbeat %s)", took.Round(time.Millisecond), heartbeat)
	case <-time.After(10 * heartbeat):
		t.Fatal("client did not notice the blackhole")
	}
	acked, err := dc.WaitContext(ctx)
	require.False(t, acked && err == nil, "a publish into a blackhole is never confirmed")

	// New connections hang silently: the handshake times out.
	_, err = amqp.DialConfig(p.URL(URL(t)), amqp.Config{Dial: amqp.DefaultDial(500 * time.Millisecond)})
	require.Error(t, err)

	p.Restore()
	conn2, err := amqp.DialConfig(p.URL(URL(t)), amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	require.NoError(t, err, "connections pass again after Restore")
	conn2.Close()
}

func TestProxyShortBlackholeAMQPLosesNothing(t *testing.T) {
	t.Parallel()
	p, conn, closed := amqpThrough(t, 10*time.Second)
	ch, err := conn.Channel()
	require.NoError(t, err)
	require.NoError(t, ch.Confirm(false))
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	require.NoError(t, err)

	p.Blackhole()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", q.Name, false, false, amqp.Publishing{Body: []byte("x")})
	require.NoError(t, err)
	select {
	case <-dc.Done():
		t.Fatal("confirmed through a blackhole")
	case <-time.After(300 * time.Millisecond):
	}

	p.Restore()
	acked, err := dc.WaitContext(ctx)
	require.NoError(t, err)
	require.True(t, acked, "the held publish goes through after Restore")
	select {
	case err := <-closed:
		t.Fatalf("connection closed: %v", err)
	default:
	}
}
