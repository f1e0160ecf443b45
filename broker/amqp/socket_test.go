package amqp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// TestCorkedWritesGoOutTogether: between cork and the last uncork nothing
// reaches the socket; then everything does, in one write, in order. Past
// corkLimit the writes go out without waiting.
func TestCorkedWritesGoOutTogether(t *testing.T) {
	client, server := net.Pipe()
	defer server.Close()
	c := &socketConn{Conn: client, timeout: time.Second}
	got := make(chan []byte, 16)
	go func() {
		buf := make([]byte, 2*corkLimit)
		for {
			n, err := server.Read(buf)
			if err != nil {
				close(got)
				return
			}
			got <- bytes.Clone(buf[:n])
		}
	}()

	c.cork()
	c.cork() // a second publisher's cork
	for _, s := range []string{"one ", "two ", "three"} {
		if n, err := c.Write([]byte(s)); err != nil || n != len(s) {
			t.Fatalf("corked Write(%q) = %d, %v", s, n, err)
		}
	}
	c.uncork()
	select {
	case b := <-got:
		t.Fatalf("%q written while still corked once", b)
	case <-time.After(20 * time.Millisecond):
	}
	c.uncork()
	if b := <-got; string(b) != "one two three" {
		t.Fatalf("after the last uncork the socket got %q in one write, want %q", b, "one two three")
	}

	// Uncorked, writes go straight through.
	if _, err := c.Write([]byte("now")); err != nil {
		t.Fatal(err)
	}
	if b := <-got; string(b) != "now" {
		t.Fatalf("uncorked write arrived as %q", b)
	}

	// Corked past the limit: written without waiting for uncork.
	c.cork()
	big := bytes.Repeat([]byte("x"), corkLimit)
	if _, err := c.Write(big); err != nil {
		t.Fatal(err)
	}
	var n int
	for n < corkLimit {
		select {
		case b := <-got:
			n += len(b)
		case <-time.After(time.Second):
			t.Fatalf("only %d of %d bytes written past the cork limit", n, corkLimit)
		}
	}
	c.uncork()
}

// TestCorkedWriteFailureClosesTheSocket: a write that was reported done and
// then failed at uncork closes the socket, so that the library sees the
// connection lost (its unconfirmed publishes fail) instead of waiting.
func TestCorkedWriteFailureClosesTheSocket(t *testing.T) {
	client, server := net.Pipe()
	c := &socketConn{Conn: client, timeout: 50 * time.Millisecond}
	c.cork()
	if _, err := c.Write([]byte("lost")); err != nil {
		t.Fatal(err)
	}
	c.uncork() // nobody reads the pipe: the write times out
	if _, err := client.Read(make([]byte, 1)); !errors.Is(err, io.ErrClosedPipe) {
		t.Fatalf("read on the socket after the failed write: %v, want it closed", err)
	}
	if _, err := c.Write([]byte("more")); err == nil {
		t.Fatal("write after the failed corked write succeeded")
	}
	server.Close()
}
