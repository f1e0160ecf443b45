package bench

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/warrenjobs/warren/broker/amqp"
	"github.com/warrenjobs/warren/jobs"
)

// childReport is one line a memory-scenario worker process writes on its
// stdout: how many tasks it has finished so far.
type childReport struct {
	Processed int64 `json:"processed"`
}

// RunChild is the worker process of the memory scenario: with args
// "--mode warren" a Runner (events on) running no-op tasks, with "--mode raw"
// a raw amqp091-go consumer that acks each message; both consume --queue with
// --prefetch, and stop consuming after --limit tasks. It writes a childReport line to stdout every 100 ms and returns
// when stdin reaches its end (the parent closed it, or died) or ctx is done.
func RunChild(ctx context.Context, url string, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("bench child", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	mode := fs.String("mode", "warren", "warren or raw")
	queue := fs.String("queue", "", "queue: warren's logical name; raw consumes warren.<queue>")
	prefetch := fs.Int("prefetch", DefaultPrefetch, "prefetch")
	concurrency := fs.Int("concurrency", DefaultConcurrency, "warren's concurrency")
	limit := fs.Int64("limit", 0, "stop consuming after this many tasks (0: never)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("bench child: %w", err)
	}
	if err := CheckLocal(url); err != nil {
		return err
	}
	if *queue == "" {
		return errors.New("bench child: --queue is required")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _, _ = io.Copy(io.Discard, stdin); cancel() }()

	var processed atomic.Int64
	go func() {
		enc := json.NewEncoder(stdout)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				if enc.Encode(childReport{Processed: processed.Load()}) != nil {
					cancel()
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	// Consuming stops at the limit; the process stays up (and is measured)
	// until stdin ends.
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	count := func() {
		if n := processed.Add(1); *limit > 0 && n >= *limit {
			stop()
		}
	}
	var err error
	switch *mode {
	case "raw":
		err = childRaw(runCtx, url, "warren."+*queue, *prefetch, count)
	case "warren":
		err = childWarren(runCtx, url, *queue, *prefetch, *concurrency, count)
	default:
		return fmt.Errorf("bench child: unknown --mode %q", *mode)
	}
	if err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

func childRaw(ctx context.Context, url, queue string, prefetch int, count func()) error {
	conn, err := dialRaw(url, "warren bench memory raw")
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return err
	}
	if err := ch.Qos(prefetch, 0, false); err != nil {
		return err
	}
	ds, err := ch.Consume(queue, "", false, false, false, false, nil)
	if err != nil {
		return err
	}
	for {
		select {
		case d, ok := <-ds:
			if !ok {
				return errors.New("consumer closed")
			}
			if err := d.Ack(false); err != nil {
				return err
			}
			count()
		case <-ctx.Done():
			return nil
		}
	}
}

func childWarren(ctx context.Context, url, queue string, prefetch, concurrency int, count func()) error {
	openCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	b, err := amqp.Open(openCtx, amqp.Config{URL: url, Logger: discard, ConnectionName: "warren bench memory"})
	cancel()
	if err != nil {
		return err
	}
	defer b.Close()
	r, err := jobs.NewRunner(b, workersFor(func(context.Context, *jobs.Job[noop]) error { return nil }), &jobs.RunnerConfig{
		Queues: map[string]int{queue: 1}, Concurrency: concurrency, Prefetch: prefetch,
		Logger: discard, ShutdownTimeout: 10 * time.Second,
		OnEvent: func(e jobs.Event) {
			if e.Type == jobs.EventSucceeded {
				count()
			}
		},
	})
	if err != nil {
		return err
	}
	err = r.Run(ctx)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
