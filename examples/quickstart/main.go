// Command quickstart is the smallest complete warren program: it defines a job
// kind, enqueues a task from Go and runs a worker that executes it.
//
//	WARREN_AMQP_URL=amqp://guest:guest@localhost:5672/ go run ./examples/quickstart
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/warrenjobs/warren/broker/amqp"
	"github.com/warrenjobs/warren/jobs"
)

// SendEmail is a job kind: its fields are the task's arguments.
type SendEmail struct {
	To      string `json:"to"`
	Subject string `json:"subject"`
}

// Kind names the kind on the wire. Keep it stable across deploys.
func (SendEmail) Kind() string { return "email.send" }

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	url := os.Getenv("WARREN_AMQP_URL")
	if url == "" {
		url = "amqp://guest:guest@localhost:5672/"
	}
	b, err := amqp.Open(ctx, amqp.Config{URL: url})
	if err != nil {
		return err
	}
	defer b.Close()
	queue := "quickstart"
	if q := os.Getenv("QUICKSTART_QUEUE"); q != "" {
		queue = q
	}

	// The handler. Returning an error retries the task with backoff.
	done := make(chan struct{})
	workers := jobs.NewWorkers()
	jobs.AddWorker(workers, jobs.WorkFunc(func(ctx context.Context, j *jobs.Job[SendEmail]) error {
		fmt.Printf("sending %q to %s (attempt %d)\n", j.Args.Subject, j.Args.To, j.Attempt)
		close(done)
		return nil
	}))

	// Enqueue returns once RabbitMQ has confirmed the task.
	client, err := jobs.NewClient(b, nil)
	if err != nil {
		return err
	}
	defer client.Close(context.Background())
	if _, err := client.Enqueue(ctx, SendEmail{To: "ada@example.com", Subject: "Welcome"}, &jobs.EnqueueOpts{Queue: queue}); err != nil {
		return err
	}
	fmt.Println("enqueued")

	// Run a worker until the task is done.
	runner, err := jobs.NewRunner(b, workers, &jobs.RunnerConfig{Queues: map[string]int{queue: 1}})
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	go func() { <-done; stop() }()
	return runner.Run(runCtx)
}
