package main_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type queueJSON struct {
	Queue                 string   `json:"queue"`
	Ready                 int      `json:"ready"`
	Consumers             int      `json:"consumers"`
	Dead                  int      `json:"dead"`
	Running               int      `json:"running"`
	Delayed               int      `json:"delayed"`
	OldestReadyAgeSeconds *float64 `json:"oldest_ready_age_seconds"`
}

func TestQueues(t *testing.T) {
	t.Parallel()
	s := setup(t)
	q, declared, gone := s.queue(), s.queue(), s.queue()

	s.ok("enqueue", "demo.noop", "--queue", q, "--count", "4", "--quiet")
	// A queue with no events: only listed when named.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, s.b.Declare(ctx, declared))

	time.Sleep(1100 * time.Millisecond) // let the oldest task age measurably

	// ls: from the events log, plus named queues; missing ones left out.
	var rows []queueJSON
	s.okJSON(&rows, "queues", "ls", "--since", window, declared, gone, "--json")
	byName := map[string]queueJSON{}
	for _, r := range rows {
		byName[r.Queue] = r
	}
	require.Contains(t, byName, q, "queue seen in enqueue events")
	require.Contains(t, byName, declared, "queue named on the command line")
	require.NotContains(t, byName, gone, "queue that does not exist")
	require.Equal(t, 4, byName[q].Ready)
	require.Equal(t, 0, byName[declared].Ready)

	// Human table: a header and aligned columns.
	out := s.ok("queues", "ls", "--since", window, declared).stdout
	require.Regexp(t, `(?m)^QUEUE\s+READY\s+RUNNING\s+DELAYED\s+DEAD\s+CONSUMERS\s+OLDEST READY$`, out)
	require.Regexp(t, `(?m)^`+declared+`\s+0\s+0\s+0\s+0\s+0\s+-$`, out)

	// inspect: broker figures plus the events' estimates.
	var info queueJSON
	s.okJSON(&info, "queues", "inspect", "--since", window, q, "--json")
	require.Equal(t, q, info.Queue)
	require.Equal(t, 4, info.Ready)
	require.Equal(t, 0, info.Dead)
	require.Equal(t, 0, info.Consumers)
	require.NotNil(t, info.OldestReadyAgeSeconds)
	require.GreaterOrEqual(t, *info.OldestReadyAgeSeconds, 1.0)
	require.Less(t, *info.OldestReadyAgeSeconds, 120.0)
	out = s.ok("queues", "inspect", "--since", window, q).stdout
	require.Regexp(t, `(?m)^ready\s+4$`, out)

	// purge removes the ready tasks.
	r := s.ok("queues", "purge", q)
	require.Equal(t, "purged 4 tasks from queue "+q+"\n", r.stdout)
	s.okJSON(&info, "queues", "inspect", "--since", window, q, "--json")
	require.Equal(t, 0, info.Ready)
	require.Nil(t, info.OldestReadyAgeSeconds, "no age without ready tasks")

	// Bad input.
	s.fails([]string{`queue "` + gone + `" not found`}, "queues", "inspect", gone)
	s.fails([]string{`queue "` + gone + `" not found`}, "queues", "purge", gone)
	s.fails([]string{"invalid queue name", `"bad.name"`}, "queues", "inspect", "bad.name")
	s.fails([]string{"invalid queue name"}, "queues", "ls", "bad/name")
	s.fails([]string{"accepts 1 arg(s), received 0"}, "queues", "inspect")
}

func TestDead(t *testing.T) {
	t.Parallel()
	s := setup(t)
	q, empty := s.queue(), s.queue()

	panics := lines(s.ok("enqueue", "demo.panic", "--queue", q, "--count", "3", "--max-retries", "0").stdout)
	failID := strings.TrimSpace(s.ok("enqueue", "demo.fail", `{"times":1}`, "--queue", q, "--max-retries", "0").stdout)
	w := s.start("worker", "--queues", q, "--exit-when-idle", "1s")
	require.Equal(t, 0, w.wait(60*time.Second), w.stderr.String())

	type deadJSON struct {
		ID         string     `json:"id"`
		Kind       string     `json:"kind"`
		Queue      string     `json:"queue"`
		Args       any        `json:"args"`
		Attempt    int        `json:"attempt"`
		EnqueuedAt time.Time  `json:"enqueued_at"`
		FailedAt   *time.Time `json:"failed_at"`
		DeadAt     time.Time  `json:"dead_at"`
		DeadReason string     `json:"dead_reason"`
		LastError  string     `json:"last_error"`
		Stack      string     `json:"stack"`
	}
	var dead []deadJSON
	s.okJSON(&dead, "dead", "ls", q, "--json")
	require.Len(t, dead, 4)
	for _, d := range dead {
		require.Equal(t, q, d.Queue)
		require.Equal(t, 1, d.Attempt)
		require.NotNil(t, d.FailedAt)
		require.False(t, d.DeadAt.IsZero())
		require.False(t, d.EnqueuedAt.IsZero())
		require.Contains(t, d.DeadReason, "max retries exceeded")
		require.Empty(t, d.Stack, "ls leaves stacks to show")
	}
	s.okJSON(&dead, "dead", "ls", q, "--json", "--limit", "2")
	require.Len(t, dead, 2)
	r := s.ok("dead", "ls", q, "--limit", "2")
	require.Contains(t, r.stderr, "showing 2 of 4 dead letters")
	require.Regexp(t, `(?m)^ID\s+KIND\s+ATTEMPTS\s+DEAD\s+REASON\s+LAST ERROR$`, r.stdout)

	// show: everything, with the panic's stack.
	var one deadJSON
	s.okJSON(&one, "dead", "show", q, panics[0], "--json")
	require.Equal(t, panics[0], one.ID)
	require.Equal(t, "demo.panic", one.Kind)
	require.Equal(t, map[string]any{}, one.Args)
	require.Contains(t, one.LastError, "panic: demo.panic: deliberate panic")
	require.Contains(t, one.Stack, "demo.Register")
	r = s.ok("dead", "show", q, panics[0])
	require.Contains(t, r.stdout, "stack:")
	s.fails([]string{`dead letter "nope" not found in queue "` + q + `"`}, "dead", "show", q, "nope")

	// retry: argument errors and unknown IDs change nothing.
	s.fails([]string{"give the task IDs to retry, or --all"}, "dead", "retry", q)
	s.fails([]string{"give task IDs or --all, not both"}, "dead", "retry", q, failID, "--all")
	s.fails([]string{`not dead letters of queue "` + q + `": nope; nothing done`}, "dead", "retry", q, failID, "nope")
	require.Equal(t, 4, s.stats(q).Dead)
	require.Equal(t, 0, s.stats(q).Ready)

	r = s.ok("dead", "retry", q, failID)
	require.Equal(t, "retried 1 dead letters of queue "+q+"\n", r.stdout)
	st := s.stats(q)
	require.Equal(t, 3, st.Dead)
	require.Equal(t, 1, st.Ready)

	// purge: given IDs, then all.
	var purged map[string]any
	s.okJSON(&purged, "dead", "purge", q, panics[0], "--json")
	require.Equal(t, map[string]any{"queue": q, "deleted": 1.0}, purged)
	require.Equal(t, 2, s.stats(q).Dead)
	r = s.ok("dead", "purge", q)
	require.Equal(t, "deleted 2 dead letters of queue "+q+"\n", r.stdout)
	require.Equal(t, 0, s.stats(q).Dead)
	require.Equal(t, 1, s.stats(q).Ready, "purging dead letters leaves ready tasks")

	// An existing queue without dead letters, and a missing queue.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, s.b.Declare(ctx, empty))
	s.okJSON(&dead, "dead", "ls", empty, "--json")
	require.Empty(t, dead)
	missing := "cli-never-declared"
	s.fails([]string{`queue "` + missing + `" not found`}, "dead", "ls", missing)
	s.fails([]string{`queue "` + missing + `" not found`}, "dead", "retry", missing, "--all")
	s.fails([]string{`queue "` + missing + `" not found`}, "dead", "purge", missing)
	s.fails([]string{"invalid --limit -1"}, "dead", "ls", q, "--limit", "-1")
}
