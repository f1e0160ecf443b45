package jobs_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/jobs"
)

func TestEnqueueRunsHandlerOnce(t *testing.T) {
	t.Parallel()
	eachBroker(t, func(t *testing.T, b broker.Broker) {
		q := uniqueQueue(t, b)
		var seen record[*jobs.Job[echoArgs]]
		w := jobs.NewWorkers()
		jobs.AddWorker(w, jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[echoArgs]) error {
			seen.add(j)
			return nil
		}))
		client := newClient(t, b)
		ctx := context.Background()
		id, err := client.Enqueue(ctx, echoArgs{Msg: "hello"}, &jobs.EnqueueOpts{Queue: q, Meta: map[string]string{"tenant": "a"}})
		require.NoError(t, err)
		startRunner(t, b, w, &jobs.RunnerConfig{Queues: map[string]int{q: 1}})

		require.Eventually(t, func() bool { return seen.len() == 1 }, 10*time.Second, 10*time.Millisecond)
		j := seen.all()[0]
		require.Equal(t, id, j.ID)
		require.Equal(t, "hello", j.Args.Msg)
		require.Equal(t, 1, j.Attempt)
		require.Equal(t, q, j.Queue)
		require.Equal(t, "a", j.Meta["tenant"])
		require.Equal(t, 4, j.MaxRetries, "runner default")
		// Acked: nothing left, nothing redelivered.
		require.Eventually(t, func() bool {
			s, err := b.Stats(ctx, q)
			return err == nil && s.Ready == 0
		}, 5*time.Second, 20*time.Millisecond)
		time.Sleep(300 * time.Millisecond)
		require.Equal(t, 1, seen.len())
	})
}

func TestEnqueueManyAllRunExactlyOnce(t *testing.T) {
	t.Parallel()
	eachBroker(t, func(t *testing.T, b broker.Broker) {
		q := uniqueQueue(t, b)
		var seen record[string]
		w := jobs.NewWorkers()
		jobs.AddWorker(w, jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[echoArgs]) error {
			seen.add(j.Args.Msg)
			return nil
		}))
		params := make([]jobs.EnqueueParams, 300)
		for i := range params {
			params[i] = jobs.EnqueueParams{Args: echoArgs{Msg: string(rune('a'+i%26)) + "-" + time.Duration(i).String()}, Opts: &jobs.EnqueueOpts{Queue: q}}
		}
		ids, err := newClient(t, b).EnqueueMany(context.Background(), params)
		require.NoError(t, err)
		require.Len(t, ids, 300)
		startRunner(t, b, w, &jobs.RunnerConfig{Queues: map[string]int{q: 1}, Concurrency: 8})
		require.Eventually(t, func() bool { return seen.len() == 300 }, 20*time.Second, 20*time.Millisecond)
		uniq := map[string]bool{}
		for _, m := range seen.all() {
			uniq[m] = true
		}
		require.Len(t, uniq, 300)
	})
}

func TestFailedAttemptsRetryWithAttemptCount(t *testing.T) {
	t.Parallel()
	eachBroker(t, func(t *testing.T, b broker.Broker) {
		q := uniqueQueue(t, b)
		type seenAttempt struct {
			attempt int
			lastErr string
			at      time.Time
		}
		var seen record[seenAttempt]
		w := jobs.NewWorkers()
		jobs.AddWorker(w, jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[failArgs]) error {
			seen.add(seenAttempt{j.Attempt, j.LastError, time.Now()})
			if j.Attempt <= j.Args.Times {
				return errors.New("boom " + time.Duration(j.Attempt).String())
			}
			return nil
		}))
		_, err := newClient(t, b).Enqueue(context.Background(), failArgs{Times: 2}, &jobs.EnqueueOpts{Queue: q, RetryDelay: time.Second})
		require.NoError(t, err)
		startRunner(t, b, w, &jobs.RunnerConfig{Queues: map[string]int{q: 1}})

		require.Eventually(t, func() bool { return seen.len() == 3 }, 15*time.Second, 20*time.Millisecond)
		all := seen.all()
		for i, a := range all {
			require.Equal(t, i+1, a.attempt)
		}
		require.Empty(t, all[0].lastErr)
		require.Equal(t, "boom 1ns", all[1].lastErr)
		// The retry waited for its delay, held by the broker.
		gap := all[1].at.Sub(all[0].at)
		require.GreaterOrEqual(t, gap, 900*time.Millisecond)
		require.Less(t, gap, 2500*time.Millisecond)
		time.Sleep(300 * time.Millisecond)
		require.Equal(t, 3, seen.len())
		s, err := b.Stats(context.Background(), q)
		require.NoError(t, err)
		require.Zero(t, s.Dead)
	})
}

func TestDeadLetterAfterMaxRetries(t *testing.T) {
	t.Parallel()
	eachBroker(t, func(t *testing.T, b broker.Broker) {
		q := uniqueQueue(t, b)
		var attempts atomic.Int32
		w := jobs.NewWorkers()
		jobs.AddWorker(w, jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[failArgs]) error {
			attempts.Add(1)
			return errors.New("always broken")
		}))
		before := time.Now()
		id, err := newClient(t, b).Enqueue(context.Background(), failArgs{Times: 99}, &jobs.EnqueueOpts{Queue: q, MaxRetries: 2, RetryDelay: time.Second})
		require.NoError(t, err)
		startRunner(t, b, w, &jobs.RunnerConfig{Queues: map[string]int{q: 1}})

		dead := deadLetters(t, b, q, 1, 15*time.Second)[0]
		require.Equal(t, int32(3), attempts.Load(), "1 attempt + 2 retries")
		require.Equal(t, id, dead.ID)
		require.Equal(t, "test.fail", dead.Kind)
		require.JSONEq(t, `{"times":99}`, string(dead.Args))
		require.Equal(t, 3, dead.Attempt)
		require.Equal(t, "always broken", dead.LastError)
		require.Contains(t, dead.DeadReason, "max retries exceeded")
		require.WithinRange(t, dead.EnqueuedAt, before.Add(-time.Second), time.Now())
		require.False(t, dead.FailedAt.IsZero())
		require.False(t, dead.DeadAt.IsZero())
		s, err := b.Stats(context.Background(), q)
		require.NoError(t, err)
		require.Equal(t, 0, s.Ready)
		require.Equal(t, 1, s.Dead)
	})
}

func TestPanicIsRecoveredWithStack(t *testing.T) {
	t.Parallel()
	eachBroker(t, func(t *testing.T, b broker.Broker) {
		q := uniqueQueue(t, b)
		var ok atomic.Int32
		w := jobs.NewWorkers()
		jobs.AddWorker(w, jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[echoArgs]) error {
			if j.Args.Msg == "panic" {
				panic("handler exploded")
			}
			ok.Add(1)
			return nil
		}))
		client := newClient(t, b)
		_, err := client.Enqueue(context.Background(), echoArgs{Msg: "panic"}, &jobs.EnqueueOpts{Queue: q, MaxRetries: jobs.NoRetries})
		require.NoError(t, err)
		r, _ := startRunner(t, b, w, &jobs.RunnerConfig{Queues: map[string]int{q: 1}})

		dead := deadLetters(t, b, q, 1, 10*time.Second)[0]
		require.Contains(t, dead.LastError, "panic: handler exploded")
		require.Contains(t, dead.Stack, "TestPanicIsRecoveredWithStack")
		require.Equal(t, 1, dead.Attempt)

		// The runner keeps working.
		_, err = client.Enqueue(context.Background(), echoArgs{Msg: "fine"}, &jobs.EnqueueOpts{Queue: q})
		require.NoError(t, err)
		require.Eventually(t, func() bool { return ok.Load() == 1 }, 10*time.Second, 10*time.Millisecond)
		require.EqualValues(t, 1, r.Stats().Failed)
	})
}

func TestControlErrors(t *testing.T) {
	t.Parallel()
	eachBroker(t, func(t *testing.T, b broker.Broker) {
		q := uniqueQueue(t, b)
		type call struct {
			msg     string
			attempt int
			at      time.Time
		}
		var calls record[call]
		w := jobs.NewWorkers()
		jobs.AddWorker(w, jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[echoArgs]) error {
			calls.add(call{j.Args.Msg, j.Attempt, time.Now()})
			switch j.Args.Msg {
			case "skip":
				return jobs.SkipRetry(errors.New("permanent"))
			case "cancel":
				return jobs.Cancel(errors.New("not needed"))
			case "later":
				if j.Attempt == 1 {
					return jobs.RetryAfter(time.Second)
				}
				return errors.New("then fails") // NoRetries: the RetryAfter used no retry, so this one dead-letters
			}
			return nil
		}))
		client := newClient(t, b)
		for _, m := range []string{"skip", "cancel"} {
			_, err := client.Enqueue(context.Background(), echoArgs{Msg: m}, &jobs.EnqueueOpts{Queue: q, MaxRetries: 5})
			require.NoError(t, err)
		}
		_, err := client.Enqueue(context.Background(), echoArgs{Msg: "later"}, &jobs.EnqueueOpts{Queue: q, MaxRetries: jobs.NoRetries, ID: "later-noretries"})
		require.NoError(t, err)
		startRunner(t, b, w, &jobs.RunnerConfig{Queues: map[string]int{q: 1}})

		dead := deadLetters(t, b, q, 2, 15*time.Second)
		reasons := map[string]*broker.Message{}
		for _, d := range dead {
			reasons[d.ID] = d
		}
		require.Contains(t, reasons["later-noretries"].DeadReason, "max retries exceeded (0)")
		require.Equal(t, 2, reasons["later-noretries"].Attempt)
		var skipped *broker.Message
		for _, d := range dead {
			if d.ID != "later-noretries" {
				skipped = d
			}
		}
		require.Contains(t, skipped.DeadReason, "skip retry")
		require.Equal(t, 1, skipped.Attempt, "SkipRetry dead-letters on the first attempt")

		byMsg := map[string][]call{}
		require.Eventually(t, func() bool {
			byMsg = map[string][]call{}
			for _, c := range calls.all() {
				byMsg[c.msg] = append(byMsg[c.msg], c)
			}
			return len(byMsg["later"]) == 2
		}, 15*time.Second, 20*time.Millisecond)
		require.Len(t, byMsg["skip"], 1)
		require.Len(t, byMsg["cancel"], 1, "cancel: no retry")
		gap := byMsg["later"][1].at.Sub(byMsg["later"][0].at)
		require.GreaterOrEqual(t, gap, 900*time.Millisecond, "RetryAfter delay honoured")
	})
}
