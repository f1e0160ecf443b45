package jobstest_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/warrenjobs/warren/jobs"
	"github.com/warrenjobs/warren/jobs/jobstest"
)

type Resize struct {
	Image string `json:"image"`
	Width int    `json:"width"`
}

func (Resize) Kind() string { return "image.resize" }

type ResizeWorker struct {
	jobs.WorkerDefaults[Resize]
}

func (ResizeWorker) Work(ctx context.Context, j *jobs.Job[Resize]) error {
	if j.Args.Width <= 0 {
		return jobs.SkipRetry(errors.New("width must be positive"))
	}
	return nil
}

// Work runs a handler on args with no broker.
func ExampleWork() {
	err := jobstest.Work(context.Background(), ResizeWorker{}, Resize{Image: "a.png", Width: 0}, nil)
	fmt.Println(err)
	// Output: skip retry: width must be positive
}

// Upload is the code under test: it enqueues a resize.
func Upload(ctx context.Context, c *jobs.Client, image string) error {
	_, err := c.Enqueue(ctx, Resize{Image: image, Width: 640}, &jobs.EnqueueOpts{Queue: "images"})
	return err
}

// An Env gives code under test a real client; its Recorder says what was
// enqueued. In a test, use NewEnv(t) and RequireEnqueued(t, ...).
func ExampleEnv() {
	env := jobstest.New()
	defer env.Close()
	if err := Upload(context.Background(), env.Client, "cat.png"); err != nil {
		panic(err)
	}
	for _, task := range env.Recorder.Kind("image.resize") {
		fmt.Println(task.Queue, string(task.Args))
	}
	// Output: images {"image":"cat.png","width":640}
}

// Drain runs what was enqueued with the real workers, synchronously.
func ExampleEnv_Drain() {
	env := jobstest.New()
	defer env.Close()
	workers := jobs.NewWorkers()
	jobs.AddWorker(workers, ResizeWorker{})
	ctx := context.Background()
	_, _ = env.Client.Enqueue(ctx, Resize{Image: "a.png", Width: 640}, nil)
	_, _ = env.Client.Enqueue(ctx, Resize{Image: "b.png", Width: 0}, nil) // SkipRetry: dead-lettered
	res, err := env.Drain(ctx, workers)
	fmt.Printf("%+v %v\n", res, err)
	// Output: {Succeeded:1 Retried:0 Dead:1 Cancelled:0} <nil>
}
