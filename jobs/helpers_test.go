package jobs_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"github.com/warrenjobs/warren/broker"
	"github.com/warrenjobs/warren/broker/amqp"
	"github.com/warrenjobs/warren/broker/amqp/amqptest"
	"github.com/warrenjobs/warren/broker/memory"
	"github.com/warrenjobs/warren/jobs"
)

// quiet is a logger for tests; set WARREN_TEST_LOG=1 to see runner logs.
func quiet() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// brokerKinds are the implementations every engine test runs against;
// WARREN_TEST_BROKERS=memory (comma-separated) narrows them for a quick run.
var brokerKinds = func() []string {
	if v := os.Getenv("WARREN_TEST_BROKERS"); v != "" {
		return strings.Split(v, ",")
	}
	return []string{"amqp", "memory"}
}()

func newBroker(t *testing.T, kind string) broker.Broker {
	t.Helper()
	var b broker.Broker
	switch kind {
	case "amqp":
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		ab, err := amqp.Open(ctx, amqp.Config{URL: amqptest.URL(t), Logger: quiet()})
		require.NoError(t, err)
		b = ab
	case "memory":
		b = memory.New(memory.Config{Logger: quiet()})
	default:
		t.Fatalf("unknown broker kind %q", kind)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// eachBroker runs f as a parallel subtest per broker implementation.
func eachBroker(t *testing.T, f func(t *testing.T, b broker.Broker)) {
	for _, kind := range brokerKinds {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			f(t, newBroker(t, kind))
		})
	}
}

// uniqueQueue returns a fresh queue name, deleted when the test ends.
func uniqueQueue(t *testing.T, b broker.Broker) string {
	t.Helper()
	q := "t-" + strings.ReplaceAll(uuid.NewString()[:13], "-", "")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = b.DeleteQueue(ctx, q)
	})
	return q
}

func newClient(t *testing.T, b broker.Broker) *jobs.Client {
	t.Helper()
	c, err := jobs.NewClient(b, &jobs.ClientConfig{Logger: quiet()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// startRunner runs a runner until the test ends (or stop is called) and
// returns it. Run's error is checked at cleanup.
func startRunner(t *testing.T, b broker.Broker, w *jobs.Workers, cfg *jobs.RunnerConfig) (*jobs.Runner, func()) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet()
	}
	r, err := jobs.NewRunner(b, w, cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil && !errors.Is(err, context.Canceled) {
					t.Errorf("runner: %v", err)
				}
			case <-time.After(60 * time.Second):
				t.Errorf("runner did not stop within 60s")
			}
		})
	}
	t.Cleanup(stop)
	return r, stop
}

// deadLetters polls until queue holds n dead letters and returns them.
func deadLetters(t *testing.T, b broker.Broker, queue string, n int, within time.Duration) []*broker.Message {
	t.Helper()
	var dead []*broker.Message
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		dead, err = b.Dead(ctx, queue, 1000)
		return err == nil && len(dead) >= n
	}, within, 50*time.Millisecond, "expected %d dead letters in %s", n, queue)
	require.Len(t, dead, n)
	return dead
}

// record collects what handlers saw, safe for concurrent use.
type record[T any] struct {
	mu   sync.Mutex
	seen []T
}

func (r *record[T]) add(v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, v)
}

func (r *record[T]) all() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]T(nil), r.seen...)
}

func (r *record[T]) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

// Test kinds.

type echoArgs struct {
	Msg string `json:"msg"`
}

func (echoArgs) Kind() string { return "test.echo" }

type failArgs struct {
	Times int `json:"times"` // fail while attempt <= Times
}

func (failArgs) Kind() string { return "test.fail" }

type shapeArgs struct {
	N int `json:"n"`
}

func (shapeArgs) Kind() string { return "test.shape" }

// wrongShape has shapeArgs' kind with a field of another type.
type wrongShape struct {
	N string `json:"n"`
}

func (wrongShape) Kind() string { return "test.shape" }

type unknownArgs struct{}

func (unknownArgs) Kind() string { return "test.nobody-handles-this" }
