package main_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestAcceptance is issue 3's "done when": 1,000 demo.noop and 50 demo.fail
// {"times":5} with 2 retries 1 s apart; a worker run to idle leaves nothing
// ready and exactly the 50 dead-lettered (after attempt 3); retrying them all
// and a second run leaves nothing ready and nothing dead (they succeed at
// attempt 6: the attempt number kept counting, the budget was fresh).
func TestAcceptance(t *testing.T) {
	t.Parallel()
	s := setup(t)
	q := s.queue()

	r := s.ok("enqueue", "demo.noop", "--queue", q, "--count", "1000", "--quiet")
	require.Equal(t, "1000", strings.TrimSpace(r.stdout))
	r = s.ok("enqueue", "demo.fail", `{"times":5}`, "--queue", q, "--count", "50", "--max-retries", "2", "--retry-delay", "1s")
	failIDs := lines(r.stdout)
	require.Len(t, failIDs, 50)

	began := time.Now()
	w := s.start("worker", "--queues", q, "--exit-when-idle", "3s", "--concurrency", "20")
	require.Equal(t, 0, w.wait(60*time.Second), "worker stderr:\n%s", w.stderr.String())
	t.Logf("first worker run: %s", time.Since(began).Round(time.Millisecond))

	var info struct {
		Ready int `json:"ready"`
		Dead  int `json:"dead"`
	}
	s.okJSON(&info, "queues", "inspect", "--since", window, q, "--json")
	require.Equal(t, 0, info.Ready)
	require.Equal(t, 50, info.Dead)

	var dead []struct {
		ID         string `json:"id"`
		Kind       string `json:"kind"`
		Attempt    int    `json:"attempt"`
		LastError  string `json:"last_error"`
		DeadReason string `json:"dead_reason"`
	}
	s.okJSON(&dead, "dead", "ls", q, "--json")
	require.Len(t, dead, 50)
	var deadIDs []string
	for _, d := range dead {
		require.Equal(t, "demo.fail", d.Kind)
		require.Equal(t, 3, d.Attempt, "1 attempt + 2 retries")
		require.Contains(t, d.LastError, "attempt 3 of 5")
		deadIDs = append(deadIDs, d.ID)
	}
	slices.Sort(deadIDs)
	slices.Sort(failIDs)
	require.Equal(t, failIDs, deadIDs, "exactly the demo.fail tasks are dead")

	r = s.ok("dead", "retry", q, "--all")
	require.Equal(t, "retried 50 dead letters of queue "+q, strings.TrimSpace(r.stdout))

	began = time.Now()
	w = s.start("worker", "--queues", q, "--exit-when-idle", "3s", "--concurrency", "20")
	require.Equal(t, 0, w.wait(60*time.Second), "worker stderr:\n%s", w.stderr.String())
	t.Logf("second worker run: %s", time.Since(began).Round(time.Millisecond))

	s.okJSON(&info, "queues", "inspect", "--since", window, q, "--json")
	require.Equal(t, 0, info.Ready)
	require.Equal(t, 0, info.Dead)
	s.okJSON(&dead, "dead", "ls", q, "--json")
	require.Empty(t, dead)
}
