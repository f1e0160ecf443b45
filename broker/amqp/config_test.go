package amqp

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/broker/amqp/amqptest"
)

func TestConfigDefaultsAndValidation(t *testing.T) {
	t.Parallel()
	c := Config{}.withDefaults()
	if c.URL != "amqp://guest:guest@localhost:5672/" || c.PublishChannels != 4 || c.Heartbeat != 10*time.Second ||
		c.ReconnectInterval != time.Second || c.DialTimeout != 10*time.Second || c.ConnectionName != "warren" || c.Logger == nil {
		t.Fatalf("defaults: %+v", c)
	}
	if err := c.validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	bad := map[string]Config{
		"scheme":            {URL: "http://u:secret@h/"},
		"unparsable":        {URL: "amqp://u:secret@h:notaport/"},
		"whitespace":        {URL: "amqp://u:sec ret@h/"},
		"channels":          {PublishChannels: 65},
		"negative channels": {PublishChannels: -1},
		"heartbeat":         {Heartbeat: time.Millisecond},
		"reconnect":         {ReconnectInterval: time.Nanosecond},
		"dial timeout":      {DialTimeout: time.Nanosecond},
	}
	for name, cfg := range bad {
		err := cfg.withDefaults().validate()
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "sec ret") {
			t.Errorf("%s: error shows the password: %v", name, err)
		}
	}
}

// Errors never show the password: neither a refused login nor an
// unreachable broker.
func TestOpenErrorsHideThePassword(t *testing.T) {
	t.Parallel()
	url := amqptest.URL(t)
	const secret = "s3cr3t-p4ss"
	for name, u := range map[string]string{
		"refused login": strings.Replace(url, "guest:guest@", "guest:"+secret+"@", 1),
		"unreachable":   "amqp://guest:" + secret + "@127.0.0.1:1/",
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		b, err := Open(ctx, Config{URL: u, Logger: testLogger(t), DialTimeout: 2 * time.Second})
		cancel()
		if err == nil {
			_ = b.Close()
			t.Fatalf("%s: Open succeeded", name)
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: error shows the password: %v", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
}

func TestOpenHonoursContext(t *testing.T) {
	t.Parallel()
	// A proxy that holds connections silent: the handshake never completes.
	proxy := amqptest.NewProxy(t, "127.0.0.1:1")
	proxy.Blackhole()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Open(ctx, Config{URL: proxy.URL("amqp://guest:guest@localhost/"), Logger: testLogger(t)})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Open: %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Open took %v with a 300ms context", d)
	}
}

func TestClosed(t *testing.T) {
	t.Parallel()
	x := setup(t, Config{})
	q := x.queue()
	sub := x.consume(q, 1)
	if err := x.b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := x.b.Close(); !errors.Is(err, broker.ErrClosed) {
		t.Fatalf("second Close: %v, want ErrClosed", err)
	}
	select {
	case _, ok := <-sub.Deliveries():
		if ok {
			t.Fatal("delivery after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("subscription still open after the broker closed")
	}
	if err := x.b.Publish(x.ctx, []*broker.Message{newMessage(q)}); !errors.Is(err, broker.ErrClosed) {
		t.Fatalf("Publish after Close: %v", err)
	}
	if err := x.b.Ping(x.ctx); !errors.Is(err, broker.ErrClosed) {
		t.Fatalf("Ping after Close: %v", err)
	}
}
