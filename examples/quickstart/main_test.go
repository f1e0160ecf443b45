package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/warrenjobs/warren/broker/amqp"
	"github.com/warrenjobs/warren/broker/amqp/amqptest"
)

// The quickstart builds and runs against the broker, printing what its
// handler did.
func TestQuickstartRuns(t *testing.T) {
	url := amqptest.URL(t)
	queue := "qs-" + uuid.NewString()[:8]
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if b, err := amqp.Open(ctx, amqp.Config{URL: url}); err == nil {
			_ = b.DeleteQueue(ctx, queue)
			_ = b.Close()
		}
	})
	cmd := exec.Command("go", "run", ".")
	cmd.Env = append(cmd.Environ(), "WARREN_AMQP_URL="+url, "QUICKSTART_QUEUE="+queue)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, stderr.String())
	require.Contains(t, string(out), "enqueued")
	require.Contains(t, string(out), `sending "Welcome" to ada@example.com (attempt 1)`)
	require.Equal(t, 2, strings.Count(string(out), "\n"), "nothing else printed:\n%s", out)
}
