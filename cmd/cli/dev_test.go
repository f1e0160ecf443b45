package cli_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/cmd/cli"
	"github.com/warrenjobs/warren/jobs"
)

// devOutput is a buffer the command writes while the test reads it.
type devOutput struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *devOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

func (o *devOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// devRun is `dev` running in-process in a user's tree.
type devRun struct {
	t              *testing.T
	stdout, stderr *devOutput
	cancel         context.CancelFunc
	done           chan int
}

// startDev runs `myapp dev --memory args...` in a tree with one kind,
// test.greet, whose handler calls greeted; producer may be nil.
func startDev(t *testing.T, producer cli.DevProducer, greeted func(), args ...string) *devRun {
	t.Helper()
	workers := jobs.NewWorkers()
	jobs.AddWorker(workers, jobs.WorkFunc(func(context.Context, *jobs.Job[greet]) error {
		greeted()
		return nil
	}))
	root := cli.NewRootCommand(workers, &cli.Options{Name: "myapp", DevProducer: producer})
	ctx, cancel := context.WithCancel(context.Background())
	r := &devRun{t: t, stdout: &devOutput{}, stderr: &devOutput{}, cancel: cancel, done: make(chan int, 1)}
	go func() {
		r.done <- cli.Run(ctx, root, append([]string{"dev", "--memory", "--addr", "127.0.0.1:0"}, args...), r.stdout, r.stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(20 * time.Second):
			t.Error("dev did not stop")
		}
	})
	return r
}

// field waits for the start-up summary line name and returns its value.
func (r *devRun) field(name string) string {
	r.t.Helper()
	re := regexp.MustCompile(`(?m)^` + name + ` +(.+)$`)
	var value string
	require.Eventually(r.t, func() bool {
		m := re.FindStringSubmatch(r.stdout.String())
		if m != nil {
			value = m[1]
		}
		return m != nil
	}, 10*time.Second, 10*time.Millisecond, "no %q line; stdout %q; stderr %q", name, r.stdout, r.stderr)
	return value
}

// stop cancels the command's context (what SIGINT does) and returns its
// exit status.
func (r *devRun) stop() int {
	r.t.Helper()
	r.cancel()
	select {
	case code := <-r.done:
		r.done <- code // for the cleanup
		return code
	case <-time.After(20 * time.Second):
		r.t.Fatalf("dev did not stop; stderr:\n%s", r.stderr)
		return -1
	}
}

// TestDevWithoutProducer: a user's binary that passes no DevProducer runs
// the worker and the dashboard, and says that it has no producer.
func TestDevWithoutProducer(t *testing.T) {
	t.Parallel()
	r := startDev(t, nil, func() {})
	require.Equal(t, "in-memory (--memory): nothing survives exit", r.field("broker"))
	require.Equal(t, `queue "dev": test.greet (10 at once)`, r.field("worker"))
	require.Equal(t, "none: this binary passes no demo producer (cli.Options.DevProducer); enqueue with `myapp enqueue KIND ARGS --queue dev`", r.field("producer"))
	base := r.field("dashboard")
	resp, err := http.Get(base + "healthz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, 0, r.stop(), r.stderr.String())
	require.Contains(t, r.stderr.String(), `msg="dev: stopped"`)
}

// TestDevRunsUserProducer: the binary's producer gets a client, --queue and
// --rate; the worker runs what it enqueues; the producer is stopped before
// dev returns 0.
func TestDevRunsUserProducer(t *testing.T) {
	t.Parallel()
	var greetings atomic.Int64
	var gotQueue atomic.Value
	var gotRate atomic.Value
	var returned atomic.Bool
	producer := func(ctx context.Context, client *jobs.Client, queue string, rate float64) error {
		gotQueue.Store(queue)
		gotRate.Store(rate)
		defer returned.Store(true)
		for ctx.Err() == nil {
			if _, err := client.Enqueue(ctx, greet{Name: "ann"}, &jobs.EnqueueOpts{Queue: queue}); err != nil && ctx.Err() == nil {
				return err
			}
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
		}
		return nil
	}
	r := startDev(t, producer, func() { greetings.Add(1) }, "--queue", "greetings", "--rate", "7.5")
	require.Equal(t, `about 7.5 tasks/s onto "greetings"`, r.field("producer"))
	require.Eventually(t, func() bool { return greetings.Load() >= 3 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, 0, r.stop(), r.stderr.String())
	require.True(t, returned.Load(), "the producer returned before dev did")
	require.Equal(t, "greetings", gotQueue.Load())
	require.Equal(t, 7.5, gotRate.Load())
}

// TestDevRefusesForeignKinds: a producer that enqueues a kind the binary
// does not run stops dev with an error naming it.
func TestDevRefusesForeignKinds(t *testing.T) {
	t.Parallel()
	producer := func(ctx context.Context, client *jobs.Client, queue string, _ float64) error {
		_, err := client.Enqueue(ctx, foreign{}, &jobs.EnqueueOpts{Queue: queue})
		<-ctx.Done()
		return err
	}
	r := startDev(t, producer, func() {})
	select {
	case code := <-r.done:
		r.done <- code
		require.Equal(t, 1, code)
	case <-time.After(10 * time.Second):
		t.Fatalf("dev did not stop; stderr:\n%s", r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr.String()), "\n")
	require.Equal(t, `myapp: dev producer enqueued kind "other.kind", which no worker of this binary runs (registered kinds: test.greet)`, lines[len(lines)-1])
}

type foreign struct{}

func (foreign) Kind() string { return "other.kind" }

// TestDevFlags: invalid flags are refused before anything starts.
func TestDevFlags(t *testing.T) {
	t.Parallel()
	run := tree(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--rate", "-1"}, "invalid --rate -1: must be 0..1000 tasks a second"},
		{[]string{"--rate", "NaN"}, "invalid --rate NaN"},
		{[]string{"--queue", "no spaces"}, "invalid --queue"},
		{[]string{"--basic-auth", "nopassword"}, "invalid --basic-auth"},
		{[]string{"--history", "0s"}, "invalid --history 0s: must be positive"},
		{[]string{"--addr", ":0"}, "refusing to serve the dashboard without authentication"},
		{[]string{"--addr", "nonsense"}, `listen address "nonsense"`},
	} {
		out, errOut, code := run(append([]string{"dev", "--memory"}, tc.args...)...)
		require.Equal(t, 1, code, "%v: %s", tc.args, errOut)
		require.Empty(t, out, tc.args)
		require.Contains(t, errOut, tc.want, tc.args)
	}
}

// TestDevInterruptedWhileConnecting: a signal while dev waits for RabbitMQ
// stops it with status 0, before anything else starts.
func TestDevInterruptedWhileConnecting(t *testing.T) {
	t.Parallel()
	workers := jobs.NewWorkers()
	jobs.AddWorker(workers, jobs.WorkFunc(func(context.Context, *jobs.Job[greet]) error { return nil }))
	dialing := make(chan struct{})
	root := cli.NewRootCommand(workers, &cli.Options{Name: "myapp", Open: func(ctx context.Context, _ string, _ *slog.Logger) (broker.Broker, error) {
		close(dialing)
		<-ctx.Done()
		return nil, ctx.Err()
	}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr devOutput
	done := make(chan int, 1)
	go func() { done <- cli.Run(ctx, root, []string{"dev", "--addr", "127.0.0.1:0"}, &stdout, &stderr) }()
	select {
	case <-dialing:
	case <-time.After(10 * time.Second):
		t.Fatal("dev never tried RabbitMQ")
	}
	cancel()
	select {
	case code := <-done:
		require.Equal(t, 0, code, stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatal("dev did not stop")
	}
	require.Empty(t, stdout.String())
}
