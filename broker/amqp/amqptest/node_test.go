package amqptest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/require"
)

// publishConfirmed publishes bodies persistently to queue and waits for every confirm.
func publishConfirmed(t *testing.T, conn *amqp.Connection, queue string, bodies ...string) {
	t.Helper()
	ch, err := conn.Channel()
	require.NoError(t, err)
	defer ch.Close()
	require.NoError(t, ch.Confirm(false))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, b := range bodies {
		dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", queue, true, false,
			amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte(b)})
		require.NoError(t, err)
		acked, err := dc.WaitContext(ctx)
		require.NoError(t, err)
		require.True(t, acked)
	}
}

// queueDepth returns the ready messages of queue, declared passively.
func queueDepth(t *testing.T, conn *amqp.Connection, queue string) int {
	t.Helper()
	ch, err := conn.Channel()
	require.NoError(t, err)
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	require.NoError(t, err)
	return q.Messages
}

func dial(t *testing.T, u string) *amqp.Connection {
	t.Helper()
	conn, err := amqp.DialConfig(u, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestNodeSurvivesKillAndStop(t *testing.T) {
	t.Parallel()
	n := StartNode(t)
	require.Regexp(t, `^warren-\d+-\d+@localhost$`, n.Name())
	require.Contains(t, n.URL(), "@127.0.0.1:")

	conn := dial(t, n.URL())
	ch, err := conn.Channel()
	require.NoError(t, err)
	_, err = ch.QueueDeclare("amqptest.quorum", true, false, false, false, amqp.Table{"x-queue-type": "quorum"})
	require.NoError(t, err)
	_, err = ch.QueueDeclare("amqptest.classic", true, false, false, false, nil)
	require.NoError(t, err)
	publishConfirmed(t, conn, "amqptest.quorum", "q1", "q2", "q3")
	publishConfirmed(t, conn, "amqptest.classic", "c1", "c2")
	require.Contains(t, n.Ctl(t, "list_queues", "name", "messages"), "amqptest.quorum")

	// Kill hits the broker's own OS process.
	status := n.Ctl(t, "status")
	m := regexp.MustCompile(`OS PID: (\d+)`).FindStringSubmatch(status)
	require.NotNil(t, m, "no OS PID in status: %s", status)
	beamPID, _ := strconv.Atoi(m[1])
	pidFile, err := os.ReadFile(filepath.Join(n.Dir(), "pid"))
	require.NoError(t, err)
	require.Equal(t, m[1], strings.TrimSpace(string(pidFile)))

	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	n.Kill(t)
	require.False(t, processAlive(beamPID), "beam pid %d survived Kill", beamPID)
	select {
	case err := <-closed:
		require.NotNil(t, err, "a killed broker is an abnormal close")
	case <-time.After(5 * time.Second):
		t.Fatal("client did not notice the kill")
	}
	_, err = net.DialTimeout("tcp", n.Addr(), time.Second)
	require.Error(t, err, "nothing listens on a killed node's port")

	n.Start(t)
	conn = dial(t, n.URL())
	require.Equal(t, 3, queueDepth(t, conn, "amqptest.quorum"), "quorum queue survives kill -9")
	require.Equal(t, 2, queueDepth(t, conn, "amqptest.classic"), "durable classic queue survives kill -9")
	ch, err = conn.Channel()
	require.NoError(t, err)
	d, ok, err := ch.Get("amqptest.quorum", true)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "q1", string(d.Body))

	n.Stop(t)
	_, err = net.DialTimeout("tcp", n.Addr(), time.Second)
	require.Error(t, err, "nothing listens on a stopped node's port")
	n.Start(t)
	conn = dial(t, n.URL())
	require.Equal(t, 2, queueDepth(t, conn, "amqptest.quorum"), "quorum queue survives a graceful restart")
}

func TestNodeMemoryAlarmBlocksPublishers(t *testing.T) {
	t.Parallel()
	n := StartNode(t)
	conn := dial(t, n.URL())
	blocked := conn.NotifyBlocked(make(chan amqp.Blocking, 8))
	ch, err := conn.Channel()
	require.NoError(t, err)
	require.NoError(t, ch.Confirm(false))
	q, err := ch.QueueDeclare("amqptest.alarm", true, false, false, false, nil)
	require.NoError(t, err)

	n.SetMemoryAlarm(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, "", q.Name, false, false,
		amqp.Publishing{DeliveryMode: amqp.Persistent, Body: []byte("blocked")})
	require.NoError(t, err)
	select {
	case b := <-blocked:
		require.True(t, b.Active, "expected connection.blocked, got %+v", b)
		require.Contains(t, b.Reason, "memory")
	case <-time.After(10 * time.Second):
		t.Fatal("no connection.blocked under a memory alarm")
	}
	select {
	case <-dc.Done():
		t.Fatal("publish confirmed during a memory alarm")
	case <-time.After(500 * time.Millisecond):
	}

	n.SetMemoryAlarm(t, false)
	select {
	case b := <-blocked:
		require.False(t, b.Active, "expected connection.unblocked, got %+v", b)
	case <-time.After(10 * time.Second):
		t.Fatal("no connection.unblocked after the alarm cleared")
	}
	acked, err := dc.WaitContext(ctx)
	require.NoError(t, err)
	require.True(t, acked, "the held publish is confirmed once the alarm clears")
	require.Equal(t, 1, queueDepth(t, conn, q.Name))
}

func TestNodesRunSideBySide(t *testing.T) {
	t.Parallel()
	n := StartNode(t)
	require.NotEqual(t, URL(t), n.URL())
	out := n.Ctl(t, "eval", "node().")
	require.Equal(t, fmt.Sprintf("'%s'", n.Name()), strings.TrimSpace(out))
	dir := n.Dir()
	require.DirExists(t, dir)
	t.Cleanup(func() {
		// Registered after StartNode's, so it runs first: the node still exists.
		require.DirExists(t, dir)
	})
}
