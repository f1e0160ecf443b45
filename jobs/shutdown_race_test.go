package jobs_test

import (
	"context"
	"testing"

	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/broker/memory"
	"github.com/warrenjobs/warren/jobs"
)

// closedBroker hands out subscriptions that have already ended cleanly, as a
// subscription does once the context given to Consume is cancelled.
type closedBroker struct{ broker.Broker }

func (closedBroker) Consume(context.Context, string, int) (broker.Subscription, error) {
	return closedSubscription{}, nil
}

type closedSubscription struct{}

var closedDeliveries = func() chan broker.Delivery {
	c := make(chan broker.Delivery)
	close(c)
	return c
}()

func (closedSubscription) Deliveries() <-chan broker.Delivery { return closedDeliveries }
func (closedSubscription) Stop(context.Context) error         { return nil }
func (closedSubscription) Close() error                       { return nil }
func (closedSubscription) Err() error                         { return nil }

// Run's context is also the subscriptions' context, so on shutdown their
// delivery channels close at about the time ctx is done. Run must report the
// clean shutdown it is, whichever of the two the dispatcher sees first; it
// used to return "subscription ended" at random, and a worker process then
// exited with an error after SIGTERM. Found by the fault-injection suite
// (jobs/internal/faults).
func TestRunCleanWhenSubscriptionClosesOnShutdown(t *testing.T) {
	t.Parallel()
	mem := memory.New(memory.Config{Logger: quiet()})
	t.Cleanup(func() { _ = mem.Close() })
	w := jobs.NewWorkers()
	jobs.AddWorker(w, jobs.WorkFunc(func(context.Context, *jobs.Job[sleepArgs]) error { return nil }))
	for i := range 200 {
		r, err := jobs.NewRunner(closedBroker{mem}, w, &jobs.RunnerConfig{Logger: quiet(), DisableEvents: true})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := r.Run(ctx); err != nil {
			t.Fatalf("run %d: Run after a clean shutdown returned %v", i, err)
		}
	}
}
