package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/broker/memory"
)

func TestOpenDevBroker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	refused := func(context.Context, string, *slog.Logger) (broker.Broker, error) {
		op := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
		return nil, fmt.Errorf("amqp: connect to amqp://ann:hunter2@db:5672/: %w", op)
	}
	app := &App{url: "amqp://ann:hunter2@db:5672/", open: refused}

	b, how, err := openDevBroker(ctx, app, false)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	require.IsType(t, &memory.Broker{}, b)
	require.Equal(t, "RabbitMQ at amqp://ann:xxxxx@db:5672/ not reachable (dial tcp: connect: connection refused): "+
		"using the in-memory broker; nothing survives exit", how)

	opened := memory.New(memory.Config{})
	t.Cleanup(func() { _ = opened.Close() })
	app.open = func(context.Context, string, *slog.Logger) (broker.Broker, error) { return opened, nil }
	b, how, err = openDevBroker(ctx, app, false)
	require.NoError(t, err)
	require.Same(t, opened, b)
	require.Equal(t, "RabbitMQ at amqp://ann:xxxxx@db:5672/", how)

	b, how, err = openDevBroker(ctx, app, true)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	require.NotSame(t, opened, b, "--memory does not even try RabbitMQ")
	require.Equal(t, "in-memory (--memory): nothing survives exit", how)

	app.url = "http://ann:hunter2@db/"
	_, _, err = openDevBroker(ctx, app, false)
	require.ErrorContains(t, err, "scheme must be amqp or amqps", "a wrong URL is an error, not a reason to fall back")
	require.NotContains(t, err.Error(), "hunter2")
}

func TestUnreachableReason(t *testing.T) {
	t.Parallel()
	require.Equal(t, "no answer within 2s", unreachableReason(fmt.Errorf("amqp: connect: %w", context.DeadlineExceeded)))
	require.Equal(t, `Exception (403) Reason: "ACCESS_REFUSED - login refused for amqp://ann:xxxxx@db/"`,
		unreachableReason(errors.New(`Exception (403) Reason: "ACCESS_REFUSED - login refused for amqp://ann:hunter2@db/"`)))
}

func TestDashboardURL(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{
		"127.0.0.1:5555": "http://127.0.0.1:5555/",
		"0.0.0.0:5555":   "http://localhost:5555/",
		"[::]:5555":      "http://localhost:5555/",
		"[::1]:5555":     "http://[::1]:5555/",
	} {
		tcp, err := net.ResolveTCPAddr("tcp", addr)
		require.NoError(t, err)
		require.Equal(t, want, dashboardURL(tcp), addr)
	}
}
