package demo_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/warrenjobs/warren/cmd/warren/demo"
	"github.com/warrenjobs/warren/jobs"
	"github.com/warrenjobs/warren/jobs/jobstest"
)

// TestProduceMix: one round of the producer is the documented mix, on the
// given queue, and Produce returns nil once its context is cancelled.
func TestProduceMix(t *testing.T) {
	t.Parallel()
	env := jobstest.NewEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- demo.Produce(ctx, env.Client, "demo-q", 1000) }()
	require.Eventually(t, func() bool { return len(env.Recorder.All()) >= 20 }, 10*time.Second, 5*time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Produce did not return after its context was cancelled")
	}

	outcomes := map[string]int{}
	delayed := 0
	for _, e := range env.Recorder.All()[:20] {
		require.Equal(t, "demo-q", e.Queue)
		if !e.RunAt.IsZero() {
			delayed++
		}
		retries := e.MaxRetries
		if retries < 0 {
			retries = 4 // the runner's default
		}
		switch e.Kind {
		case "demo.noop", "demo.echo":
			outcomes["success"]++
		case "demo.sleep":
			var s demo.Sleep
			require.NoError(t, json.Unmarshal(e.Args, &s))
			require.True(t, s.MS >= 300 && s.MS < 3000, "sleep %d ms", s.MS)
			outcomes["slow"]++
		case "demo.fail":
			var f demo.Fail
			require.NoError(t, json.Unmarshal(e.Args, &f))
			if f.Times <= retries {
				outcomes["retried, then success"]++
			} else {
				outcomes["dead"]++
			}
		case "demo.panic":
			outcomes["dead"]++
		default:
			t.Fatalf("unexpected kind %q", e.Kind)
		}
	}
	require.Equal(t, map[string]int{"success": 9, "slow": 4, "retried, then success": 4, "dead": 3}, outcomes)
	require.Equal(t, 3, delayed)
}

func TestProduceRefusesBadRate(t *testing.T) {
	t.Parallel()
	env := jobstest.NewEnv(t)
	for _, rate := range []float64{0, -1} {
		require.Error(t, demo.Produce(context.Background(), env.Client, jobs.DefaultQueue, rate))
	}
	require.Empty(t, env.Recorder.All())
}
