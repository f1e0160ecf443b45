package demo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/warrenjobs/warren/jobs"
)

// recipe is one task of the producer's round: its args and its options.
type recipe struct {
	args func(n int) jobs.JobArgs
	opts jobs.EnqueueOpts
}

// Options of the round's tasks. Retries are a second or two apart (instead of
// the default backoff's minutes) so a retry, its success and a dead letter
// all show within seconds.
var (
	retryOnce    = jobs.EnqueueOpts{MaxRetries: 3, RetryDelay: time.Second}
	retryTwice   = jobs.EnqueueOpts{MaxRetries: 3, RetryDelay: 2 * time.Second}
	deadAfter3   = jobs.EnqueueOpts{MaxRetries: 2, RetryDelay: time.Second}
	deadAfter2   = jobs.EnqueueOpts{MaxRetries: 1, RetryDelay: 2 * time.Second}
	delayedShort = jobs.EnqueueOpts{Delay: 5 * time.Second}
	delayedLong  = jobs.EnqueueOpts{Delay: 15 * time.Second}
)

func echo(n int) jobs.JobArgs {
	return Echo{Msg: fmt.Sprintf("hello from the demo producer, task %d", n)}
}
func noop(int) jobs.JobArgs    { return Noop{} }
func sleep(int) jobs.JobArgs   { return Sleep{MS: 300 + rand.IntN(2700)} }
func fail1(int) jobs.JobArgs   { return Fail{Times: 1} }
func fail2(int) jobs.JobArgs   { return Fail{Times: 2} }
func failAll(int) jobs.JobArgs { return Fail{Times: 9} }
func panics(int) jobs.JobArgs  { return Panic{} }

// round is the producer's repeating mix of 20 tasks: 9 quick successes
// (3 of them delayed by 5 or 15 s), 4 slow ones, 4 that fail once or twice
// and then succeed, and 3 that end dead-lettered (demo.fail after 3
// attempts, demo.panic after 2, demo.panic at once). Every outcome comes up
// within the first round.
var round = []recipe{
	{echo, jobs.EnqueueOpts{}},
	{fail1, retryOnce},
	{noop, jobs.EnqueueOpts{}},
	{failAll, deadAfter3},
	{sleep, jobs.EnqueueOpts{}},
	{echo, delayedShort},
	{noop, jobs.EnqueueOpts{}},
	{panics, deadAfter2},
	{sleep, jobs.EnqueueOpts{}},
	{fail2, retryTwice},
	{echo, jobs.EnqueueOpts{}},
	{noop, delayedLong},
	{sleep, jobs.EnqueueOpts{}},
	{noop, jobs.EnqueueOpts{}},
	{fail1, retryOnce},
	{echo, jobs.EnqueueOpts{}},
	{panics, jobs.EnqueueOpts{MaxRetries: jobs.NoRetries}},
	{sleep, jobs.EnqueueOpts{}},
	{noop, delayedShort},
	{fail1, retryOnce},
}

// enqueueTimeout bounds one enqueue, so a stalled broker cannot stall the
// producer past its stop.
const enqueueTimeout = 5 * time.Second

// Produce enqueues a steady mix of demo tasks onto queue through client,
// about rate tasks a second, until ctx is cancelled; then it returns nil. It
// is the demo producer of `warren dev`: quick successes (demo.noop,
// demo.echo), slow tasks (demo.sleep, 0.3–3 s), retries that then succeed
// (demo.fail failing once or twice, retried after 1–2 s), failures that end
// dead-lettered (demo.fail failing more often than it may retry, demo.panic)
// and tasks delayed by 5 or 15 s. Run it only where Register has added the
// demo kinds' workers.
//
// A failed enqueue is logged through slog.Default (once until enqueues
// succeed again) and the producer carries on. It returns an error only for a
// rate that is not positive.
func Produce(ctx context.Context, client *jobs.Client, queue string, rate float64) error {
	if client == nil {
		return errors.New("demo: Produce: nil client")
	}
	if !(rate > 0) {
		return fmt.Errorf("demo: Produce: rate %v must be positive", rate)
	}
	interval := max(time.Duration(float64(time.Second)/rate), time.Microsecond)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	log := slog.Default()
	failing := false
	for n := 1; ; n++ {
		r := round[(n-1)%len(round)]
		opts := r.opts
		opts.Queue = queue
		ectx, cancel := context.WithTimeout(ctx, enqueueTimeout)
		_, err := client.Enqueue(ectx, r.args(n), &opts)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil && !failing:
			log.Warn("demo producer: enqueue failed; carrying on", "queue", queue, "err", err)
			failing = true
		case err == nil && failing:
			log.Info("demo producer: enqueueing again", "queue", queue)
			failing = false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
