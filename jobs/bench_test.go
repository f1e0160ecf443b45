package jobs_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/broker/memory"
	"github.com/warrenjobs/warren/jobs"
)

// benchArgs is a task with 200 bytes of JSON args.
type benchArgs struct {
	To  string `json:"to"`
	Pad string `json:"pad"`
}

func (benchArgs) Kind() string { return "bench.noop" }

func newBenchArgs() benchArgs {
	return benchArgs{To: "someone@example.com", Pad: strings.Repeat("x", 200-40)}
}

// BenchmarkEnqueue measures Client.Enqueue on the in-memory broker: the
// client's own cost per task (building, checking and encoding the message,
// the enqueued event), without a network.
func BenchmarkEnqueue(b *testing.B) {
	for _, events := range []bool{true, false} {
		b.Run(fmt.Sprintf("events=%v", events), func(b *testing.B) {
			mem := memory.New(memory.Config{})
			defer mem.Close()
			c, err := jobs.NewClient(mem, &jobs.ClientConfig{Logger: quiet(), DisableEvents: !events})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close(context.Background())
			ctx := context.Background()
			args, opts := newBenchArgs(), &jobs.EnqueueOpts{Queue: "bench"}
			b.ReportAllocs()
			cpu0 := jobs.CPUTime()
			for b.Loop() {
				if _, err := c.Enqueue(ctx, args, opts); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(jobs.CPUTime()-cpu0)/float64(b.N), "cpu-ns/op")
			_, _ = mem.Purge(ctx, "bench")
		})
	}
}

// BenchmarkRunnerDrain measures the dispatch and execute path: one Runner
// draining b.N pre-filled no-op tasks from the in-memory broker, with and
// without events.
func BenchmarkRunnerDrain(b *testing.B) {
	for _, events := range []bool{true, false} {
		b.Run(fmt.Sprintf("events=%v", events), func(b *testing.B) {
			ctx := context.Background()
			mem := memory.New(memory.Config{})
			defer mem.Close()
			msgs := make([]*broker.Message, 0, 1000)
			args := []byte(`{"to":"someone@example.com","pad":"` + strings.Repeat("x", 200-40) + `"}`)
			for i := range b.N {
				msgs = append(msgs, &broker.Message{ID: fmt.Sprint(i), Kind: "bench.noop", Queue: "bench",
					Args: args, MaxRetries: -1, EnqueuedAt: time.Now()})
				if len(msgs) == cap(msgs) || i == b.N-1 {
					if err := mem.Publish(ctx, msgs); err != nil {
						b.Fatal(err)
					}
					msgs = msgs[:0]
				}
			}
			workers := jobs.NewWorkers()
			jobs.AddWorker(workers, jobs.WorkFunc(func(context.Context, *jobs.Job[benchArgs]) error { return nil }))
			var done atomic.Int64
			finished := make(chan struct{})
			r, err := jobs.NewRunner(mem, workers, &jobs.RunnerConfig{
				Queues: map[string]int{"bench": 1}, Concurrency: 32, Prefetch: 300,
				Logger: quiet(), DisableEvents: !events,
				OnEvent: func(e jobs.Event) {
					if e.Type == jobs.EventSucceeded && done.Add(1) == int64(b.N) {
						close(finished)
					}
				},
			})
			if err != nil {
				b.Fatal(err)
			}
			runCtx, stop := context.WithCancel(ctx)
			defer stop()
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := jobs.CPUTime()
			exited := make(chan error, 1)
			go func() { exited <- r.Run(runCtx) }()
			select {
			case <-finished:
			case err := <-exited:
				b.Fatalf("runner stopped after %d of %d: %v", done.Load(), b.N, err)
			}
			b.StopTimer()
			b.ReportMetric(float64(jobs.CPUTime()-cpu0)/float64(b.N), "cpu-ns/op")
			stop()
			<-exited
		})
	}
}
