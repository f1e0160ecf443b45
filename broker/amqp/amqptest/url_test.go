package amqptest

import (
	"net"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

func TestURLReachesABroker(t *testing.T) {
	t.Parallel()
	u := URL(t)
	require.Equal(t, u, URL(t), "URL is resolved once per test binary")

	conn, err := amqp.Dial(u)
	require.NoError(t, err)
	defer conn.Close()
	ch, err := conn.Channel()
	require.NoError(t, err)
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(q.Name, "amq.gen-"))
}

func TestRedact(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"amqp://guest:guest@127.0.0.1:5672/", "amqp://guest:xxxxx@127.0.0.1:5672/"},
		{"amqps://u:s3cr%2Ft@host/vh", "amqps://u:xxxxx@host/vh"},
		{"amqp://127.0.0.1:5672/", "amqp://127.0.0.1:5672/"},
		{"dial amqp://bob:hunter2@h:1/: refused", "dial amqp://bob:xxxxx@h:1/: refused"},
		{"two amqp://a:p1@h/ and amqp://b:p2@h/", "two amqp://a:xxxxx@h/ and amqp://b:xxxxx@h/"},
		{"no url here", "no url here"},
	} {
		got := redact(tc.in)
		require.Equal(t, tc.want, got, "redact(%q)", tc.in)
		require.NotContains(t, got, "hunter2")
	}
}

func TestNoBrokerMessageIsOneLineWithoutPassword(t *testing.T) {
	t.Parallel()
	err := reachable(deadURL(t), 500*time.Millisecond)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "topsecret")
	require.NotContains(t, err.Error(), "\n")
}

// deadURL returns an AMQP URL with a password on a port nobody listens on.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	return "amqp://guest:topsecret@" + addr + "/"
}

func TestResolveExplicitURLMustAnswer(t *testing.T) {
	t.Parallel()
	_, node, err := resolve(deadURL(t), true)
	require.Error(t, err)
	require.Nil(t, node, "an explicit URL never falls back to a throwaway node")
	msg := err.Error()
	require.NotContains(t, msg, "topsecret")
	require.NotContains(t, msg, "\n")
	require.Contains(t, msg, "WARREN_AMQP_URL")
}

func TestResolveStartsThrowawayNode(t *testing.T) {
	t.Parallel()
	u, node, err := resolve(deadURL(t), false)
	require.NoError(t, err)
	require.NotNil(t, node)
	t.Cleanup(node.destroy)
	require.Equal(t, node.URL(), u)
	require.NoError(t, reachable(u, 5*time.Second))
}
