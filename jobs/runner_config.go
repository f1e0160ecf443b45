package jobs

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/google/uuid"
	"github.com/warrenjobs/warren/broker"
)

// RunnerConfig configures a Runner. Every field has a default; the zero value
// runs the "default" queue with 10 concurrent tasks.
type RunnerConfig struct {
	// Queues maps each queue to consume to its weight: when several queues have
	// tasks ready, a free slot takes from queue q with probability
	// weight(q)/Σweights. Default: {"default": 1}.
	Queues map[string]int
	// Concurrency is how many tasks run at once. Default: 10.
	Concurrency int
	// Prefetch is how many unsettled deliveries each queue's consumer may hold.
	// Small keeps dispatch fair for slow tasks; raise it for throughput of
	// short ones. Default: Concurrency.
	Prefetch int
	// DefaultTimeout is the time limit of a task when neither the task nor its
	// worker sets one. Default: 10 min.
	DefaultTimeout time.Duration
	// GracePeriod is how long a handler may run past its time limit (its
	// context cancelled) before the runner abandons it and fails the attempt.
	// Default: 10 s.
	GracePeriod time.Duration
	// ConsumerTimeout is the broker's consumer timeout; every time limit plus
	// GracePeriod must stay below it. Default: 30 min (RabbitMQ's default).
	ConsumerTimeout time.Duration
	// DefaultMaxRetries is how many times a failing task is retried when the
	// task sets no count. NoRetries for none. Default: 4.
	DefaultMaxRetries int
	// Backoff is the delay before each retry when neither the task nor its
	// worker sets one. Default: DefaultBackoff (1 min, 5 min, 25 min, 2 h...).
	Backoff RetryPolicy
	// ShutdownTimeout is how long Run waits for running tasks once its context
	// is cancelled; tasks still running then are returned to the queue.
	// Default: 30 s.
	ShutdownTimeout time.Duration
	// MaxPayloadBytes caps a task's args; larger ones are dead-lettered
	// unread. Default: 1 MiB.
	MaxPayloadBytes int
	// Middleware wraps every attempt, outermost first.
	Middleware []WorkMiddleware
	// Logger receives the runner's logs. Default: slog.Default().
	Logger *slog.Logger
	// DisableEvents turns off lifecycle events and heartbeats. Default: on.
	DisableEvents bool
	// EventInterval is how often buffered events are flushed. Default: 100 ms.
	EventInterval time.Duration
	// HeartbeatInterval is how often the worker reports its status. Default: 5 s.
	HeartbeatInterval time.Duration
	// ID names this worker in events. Default: host-pid-random.
	ID string
	// OnEvent, if set, is called synchronously with every event (also when
	// DisableEvents is set); it must be fast. Metrics hook in here.
	OnEvent func(Event)
}

func (c *RunnerConfig) withDefaults() RunnerConfig {
	out := RunnerConfig{}
	if c != nil {
		out = *c
	}
	if len(out.Queues) == 0 {
		out.Queues = map[string]int{DefaultQueue: 1}
	}
	if out.Concurrency == 0 {
		out.Concurrency = 10
	}
	if out.Prefetch == 0 {
		out.Prefetch = out.Concurrency
	}
	if out.DefaultTimeout == 0 {
		out.DefaultTimeout = 10 * time.Minute
	}
	if out.GracePeriod == 0 {
		out.GracePeriod = 10 * time.Second
	}
	if out.ConsumerTimeout == 0 {
		out.ConsumerTimeout = 30 * time.Minute
	}
	if out.DefaultMaxRetries == 0 {
		out.DefaultMaxRetries = 4
	}
	if out.Backoff == nil {
		out.Backoff = DefaultBackoff
	}
	if out.ShutdownTimeout == 0 {
		out.ShutdownTimeout = 30 * time.Second
	}
	if out.MaxPayloadBytes == 0 {
		out.MaxPayloadBytes = 1 << 20
	}
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	if out.EventInterval == 0 {
		out.EventInterval = 100 * time.Millisecond
	}
	if out.HeartbeatInterval == 0 {
		out.HeartbeatInterval = 5 * time.Second
	}
	if out.ID == "" {
		host, _ := os.Hostname()
		out.ID = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), uuid.NewString()[:8])
	}
	return out
}

func (c RunnerConfig) validate() error {
	var errs []error
	for q, w := range c.Queues {
		if err := broker.ValidateQueueName(q); err != nil {
			errs = append(errs, err)
		}
		if w < 1 {
			errs = append(errs, fmt.Errorf("queue %q has weight %d: weights must be at least 1", q, w))
		}
	}
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("concurrency %d: must be at least 1", c.Concurrency))
	}
	if c.Prefetch < 1 || c.Prefetch > 65535 {
		errs = append(errs, fmt.Errorf("prefetch %d: must be 1..65535", c.Prefetch))
	}
	if c.DefaultTimeout < 0 || c.GracePeriod < 0 || c.ShutdownTimeout < 0 || c.EventInterval < 0 || c.HeartbeatInterval < 0 {
		errs = append(errs, errors.New("durations must not be negative"))
	}
	if c.DefaultTimeout+c.GracePeriod >= c.ConsumerTimeout {
		errs = append(errs, fmt.Errorf("default timeout %s plus grace period %s is not below the consumer timeout %s", c.DefaultTimeout, c.GracePeriod, c.ConsumerTimeout))
	}
	if c.DefaultMaxRetries < NoRetries {
		errs = append(errs, fmt.Errorf("default max retries %d: use NoRetries (-1) or a positive count", c.DefaultMaxRetries))
	}
	if c.MaxPayloadBytes < 0 {
		errs = append(errs, fmt.Errorf("max payload bytes %d is negative", c.MaxPayloadBytes))
	}
	return errors.Join(errs...)
}

// maxRetries resolves a message's retry count against the defaults.
func (c RunnerConfig) maxRetries(m *broker.Message) int {
	if m.MaxRetries >= 0 {
		return m.MaxRetries
	}
	if c.DefaultMaxRetries == NoRetries {
		return 0
	}
	return c.DefaultMaxRetries
}
