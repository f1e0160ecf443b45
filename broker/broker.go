package broker

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Broker is the transport warren's job engine runs on. Every method that talks to
// the broker takes a context first and honours its deadline. Implementations are
// safe for concurrent use.
type Broker interface {
	// Declare makes sure the topology for a work queue exists: the work queue,
	// its dead-letter queue and whatever delayed delivery needs. It is idempotent
	// and cheap to repeat; implementations cache what they declared.
	Declare(ctx context.Context, queue string) error

	// Publish sends msgs and returns nil only after the broker confirmed every one
	// of them. A message whose RunAt lies in the future is held by the broker and
	// delivered to its queue at RunAt. Publish declares the queues it needs.
	// On failure the error is a *PublishError for each message that failed, joined
	// with errors.Join, so callers can tell which ones are unconfirmed; a message
	// not named in the error was confirmed.
	Publish(ctx context.Context, msgs []*Message) error

	// Consume declares queue and starts delivering its messages, with at most
	// prefetch (1..65535) unsettled deliveries outstanding. Deliveries keep
	// arriving (across connection loss) until the subscription is stopped or
	// ctx is cancelled.
	Consume(ctx context.Context, queue string, prefetch int) (Subscription, error)

	// Stats reports a queue's figures as the broker knows them.
	// It returns ErrQueueNotFound when the queue was never declared.
	Stats(ctx context.Context, queue string) (QueueStats, error)

	// Purge removes every ready message from the work queue (not its dead
	// letters) and returns how many it removed.
	Purge(ctx context.Context, queue string) (int, error)

	// Dead returns up to limit dead letters of queue, oldest first, without
	// removing or reordering any; a limit of 0 or less returns none (RabbitMQ
	// caps one call at 65535, and a letter held by one browse is briefly
	// invisible to another). Browsing never loses a dead letter.
	Dead(ctx context.Context, queue string, limit int) ([]*Message, error)

	// RetryDead moves the dead letters with the given task IDs (all of them when
	// ids is nil) back to the work queue: each is republished with confirms
	// before it is removed from the dead-letter queue, with its failure fields
	// and RunAt cleared and RetryBase set to its Attempt (a fresh retry budget).
	// An empty, non-nil ids acts on none. It returns how many it moved.
	RetryDead(ctx context.Context, queue string, ids []string) (int, error)

	// DeleteDead removes the dead letters with the given task IDs (all when ids
	// is nil) and returns how many it removed.
	DeleteDead(ctx context.Context, queue string, ids []string) (int, error)

	// DeleteQueue deletes a work queue and its dead-letter queue with everything
	// in them. Meant for tests and operators; delayed messages bound for the
	// queue cannot be delivered when they come due (RabbitMQ parks them in
	// warren.delay.unroutable, where they expire after 7 days).
	DeleteQueue(ctx context.Context, queue string) error

	// AppendEvents appends one batch of encoded lifecycle events to the events
	// log (a RabbitMQ stream with bounded retention), confirmed.
	AppendEvents(ctx context.Context, batch []byte) error

	// FollowEvents replays every retained event batch published at or after
	// since (zero: all retained), then follows new ones, until ctx is done; the
	// channel is closed then.
	FollowEvents(ctx context.Context, since time.Time) (<-chan EventBatch, error)

	// Ping reports whether the broker is reachable right now.
	Ping(ctx context.Context) error

	// Close releases the broker's connections. Subscriptions stop.
	Close() error
}

// Subscription is a running consumer of one queue.
type Subscription interface {
	// Deliveries yields messages. It is closed after Stop, or when the
	// subscription ends for good (the error is then reported by Err).
	Deliveries() <-chan Delivery
	// Stop cancels the consumer: no new deliveries arrive, and deliveries the
	// caller has not received yet go back to the queue. Deliveries already
	// received but not yet settled stay the caller's to settle (or Requeue)
	// until Close.
	Stop(ctx context.Context) error
	// Close ends the subscription; any delivery still unsettled goes back to the
	// queue (it will be delivered again).
	Close() error
	// Err reports why the subscription ended: nil if it was stopped, closed or
	// its context cancelled; an error wrapping ErrQueueNotFound if its queue
	// was deleted.
	Err() error
}

// Delivery is one message handed to a consumer. Exactly one of the settle
// methods must be called, once. A settle method that returns an error leaves the
// message with the broker, which delivers it again (at-least-once).
type Delivery interface {
	// Message is the decoded message. For a malformed delivery (DecodeErr non-nil)
	// it holds whatever could be read: ID, Kind, Queue, raw body in Args.
	Message() *Message
	// DecodeErr says why the delivery is not a valid warren message, or nil.
	DecodeErr() error
	// Ack removes the message: the task is done.
	Ack(ctx context.Context) error
	// Retry publishes next (normally the same task with Attempt advanced and
	// LastError set) to be delivered at next.RunAt, waits for its confirm, then
	// removes this delivery. An empty next.Queue means the delivery's queue.
	// Settling a delivery a second time returns an error and sends nothing.
	Retry(ctx context.Context, next *Message) error
	// DeadLetter publishes dead to the queue's dead-letter queue, waits for its
	// confirm, then removes this delivery.
	DeadLetter(ctx context.Context, dead *Message) error
	// Requeue hands an unstarted delivery back to the queue at once. Used for
	// prefetched messages on shutdown, never as a retry.
	Requeue(ctx context.Context) error
}

// EventBatch is one batch of encoded lifecycle events read from the events log.
type EventBatch struct {
	Offset int64     // position in the log
	Time   time.Time // when it was appended
	Data   []byte
}

// QueueStats are a work queue's figures.
type QueueStats struct {
	Queue     string `json:"queue"`
	Ready     int    `json:"ready"`     // messages waiting in the work queue
	Consumers int    `json:"consumers"` // consumers attached to the work queue
	Dead      int    `json:"dead"`      // messages in the dead-letter queue
}

// Message is a task on the wire. See WIRE.md at the repository root for how each
// field is carried by AMQP 0-9-1.
type Message struct {
	ID    string // task ID, unique per task; AMQP message-id
	Kind  string // job kind; AMQP type
	Queue string // logical queue name, without the warren prefix
	Args  []byte // JSON-encoded job arguments; AMQP body

	Attempt    int           // attempts already made (0 when first enqueued)
	RetryBase  int           // Attempt at which the current retry budget started
	MaxRetries int           // retries allowed after the first attempt of a budget; -1: use the worker's default
	Timeout    time.Duration // per-attempt time limit; 0: use the worker's default
	RetryDelay time.Duration // fixed delay between attempts; 0: use the backoff policy

	EnqueuedAt time.Time         // when the task was first enqueued
	RunAt      time.Time         // not before this time; zero means now
	Meta       map[string]string // caller's metadata, carried untouched

	LastError  string    // error of the last failed attempt
	Stack      string    // stack of the last attempt, if it panicked
	FailedAt   time.Time // when the last attempt failed
	DeadReason string    // why the task was dead-lettered
	DeadAt     time.Time // when it was dead-lettered
}

// Clone returns a deep copy of m.
func (m *Message) Clone() *Message {
	c := *m
	c.Args = append([]byte(nil), m.Args...)
	if m.Meta != nil {
		c.Meta = make(map[string]string, len(m.Meta))
		for k, v := range m.Meta {
			c.Meta[k] = v
		}
	}
	return &c
}

// PublishError reports one message that Publish could not get confirmed.
type PublishError struct {
	ID  string // the message's task ID
	Err error
}

func (e *PublishError) Error() string { return fmt.Sprintf("publish task %s: %v", e.ID, e.Err) }
func (e *PublishError) Unwrap() error { return e.Err }

var (
	// ErrQueueNotFound reports a queue that was never declared.
	ErrQueueNotFound = errors.New("queue not found")
	// ErrUnroutable reports a publish the broker could not route to any queue.
	ErrUnroutable = errors.New("message unroutable")
	// ErrNacked reports a publish the broker refused (basic.nack).
	ErrNacked = errors.New("message not confirmed by broker")
	// ErrClosed reports use of a closed broker or subscription.
	ErrClosed = errors.New("broker closed")
	// ErrInvalidQueueName reports a queue name outside ValidateQueueName's rules.
	ErrInvalidQueueName = errors.New("invalid queue name")
)

// ValidateQueueName checks a logical queue name: 1 to 64 letters, digits, '_'
// or '-'. Dots are excluded so that warren's derived names (warren.Q,
// warren.Q.dead) can never collide.
func ValidateQueueName(name string) error {
	// A loop, not a regular expression: this runs for every message published
	// and consumed.
	ok := len(name) >= 1 && len(name) <= 64
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
	}
	if !ok {
		return fmt.Errorf("%w %q: use 1-64 letters, digits, '_' or '-'", ErrInvalidQueueName, name)
	}
	return nil
}
