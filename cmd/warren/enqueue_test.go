package main_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/warrenjobs/warren/broker"
)

func TestEnqueue(t *testing.T) {
	t.Parallel()
	s := setup(t)
	q := s.queue()

	// One task: its ID on stdout.
	r := s.ok("enqueue", "demo.echo", `{"msg":"hi"}`, "--queue", q)
	ids := lines(r.stdout)
	require.Len(t, ids, 1)
	_, err := uuid.Parse(ids[0])
	require.NoError(t, err)

	// Args default to {}.
	require.Len(t, lines(s.ok("enqueue", "demo.noop", "--queue", q).stdout), 1)

	// --count with --quiet prints the count; with --json the IDs as an array.
	r = s.ok("enqueue", "demo.noop", "--queue", q, "--count", "3", "--quiet")
	require.Equal(t, "3\n", r.stdout)
	var jsonIDs []string
	s.okJSON(&jsonIDs, "enqueue", "demo.noop", "--queue", q, "--count", "2", "--json")
	require.Len(t, jsonIDs, 2)
	require.NotEqual(t, jsonIDs[0], jsonIDs[1])

	// Args from stdin.
	r = s.runStdin(`{"ms": 1}`, "enqueue", "demo.sleep", "-", "--queue", q)
	require.Equal(t, 0, r.code, r.stderr)
	require.Len(t, lines(r.stdout), 1)

	require.Equal(t, 8, s.stats(q).Ready)

	// Delayed tasks are held by the broker, not ready.
	s.ok("enqueue", "demo.noop", "--queue", q, "--delay", "1h")
	s.ok("enqueue", "demo.noop", "--queue", q, "--at", time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	require.Equal(t, 8, s.stats(q).Ready)
	var info struct {
		Ready   int `json:"ready"`
		Delayed int `json:"delayed"`
	}
	s.okJSON(&info, "queues", "inspect", "--since", window, q, "--json")
	require.Equal(t, 8, info.Ready)
	require.Equal(t, 2, info.Delayed)

	// A short delay arrives.
	s.ok("enqueue", "demo.noop", "--queue", q, "--delay", "1s")
	require.Eventually(t, func() bool { return s.stats(q).Ready == 9 }, 15*time.Second, 100*time.Millisecond)
}

// TestEnqueueOptionsReachTheTask checks that --max-retries, --timeout and
// --retry-delay end up on the message, by reading them back from a dead letter.
func TestEnqueueOptionsReachTheTask(t *testing.T) {
	t.Parallel()
	s := setup(t)
	q := s.queue()
	r := s.ok("enqueue", "demo.sleep", `{"ms":5000}`, "--queue", q, "--max-retries", "0", "--timeout", "200ms")
	id := strings.TrimSpace(r.stdout)
	w := s.start("worker", "--queues", q, "--exit-when-idle", "1s")
	require.Equal(t, 0, w.wait(60*time.Second), w.stderr.String())
	var d struct {
		ID         string `json:"id"`
		Attempt    int    `json:"attempt"`
		MaxRetries int    `json:"max_retries"`
		LastError  string `json:"last_error"`
	}
	s.okJSON(&d, "dead", "show", q, id, "--json")
	require.Equal(t, id, d.ID)
	require.Equal(t, 1, d.Attempt, "--max-retries 0: no retry")
	require.Equal(t, 0, d.MaxRetries)
	require.Contains(t, d.LastError, "time limit exceeded (200ms)")
}

func TestEnqueueBadInput(t *testing.T) {
	t.Parallel()
	s := setup(t)
	q := s.queue()
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for _, c := range []struct {
		name  string
		args  []string
		stdin string
		want  []string
	}{
		{"unknown kind", []string{"enqueue", "demo.nope"},
			"", []string{`unknown kind "demo.nope"`, "demo.echo, demo.fail, demo.noop, demo.panic, demo.sleep"}},
		{"invalid JSON", []string{"enqueue", "demo.echo", `{"msg":`},
			"", []string{`invalid JSON args for kind "demo.echo"`}},
		{"invalid JSON on stdin", []string{"enqueue", "demo.echo", "-"},
			"not json", []string{`invalid JSON args for kind "demo.echo"`}},
		{"unknown field", []string{"enqueue", "demo.fail", `{"tims":5}`},
			"", []string{`invalid args of kind "demo.fail"`, `unknown field "tims"`}},
		{"wrong type", []string{"enqueue", "demo.fail", `{"times":"five"}`},
			"", []string{`invalid args of kind "demo.fail"`}},
		{"delay and at", []string{"enqueue", "demo.noop", "--delay", "1m", "--at", future},
			"", []string{"--delay and --at conflict"}},
		{"bad at", []string{"enqueue", "demo.noop", "--at", "tomorrow"},
			"", []string{`invalid --at "tomorrow"`, "RFC 3339"}},
		{"bad delay", []string{"enqueue", "demo.noop", "--delay", "soon"},
			"", []string{`invalid argument "soon" for "--delay"`}},
		{"negative delay", []string{"enqueue", "demo.noop", "--delay", "-1s"},
			"", []string{"invalid --delay -1s"}},
		{"count zero", []string{"enqueue", "demo.noop", "--count", "0"},
			"", []string{"invalid --count 0"}},
		{"negative retries", []string{"enqueue", "demo.noop", "--max-retries", "-2"},
			"", []string{"invalid --max-retries -2"}},
		{"bad queue name", []string{"enqueue", "demo.noop", "--queue", "bad.name"},
			"", []string{"invalid --queue", `"bad.name"`}},
		{"quiet and json", []string{"enqueue", "demo.noop", "--quiet", "--json"},
			"", []string{"--quiet and --json conflict"}},
		{"timeout past the consumer timeout", []string{"enqueue", "demo.noop", "--timeout", "31m"},
			"", []string{"timeout 31m0s is not below the broker's consumer timeout"}},
		{"no kind", []string{"enqueue"},
			"", []string{"accepts between 1 and 2 arg(s)"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			args := append(c.args, "--queue", q)
			if c.name == "bad queue name" {
				args = c.args
			}
			r := runWith(t, s.env, c.stdin, args...)
			requireOneLineError(t, r, c.want, args)
		})
	}
	t.Cleanup(func() {
		// Nothing half-done: no case got as far as declaring the queue.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := s.b.Stats(ctx, q)
		if !errors.Is(err, broker.ErrQueueNotFound) {
			t.Errorf("queue %s exists after only bad enqueues: %v", q, err)
		}
	})
}

// TestEnqueueReencodesArgs checks that args are re-encoded from the
// kind's type: what the worker receives is what the type says.
func TestEnqueueReencodesArgs(t *testing.T) {
	t.Parallel()
	s := setup(t)
	q := s.queue()
	s.ok("enqueue", "demo.panic", "--queue", q, "--max-retries", "0")
	s.ok("enqueue", "demo.echo", "  {\"msg\" :\n \"spaced\"}  ", "--queue", q, "--max-retries", "0")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub, err := s.b.Consume(ctx, q, 10)
	require.NoError(t, err)
	defer sub.Close()
	var bodies []string
	for range 2 {
		select {
		case d := <-sub.Deliveries():
			bodies = append(bodies, string(d.Message().Args))
			require.NoError(t, d.Ack(ctx))
		case <-ctx.Done():
			t.Fatal("no delivery")
		}
	}
	require.ElementsMatch(t, []string{`{}`, `{"msg":"spaced"}`}, bodies)
}
