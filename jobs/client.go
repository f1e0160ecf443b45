package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/warrenjobs/warren/broker"
)

// ClientConfig configures a Client. The zero value is valid.
type ClientConfig struct {
	// Logger receives the client's logs. Default: slog.Default().
	Logger *slog.Logger
	// MaxPayloadBytes caps the JSON-encoded args of one task. Default: 1 MiB.
	MaxPayloadBytes int
	// ConsumerTimeout is the broker's consumer timeout; task time limits must
	// stay below it. Default: 30 min (RabbitMQ's default).
	ConsumerTimeout time.Duration
	// Middleware wraps every enqueue, outermost first.
	Middleware []EnqueueMiddleware
	// DisableEvents stops the client from recording "enqueued" events.
	// Default: events on.
	DisableEvents bool
	// EventInterval is how often buffered events are flushed. Default: 100 ms.
	EventInterval time.Duration
}

func (c *ClientConfig) withDefaults() ClientConfig {
	out := ClientConfig{}
	if c != nil {
		out = *c
	}
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	if out.MaxPayloadBytes == 0 {
		out.MaxPayloadBytes = 1 << 20
	}
	if out.ConsumerTimeout == 0 {
		out.ConsumerTimeout = 30 * time.Minute
	}
	if out.EventInterval == 0 {
		out.EventInterval = 100 * time.Millisecond
	}
	return out
}

func (c ClientConfig) validate() error {
	var errs []error
	if c.MaxPayloadBytes < 0 {
		errs = append(errs, fmt.Errorf("MaxPayloadBytes %d is negative", c.MaxPayloadBytes))
	}
	if c.ConsumerTimeout < 0 {
		errs = append(errs, fmt.Errorf("ConsumerTimeout %s is negative", c.ConsumerTimeout))
	}
	if c.EventInterval < 0 {
		errs = append(errs, fmt.Errorf("EventInterval %s is negative", c.EventInterval))
	}
	return errors.Join(errs...)
}

// Client enqueues tasks. It is safe for concurrent use by many goroutines.
type Client struct {
	broker  broker.Broker
	cfg     ClientConfig
	enqueue EnqueueFunc
	events  *eventLog
}

// NewClient returns a client publishing through b. cfg may be nil.
func NewClient(b broker.Broker, cfg *ClientConfig) (*Client, error) {
	if b == nil {
		return nil, errors.New("jobs: NewClient: nil broker")
	}
	c := &Client{broker: b, cfg: cfg.withDefaults()}
	if err := c.cfg.validate(); err != nil {
		return nil, fmt.Errorf("jobs: invalid client config: %w", err)
	}
	if !c.cfg.DisableEvents {
		c.events = newEventLog(b, c.cfg.EventInterval, c.cfg.Logger, nil)
		c.events.Start()
	}
	c.enqueue = chainEnqueue(c.cfg.Middleware, b.Publish)
	return c, nil
}

// Close flushes the client's buffered events, bounded by ctx. It does not
// close the broker.
func (c *Client) Close(ctx context.Context) error {
	c.events.Stop(ctx)
	return nil
}

// EnqueueParams is one task for EnqueueMany.
type EnqueueParams struct {
	Args JobArgs
	Opts *EnqueueOpts
}

// Enqueue publishes one task and returns its ID once the broker has confirmed
// it: from then on the task runs at least once or ends dead-lettered. An error
// means the task may or may not have been stored (the broker did not confirm
// it); enqueue again with the same EnqueueOpts.ID to stay idempotent.
func (c *Client) Enqueue(ctx context.Context, args JobArgs, opts *EnqueueOpts) (string, error) {
	ids, err := c.EnqueueMany(ctx, []EnqueueParams{{Args: args, Opts: opts}})
	if err != nil {
		return "", err
	}
	return ids[0], nil
}

// EnqueueMany publishes tasks with their confirms pipelined, and returns their
// IDs in order once every one is confirmed. On error, the *broker.PublishError
// values joined in it name the tasks that were not confirmed; the others were.
func (c *Client) EnqueueMany(ctx context.Context, params []EnqueueParams) ([]string, error) {
	now := time.Now()
	msgs := make([]*broker.Message, len(params))
	for i, p := range params {
		m, err := c.message(p, now)
		if err != nil {
			if len(params) > 1 {
				return nil, fmt.Errorf("jobs: task %d: %w", i, err)
			}
			return nil, fmt.Errorf("jobs: %w", err)
		}
		msgs[i] = m
	}
	if err := c.enqueue(ctx, msgs); err != nil {
		return nil, fmt.Errorf("jobs: enqueue: %w", err)
	}
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
		c.events.emit(enqueuedEvent(m, now))
	}
	return ids, nil
}

func enqueuedEvent(m *broker.Message, now time.Time) Event {
	e := Event{Type: EventEnqueued, Time: now, TaskID: m.ID, Kind: m.Kind, Queue: m.Queue, RunAt: m.RunAt}
	if len(m.Args) <= maxEventArgs {
		e.Args = json.RawMessage(m.Args)
	}
	return e
}

// message builds and checks the wire message for one task.
func (c *Client) message(p EnqueueParams, now time.Time) (*broker.Message, error) {
	if p.Args == nil {
		return nil, errors.New("nil args")
	}
	kind := p.Args.Kind()
	if kind == "" {
		return nil, fmt.Errorf("kind of %T is empty", p.Args)
	}
	var opts EnqueueOpts
	if p.Opts != nil {
		opts = *p.Opts
	}
	if withOpts, ok := p.Args.(JobArgsWithOpts); ok {
		opts = opts.merge(withOpts.EnqueueOpts())
	}
	if opts.Queue == "" {
		opts.Queue = DefaultQueue
	}
	if err := broker.ValidateQueueName(opts.Queue); err != nil {
		return nil, err
	}
	if err := opts.validate(c.cfg.ConsumerTimeout); err != nil {
		return nil, fmt.Errorf("kind %q: %w", kind, err)
	}
	body, err := json.Marshal(p.Args)
	if err != nil {
		return nil, fmt.Errorf("encode args of kind %q: %w", kind, err)
	}
	if c.cfg.MaxPayloadBytes > 0 && len(body) > c.cfg.MaxPayloadBytes {
		return nil, fmt.Errorf("kind %q: args are %d bytes: %w (limit %d)", kind, len(body), ErrPayloadTooLarge, c.cfg.MaxPayloadBytes)
	}
	id := opts.ID
	if id == "" {
		id = uuid.NewString()
	}
	m := &broker.Message{
		ID: id, Kind: kind, Queue: opts.Queue, Args: body,
		MaxRetries: -1, Timeout: opts.Timeout, RetryDelay: opts.RetryDelay,
		EnqueuedAt: now, Meta: opts.Meta,
	}
	switch {
	case opts.MaxRetries == NoRetries:
		m.MaxRetries = 0
	case opts.MaxRetries > 0:
		m.MaxRetries = opts.MaxRetries
	}
	switch {
	case opts.Delay > 0:
		m.RunAt = now.Add(opts.Delay)
	case opts.RunAt.After(now):
		m.RunAt = opts.RunAt
	}
	return m, nil
}
